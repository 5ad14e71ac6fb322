/**
 * The executive (ARCHITECTURE.md layer "executive"): the engine registry,
 * routing of IPC requests and ordered messages to engines, and service
 * synchronisation after every configuration change (TOTEM.md 8.1, Corosync
 * `exec/main.c` and `exec/sync.c`). A pure state machine like the Totem
 * core: `step(event, nowMs)` in, actions out; drivers (the daemon, the
 * simulator, `ServiceStack`) perform the actions.
 *
 * Sync round, keyed by the regular ring id:
 * 1. On a REG confchg: abort the round in progress (every engine that was
 *    initialised and not yet activated gets `sync.abort`), multicast
 *    SERVICE_BUILD with our service ids, call `sync.init` of every engine
 *    with `trans` = the members that were in every transitional
 *    configuration since the last completed round (Corosync passes the
 *    last one only; after an aborted round that forgets who left).
 * 2. Once SERVICE_BUILD from every member is delivered: the union of the
 *    lists, ascending, is the service order (services we lack run as
 *    no-ops).
 * 3. Per service: `sync.process()` until "done" (retried on later turns
 *    while "again"), then BARRIER; when BARRIER from every member is
 *    delivered, `sync.activate()` and go on with the next service.
 * 4. After the last service: `sync_done` tells the core to release
 *    application frames, then the engine messages held during the round
 *    are sent, in order.
 * Messages carrying another ring id (stale rounds) are ignored; because
 * barriers are totally ordered, every member activates each service at the
 * same point of the message stream.
 *
 * IPC while syncing: requests whose handler is flow-controlled (they
 * multicast, Corosync `CS_LIB_FLOW_CONTROL_REQUIRED`) are answered
 * `CS_ERR_TRY_AGAIN` (6) without reaching the engine, as Corosync does
 * (`corosync_sending_allowed` while `sync_in_process`); the client retries.
 * The same answer is given while the driver reports the send queue
 * congested, and to a client whose event queue is over its limit. Other
 * requests (queries) are served. Messages engines send
 * outside a request (a client disconnecting, a callback) are never refused:
 * they wait in the executive's outbox until sync is done.
 *
 * @module
 */
import { assert, unreachable } from "../lib/assert.ts";
import type { LogLevel } from "../log/logger.ts";
import {
  decodeGroupMessage,
  encodeGroupHeader,
  encodeGroupMessage,
} from "../totem/pg/mod.ts";
import {
  type ConfChange,
  type Guarantee,
  type NodeId,
  type RingId,
  ringIdText,
  sameRing,
  type TransitionReason,
} from "../totem/types.ts";
import { CsError, type CsStatus } from "./cs_error.ts";
import type {
  ConnId,
  Engine,
  EngineApi,
  MessageHandler,
  NodeControlRequest,
  NodeControlResult,
  RequestHandler,
  SyncProgress,
} from "./engine.ts";
import {
  decodeEngineMessage,
  decodeSyncMessage,
  encodeEngineHeader,
  encodeSyncMessage,
  ENGINE_GROUP,
  SYNC_GROUP,
  type SyncMessage,
} from "./wire.ts";

/** The group prefix of every engine message (shared: it is only ever copied). */
const ENGINE_GROUP_HEADER = encodeGroupHeader([ENGINE_GROUP]);
/** An empty reply payload; having no bytes, it can be shared. */
const NO_BYTES = new Uint8Array(0);

/** Inputs of the executive. */
export type ExecEvent =
  /** A whole application message from the packing layer (group-multiplexed). */
  | { type: "deliver"; from: NodeId; payload: Uint8Array }
  /** A Totem configuration change, transitional or regular. */
  | { type: "confchg"; change: ConfChange; reason: TransitionReason }
  /**
   * A client connected to `service` (service id, or engine name as the IPC
   * server's HELLO carries it); `pid` as the client gave it.
   */
  | { type: "ipc_open"; conn: ConnId; service: number | string; pid: number }
  /** A client request: function `fn` of the connection's service. */
  | {
    type: "ipc_request";
    conn: ConnId;
    requestId: number;
    fn: number;
    payload: Uint8Array;
  }
  /** The client went away. */
  | { type: "ipc_close"; conn: ConnId }
  /**
   * The client's event queue is over its limit (`IpcServer.sendEvent`
   * answered false) or drained again: while blocked, its flow-controlled
   * requests get TRY_AGAIN, so it reads its callbacks before sending more.
   */
  | { type: "ipc_flow"; conn: ConnId; blocked: boolean }
  /**
   * The driver could not queue an event for this client at all: cut it off
   * (it sees the disconnect, like a process death) rather than let it go on
   * having missed an ordered callback.
   */
  | { type: "ipc_overflow"; conn: ConnId }
  /** The driver's send path is congested (TotemPg refused) or clear again. */
  | { type: "congestion"; congested: boolean }
  /** A turn without news, so `sync.process` answering "again" runs again. */
  | { type: "tick" }
  /** The driver's answer to a `control` action, for the engine that asked. */
  | {
    type: "control_done";
    serviceId: number;
    tag: number;
    result: NodeControlResult;
  };

/** Outputs of the executive, performed by the driver in order. */
export type ExecAction =
  /**
   * Multicast through TotemPg; `sync` frames pass the sync barrier. The
   * message is its parts in order (`gather` joins them): TotemPg copies them
   * straight into frames.
   */
  | {
    type: "mcast";
    payload: readonly Uint8Array[];
    guarantee: Guarantee;
    sync: boolean;
  }
  /**
   * Sync finished in `ringId`: release application frames. Perform it only
   * if the core is still in that ring (a newer ring holds them again).
   */
  | { type: "sync_done"; ringId: RingId }
  /** Every member activated `serviceId` (S1 evidence; log it). */
  | {
    type: "sync_activated";
    ringId: RingId;
    serviceId: number;
    name: string | null;
  }
  | {
    type: "reply";
    conn: ConnId;
    requestId: number;
    status: CsStatus;
    payload: Uint8Array;
  }
  /** A callback to a client; parts are written in order (`gather`). */
  | { type: "event"; conn: ConnId; payload: Uint8Array | readonly Uint8Array[] }
  /**
   * An engine asks the node for something only the driver can do
   * (`NodeControlRequest`); answer later with a `control_done` event
   * carrying `serviceId` and `tag`.
   */
  | {
    type: "control";
    serviceId: number;
    tag: number;
    request: NodeControlRequest;
  }
  /** Close the client connection (after the replies and events before it). */
  | { type: "disconnect"; conn: ConnId; status: CsStatus }
  | { type: "log"; level: LogLevel; subsys: string; text: string };

/** Counters, published by the daemon. */
export interface ExecStats {
  /** Deliveries that did not decode (group prefix or engine header). */
  rejected: number;
  /** Engine messages for a service or function we do not have. */
  unknownMessages: number;
  /** Sync messages of another ring id or from a non-member. */
  staleSync: number;
  /** Sync rounds started, completed, aborted. */
  syncStarted: number;
  syncCompleted: number;
  syncAborted: number;
  /** Requests answered TRY_AGAIN because of sync or congestion. */
  tryAgain: number;
}

/** Construction parameters. */
export interface ExecutiveOptions {
  nodeId: NodeId;
  /** Engine instances for this node; started in priority order. */
  engines: readonly Engine[];
}

interface ConnState {
  readonly service: number;
  readonly engine: Engine;
  readonly pid: number;
  /** The client's event queue is over its limit (`ipc_flow`). */
  blocked: boolean;
}

interface SyncRound {
  readonly ringId: RingId;
  readonly members: readonly NodeId[];
  readonly trans: readonly NodeId[];
  phase: "build" | "services";
  readonly builds: Map<NodeId, readonly number[]>;
  services: number[];
  index: number;
  processDone: boolean;
  barriers: Set<NodeId>;
  /** Engines initialised this round and not yet activated. */
  readonly pending: Set<number>;
}

interface Outgoing {
  payload: readonly Uint8Array[];
  guarantee: Guarantee;
}

interface Registered {
  readonly engine: Engine;
  readonly byFn: Map<number, MessageHandler>;
  readonly byName: Map<string, MessageHandler>;
  readonly requests: Map<number, { name: string; handler: RequestHandler }>;
  readonly subsys: string;
}

/** The executive of one node. */
export class Executive {
  readonly nodeId: NodeId;
  readonly stats: ExecStats = {
    rejected: 0,
    unknownMessages: 0,
    staleSync: 0,
    syncStarted: 0,
    syncCompleted: 0,
    syncAborted: 0,
    tryAgain: 0,
  };

  /** By service id, ascending. */
  #engines = new Map<number, Registered>();
  #out: ExecAction[] = [];
  #nowMs = 0;
  #conns = new Map<ConnId, ConnState>();
  #closing: ConnId[] = [];
  #congested = false;
  #nextControlTag = 1;

  /** True from start until the first round completes, and during every round. */
  #syncing = true;
  #round: SyncRound | null = null;
  /**
   * Members that were in every transitional configuration since the last
   * completed round (null: no ring change since), for the next round.
   */
  #savedTrans: readonly NodeId[] | null = null;
  #regularRing: RingId | null = null;
  #members: readonly NodeId[] = [];
  /** The engine whose `sync.process` is running: its mcasts are sync traffic. */
  #syncContext: Registered | null = null;
  /** Engine messages sent while syncing, released after sync_done. */
  #outbox: Outgoing[] = [];

  constructor(options: ExecutiveOptions) {
    this.nodeId = options.nodeId;
    const sorted = [...options.engines].sort((a, b) =>
      a.serviceId - b.serviceId
    );
    const names = new Set<string>();
    for (const engine of sorted) {
      assert(
        !this.#engines.has(engine.serviceId),
        `two engines with service id ${engine.serviceId}`,
      );
      assert(!names.has(engine.name), `two engines named ${engine.name}`);
      names.add(engine.name);
      this.#engines.set(engine.serviceId, register(engine));
    }
    // Lower priority starts first (STYLE.md section 3).
    const byPriority = [...this.#engines.values()].sort((a, b) =>
      a.engine.priority - b.engine.priority ||
      a.engine.serviceId - b.engine.serviceId
    );
    for (const reg of byPriority) reg.engine.init(this.#api(reg));
  }

  /** True while application traffic waits for service sync. */
  get syncing(): boolean {
    return this.#syncing;
  }

  /** The regular ring of the last REG confchg, or null before the first. */
  get ringId(): RingId | null {
    return this.#regularRing;
  }

  /** Members of the last regular configuration. */
  get members(): readonly NodeId[] {
    return this.#members;
  }

  /** True when a `sync.process` answered "again": send a `tick` soon. */
  get needsTick(): boolean {
    const r = this.#round;
    return r !== null && r.phase === "services" && !r.processDone &&
      this.#engines.has(r.services[r.index]);
  }

  /**
   * True when request `fn` of engine `serviceName` is flow-controlled: it is
   * answered TRY_AGAIN while the ring is congested, so a driver may hold it
   * back instead (ExecHost does, via `IpcServer.holdRequests`).
   */
  isFlowControlled(serviceName: string, fn: number): boolean {
    for (const reg of this.#engines.values()) {
      if (reg.engine.name !== serviceName) continue;
      return reg.requests.get(fn)?.handler.flowControl === true;
    }
    return false;
  }

  /** Engine messages held until sync is done. */
  get outboxLength(): number {
    return this.#outbox.length;
  }

  /** Connected clients. */
  get connCount(): number {
    return this.#conns.size;
  }

  /** The engine instance registered under `name`, if any. */
  engine(name: string): Engine | undefined {
    for (const reg of this.#engines.values()) {
      if (reg.engine.name === name) return reg.engine;
    }
    return undefined;
  }

  /** Applies one event at `nowMs`; never blocks, never does I/O. */
  step(event: ExecEvent, nowMs: number): ExecAction[] {
    this.#nowMs = nowMs;
    const out: ExecAction[] = [];
    this.#out = out;
    switch (event.type) {
      case "deliver":
        this.#onDeliver(event.from, event.payload);
        break;
      case "confchg":
        this.#onConfChg(event.change, event.reason);
        break;
      case "ipc_open":
        this.#onOpen(event.conn, event.service, event.pid);
        break;
      case "ipc_request":
        this.#onRequest(event.conn, event.requestId, event.fn, event.payload);
        break;
      case "ipc_close":
        this.#close(event.conn, null);
        break;
      case "ipc_flow": {
        const state = this.#conns.get(event.conn);
        if (state !== undefined) state.blocked = event.blocked;
        break;
      }
      case "ipc_overflow":
        if (this.#conns.has(event.conn)) {
          this.#log(
            "warn",
            "MAIN",
            `client ${event.conn} cannot take more callbacks; disconnecting it`,
          );
          this.#close(event.conn, CsError.NO_RESOURCES);
        }
        break;
      case "congestion":
        this.#congested = event.congested;
        break;
      case "tick":
        break;
      case "control_done": {
        const reg = this.#engines.get(event.serviceId);
        assert(
          reg !== undefined,
          `control answer for service ${event.serviceId}, which is not here`,
        );
        reg.engine.controlDone?.(event.tag, event.result);
        break;
      }
      default:
        unreachable(event);
    }
    this.#pump();
    this.#runCloses();
    return out;
  }

  // ---- ordered messages ----

  #onDeliver(from: NodeId, bytes: Uint8Array): void {
    const g = decodeGroupMessage(bytes);
    if (!g.ok) {
      this.stats.rejected++;
      this.#log(
        "debug",
        "MAIN",
        `dropped a message from ${from}: ${g.reason} ${g.detail ?? ""}`,
      );
      return;
    }
    const groups = new Set(g.value.groups);
    if (groups.has(SYNC_GROUP)) this.#onSyncMessage(from, g.value.payload);
    if (groups.has(ENGINE_GROUP)) this.#onEngineMessage(from, g.value.payload);
  }

  #onEngineMessage(from: NodeId, bytes: Uint8Array): void {
    const m = decodeEngineMessage(bytes);
    if (!m.ok) {
      this.stats.rejected++;
      this.#log(
        "debug",
        "MAIN",
        `dropped an engine message from ${from}: ${m.detail ?? m.reason}`,
      );
      return;
    }
    const reg = this.#engines.get(m.value.serviceId);
    const handler = reg?.byFn.get(m.value.fn);
    if (handler === undefined) {
      // Unknown fn ids are dropped (TOTEM.md 5.3): a newer peer may run
      // services or messages we do not have.
      this.stats.unknownMessages++;
      return;
    }
    handler.handle(from, m.value.payload);
  }

  // ---- configuration changes and the sync round ----

  #onConfChg(change: ConfChange, reason: TransitionReason): void {
    if (this.#round !== null) {
      this.#abortRound(`configuration change (${reason})`);
    }
    for (const reg of this.#enginesByPriority()) reg.engine.confChange(change);
    if (change.kind === "transitional") {
      // Deviation from Corosync (which keeps only the last list): rounds
      // that were aborted never applied their ring changes, so a node that
      // left us in one of them and came back in the next must still count
      // as gone. Otherwise two nodes that delivered different messages in
      // different transitional configurations would both see no change.
      const saved = this.#savedTrans;
      this.#savedTrans = saved === null
        ? [...change.members]
        : saved.filter((n) => change.members.includes(n));
      return;
    }
    this.#startRound(change);
  }

  #startRound(change: ConfChange): void {
    const members = [...change.members].sort((a, b) => a - b);
    assert(members.includes(this.nodeId), "regular configuration without us");
    const saved = this.#savedTrans ?? [];
    const trans = members.filter((n) => saved.includes(n));
    this.#regularRing = change.ringId;
    this.#members = members;
    this.#syncing = true;
    this.stats.syncStarted++;
    const round: SyncRound = {
      ringId: change.ringId,
      members,
      trans,
      phase: "build",
      builds: new Map(),
      services: [],
      index: 0,
      processDone: false,
      barriers: new Set(),
      pending: new Set(this.#engines.keys()),
    };
    this.#round = round;
    this.#log(
      "debug",
      "SYNC",
      `sync round for ring ${
        ringIdText(change.ringId)
      }: members [${members}] trans [${trans}]`,
    );
    this.#sendSync({
      type: "service_build",
      ringId: change.ringId,
      serviceIds: [...this.#engines.keys()],
    });
    for (const reg of this.#engines.values()) {
      reg.engine.sync.init(trans, members, change.ringId);
    }
  }

  #abortRound(why: string): void {
    const round = this.#round;
    assert(round !== null, "abort without a round");
    this.#round = null;
    this.stats.syncAborted++;
    for (const id of round.pending) this.#engines.get(id)!.engine.sync.abort();
    this.#log(
      "debug",
      "SYNC",
      `sync round for ring ${ringIdText(round.ringId)} aborted: ${why}`,
    );
  }

  #onSyncMessage(from: NodeId, bytes: Uint8Array): void {
    const d = decodeSyncMessage(bytes);
    if (!d.ok) {
      this.stats.rejected++;
      this.#log(
        "debug",
        "SYNC",
        `dropped a sync message from ${from}: ${d.detail ?? d.reason}`,
      );
      return;
    }
    const m = d.value;
    const round = this.#round;
    if (
      round === null || !sameRing(m.ringId, round.ringId) ||
      !round.members.includes(from)
    ) {
      // A round that was aborted, or a sender outside this ring.
      this.stats.staleSync++;
      return;
    }
    switch (m.type) {
      case "service_build":
        if (round.phase !== "build") {
          this.stats.staleSync++;
          return;
        }
        round.builds.set(from, m.serviceIds);
        if (round.builds.size === round.members.length) {
          const union = new Set<number>();
          for (const ids of round.builds.values()) {
            for (const id of ids) union.add(id);
          }
          round.services = [...union].sort((a, b) => a - b);
          round.phase = "services";
          round.index = 0;
          this.#beginService(round);
        }
        break;
      case "barrier": {
        if (
          round.phase !== "services" ||
          m.serviceId !== round.services[round.index]
        ) {
          this.stats.staleSync++;
          return;
        }
        round.barriers.add(from);
        if (round.barriers.size === round.members.length) this.#activate(round);
        break;
      }
      default:
        unreachable(m);
    }
  }

  #beginService(round: SyncRound): void {
    if (round.index >= round.services.length) {
      this.#finishRound(round);
      return;
    }
    round.barriers = new Set();
    round.processDone = false;
    const id = round.services[round.index];
    if (!this.#engines.has(id)) {
      // A service only others run: nothing to do here but the barrier.
      round.processDone = true;
      this.#sendSync({ type: "barrier", ringId: round.ringId, serviceId: id });
      return;
    }
    this.#pump();
  }

  /** Runs the current service's `sync.process` until it is done or asks again. */
  #pump(): void {
    const round = this.#round;
    if (round === null || round.phase !== "services" || round.processDone) {
      return;
    }
    const id = round.services[round.index];
    const reg = this.#engines.get(id);
    if (reg === undefined) return;
    this.#syncContext = reg;
    let progress: SyncProgress;
    try {
      progress = reg.engine.sync.process();
    } finally {
      this.#syncContext = null;
    }
    // A process() that triggered a confchg cannot exist (engines do no
    // I/O), so the round is still ours.
    assert(this.#round === round, "sync round changed inside process()");
    if (progress === "done") {
      round.processDone = true;
      this.#sendSync({ type: "barrier", ringId: round.ringId, serviceId: id });
    }
  }

  #activate(round: SyncRound): void {
    const id = round.services[round.index];
    const reg = this.#engines.get(id);
    if (reg !== undefined) {
      round.pending.delete(id);
      reg.engine.sync.activate();
    }
    this.#emit({
      type: "sync_activated",
      ringId: round.ringId,
      serviceId: id,
      name: reg?.engine.name ?? null,
    });
    round.index++;
    this.#beginService(round);
  }

  #finishRound(round: SyncRound): void {
    this.#round = null;
    this.#syncing = false;
    this.#savedTrans = null;
    this.stats.syncCompleted++;
    this.#log(
      "debug",
      "SYNC",
      `sync done for ring ${
        ringIdText(round.ringId)
      }: services [${round.services}]`,
    );
    this.#emit({ type: "sync_done", ringId: round.ringId });
    const held = this.#outbox;
    this.#outbox = [];
    for (const m of held) {
      this.#emit({
        type: "mcast",
        payload: m.payload,
        guarantee: m.guarantee,
        sync: false,
      });
    }
  }

  #sendSync(m: SyncMessage): void {
    this.#emit({
      type: "mcast",
      payload: [encodeGroupMessage([SYNC_GROUP], encodeSyncMessage(m))],
      guarantee: "agreed",
      sync: true,
    });
  }

  // ---- IPC ----

  #onOpen(conn: ConnId, service: number | string, pid: number): void {
    assert(!this.#conns.has(conn), `connection ${conn} opened twice`);
    const reg = typeof service === "number"
      ? this.#engines.get(service)
      : [...this.#engines.values()].find((r) => r.engine.name === service);
    if (reg === undefined) {
      this.#emit({ type: "disconnect", conn, status: CsError.NOT_EXIST });
      return;
    }
    this.#conns.set(conn, {
      service: reg.engine.serviceId,
      engine: reg.engine,
      pid,
      blocked: false,
    });
    reg.engine.connOpen?.(conn, pid);
  }

  #onRequest(
    conn: ConnId,
    requestId: number,
    fn: number,
    payload: Uint8Array,
  ): void {
    const state = this.#conns.get(conn);
    if (state === undefined || this.#closing.includes(conn)) {
      this.#reply(conn, requestId, CsError.BAD_HANDLE);
      return;
    }
    const reg = this.#engines.get(state.service)!;
    const entry = reg.requests.get(fn);
    if (entry === undefined) {
      this.#reply(conn, requestId, CsError.INVALID_PARAM);
      return;
    }
    if (
      entry.handler.flowControl &&
      (this.#syncing || this.#congested || state.blocked)
    ) {
      this.stats.tryAgain++;
      this.#reply(conn, requestId, CsError.TRY_AGAIN);
      return;
    }
    const result = entry.handler.handle({ conn, requestId, payload });
    if (result === "deferred") return;
    this.#reply(conn, requestId, result.status, result.payload);
  }

  #reply(
    conn: ConnId,
    requestId: number,
    status: CsStatus,
    payload?: Uint8Array,
  ): void {
    this.#emit({
      type: "reply",
      conn,
      requestId,
      status,
      payload: payload ?? NO_BYTES,
    });
  }

  /** Forgets a connection and tells its engine; `status` non-null: we close it. */
  #close(conn: ConnId, status: CsStatus | null): void {
    const state = this.#conns.get(conn);
    if (state === undefined) return;
    this.#conns.delete(conn);
    this.#closing = this.#closing.filter((c) => c !== conn);
    if (status !== null) this.#emit({ type: "disconnect", conn, status });
    state.engine.connClose?.(conn);
  }

  #runCloses(): void {
    while (this.#closing.length > 0) {
      const conn = this.#closing.shift()!;
      this.#close(conn, CsError.LIBRARY);
    }
  }

  // ---- engine API ----

  #api(reg: Registered): EngineApi {
    const engine = reg.engine;
    return {
      nodeId: this.nodeId,
      mcast: (message, payload, guarantee = "agreed") => {
        const handler = reg.byName.get(message);
        assert(
          handler !== undefined,
          `${engine.name} has no message ${message}`,
        );
        this.#mcast(reg, handler.fn, payload, guarantee);
      },
      reply: (conn, requestId, status, payload) => {
        this.#reply(conn, requestId, status, payload);
      },
      event: (conn, payload) => {
        const state = this.#conns.get(conn);
        if (state === undefined || this.#closing.includes(conn)) return false;
        assert(
          state.engine === engine,
          `${engine.name} sent an event to another service's client`,
        );
        this.#emit({ type: "event", conn, payload });
        return !state.blocked;
      },
      disconnect: (conn) => {
        const state = this.#conns.get(conn);
        if (state === undefined || this.#closing.includes(conn)) return;
        assert(
          state.engine === engine,
          `${engine.name} closed another service's client`,
        );
        // Deferred to the end of the step: the engine may be iterating its
        // own connections right now.
        this.#closing.push(conn);
      },
      log: (level, text) => {
        this.#log(level, reg.subsys, text);
      },
      control: (request) => {
        const tag = this.#nextControlTag;
        this.#nextControlTag = tag >= 0xffff_ffff ? 1 : tag + 1;
        this.#emit({
          type: "control",
          serviceId: engine.serviceId,
          tag,
          request,
        });
        return tag;
      },
    };
  }

  #mcast(
    reg: Registered,
    fn: number,
    payload: Uint8Array | readonly Uint8Array[],
    guarantee: Guarantee,
  ): void {
    // Headers and the payload's parts as they are, gathered once, into
    // frames. The group header never changes; the engine header is
    // transient (no allocation of its own).
    const parts = payload instanceof Uint8Array ? [payload] : payload;
    let size = 0;
    for (const p of parts) size += p.length;
    const bytes = [
      ENGINE_GROUP_HEADER,
      encodeEngineHeader(reg.engine.serviceId, fn, size),
      ...parts,
    ];
    if (this.#syncContext !== null) {
      assert(
        this.#syncContext === reg,
        "an engine sent sync traffic during another's process()",
      );
      this.#emit({ type: "mcast", payload: bytes, guarantee, sync: true });
    } else if (this.#syncing) {
      this.#outbox.push({ payload: bytes, guarantee });
    } else {
      this.#emit({ type: "mcast", payload: bytes, guarantee, sync: false });
    }
  }

  // ---- helpers ----

  #enginesByPriority(): Registered[] {
    return [...this.#engines.values()].sort((a, b) =>
      a.engine.priority - b.engine.priority ||
      a.engine.serviceId - b.engine.serviceId
    );
  }

  #emit(action: ExecAction): void {
    this.#out.push(action);
  }

  #log(level: LogLevel, subsys: string, text: string): void {
    this.#emit({ type: "log", level, subsys, text });
  }

  /** Virtual or real time of the event being processed. */
  get nowMs(): number {
    return this.#nowMs;
  }
}

function register(engine: Engine): Registered {
  const byFn = new Map<number, MessageHandler>();
  const byName = new Map<string, MessageHandler>();
  for (const [name, handler] of Object.entries(engine.messages)) {
    assert(
      !byFn.has(handler.fn),
      `${engine.name}: two messages with fn ${handler.fn}`,
    );
    byFn.set(handler.fn, handler);
    byName.set(name, handler);
  }
  const requests = new Map<number, { name: string; handler: RequestHandler }>();
  for (const [name, handler] of Object.entries(engine.requests)) {
    assert(
      !requests.has(handler.fn),
      `${engine.name}: two requests with fn ${handler.fn}`,
    );
    requests.set(handler.fn, { name, handler });
  }
  return { engine, byFn, byName, requests, subsys: engine.name.toUpperCase() };
}
