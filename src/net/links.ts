/**
 * Link state of the UDP transport, as knet keeps it for Corosync 3: one
 * heartbeat state per (peer, link), the up/down decision, and the choice of
 * links for each datagram by link mode. Pure: time comes in as `nowMs`, and
 * the answers are values (pings to send, changes to report) that the
 * transport performs, so every rule here is unit-tested with a fake clock.
 *
 * Rules, after libknet's heartbeat thread (`threads_heartbeat.c`) and
 * corosync.conf(5):
 * - Every `pingIntervalMs` each configured (peer, link) gets a ping; the peer
 *   answers with a pong carrying the same sequence number, which gives the
 *   round-trip time.
 * - A link comes up after `pongCount` consecutive pongs (`knet_pong_count`).
 *   Only a pong proves both directions, so data alone never brings a link up.
 * - An up link goes down when nothing valid (data, ping or pong) was heard
 *   from the peer on it for `pingTimeoutMs` (`knet_ping_timeout`). Counting
 *   data as liveness keeps a link up when its pongs are lost under load.
 *   Time this process did not run is not silence: a heartbeat step late by
 *   more than half an interval (GC, SIGSTOP, a paused VM) first moves the
 *   silence clocks forward by its lateness, so a stall of our own never
 *   takes every link down at once (the peers' datagrams wait unread in the
 *   socket buffer meanwhile).
 * - Link choice for a unicast: `passive` takes the up link of highest
 *   `knet_link_priority` (ties: lower link number); `active` takes every up
 *   link; `rr` rotates over the up links. With no link known up (startup, or
 *   the peer is gone) every configured link is used, so bootstrap never
 *   waits for heartbeats.
 *
 * @module
 */
import { assert, unreachable } from "../lib/assert.ts";

/** `totem.link_mode`. */
export type LinkMode = "passive" | "active" | "rr";

/** `knet_link_priority` when none is configured for a link. */
export const LINK_PRIORITY_DEFAULT = 1;
/** Sent pings remembered per (peer, link) to match late pongs. */
export const PINGS_PENDING_MAX = 8;

/** One peer and the links both ends have an address on. */
export interface LinkPeer {
  nodeId: number;
  /** Link numbers, any order. */
  links: readonly number[];
}

/** Construction parameters of a `LinkTable`. */
export interface LinkTableOptions {
  /** Our own nodeid; it must not appear in `peers`. */
  nodeId: number;
  peers: readonly LinkPeer[];
  linkMode: LinkMode;
  /** `knet_link_priority` by link number; higher wins in passive mode. */
  linkPriorities?: readonly (number | undefined)[];
  pingIntervalMs: number;
  /** Silence after which an up link goes down; must exceed the interval. */
  pingTimeoutMs: number;
  /** Consecutive pongs that bring a link up; default 1. */
  pongCount?: number;
}

/**
 * Why a link changed state: `removed` when a configuration reload took the
 * (peer, link) away or changed its address.
 */
export type LinkChangeReason = "pong" | "timeout" | "removed";

/** A link to a peer went up or down. */
export interface LinkChange {
  nodeId: number;
  link: number;
  up: boolean;
  reason: LinkChangeReason;
}

/** A heartbeat to send now. */
export interface PingRequest {
  nodeId: number;
  link: number;
  seq: number;
}

/** What `tick` asks of the transport. */
export interface TickResult {
  pings: PingRequest[];
  changes: LinkChange[];
}

/** What `pong` made of an answer. */
export interface PongResult {
  /** False when the seq matches no recent ping of ours (late or forged). */
  accepted: boolean;
  /** Set when this pong brought the link up. */
  change: LinkChange | null;
}

/** One (peer, link) as `snapshot` reports it. */
export interface LinkSnapshot {
  nodeId: number;
  link: number;
  priority: number;
  /** Up: pongs seen and the peer not silent for `pingTimeoutMs`. */
  connected: boolean;
  upCount: number;
  downCount: number;
  /** Round-trip time of the last accepted pong; undefined before one. */
  rttMs: number | undefined;
  /** When anything valid was last heard on this link; undefined before. */
  lastHeardMs: number | undefined;
  pingsSent: number;
  pongsReceived: number;
  txPackets: number;
  txBytes: number;
  rxPackets: number;
  rxBytes: number;
  /** Of the above, data datagrams only (no heartbeats). */
  txDataPackets: number;
  txDataBytes: number;
  rxDataPackets: number;
  rxDataBytes: number;
  /** Round-trip times of accepted pongs since the last `clearStats`. */
  latency: LatencyStats;
}

/** Round-trip time statistics of one link (knet's latency_*). */
export interface LatencyStats {
  /** Undefined before the first sample. */
  minMs: number | undefined;
  maxMs: number | undefined;
  sumMs: number;
  samples: number;
}

interface PendingPing {
  seq: number;
  sentMs: number;
}

interface LinkState {
  readonly nodeId: number;
  readonly link: number;
  readonly priority: number;
  up: boolean;
  pongStreak: number;
  lastHeardMs: number | undefined;
  lastPongMs: number | undefined;
  rttMs: number | undefined;
  nextSeq: number;
  pending: PendingPing[];
  upCount: number;
  downCount: number;
  pingsSent: number;
  pongsReceived: number;
  txPackets: number;
  txBytes: number;
  rxPackets: number;
  rxBytes: number;
  txDataPackets: number;
  txDataBytes: number;
  rxDataPackets: number;
  rxDataBytes: number;
  latency: LatencyStats;
}

interface PeerState {
  /** In passive preference order: priority descending, then link ascending. */
  readonly byPreference: readonly LinkState[];
  /** By link number ascending. */
  readonly byLink: readonly LinkState[];
  rrNext: number;
}

/** Heartbeat and link-choice state for every (peer, link). */
export class LinkTable {
  readonly nodeId: number;
  readonly linkMode: LinkMode;
  readonly pingIntervalMs: number;
  readonly pingTimeoutMs: number;
  readonly pongCount: number;
  /** Peers by nodeid, iterated in ascending nodeid order. */
  readonly #peers = new Map<number, PeerState>();
  /** Every link number some peer is configured on, ascending. */
  #allLinks: readonly number[];
  #priorities: ReadonlyMap<number, number>;
  readonly #linkPriorities: readonly (number | undefined)[] | undefined;
  #rrAllNext = 0;
  /** When `tick` last ran; a late tick means this process stalled. */
  #lastTickMs: number | undefined;
  /** Heartbeat steps that came late enough to count as a stall of ours. */
  stalls = 0;

  constructor(options: LinkTableOptions) {
    assert(
      options.pingIntervalMs > 0,
      `pingIntervalMs must be positive, got ${options.pingIntervalMs}`,
    );
    assert(
      options.pingTimeoutMs > options.pingIntervalMs,
      `pingTimeoutMs (${options.pingTimeoutMs}) must exceed pingIntervalMs (${options.pingIntervalMs})`,
    );
    const pongCount = options.pongCount ?? 1;
    assert(
      Number.isInteger(pongCount) && pongCount >= 1,
      `pongCount must be a positive integer, got ${pongCount}`,
    );
    this.nodeId = options.nodeId;
    this.linkMode = options.linkMode;
    this.pingIntervalMs = options.pingIntervalMs;
    this.pingTimeoutMs = options.pingTimeoutMs;
    this.pongCount = pongCount;
    this.#linkPriorities = options.linkPriorities;
    this.#allLinks = [];
    this.#priorities = new Map();
    this.setPeers(options.peers);
  }

  /**
   * Replaces the peer set (configuration reload). A (peer, link) present
   * before and after keeps its state — up/down, liveness, pending pings and
   * counters — unless listed in `reset` (its address changed: nothing heard
   * from the old address proves the new one works). New pairs start down,
   * like at start. Returns a `removed` change for every pair that was up and
   * is now gone or reset, so listeners never keep a link up that no longer
   * exists.
   */
  setPeers(
    peers: readonly LinkPeer[],
    reset: readonly { nodeId: number; link: number }[] = [],
  ): LinkChange[] {
    const resetKeys = new Set(reset.map((r) => `${r.nodeId}/${r.link}`));
    const changes: LinkChange[] = [];
    const old = new Map(this.#peers);
    const priorities = new Map<number, number>();
    const allLinks = new Set<number>();
    const next = new Map<number, PeerState>();
    for (const peer of [...peers].sort((a, b) => a.nodeId - b.nodeId)) {
      assert(peer.nodeId !== this.nodeId, "our own node is not a peer");
      assert(!next.has(peer.nodeId), `peer ${peer.nodeId} twice`);
      const before = old.get(peer.nodeId);
      const links = [...new Set(peer.links)].sort((a, b) => a - b);
      const byLink = links.map((link) => {
        const priority = this.#linkPriorities?.[link] ??
          LINK_PRIORITY_DEFAULT;
        priorities.set(link, priority);
        allLinks.add(link);
        const kept = before?.byLink.find((st) => st.link === link);
        if (kept !== undefined && !resetKeys.has(`${peer.nodeId}/${link}`)) {
          return kept;
        }
        return newLinkState(peer.nodeId, link, priority);
      });
      const byPreference = [...byLink].sort(preferred);
      const rrNext = before === undefined || byLink.length === 0
        ? 0
        : before.rrNext % byLink.length;
      next.set(peer.nodeId, { byLink, byPreference, rrNext });
    }
    // Every pair that was up and did not survive goes down, in table order.
    for (const [nodeId, before] of old) {
      const after = next.get(nodeId);
      for (const st of before.byLink) {
        if (!st.up) continue;
        if (after?.byLink.includes(st)) continue;
        changes.push({
          nodeId: st.nodeId,
          link: st.link,
          up: false,
          reason: "removed",
        });
      }
    }
    this.#peers.clear();
    for (const [id, state] of next) this.#peers.set(id, state);
    this.#allLinks = [...allLinks].sort((a, b) => a - b);
    this.#priorities = priorities;
    this.#rrAllNext = 0;
    return changes;
  }

  /** Configured peers, ascending. */
  get peerIds(): number[] {
    return [...this.#peers.keys()];
  }

  /**
   * Heartbeat step, due every `pingIntervalMs`: takes down the links that
   * were silent for `pingTimeoutMs` and returns one ping per (peer, link).
   */
  tick(nowMs: number): TickResult {
    const pings: PingRequest[] = [];
    const changes: LinkChange[] = [];
    const late = this.#lastTickMs === undefined
      ? 0
      : nowMs - this.#lastTickMs - this.pingIntervalMs;
    this.#lastTickMs = nowMs;
    const stalled = late > this.pingIntervalMs / 2;
    if (stalled) this.stalls++;
    for (const peer of this.#peers.values()) {
      for (const st of peer.byLink) {
        if (st.up) {
          assert(st.lastHeardMs !== undefined, "an up link was heard");
          if (stalled) st.lastHeardMs = Math.min(nowMs, st.lastHeardMs + late);
          if (nowMs - st.lastHeardMs >= this.pingTimeoutMs) {
            st.up = false;
            st.pongStreak = 0;
            st.downCount++;
            changes.push({
              nodeId: st.nodeId,
              link: st.link,
              up: false,
              reason: "timeout",
            });
          }
        } else if (
          st.pongStreak > 0 && st.lastPongMs !== undefined &&
          nowMs - st.lastPongMs >= this.pingTimeoutMs
        ) {
          // Pongs must be consecutive to bring a link up (knet_pong_count).
          st.pongStreak = 0;
        }
        const seq = st.nextSeq;
        st.nextSeq = (seq + 1) >>> 0;
        st.pending.push({ seq, sentMs: nowMs });
        if (st.pending.length > PINGS_PENDING_MAX) st.pending.shift();
        st.pingsSent++;
        pings.push({ nodeId: st.nodeId, link: st.link, seq });
      }
    }
    return { pings, changes };
  }

  /**
   * Records a pong from `nodeId` on `link`. Only a pong answering one of our
   * recent pings counts: it sets the RTT, refreshes liveness and may bring
   * the link up.
   */
  pong(nodeId: number, link: number, seq: number, nowMs: number): PongResult {
    const st = this.#state(nodeId, link);
    if (st === undefined) return { accepted: false, change: null };
    const at = st.pending.findIndex((p) => p.seq === seq);
    if (at < 0) return { accepted: false, change: null };
    const ping = st.pending[at];
    // Older pings are now either lost or late; a late pong must not count.
    st.pending.splice(0, at + 1);
    st.rttMs = Math.max(0, nowMs - ping.sentMs);
    const lat = st.latency;
    lat.minMs = lat.minMs === undefined
      ? st.rttMs
      : Math.min(lat.minMs, st.rttMs);
    lat.maxMs = lat.maxMs === undefined
      ? st.rttMs
      : Math.max(lat.maxMs, st.rttMs);
    lat.sumMs += st.rttMs;
    lat.samples++;
    st.lastPongMs = nowMs;
    st.lastHeardMs = nowMs;
    st.pongsReceived++;
    if (st.up) return { accepted: true, change: null };
    st.pongStreak++;
    if (st.pongStreak < this.pongCount) return { accepted: true, change: null };
    st.up = true;
    st.upCount++;
    return {
      accepted: true,
      change: { nodeId, link, up: true, reason: "pong" },
    };
  }

  /**
   * Records a valid datagram of `bytes` from `nodeId` on `link` (any kind):
   * receive counters and liveness. False when that pair is not configured.
   * `data`: it carried a frame, not a heartbeat (data counters).
   */
  received(
    nodeId: number,
    link: number,
    bytes: number,
    nowMs: number,
    data = false,
  ): boolean {
    const st = this.#state(nodeId, link);
    if (st === undefined) return false;
    st.lastHeardMs = nowMs;
    st.rxPackets++;
    st.rxBytes += bytes;
    if (data) {
      st.rxDataPackets++;
      st.rxDataBytes += bytes;
    }
    return true;
  }

  /** Records a datagram of `bytes` sent to `nodeId` on `link`. */
  sent(nodeId: number, link: number, bytes: number, data = false): void {
    const st = this.#state(nodeId, link);
    if (st === undefined) return;
    st.txPackets++;
    st.txBytes += bytes;
    if (data) {
      st.txDataPackets++;
      st.txDataBytes += bytes;
    }
  }

  /**
   * Zeroes every link's counters, up/down counts and latency statistics
   * (cmap `stats.clear.knet`). Link state, liveness and the last RTT stay.
   */
  clearStats(): void {
    this.stalls = 0;
    for (const peer of this.#peers.values()) {
      for (const st of peer.byLink) {
        st.upCount = 0;
        st.downCount = 0;
        st.pingsSent = 0;
        st.pongsReceived = 0;
        st.txPackets = 0;
        st.txBytes = 0;
        st.rxPackets = 0;
        st.rxBytes = 0;
        st.txDataPackets = 0;
        st.txDataBytes = 0;
        st.rxDataPackets = 0;
        st.rxDataBytes = 0;
        st.latency = newLatency();
      }
    }
  }

  /** Whether `nodeId` is configured as a peer. */
  hasPeer(nodeId: number): boolean {
    return this.#peers.has(nodeId);
  }

  /** Whether the link to `nodeId` is configured and up. */
  isUp(nodeId: number, link: number): boolean {
    return this.#state(nodeId, link)?.up ?? false;
  }

  /** Peers configured on `link`, ascending. */
  peersOn(link: number): number[] {
    const out: number[] = [];
    for (const [nodeId, peer] of this.#peers) {
      if (peer.byLink.some((st) => st.link === link)) out.push(nodeId);
    }
    return out;
  }

  /**
   * Links to send one unicast to `nodeId` on, by link mode; every configured
   * link while none is up. Empty when the peer is unknown. Advances the
   * round-robin position in `rr` mode.
   */
  route(nodeId: number): number[] {
    const peer = this.#peers.get(nodeId);
    if (peer === undefined) return [];
    const up = peer.byLink.filter((st) => st.up);
    if (up.length === 0) return peer.byLink.map((st) => st.link);
    switch (this.linkMode) {
      case "passive":
        return [peer.byPreference.find((st) => st.up)!.link];
      case "active":
        return up.map((st) => st.link);
      case "rr": {
        const pick = up[peer.rrNext % up.length];
        peer.rrNext = (peer.rrNext + 1) % up.length;
        return [pick.link];
      }
      default:
        return unreachable(this.linkMode);
    }
  }

  /**
   * Links to send one multicast datagram on ("all" in udp mode). A link is
   * usable when it is up towards at least one peer; the link mode then
   * chooses among usable links as `route` does. With none usable, every
   * link any peer is configured on.
   */
  routeAll(): number[] {
    const usable = this.#allLinks.filter((link) =>
      [...this.#peers.values()].some((p) =>
        p.byLink.some((st) => st.link === link && st.up)
      )
    );
    if (usable.length === 0) return [...this.#allLinks];
    switch (this.linkMode) {
      case "passive": {
        const best = [...usable].sort((a, b) =>
          this.#priorityOf(b) - this.#priorityOf(a) || a - b
        );
        return [best[0]];
      }
      case "active":
        return usable;
      case "rr": {
        const pick = usable[this.#rrAllNext % usable.length];
        this.#rrAllNext = (this.#rrAllNext + 1) % usable.length;
        return [pick];
      }
      default:
        return unreachable(this.linkMode);
    }
  }

  /** Every (peer, link), by nodeid then link number. */
  snapshot(): LinkSnapshot[] {
    const out: LinkSnapshot[] = [];
    for (const peer of this.#peers.values()) {
      for (const st of peer.byLink) {
        out.push({
          nodeId: st.nodeId,
          link: st.link,
          priority: st.priority,
          connected: st.up,
          upCount: st.upCount,
          downCount: st.downCount,
          rttMs: st.rttMs,
          lastHeardMs: st.lastHeardMs,
          pingsSent: st.pingsSent,
          pongsReceived: st.pongsReceived,
          txPackets: st.txPackets,
          txBytes: st.txBytes,
          rxPackets: st.rxPackets,
          rxBytes: st.rxBytes,
          txDataPackets: st.txDataPackets,
          txDataBytes: st.txDataBytes,
          rxDataPackets: st.rxDataPackets,
          rxDataBytes: st.rxDataBytes,
          latency: { ...st.latency },
        });
      }
    }
    return out;
  }

  #state(nodeId: number, link: number): LinkState | undefined {
    return this.#peers.get(nodeId)?.byLink.find((st) => st.link === link);
  }

  #priorityOf(link: number): number {
    return this.#priorities.get(link) ?? LINK_PRIORITY_DEFAULT;
  }
}

function newLinkState(
  nodeId: number,
  link: number,
  priority: number,
): LinkState {
  return {
    nodeId,
    link,
    priority,
    up: false,
    pongStreak: 0,
    lastHeardMs: undefined,
    lastPongMs: undefined,
    rttMs: undefined,
    nextSeq: 0,
    pending: [],
    upCount: 0,
    downCount: 0,
    pingsSent: 0,
    pongsReceived: 0,
    txPackets: 0,
    txBytes: 0,
    rxPackets: 0,
    rxBytes: 0,
    txDataPackets: 0,
    txDataBytes: 0,
    rxDataPackets: 0,
    rxDataBytes: 0,
    latency: newLatency(),
  };
}

function newLatency(): LatencyStats {
  return { minMs: undefined, maxMs: undefined, sumMs: 0, samples: 0 };
}

/** Passive-mode order: higher knet_link_priority first, then lower link. */
function preferred(a: LinkState, b: LinkState): number {
  return b.priority - a.priority || a.link - b.link;
}
