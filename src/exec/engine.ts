/**
 * The engine registration interface (STYLE.md section 3, ARCHITECTURE.md
 * "Engines are modules with a small registration interface"). An engine
 * declares its id, its IPC request handlers, its totally ordered message
 * handlers and its sync hooks, and reaches the world only through the
 * `EngineApi` the executive hands it in `init`. Engines are pure: no I/O,
 * no clock, no timers of their own.
 *
 * @module
 */
import type { LogLevel } from "../log/logger.ts";
import type { ConfChange, Guarantee, NodeId, RingId } from "../totem/types.ts";
import type { CsStatus } from "./cs_error.ts";

/** An IPC connection, as numbered by the IPC server. */
export type ConnId = number;

/**
 * Service ids, on the wire forever and never reused. The first eight are
 * Corosync's (`include/corosync/corodefs.h`, TOTEM.md 5.3). SAM has no
 * executive service in Corosync (libsam is client-only there, built on
 * cmap and quorum); we give it 8, the first id Corosync leaves unused.
 */
export const SERVICE_ID = {
  CMAP: 0,
  CFG: 1,
  CPG: 2,
  QUORUM: 3,
  PLOAD: 4,
  VOTEQUORUM: 5,
  MON: 6,
  WD: 7,
  SAM: 8,
} as const;

/** Largest service id: it travels in the upper 16 bits of a message id. */
export const SERVICE_ID_MAX = 0xffff;
/** Largest message or request function number (lower 16 bits). */
export const FN_MAX = 0xffff;

/** What a request handler answers right away. */
export interface RequestResult {
  readonly status: CsStatus;
  readonly payload?: Uint8Array;
}

/** One IPC request as a handler sees it. */
export interface EngineRequest {
  readonly conn: ConnId;
  readonly requestId: number;
  /**
   * The request's bytes: a view of a buffer shared with other requests.
   * Pass it on or decode it; copy what you keep beyond the request.
   */
  readonly payload: Uint8Array;
}

/** An IPC request handler (Corosync `lib_engine[fn]`). */
export interface RequestHandler {
  /** Function number on the IPC wire. */
  readonly fn: number;
  /**
   * True when serving the request multicasts on the ring (Corosync
   * `CS_LIB_FLOW_CONTROL_REQUIRED`): such requests are answered TRY_AGAIN
   * while service sync runs or the send queue is congested, before the
   * handler is called.
   */
  readonly flowControl: boolean;
  /**
   * Serves the request. Returns the reply, or "deferred" when the engine
   * answers later with `EngineApi.reply` (using `requestId`).
   */
  handle(request: EngineRequest): RequestResult | "deferred";
}

/** A handler of this engine's totally ordered messages (`exec_engine[fn]`). */
export interface MessageHandler {
  /** Function number in the message header on the ring. */
  readonly fn: number;
  /**
   * Applies one delivered message from node `from`. `payload` is untrusted
   * bytes from the network: decode, and drop what does not decode.
   */
  handle(from: NodeId, payload: Uint8Array): void;
}

/** Result of one `SyncHooks.process` call. */
export type SyncProgress = "done" | "again";

/**
 * Service synchronisation hooks (TOTEM.md 8.1, Corosync `sync_init`,
 * `sync_process`, `sync_activate`, `sync_abort`).
 */
export interface SyncHooks {
  /**
   * A sync round starts for the regular ring `ringId`: `trans` are the
   * members that came from our previous ring (transitional list ∩ members).
   */
  init(
    trans: readonly NodeId[],
    members: readonly NodeId[],
    ringId: RingId,
  ): void;
  /**
   * Background work, typically multicasting this node's state. Messages
   * sent from here go out while application frames are held. Called again
   * on later turns while it answers "again".
   */
  process(): SyncProgress;
  /** Every member finished `process` (barrier reached): apply the new state. */
  activate(): void;
  /** The round was cut short by a new configuration: forget it. */
  abort(): void;
}

/** One link to one peer, as this node's transport sees it now. */
export interface NodeLinkReport {
  /** Link number (`totem.interface.linknumber`). */
  readonly link: number;
  /** False while the link is switched off on this node (test block hook). */
  readonly enabled: boolean;
  /** Heartbeats flow both ways. */
  readonly connected: boolean;
  /** Largest datagram the ring sends (`totem.netmtu`). */
  readonly mtu: number;
  /** This node's "addr:port" on the link. */
  readonly src: string;
  /** The peer's "addr:port" on the link. */
  readonly dst: string;
}

/** One configured peer and its links. */
export interface NodeReport {
  readonly nodeId: NodeId;
  readonly links: readonly NodeLinkReport[];
}

/** The answer to the node control request "status". */
export interface NodeStatusReport {
  /** `totem.transport`: "udpu" or "udp". */
  readonly transport: string;
  /** This node's "addr:port" per link, ascending by link number. */
  readonly localLinks: readonly {
    readonly link: number;
    readonly addr: string;
  }[];
  /** Every configured node but this one, ascending by node id. */
  readonly nodes: readonly NodeReport[];
}

/**
 * What an engine may ask of the node it runs in: things only the driver can
 * do (the daemon performs them, the simulator or a test fakes them). Every
 * request is answered exactly once, in a later step, through
 * `Engine.controlDone` with the tag `EngineApi.control` returned:
 * - `status`: the transport's links (answer carries `status`);
 * - `shutdown`: leave the ring cleanly and stop the daemon; `reason` goes to
 *   the log (answered once the shutdown is under way);
 * - `reopen_log`: reopen the log files (after rotation);
 * - `reload_prepare`: re-read and validate the configuration file and hold
 *   the resulting plan; `reload_commit` applies the held plan,
 *   `reload_abort` drops it (answers ok even without one);
 * - `timer`: answered ok after `afterMs` (engines have no clock; an engine
 *   ignores the answer of a timer it no longer wants).
 */
export type NodeControlRequest =
  | { readonly op: "status" }
  | { readonly op: "shutdown"; readonly reason: string }
  | { readonly op: "reopen_log" }
  | { readonly op: "reload_prepare" }
  | { readonly op: "reload_commit" }
  | { readonly op: "reload_abort" }
  | { readonly op: "timer"; readonly afterMs: number };

/** The answer to a `NodeControlRequest`. */
export type NodeControlResult =
  | {
    readonly ok: true;
    /** Present in the answer to "status". */
    readonly status?: NodeStatusReport;
    /** What `reload_prepare` would change, or `reload_commit` changed. */
    readonly changes?: readonly string[];
  }
  | {
    readonly ok: false;
    /** One sentence that leads with the place (file:line, key) when known. */
    readonly error: string;
  };

/** An engine's only door to the world. Bound to one engine. */
export interface EngineApi {
  /** This node's id. */
  readonly nodeId: NodeId;
  /**
   * Multicasts one of this engine's messages (by name) to every node's
   * instance of this engine, in total order. Never refused: inside
   * `sync.process` it goes out with the sync traffic; otherwise it is held
   * by the executive while sync runs and then sent, in order. `payload`
   * may be parts (gathered once, into frames); none may change afterwards.
   */
  mcast(
    message: string,
    payload: Uint8Array | readonly Uint8Array[],
    guarantee?: Guarantee,
  ): void;
  /** Answers a request whose handler returned "deferred". */
  reply(
    conn: ConnId,
    requestId: number,
    status: CsStatus,
    payload?: Uint8Array,
  ): void;
  /**
   * Sends an asynchronous callback to an IPC client. False when the client
   * is gone (nothing sent) or over its event limit (sent anyway: ordered
   * callbacks are never dropped; the client's flow-controlled requests get
   * TRY_AGAIN until it catches up, and a client the IPC layer cannot hold
   * at all is disconnected, so it never goes on as if it had not missed one).
   */
  event(conn: ConnId, payload: Uint8Array | readonly Uint8Array[]): boolean;
  /** Closes a client connection; the engine's `connClose` follows. */
  disconnect(conn: ConnId): void;
  /** Writes to the log under this engine's name. */
  log(level: LogLevel, text: string): void;
  /**
   * Asks the node for something only the driver can do (see
   * `NodeControlRequest`); returns the tag its answer will carry in
   * `Engine.controlDone`. Always present in the executive's API; optional so
   * test fakes of engines that never ask need not provide it.
   */
  control?(request: NodeControlRequest): number;
}

/** A service engine instance (one per node). */
export interface Engine {
  /** Log subsystem and cmap prefix, e.g. "cpg". */
  readonly name: string;
  /** On the wire forever, never reused (`SERVICE_ID`). */
  readonly serviceId: number;
  /** Lower starts first and stops last. */
  readonly priority: number;
  /** Receives the API before any other call. */
  init(api: EngineApi): void;
  /** IPC request handlers, found by function number, named for logs. */
  readonly requests: Readonly<Record<string, RequestHandler>>;
  /** Ordered message handlers, found by function number or by name. */
  readonly messages: Readonly<Record<string, MessageHandler>>;
  /** Every Totem configuration change, transitional and regular. */
  confChange(change: ConfChange): void;
  /** Service sync hooks, run by the executive after every regular confchg. */
  readonly sync: SyncHooks;
  /** A client connected to this service (`lib_init_fn`); `pid` from its credentials. */
  connOpen?(conn: ConnId, pid: number): void;
  /** A client disconnected or was disconnected (`lib_exit_fn`). */
  connClose?(conn: ConnId): void;
  /** The answer to this engine's `EngineApi.control` request `tag`. */
  controlDone?(tag: number, result: NodeControlResult): void;
}

/**
 * Registry entry of an engine (engines/mod.ts). A factory rather than an
 * instance because one process may run many nodes (the simulator); the
 * daemon creates each engine once.
 */
export interface EngineDescriptor {
  readonly name: string;
  readonly serviceId: number;
  readonly priority: number;
  create(): Engine;
}

/** Sync hooks of an engine that has nothing to synchronise. */
export const NO_SYNC: SyncHooks = {
  init(): void {},
  process(): SyncProgress {
    return "done";
  },
  activate(): void {},
  abort(): void {},
};
