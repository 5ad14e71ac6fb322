/**
 * The cfg engine: operators steer their node and the cluster, like
 * Corosync's `exec/cfg.c`. Pure: state changes on IPC requests, ordered
 * messages, configuration changes and node control answers; everything
 * only the daemon can do (link status, shutdown, log reopen, reading and
 * applying the configuration file, timers) is a `NodeControlRequest`
 * (`EngineApi.control`), answered later through `controlDone`.
 *
 * - Status: the local node id; every configured node with its links
 *   (enabled, connected, MTU, addresses, from the transport) and whether it
 *   is a member of this node's ring.
 * - Kill (`kill_node`): a KILL_NODE message goes through the total order;
 *   the named node logs who killed it and why, then shuts down. The client
 *   is answered when its message comes back, so it knows the kill was
 *   ordered. Only members may be killed (NOT_EXIST otherwise).
 * - Shutdown (`try_shutdown`): IMMEDIATE goes down at once. REQUEST and
 *   REGARDLESS first send a shutdown_request callback to every other client
 *   that called `track_start`, and wait up to `cfg.shutdown_timeout` ms
 *   (cmap, default 5000) for their `reply_to_shutdown`. A client that does
 *   not answer in time, or disconnects, counts as yes (as in Corosync). With
 *   REQUEST one "no" refuses the shutdown (BUSY); with REGARDLESS the node
 *   goes down once all answered or the time is up. A requester that
 *   disconnects cancels its shutdown.
 * - Reload (`reload_config`), cluster-wide and atomic: RELOAD_REQUEST goes
 *   through the total order; every member that delivers it starts a vote
 *   among the members of its ring at that point, sets cmap
 *   `config.totemconfig_reload_in_progress` to 1, asks its node to prepare
 *   (re-read and validate the file) and multicasts its RELOAD_VERDICT. When
 *   the verdicts of all voters are delivered, each node commits the held
 *   plan only if every verdict is ok, and otherwise drops it. Because the
 *   verdicts are totally ordered, all members decide the same. A
 *   configuration change that removes or adds a member before the last
 *   verdict aborts the vote everywhere (EVS: the members that stay together
 *   see the change at the same point of the stream). A request delivered
 *   while a vote is open is refused (busy) by every node alike. Every node
 *   records the outcome in cmap `config.reload_status` (`cs_error_t`: 1 OK,
 *   7 INVALID_PARAM refused, 6 TRY_AGAIN interrupted, 21 FAILED_OPERATION
 *   when applying failed here) and sets the in-progress key back to 0; the
 *   requesting client gets the report with every verdict.
 * - Reopen log files (`reopen_log_files`).
 *
 * @module
 */
import type { CmapValue } from "../cmap/values.ts";
import { CsError, type CsStatus } from "../../src/exec/cs_error.ts";
import {
  type ConnId,
  type Engine,
  type EngineApi,
  type EngineRequest,
  type MessageHandler,
  NO_SYNC,
  type NodeControlRequest,
  type NodeControlResult,
  type NodeStatusReport,
  type RequestHandler,
  type RequestResult,
  SERVICE_ID,
  type SyncHooks,
} from "../../src/exec/engine.ts";
import { assert } from "../../src/lib/assert.ts";
import type { ConfChange, NodeId, RingId } from "../../src/totem/types.ts";
import {
  CFG_REQUEST_FN,
  CFG_SHUTDOWN_FLAG,
  type CfgReloadOutcome,
  type CfgShutdownFlag,
  type CfgStatus,
  type CfgVerdict,
  decodeCfgRequest,
  encodeCfgCallback,
  encodeCfgStatus,
  encodeCfgU32,
  encodeErrorText,
  encodeReloadReport,
} from "./ipc.ts";
import {
  CFG_ERROR_BYTES_MAX,
  CFG_MESSAGE_FN,
  type CfgMessage,
  type CfgMessageName,
  clipText,
  decodeCfgMessage,
  encodeCfgMessage,
} from "./wire.ts";

/** Default of cmap `cfg.shutdown_timeout` (Corosync: 5 s). */
export const CFG_SHUTDOWN_TIMEOUT_MS_DEFAULT = 5000;
/** cmap keys this engine reads and writes. */
export const CFG_KEYS = {
  shutdownTimeout: "cfg.shutdown_timeout",
  reloadStatus: "config.reload_status",
  reloadInProgress: "config.totemconfig_reload_in_progress",
} as const;

/** What the engine needs of cmap (the cmap engine fits). */
export interface CfgCmap {
  getValue(key: string): CmapValue | null;
  setInternal(key: string, value: CmapValue): void;
}

/** Counters. */
export interface CfgStats {
  /** Requests and ordered messages that did not decode. */
  rejected: number;
  /** Verdicts of no vote in progress (aborted or finished votes). */
  staleVerdicts: number;
}

interface ShutdownRound {
  readonly conn: ConnId;
  readonly requestId: number;
  readonly flags: CfgShutdownFlag;
  readonly asked: ReadonlySet<ConnId>;
  readonly answered: Set<ConnId>;
  vetoes: number;
  readonly timerTag: number;
  readonly reason: string;
}

interface Vote {
  readonly origin: NodeId;
  readonly tag: number;
  /** The members when the request was delivered, ascending. */
  readonly voters: readonly NodeId[];
  readonly verdicts: Map<NodeId, CfgVerdict>;
  prepared: "pending" | "ok" | "failed";
}

/** What an outstanding control request is for. */
type ControlPurpose =
  | {
    readonly kind: "status";
    readonly conn: ConnId;
    readonly requestId: number;
  }
  | {
    readonly kind: "reopen";
    readonly conn: ConnId;
    readonly requestId: number;
  }
  | { readonly kind: "prepare"; readonly origin: NodeId; readonly tag: number }
  | {
    readonly kind: "commit";
    readonly origin: NodeId;
    readonly tag: number;
    readonly verdicts: readonly CfgVerdict[];
  }
  | { readonly kind: "ignore" };

const reply = (status: CsStatus, payload?: Uint8Array): RequestResult => ({
  status,
  payload,
});

/** The cfg engine of one node. */
export class CfgEngine implements Engine {
  readonly name = "cfg";
  readonly serviceId = SERVICE_ID.CFG;
  readonly priority = 5;
  readonly sync: SyncHooks = NO_SYNC;
  readonly requests: Readonly<Record<string, RequestHandler>>;
  readonly messages: Readonly<Record<CfgMessageName, MessageHandler>>;
  readonly stats: CfgStats = { rejected: 0, staleVerdicts: 0 };

  #api: EngineApi | null = null;
  #cmap: CfgCmap | null = null;
  #members: NodeId[] = [];
  #ringId: RingId = { rep: 0, seq: 0 };
  #pids = new Map<ConnId, number>();
  /** Clients that want shutdown_request callbacks (`track_start`). */
  #tracking = new Set<ConnId>();
  #shutdown: ShutdownRound | null = null;
  #stopping = false;
  #nextTag = 1;
  /** Our KILL_NODE / RELOAD_REQUEST messages waiting to come back. */
  #kills = new Map<number, { conn: ConnId; requestId: number }>();
  #reloads = new Map<number, { conn: ConnId; requestId: number }>();
  #vote: Vote | null = null;
  /** Commits under way (a new vote may start before they finish). */
  #commits = 0;
  #controls = new Map<number, ControlPurpose>();

  constructor() {
    // Kill and reload multicast: TRY_AGAIN while syncing or congested.
    const flowControlled = new Set<number>([
      CFG_REQUEST_FN.kill_node,
      CFG_REQUEST_FN.reload_config,
    ]);
    const handlers: Record<string, RequestHandler> = {};
    for (const [name, fn] of Object.entries(CFG_REQUEST_FN)) {
      handlers[name] = {
        fn,
        flowControl: flowControlled.has(fn),
        handle: (r) => this.#serve(fn, r),
      };
    }
    this.requests = handlers;
    const message = (name: CfgMessageName): MessageHandler => ({
      fn: CFG_MESSAGE_FN[name],
      handle: (from, payload) => {
        const d = decodeCfgMessage(name, payload);
        if (!d.ok) {
          this.stats.rejected++;
          this.#log("debug", `dropped ${name} from ${from}: ${d.detail}`);
          return;
        }
        this.#onMessage(from, d.value);
      },
    });
    this.messages = {
      kill_node: message("kill_node"),
      reload_request: message("reload_request"),
      reload_verdict: message("reload_verdict"),
    };
  }

  init(api: EngineApi): void {
    assert(api.control !== undefined, "cfg needs the node control port");
    this.#api = api;
  }

  /**
   * Gives the engine the node's cmap (engines/mod.ts links them): it reads
   * `cfg.shutdown_timeout` and writes the reload keys there.
   */
  useCmap(cmap: CfgCmap | null): void {
    this.#cmap = cmap;
  }

  /** True once this node asked its driver to shut down. */
  get stopping(): boolean {
    return this.#stopping;
  }

  /** True while a reload vote is open on this node. */
  get voting(): boolean {
    return this.#vote !== null;
  }

  confChange(change: ConfChange): void {
    const vote = this.#vote;
    if (change.kind === "regular") {
      this.#members = [...change.members].sort((a, b) => a - b);
      this.#ringId = change.ringId;
    }
    if (vote === null) return;
    const gone = vote.voters.filter((n) => !change.members.includes(n));
    const added = change.kind === "regular"
      ? change.members.filter((n) => !vote.voters.includes(n))
      : [];
    if (gone.length === 0 && added.length === 0) return;
    const why = gone.length > 0
      ? `node${gone.length > 1 ? "s" : ""} ${gone.join(", ")} left`
      : `node${added.length > 1 ? "s" : ""} ${added.join(", ")} joined`;
    this.#abortVote(vote, `${why} during the reload vote`);
  }

  connOpen(conn: ConnId, pid: number): void {
    this.#pids.set(conn, pid);
  }

  connClose(conn: ConnId): void {
    this.#pids.delete(conn);
    this.#tracking.delete(conn);
    for (const [tag, p] of this.#kills) {
      if (p.conn === conn) this.#kills.delete(tag);
    }
    for (const [tag, p] of this.#reloads) {
      if (p.conn === conn) this.#reloads.delete(tag);
    }
    const round = this.#shutdown;
    if (round === null) return;
    if (round.conn === conn) {
      // Corosync does the same: nobody is left to tell, so nothing happens.
      this.#shutdown = null;
      this.#log("notice", "shutdown request cancelled: its client went away");
      return;
    }
    if (round.asked.has(conn) && !round.answered.has(conn)) {
      // A client that went away cannot object any more.
      round.answered.add(conn);
      this.#checkShutdown(round);
    }
  }

  controlDone(tag: number, result: NodeControlResult): void {
    const shutdown = this.#shutdown;
    if (shutdown !== null && shutdown.timerTag === tag) {
      // Time is up: who has not answered counts as yes (Corosync
      // `shutdown_timer_fn`).
      for (const c of shutdown.asked) shutdown.answered.add(c);
      this.#checkShutdown(shutdown);
      return;
    }
    const purpose = this.#controls.get(tag);
    if (purpose === undefined) return; // an old timer, or a shutdown answer
    this.#controls.delete(tag);
    const api = this.#apiOrThrow();
    switch (purpose.kind) {
      case "status":
        assert(result.ok ? result.status !== undefined : true, "status answer");
        if (!result.ok) {
          api.reply(
            purpose.conn,
            purpose.requestId,
            CsError.FAILED_OPERATION,
            encodeErrorText(result.error),
          );
        } else {
          api.reply(
            purpose.conn,
            purpose.requestId,
            CsError.OK,
            encodeCfgStatus(this.#status(result.status!)),
          );
        }
        break;
      case "reopen":
        if (result.ok) api.reply(purpose.conn, purpose.requestId, CsError.OK);
        else {
          this.#log("warn", `cannot reopen the log files: ${result.error}`);
          api.reply(
            purpose.conn,
            purpose.requestId,
            CsError.FAILED_OPERATION,
            encodeErrorText(result.error),
          );
        }
        break;
      case "prepare":
        this.#onPrepared(purpose.origin, purpose.tag, result);
        break;
      case "commit":
        this.#onCommitted(purpose, result);
        break;
      case "ignore":
        break;
    }
  }

  // ---- IPC ----

  #serve(fn: number, r: EngineRequest): RequestResult | "deferred" {
    const d = decodeCfgRequest(fn, r.payload);
    if (!d.ok) {
      this.stats.rejected++;
      return reply(CsError.INVALID_PARAM, encodeErrorText(d.detail ?? ""));
    }
    const req = d.value;
    const api = this.#apiOrThrow();
    switch (req.fn) {
      case "local_get":
        return reply(CsError.OK, encodeCfgU32(api.nodeId));
      case "node_status_get":
        this.#ask({ op: "status" }, {
          kind: "status",
          conn: r.conn,
          requestId: r.requestId,
        });
        return "deferred";
      case "reopen_log_files":
        this.#ask({ op: "reopen_log" }, {
          kind: "reopen",
          conn: r.conn,
          requestId: r.requestId,
        });
        return "deferred";
      case "track_start":
        this.#tracking.add(r.conn);
        return reply(CsError.OK);
      case "track_stop":
        this.#tracking.delete(r.conn);
        return reply(CsError.OK);
      case "kill_node": {
        if (!this.#members.includes(req.nodeId)) {
          return reply(
            CsError.NOT_EXIST,
            encodeErrorText(
              `node ${req.nodeId} is not a member of this ring (members: ${
                this.#members.join(", ")
              })`,
            ),
          );
        }
        const tag = this.#tag();
        this.#kills.set(tag, { conn: r.conn, requestId: r.requestId });
        api.mcast(
          "kill_node",
          encodeCfgMessage({
            type: "kill_node",
            nodeId: req.nodeId,
            tag,
            reason: req.reason,
          }),
        );
        return "deferred";
      }
      case "reload_config": {
        const tag = this.#tag();
        this.#reloads.set(tag, { conn: r.conn, requestId: r.requestId });
        api.mcast(
          "reload_request",
          encodeCfgMessage({ type: "reload_request", tag }),
        );
        return "deferred";
      }
      case "try_shutdown":
        return this.#tryShutdown(r, req.flags);
      case "reply_to_shutdown": {
        const round = this.#shutdown;
        if (
          round === null || !round.asked.has(r.conn) ||
          round.answered.has(r.conn)
        ) {
          return reply(
            CsError.NOT_EXIST,
            encodeErrorText("no shutdown is waiting for this client's answer"),
          );
        }
        round.answered.add(r.conn);
        if (!req.allow) {
          round.vetoes++;
          this.#log(
            "notice",
            `client pid ${this.#pids.get(r.conn) ?? 0} vetoes the shutdown`,
          );
        }
        this.#checkShutdown(round);
        return reply(CsError.OK);
      }
    }
  }

  #status(report: NodeStatusReport): CfgStatus {
    return {
      localNodeId: this.#apiOrThrow().nodeId,
      transport: report.transport,
      ringId: this.#ringId,
      members: this.#members,
      localLinks: report.localLinks,
      nodes: report.nodes.map((n) => ({
        nodeId: n.nodeId,
        reachable: this.#members.includes(n.nodeId),
        links: n.links,
      })),
    };
  }

  // ---- shutdown ----

  #tryShutdown(
    r: EngineRequest,
    flags: CfgShutdownFlag,
  ): RequestResult | "deferred" {
    const pid = this.#pids.get(r.conn) ?? 0;
    const reason = `shutdown requested by client pid ${pid}${
      flags === CFG_SHUTDOWN_FLAG.REGARDLESS
        ? " (regardless of vetoes)"
        : flags === CFG_SHUTDOWN_FLAG.IMMEDIATE
        ? " (immediate)"
        : ""
    }`;
    if (this.#stopping) return reply(CsError.OK);
    if (this.#shutdown !== null) {
      return reply(
        CsError.BUSY,
        encodeErrorText("another shutdown request is waiting for answers"),
      );
    }
    const asked = new Set(
      [...this.#tracking].filter((c) => c !== r.conn),
    );
    if (flags === CFG_SHUTDOWN_FLAG.IMMEDIATE || asked.size === 0) {
      this.#goDown(reason);
      return reply(CsError.OK);
    }
    const api = this.#apiOrThrow();
    const timeoutMs = this.#shutdownTimeoutMs();
    for (const c of asked) {
      api.event(c, encodeCfgCallback({ kind: "shutdown_request", flags }));
    }
    this.#log(
      "notice",
      `${reason}: asking ${asked.size} client(s), waiting up to ${timeoutMs} ms`,
    );
    this.#shutdown = {
      conn: r.conn,
      requestId: r.requestId,
      flags,
      asked,
      answered: new Set(),
      vetoes: 0,
      timerTag: api.control!({ op: "timer", afterMs: timeoutMs }),
      reason,
    };
    return "deferred";
  }

  #checkShutdown(round: ShutdownRound): void {
    assert(this.#shutdown === round, "shutdown round is not current");
    const api = this.#apiOrThrow();
    const all = round.answered.size >= round.asked.size;
    if (round.flags === CFG_SHUTDOWN_FLAG.REQUEST && round.vetoes > 0) {
      this.#shutdown = null;
      const text =
        `shutdown refused: ${round.vetoes} of ${round.asked.size} client(s) vetoed it`;
      this.#log("notice", text);
      api.reply(
        round.conn,
        round.requestId,
        CsError.BUSY,
        encodeErrorText(text),
      );
      return;
    }
    if (!all) return;
    this.#shutdown = null;
    api.reply(round.conn, round.requestId, CsError.OK);
    this.#goDown(round.reason);
  }

  #goDown(reason: string): void {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#log("notice", `shutting down: ${reason}`);
    this.#ask({ op: "shutdown", reason }, { kind: "ignore" });
  }

  #shutdownTimeoutMs(): number {
    const v = this.#cmap?.getValue(CFG_KEYS.shutdownTimeout) ?? null;
    if (v === null) return CFG_SHUTDOWN_TIMEOUT_MS_DEFAULT;
    const n = v.type === "string"
      ? Number(v.value.trim())
      : typeof v.value === "bigint"
      ? Number(v.value)
      : typeof v.value === "number"
      ? v.value
      : NaN;
    if (Number.isSafeInteger(n) && n >= 0) return n;
    this.#log(
      "warn",
      `${CFG_KEYS.shutdownTimeout} must be whole milliseconds; using ${CFG_SHUTDOWN_TIMEOUT_MS_DEFAULT}`,
    );
    return CFG_SHUTDOWN_TIMEOUT_MS_DEFAULT;
  }

  // ---- ordered messages ----

  #onMessage(from: NodeId, m: CfgMessage): void {
    const api = this.#apiOrThrow();
    switch (m.type) {
      case "kill_node": {
        if (from === api.nodeId) {
          const waiting = this.#kills.get(m.tag);
          if (waiting !== undefined) {
            this.#kills.delete(m.tag);
            api.reply(waiting.conn, waiting.requestId, CsError.OK);
          }
        }
        const why = m.reason === "" ? "no reason given" : m.reason;
        if (m.nodeId === api.nodeId) {
          this.#log("error", `killed by node ${from}: ${why}`);
          this.#goDown(`killed by node ${from}: ${why}`);
        } else {
          this.#log("notice", `node ${from} kills node ${m.nodeId}: ${why}`);
        }
        break;
      }
      case "reload_request":
        this.#onReloadRequest(from, m.tag);
        break;
      case "reload_verdict":
        this.#onVerdict(from, m.origin, m.tag, {
          nodeId: from,
          ok: m.ok,
          error: m.error,
        });
        break;
    }
  }

  // ---- reload vote ----

  #onReloadRequest(origin: NodeId, tag: number): void {
    const api = this.#apiOrThrow();
    const open = this.#vote;
    if (open !== null) {
      // Every member sees the same open vote here (total order), so every
      // member refuses this request alike.
      if (origin === api.nodeId) {
        this.#answerReload(tag, CsError.BUSY, {
          outcome: "busy",
          verdicts: [],
          changes: [],
          message:
            `a reload started by node ${open.origin} is still being voted on; try again`,
        });
      }
      return;
    }
    assert(this.#members.includes(api.nodeId), "reload outside a ring");
    const vote: Vote = {
      origin,
      tag,
      voters: [...this.#members],
      verdicts: new Map(),
      prepared: "pending",
    };
    this.#vote = vote;
    this.#setCmap(CFG_KEYS.reloadInProgress, { type: "uint8", value: 1 });
    this.#log(
      "notice",
      `reload requested by node ${origin}: validating the configuration (voters: ${
        vote.voters.join(", ")
      })`,
    );
    this.#ask({ op: "reload_prepare" }, { kind: "prepare", origin, tag });
  }

  #onPrepared(origin: NodeId, tag: number, result: NodeControlResult): void {
    const vote = this.#vote;
    if (vote === null || vote.origin !== origin || vote.tag !== tag) {
      // The vote ended while we prepared: drop what was prepared.
      if (result.ok) this.#ask({ op: "reload_abort" }, { kind: "ignore" });
      return;
    }
    vote.prepared = result.ok ? "ok" : "failed";
    if (!result.ok) {
      this.#log("warn", `reload: this node refuses: ${result.error}`);
    }
    this.#apiOrThrow().mcast(
      "reload_verdict",
      encodeCfgMessage({
        type: "reload_verdict",
        origin,
        tag,
        ok: result.ok,
        error: result.ok ? "" : clipText(result.error, CFG_ERROR_BYTES_MAX),
      }),
    );
  }

  #onVerdict(
    from: NodeId,
    origin: NodeId,
    tag: number,
    verdict: CfgVerdict,
  ): void {
    const vote = this.#vote;
    if (
      vote === null || vote.origin !== origin || vote.tag !== tag ||
      !vote.voters.includes(from) || vote.verdicts.has(from)
    ) {
      this.stats.staleVerdicts++;
      return;
    }
    vote.verdicts.set(from, verdict);
    if (vote.verdicts.size < vote.voters.length) return;
    const api = this.#apiOrThrow();
    const verdicts = this.#verdictList(vote);
    this.#vote = null;
    const refusals = verdicts.filter((v) => !v.ok);
    if (refusals.length === 0) {
      // Our own verdict is among them, so our plan is held.
      assert(vote.prepared === "ok", "all verdicts ok but ours was not");
      this.#commits++;
      this.#ask({ op: "reload_commit" }, {
        kind: "commit",
        origin,
        tag,
        verdicts,
      });
      return;
    }
    if (vote.prepared === "ok") {
      this.#ask({ op: "reload_abort" }, { kind: "ignore" });
    }
    const message = `reload refused, nothing applied: ${
      refusals.map((v) => `node ${v.nodeId}: ${v.error}`).join("; ")
    }`;
    this.#log("warn", message);
    this.#finishReload(CsError.INVALID_PARAM);
    if (origin === api.nodeId) {
      this.#answerReload(tag, CsError.INVALID_PARAM, {
        outcome: "refused",
        verdicts,
        changes: [],
        message,
      });
    }
  }

  #onCommitted(
    purpose: Extract<ControlPurpose, { kind: "commit" }>,
    result: NodeControlResult,
  ): void {
    this.#commits--;
    assert(this.#commits >= 0, "more commits answered than asked");
    const api = this.#apiOrThrow();
    let status: CsStatus = CsError.OK;
    let outcome: CfgReloadOutcome = "applied";
    let message: string;
    const changes = result.ok ? result.changes ?? [] : [];
    if (result.ok) {
      message = changes.length === 0
        ? "configuration reloaded on every member (no changes)"
        : `configuration reloaded on every member: ${changes.join("; ")}`;
      this.#log("notice", message);
    } else {
      status = CsError.FAILED_OPERATION;
      outcome = "commit_failed";
      message =
        `every member accepted the configuration but applying it failed on node ${api.nodeId}: ${result.error}`;
      this.#log("error", message);
    }
    this.#finishReload(status);
    if (purpose.origin === api.nodeId) {
      this.#answerReload(purpose.tag, status, {
        outcome,
        verdicts: purpose.verdicts,
        changes,
        message,
      });
    }
  }

  #abortVote(vote: Vote, why: string): void {
    assert(this.#vote === vote, "abort of a vote that is not current");
    this.#vote = null;
    // A plan still being prepared is dropped when its answer comes
    // (`#onPrepared` sees no vote).
    if (vote.prepared === "ok") {
      this.#ask({ op: "reload_abort" }, { kind: "ignore" });
    }
    const message = `reload interrupted, nothing applied: ${why}; try again`;
    this.#log("warn", message);
    this.#finishReload(CsError.TRY_AGAIN);
    if (vote.origin === this.#apiOrThrow().nodeId) {
      this.#answerReload(vote.tag, CsError.TRY_AGAIN, {
        outcome: "interrupted",
        verdicts: this.#verdictList(vote),
        changes: [],
        message,
      });
    }
  }

  #verdictList(vote: Vote): CfgVerdict[] {
    return vote.voters.flatMap((n) => {
      const v = vote.verdicts.get(n);
      return v === undefined ? [] : [v];
    });
  }

  #finishReload(status: CsStatus): void {
    this.#setCmap(CFG_KEYS.reloadStatus, { type: "int32", value: status });
    if (this.#vote === null && this.#commits === 0) {
      this.#setCmap(CFG_KEYS.reloadInProgress, { type: "uint8", value: 0 });
    }
  }

  #answerReload(
    tag: number,
    status: CsStatus,
    report: Parameters<typeof encodeReloadReport>[0],
  ): void {
    const waiting = this.#reloads.get(tag);
    if (waiting === undefined) return; // the client went away
    this.#reloads.delete(tag);
    this.#apiOrThrow().reply(
      waiting.conn,
      waiting.requestId,
      status,
      encodeReloadReport(report),
    );
  }

  // ---- helpers ----

  #ask(request: NodeControlRequest, purpose: ControlPurpose): void {
    const tag = this.#apiOrThrow().control!(request);
    this.#controls.set(tag, purpose);
  }

  #tag(): number {
    const t = this.#nextTag;
    this.#nextTag = t >= 0xffff_ffff ? 1 : t + 1;
    return t;
  }

  #setCmap(key: string, value: CmapValue): void {
    this.#cmap?.setInternal(key, value);
  }

  #log(level: "error" | "warn" | "notice" | "debug", text: string): void {
    this.#api?.log(level, text);
  }

  #apiOrThrow(): EngineApi {
    assert(this.#api !== null, "cfg engine used before init");
    return this.#api;
  }
}
