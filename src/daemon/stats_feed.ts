/**
 * The statistics publisher (an edge): it copies the counters of the Totem
 * core, the transport and the IPC server into cmap's read-only `stats.*`
 * keys, under Corosync's names (`exec/stats.c`), so `denosync cmapctl -m
 * stats`-style tooling and trackers see them. Like Corosync, which computes
 * its stats map when it is read, it works on demand: the daemon calls
 * `publish` before every client read that can see `stats.*` (cmap's read
 * hook), and the period timer publishes only while some client tracks a
 * key there, so an idle daemon does no statistics work at all:
 *
 * - `stats.srp.*`: orf_token_tx/rx, memb_*_tx/rx, mcast_tx/rx/retx, the
 *   state counters, consensus_timeouts, rx_msg_dropped, continuous_gather,
 *   mtt_rx_token, time_since_token_last_received, unreachable_failed
 *   (members failed early, `totem.unreachable_fails_fast`) and
 *   `stats.srp.rejected.<reason>` (frames the core refused, by reason);
 *   `stats.pg.msg_queue_avail`.
 * - `stats.knet.node<N>.link<L>.*`: enabled, connected, up/down counts,
 *   latency (microseconds, as knet), packets and bytes (data and total), and
 *   `stats.knet.{rejected,tx_dropped,tx_errors,rx_errors}.<reason>`, and
 *   `stats.knet.heartbeat_stalls` (late heartbeat steps: our own stalls).
 * - `stats.ipcs.service<S>.<pid>.<conn>.*` per open IPC connection (its keys
 *   go when it closes) and `stats.ipcs.global.{active,closed}`.
 *
 * Cheap by design: a key is written only when its value changed, so
 * trackers hear real changes only, and keys that disappear (a closed
 * connection, a removed link) are deleted.
 *
 * Writes to `stats.clear.{all,totem,srp,knet,ipc}` zero the counters, as
 * Corosync's `stats_map_set`: the core and the transport zero their own,
 * IPC connection counters are re-based here (the server keeps running
 * totals).
 *
 * @module
 */
import { ENGINES } from "../../engines/mod.ts";
import type { CmapValue } from "../../engines/cmap/values.ts";
import type { IpcConnectionStats, IpcServerStats } from "../ipc/server.ts";
import type { LinkStatus, TransportStats } from "../net/transport.ts";
import { MAX_NO_CONT_GATHER } from "../totem/config.ts";
import type { SrpStats } from "../totem/srp.ts";

/** Default publishing period. */
export const STATS_PERIOD_MS_DEFAULT = 1000;
/** Prefixes whose keys the feed owns (and may delete). */
export const STATS_FEED_PREFIXES: readonly string[] = [
  "stats.srp.",
  "stats.pg.",
  "stats.knet.",
  "stats.ipcs.",
];
/** What `stats.clear.<what>` accepts ("totem" is Corosync's, "srp" ours). */
export const STATS_CLEAR_TARGETS: readonly string[] = [
  "all",
  "totem",
  "srp",
  "knet",
  "ipc",
];

/** Where the feed writes: the cmap engine's daemon-side calls. */
export interface StatsTarget {
  setInternal(key: string, value: CmapValue): void;
  deleteInternal(key: string): boolean;
  /**
   * True while a client tracks keys that overlap `prefix`; without it the
   * period timer always publishes.
   */
  hasTracksOverlapping?(prefix: string): boolean;
}

/** Where the counters come from (the daemon's runtime, transport, server). */
export interface StatsSources {
  /** The Totem core: `Srp` (its stats, their reset, and the queue room). */
  readonly srp: {
    readonly stats: SrpStats;
    clearStats(): void;
    readonly sendQueueFree: number;
  };
  /** Frames the runtime dropped, by reason (`NodeRuntime.rejected`). */
  readonly srpRejected: Map<string, number>;
  /** The runtime's clock (the one the core's `nowMs` comes from). */
  now(): number;
  readonly transport: {
    readonly stats: TransportStats;
    linkStatus(): LinkStatus[];
    clearStats(): void;
  } | null;
  readonly ipc: {
    connectionStats(): IpcConnectionStats[];
    stats(): IpcServerStats;
  } | null;
  /** A client's process name (`/proc/<pid>/comm`), or null when unknown. */
  procName?(pid: number): string | null;
}

type IpcCounters = Pick<
  IpcConnectionStats,
  | "requests"
  | "responses"
  | "dispatched"
  | "flowControlCount"
  | "flowControlHits"
  | "invalidRequests"
  | "requestsHeld"
>;

const IPC_ZERO: IpcCounters = {
  requests: 0,
  responses: 0,
  dispatched: 0,
  flowControlCount: 0,
  flowControlHits: 0,
  invalidRequests: 0,
  requestsHeld: 0,
};

const u64 = (n: number): CmapValue => ({
  type: "uint64",
  value: BigInt(Math.max(0, Math.trunc(n))),
});
const u32 = (n: number): CmapValue => ({
  type: "uint32",
  value: Math.min(0xffff_ffff, Math.max(0, Math.round(n))),
});
const u8 = (b: boolean): CmapValue => ({ type: "uint8", value: b ? 1 : 0 });

function sameValue(a: CmapValue, b: CmapValue): boolean {
  return a.type === b.type && a.value === b.value;
}

/** Publishes live statistics into cmap; see the module comment. */
export class StatsFeed {
  readonly #target: StatsTarget;
  readonly #sources: StatsSources;
  /** What was last written, by key (only keys under `STATS_FEED_PREFIXES`). */
  readonly #published = new Map<string, CmapValue>();
  readonly #serviceIds = new Map<string, number>(
    ENGINES.map((e) => [e.name, e.serviceId]),
  );
  /** IPC counters at the last clear, per connection id. */
  #ipcBase = new Map<number, IpcCounters>();
  #ipcClosedBase = 0;
  #procNames = new Map<number, string>();
  #ticker: ReturnType<typeof setInterval> | undefined;
  /** Passes made (for tests and diagnostics). */
  passes = 0;

  constructor(target: StatsTarget, sources: StatsSources) {
    this.#target = target;
    this.#sources = sources;
  }

  /**
   * Publishes now, then every `periodMs` while someone tracks `stats.*`
   * (see the module comment), until `stop`.
   */
  start(periodMs = STATS_PERIOD_MS_DEFAULT): void {
    if (this.#ticker !== undefined) return;
    this.publish();
    this.#ticker = setInterval(() => {
      const tracked = this.#target.hasTracksOverlapping?.("stats.") ?? true;
      if (tracked) this.publish();
    }, periodMs);
  }

  /** Stops the periodic publishing (the keys stay as they were). */
  stop(): void {
    clearInterval(this.#ticker);
    this.#ticker = undefined;
  }

  /**
   * Zeroes the counters named by `what` (`STATS_CLEAR_TARGETS`) and
   * publishes at once; false for anything else (the cmap write then fails
   * with NOT_SUPPORTED, as Corosync's).
   */
  clear(what: string): boolean {
    if (!STATS_CLEAR_TARGETS.includes(what)) return false;
    const all = what === "all";
    if (all || what === "totem" || what === "srp") {
      this.#sources.srp.clearStats();
      this.#sources.srpRejected.clear();
    }
    if (all || what === "knet") this.#sources.transport?.clearStats();
    if ((all || what === "ipc") && this.#sources.ipc !== null) {
      this.#ipcBase = new Map(
        this.#sources.ipc.connectionStats().map((c) => [c.id, counters(c)]),
      );
      this.#ipcClosedBase = closedRaw(this.#sources.ipc.stats());
    }
    this.publish();
    return true;
  }

  /** One pass: every key computed, changed ones written, stale ones deleted. */
  publish(): void {
    const next = new Map<string, CmapValue>();
    this.#srp(next);
    this.#knet(next);
    this.#ipcs(next);
    for (const [key, value] of next) {
      const old = this.#published.get(key);
      if (old !== undefined && sameValue(old, value)) continue;
      this.#target.setInternal(key, value);
      this.#published.set(key, value);
    }
    for (const key of this.#published.keys()) {
      if (next.has(key)) continue;
      this.#target.deleteInternal(key);
      this.#published.delete(key);
    }
    this.passes++;
  }

  #srp(out: Map<string, CmapValue>): void {
    const s = this.#sources.srp.stats;
    const p = "stats.srp.";
    const counters: [string, number][] = [
      ["orf_token_tx", s.tokensTx],
      ["orf_token_rx", s.tokensRx],
      ["memb_merge_detect_tx", s.membMergeDetectTx],
      ["memb_merge_detect_rx", s.membMergeDetectRx],
      ["memb_join_tx", s.membJoinTx],
      ["memb_join_rx", s.membJoinRx],
      ["mcast_tx", s.ordersTx],
      ["mcast_retx", s.mcastRetx],
      ["mcast_rx", s.mcastRx],
      ["memb_commit_token_tx", s.membCommitTokenTx],
      ["memb_commit_token_rx", s.membCommitTokenRx],
      ["token_hold_cancel_tx", s.tokenHoldCancelTx],
      ["token_hold_cancel_rx", s.tokenHoldCancelRx],
      ["operational_entered", s.operationalEntered],
      ["operational_token_lost", s.operationalTokenLost],
      ["gather_entered", s.gatherEntered],
      ["gather_token_lost", s.gatherTokenLost],
      ["commit_entered", s.commitEntered],
      ["commit_token_lost", s.commitTokenLost],
      ["recovery_entered", s.recoveryEntered],
      ["recovery_token_lost", s.recoveryTokenLost],
      ["consensus_timeouts", s.consensusTimeouts],
      ["rx_msg_dropped", s.rxMsgDropped],
      // Ours beyond Corosync's list.
      ["token_retransmits", s.tokenRetransmits],
      ["unreachable_failed", s.unreachableFailed],
      ["msgs_queued", s.mcastTx],
      ["msgs_delivered", s.ordersRx],
      ["rejected_total", s.rejected],
    ];
    for (const [name, n] of counters) out.set(p + name, u64(n));
    out.set(p + "continuous_gather", u32(s.continuousGather));
    const t = this.#sources.transport;
    out.set(
      p + "continuous_sendmsg_failures",
      u32(t === null ? 0 : t.stats.txErrorsContinuous),
    );
    // Corosync raises this flag with its "firewall" warning: membership
    // keeps failing to form past MAX_NO_CONT_GATHER consensus timeouts.
    out.set(
      p + "firewall_enabled_or_nic_failure",
      u8(s.continuousGather > MAX_NO_CONT_GATHER),
    );
    out.set(p + "mtt_rx_token", u32(s.mttRxTokenMs));
    // Corosync times how long a token is held (workload) and when its
    // backlog is computed; our core handles a token in one step at one
    // instant, so both are 0 by construction. Kept for its tools.
    out.set(p + "avg_token_workload", u32(0));
    out.set(p + "avg_backlog_calc", u32(0));
    if (s.lastTokenRxMs >= 0) {
      out.set(
        p + "time_since_token_last_received",
        u64(this.#sources.now() - s.lastTokenRxMs),
      );
    }
    for (const [reason, n] of this.#sources.srpRejected) {
      out.set(`${p}rejected.${keyPart(reason)}`, u64(n));
    }
    out.set(
      "stats.pg.msg_queue_avail",
      u32(this.#sources.srp.sendQueueFree),
    );
  }

  #knet(out: Map<string, CmapValue>): void {
    const t = this.#sources.transport;
    if (t === null) return;
    for (const l of t.linkStatus()) {
      const p = `stats.knet.node${l.nodeId}.link${l.link}.`;
      out.set(p + "enabled", u8(l.enabled));
      out.set(p + "connected", u8(l.connected));
      out.set(p + "up_count", u32(l.upCount));
      out.set(p + "down_count", u32(l.downCount));
      const lat = l.latency;
      // knet reports latency in microseconds.
      out.set(p + "latency_min", u32((lat.minMs ?? 0) * 1000));
      out.set(p + "latency_max", u32((lat.maxMs ?? 0) * 1000));
      out.set(
        p + "latency_ave",
        u32(lat.samples === 0 ? 0 : (lat.sumMs / lat.samples) * 1000),
      );
      out.set(p + "latency_samples", u32(lat.samples));
      out.set(p + "tx_data_packets", u64(l.txDataPackets));
      out.set(p + "rx_data_packets", u64(l.rxDataPackets));
      out.set(p + "tx_data_bytes", u64(l.txDataBytes));
      out.set(p + "rx_data_bytes", u64(l.rxDataBytes));
      out.set(p + "tx_ping_packets", u64(l.pingsSent));
      out.set(p + "rx_pong_packets", u64(l.pongsReceived));
      out.set(p + "tx_total_packets", u64(l.txPackets));
      out.set(p + "rx_total_packets", u64(l.rxPackets));
      out.set(p + "tx_total_bytes", u64(l.txBytes));
      out.set(p + "rx_total_bytes", u64(l.rxBytes));
    }
    const s = t.stats;
    out.set("stats.knet.heartbeat_stalls", u64(s.heartbeatStalls));
    const byReason: [string, Record<string, number>][] = [
      ["rejected", s.rejected],
      ["tx_dropped", s.txDropped],
      ["tx_errors", s.txErrors],
      ["rx_errors", s.rxErrors],
    ];
    for (const [what, counts] of byReason) {
      for (const [reason, n] of Object.entries(counts)) {
        out.set(`stats.knet.${what}.${keyPart(reason)}`, u64(n));
      }
    }
  }

  #ipcs(out: Map<string, CmapValue>): void {
    const ipc = this.#sources.ipc;
    if (ipc === null) return;
    const conns = ipc.connectionStats();
    const live = new Set<number>();
    for (const c of conns) {
      live.add(c.id);
      const base = this.#ipcBase.get(c.id) ?? IPC_ZERO;
      const service = this.#serviceIds.get(c.service) ?? c.service;
      const p = `stats.ipcs.service${service}.${c.pid}.${c.id}.`;
      out.set(p + "procname", {
        type: "string",
        value: this.#procName(c.id, c.pid),
      });
      out.set(p + "requests", u64(c.requests - base.requests));
      out.set(p + "responses", u64(c.responses - base.responses));
      out.set(p + "dispatched", u64(c.dispatched - base.dispatched));
      out.set(p + "flow_control", u32(c.flowControl ? 1 : 0));
      out.set(
        p + "flow_control_count",
        u64(c.flowControlCount - base.flowControlCount),
      );
      // Events queued past the connection's limit (Corosync: overload).
      out.set(p + "overload", u64(c.flowControlHits - base.flowControlHits));
      out.set(
        p + "invalid_request",
        u64(c.invalidRequests - base.invalidRequests),
      );
      // Requests left unread while the ring was congested (holdRequests).
      out.set(p + "requests_held", u64(c.requestsHeld - base.requestsHeld));
      out.set(p + "queued", u32(c.queuedFrames));
      // Our server awaits every read and write instead of retrying a
      // non-blocking call, so there are no retries to count.
      out.set(p + "send_retries", u64(0));
      out.set(p + "recv_retries", u64(0));
    }
    for (const id of this.#ipcBase.keys()) {
      if (!live.has(id)) this.#ipcBase.delete(id);
    }
    for (const id of this.#procNames.keys()) {
      if (!live.has(id)) this.#procNames.delete(id);
    }
    out.set("stats.ipcs.global.active", u64(conns.length));
    out.set(
      "stats.ipcs.global.closed",
      u64(closedRaw(ipc.stats()) - this.#ipcClosedBase),
    );
  }

  #procName(conn: number, pid: number): string {
    let name = this.#procNames.get(conn);
    if (name === undefined) {
      name = keyless(this.#sources.procName?.(pid) ?? null) ?? "unknown";
      this.#procNames.set(conn, name);
    }
    return name;
  }
}

function counters(c: IpcConnectionStats): IpcCounters {
  return {
    requests: c.requests,
    responses: c.responses,
    dispatched: c.dispatched,
    flowControlCount: c.flowControlCount,
    flowControlHits: c.flowControlHits,
    invalidRequests: c.invalidRequests,
    requestsHeld: c.requestsHeld,
  };
}

/** Connections that ended (refused ones included). */
function closedRaw(s: IpcServerStats): number {
  return Math.max(0, s.accepted - s.connections);
}

/** A reason as a key component: only cmap's key characters. */
function keyPart(text: string): string {
  return text.replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 64) || "unknown";
}

/** A process name as a printable value (it is a value, not a key). */
function keyless(name: string | null): string | null {
  if (name === null) return null;
  const clean = name.trim().replace(/[^\x20-\x7e]/g, "?");
  return clean === "" ? null : clean.slice(0, 64);
}

/** `/proc/<pid>/comm`, or null when it cannot be read (no such process, no permission). */
export function procNameFromProc(pid: number): string | null {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/comm`).trim();
  } catch {
    // Not permitted or gone: the name is a nicety, the counters are not.
    return null;
  }
}
