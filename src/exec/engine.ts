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

/** An engine's only door to the world. Bound to one engine. */
export interface EngineApi {
  /** This node's id. */
  readonly nodeId: NodeId;
  /**
   * Multicasts one of this engine's messages (by name) to every node's
   * instance of this engine, in total order. Never refused: inside
   * `sync.process` it goes out with the sync traffic; otherwise it is held
   * by the executive while sync runs and then sent, in order.
   */
  mcast(message: string, payload: Uint8Array, guarantee?: Guarantee): void;
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
  event(conn: ConnId, payload: Uint8Array): boolean;
  /** Closes a client connection; the engine's `connClose` follows. */
  disconnect(conn: ConnId): void;
  /** Writes to the log under this engine's name. */
  log(level: LogLevel, text: string): void;
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
