/**
 * The IPC server (an edge): applications on this node connect to the
 * daemon's Unix socket, say HELLO for one service, then send requests and
 * receive responses and events. Wire format: PROTOCOL.md beside this file.
 *
 * The server owns framing, handshake, per-connection flow control and
 * robustness against bad clients; what requests mean is the `IpcHandler`'s
 * business (the executive). One bad or stuck client never disturbs another.
 *
 * Access control is the socket file's mode, owner and group only: Deno
 * exposes no SO_PEERCRED, so the server never learns a peer's uid or gid and
 * does not pretend to check them (PROTOCOL.md, "Access control").
 */
import { assert } from "../lib/assert.ts";
import type { LogLevel } from "../log/logger.ts";
import { CsError, csErrorName } from "./cs_error.ts";
import {
  decodeEventAck,
  decodeHello,
  encodeErrorMessage,
  encodeHelloOk,
  Feature,
  type Frame,
  FRAME_HEADER_BYTES,
  FrameDecoder,
  FrameType,
  frameTypeName,
  HANDSHAKE_BYTES_MAX,
  IPC_PROTOCOL_VERSION,
  MESSAGE_BYTES_MAX_DEFAULT,
} from "./codec.ts";
import {
  IpcAddressInUseError,
  IpcConfigError,
  UNIX_PATH_BYTES_MAX,
  unixPathBytes,
} from "./errors.ts";
import {
  FrameReader,
  FrameWriter,
  isDisconnectError,
  type OutFrame,
  splitBody,
} from "./framed_conn.ts";
import { OutgoingBudget, type OutgoingLimits } from "./flow_control.ts";

/** What the handler learns about a connection; the same object for its life. */
export interface IpcConnectionInfo {
  /** Unique for the life of the server, starting at 1. */
  readonly id: number;
  /** Service named in HELLO: "cpg", "cmap", "quorum", ... */
  readonly service: string;
  /** Process id the client *claims* in HELLO; unverified (no SO_PEERCRED). */
  readonly pid: number;
  readonly protocolVersion: number;
  /** The client acknowledges consumed events (Feature.EVENT_ACKS). */
  readonly eventAcks: boolean;
}

/** Answer of `IpcHandler.open`. */
export type IpcOpenResult =
  | { ok: true }
  | { ok: false; code: number; message: string };

/** Answer to one request: a `cs_error_t` status and an optional body. */
export interface IpcReply {
  status: number;
  payload?: Uint8Array;
}

/**
 * Why a connection ended: the client said GOODBYE; the client vanished
 * (socket closed, process died); the server cut it (protocol error, stuck
 * or overflowing queue); the handler asked for it (`IpcServer.disconnect`);
 * or the server is shutting down.
 */
export type IpcCloseReason =
  | "goodbye"
  | "disconnect"
  | "error"
  | "kicked"
  | "shutdown";

/**
 * What the executive implements. The server calls `open` and `request` from
 * its read loop in arrival order, and `close`/`flowControl` on a microtask,
 * never from inside a call the handler made into the server (no re-entry).
 * A handler that throws has a bug: the error is not caught (STYLE.md §6).
 */
export interface IpcHandler {
  /** A client said HELLO. Refuse with a `cs_error_t` (e.g. ERR_NOT_EXIST). */
  open(conn: IpcConnectionInfo): IpcOpenResult;
  /**
   * One request. `payload` is a view into a receive buffer shared with
   * neighbouring frames: never written to by the server again, but copy it
   * (`slice()`) when keeping it long, or it pins that buffer. Responses go
   * out as replies resolve, so an async handler may answer out of order;
   * requests themselves arrive in the order the client sent them.
   * `requestId` is the client's id for this request (unique among its
   * requests in flight), for handlers that track replies themselves.
   */
  request(
    conn: IpcConnectionInfo,
    fn: number,
    payload: Uint8Array,
    requestId: number,
  ): IpcReply | Promise<IpcReply>;
  /** The connection is gone; called once for every successful `open`. */
  close(conn: IpcConnectionInfo, reason: IpcCloseReason): void;
  /**
   * The connection entered (`on`) or left flow control: while on, answer
   * TRY_AGAIN to its sends. `sendEvent` returning false says the same.
   */
  flowControl?(conn: IpcConnectionInfo, on: boolean): void;
}

/** Where log lines go; `Logger` from src/log fits. */
export interface IpcLogger {
  log(level: LogLevel, subsys: string, message: string): void;
}

/** Options of `IpcServer.listen`. */
export interface IpcServerOptions {
  /** Socket path, at most 107 bytes. */
  path: string;
  /** Permission bits of the socket file, applied after listen. 0o660. */
  mode?: number;
  /**
   * Uids that must be able to connect. Without SO_PEERCRED this can only be
   * honoured by file ownership, so only the daemon's own uid (the socket's
   * owner) and 0 are accepted; others are refused at start with an
   * IpcConfigError that says to use a group instead.
   */
  allowedUids?: readonly number[];
  /** At most one gid: the socket file is chowned to it (mode grants access). */
  allowedGids?: readonly number[];
  /** Largest frame, header included, either way. 1 MiB + 64 KiB. */
  messageBytesMax?: number;
  handler: IpcHandler;
  /** This node's id, sent in HELLO_OK; may be changed later via `nodeId`. */
  nodeId?: number;
  /** Pending bytes per connection before flow control. 8 MiB. */
  outgoingBytesMax?: number;
  /** Pending bytes per connection before disconnect. 32 MiB. */
  outgoingBytesHardMax?: number;
  /** Queued frames per connection before flow control. 16384. */
  outgoingFramesMax?: number;
  /** How long a connection may stay in flow control before it is cut. 10 s. */
  stuckMsMax?: number;
  /** How long a new connection has to say HELLO. 5 s. */
  handshakeMsMax?: number;
  /** Async requests per connection before the server stops reading it. 128. */
  requestsInFlightMax?: number;
  /** Open connections before new ones are refused (ERR_NO_RESOURCES). 1024. */
  connectionsMax?: number;
  /** How long a closing connection may take to flush its queue. 1 s. */
  drainMsMax?: number;
  /** Defaults to warnings and errors on stderr. */
  logger?: IpcLogger;
}

/**
 * Counters of one open connection, published by cmap as stats.ipcs.*
 * (Corosync's names in brackets).
 */
export interface IpcConnectionStats {
  id: number;
  service: string;
  pid: number;
  /** REQUEST frames received [requests]. */
  requests: number;
  /** RESPONSE frames queued [responses]. */
  responses: number;
  /** EVENT frames queued [dispatched]. */
  dispatched: number;
  /** Events the client acknowledged (ack mode). */
  eventsAcked: number;
  /** Bytes read from / written to the socket. */
  bytesIn: number;
  bytesOut: number;
  /** In flow control now [flow_control]. */
  flowControl: boolean;
  /** Times it entered flow control [flow_control_count]. */
  flowControlCount: number;
  /** `sendEvent` calls that answered false. */
  flowControlHits: number;
  /** Frames and bytes waiting in the server [queued]. */
  queuedFrames: number;
  queuedBytes: number;
  /** Bytes counting against the limits (see flow_control.ts). */
  pendingBytes: number;
  /** Requests whose async reply is awaited. */
  requestsInFlight: number;
  /**
   * Requests refused as malformed [invalid_request]: handler replies with
   * ERR_INVALID_PARAM or ERR_NOT_SUPPORTED, plus protocol errors.
   */
  invalidRequests: number;
  /** Times a request waited for a congested ring (`holdRequests`). */
  requestsHeld: number;
}

/** Server-wide counters. */
export interface IpcServerStats {
  /** Connections open now (handshake done or not). */
  connections: number;
  accepted: number;
  /** HELLO refused: bad version, unknown service, too many connections. */
  refused: number;
  /** Connections cut for garbage, oversized or out-of-order frames. */
  protocolErrors: number;
  /** Connections cut for a stuck or overflowing outgoing queue. */
  overloaded: number;
}

const STDERR_LOGGER: IpcLogger = {
  log(level, subsys, message) {
    if (level === "error" || level === "warn") {
      console.error(`[${subsys}] ${level}: ${message}`);
    }
  },
};

const SUBSYS = "IPC";
const EMPTY = new Uint8Array(0);

interface ResolvedOptions {
  messageBytesMax: number;
  limits: OutgoingLimits;
  stuckMsMax: number;
  handshakeMsMax: number;
  requestsInFlightMax: number;
  connectionsMax: number;
  drainMsMax: number;
}

/** A Unix-socket IPC server. Create with `IpcServer.listen`. */
export class IpcServer {
  /** The socket path. */
  readonly path: string;
  /** Node id announced in HELLO_OK to connections opened from now on. */
  nodeId: number;
  readonly #listener: Deno.UnixListener;
  readonly #handler: IpcHandler;
  readonly #log: IpcLogger;
  readonly #options: ResolvedOptions;
  readonly #conns = new Map<number, ServerConn>();
  readonly #stats: IpcServerStats = {
    connections: 0,
    accepted: 0,
    refused: 0,
    protocolErrors: 0,
    overloaded: 0,
  };
  #nextId = 1;
  #closing = false;
  #acceptDone: Promise<void>;
  #held: ((service: string, fn: number) => boolean) | null = null;
  #released: (() => void)[] = [];

  private constructor(
    path: string,
    listener: Deno.UnixListener,
    handler: IpcHandler,
    log: IpcLogger,
    options: ResolvedOptions,
    nodeId: number,
  ) {
    this.path = path;
    this.#listener = listener;
    this.#handler = handler;
    this.#log = log;
    this.#options = options;
    this.nodeId = nodeId;
    this.#acceptDone = this.#acceptLoop();
  }

  /**
   * Listens on `options.path`. A stale socket file left by a killed daemon
   * is removed after a connect probe fails; a live daemon there is an
   * `IpcAddressInUseError`. Bad options are an `IpcConfigError`.
   */
  static async listen(options: IpcServerOptions): Promise<IpcServer> {
    const resolved = resolveOptions(options);
    const path = options.path;
    const mode = options.mode ?? 0o660;
    await removeStaleSocket(path);
    let listener: Deno.UnixListener;
    try {
      listener = Deno.listen({ transport: "unix", path });
    } catch (error) {
      // Another daemon won the race between our probe and our bind.
      if (error instanceof Deno.errors.AddrInUse) {
        throw new IpcAddressInUseError(path);
      }
      throw new IpcConfigError(
        `${path}: cannot listen: ${(error as Error).message}`,
      );
    }
    try {
      await applyAccess(path, mode, options.allowedUids, options.allowedGids);
    } catch (error) {
      listener.close();
      throw error;
    }
    return new IpcServer(
      path,
      listener,
      options.handler,
      options.logger ?? STDERR_LOGGER,
      resolved,
      options.nodeId ?? 0,
    );
  }

  /** Largest frame, header included, this server accepts and sends. */
  get messageBytesMax(): number {
    return this.#options.messageBytesMax;
  }

  /**
   * Queues one EVENT for connection `connId`. Returns false when the
   * connection is in flow control (its pending bytes are over the limit),
   * or is gone. Over the limit the event is still queued (nothing is lost):
   * false asks the caller to stop producing for it, e.g. to answer
   * TRY_AGAIN to that client's sends. A connection that stays over the
   * limit for `stuckMsMax`, or passes `outgoingBytesHardMax`, is cut.
   * `payload` is not copied (one buffer can go to many connections), so it
   * must not be modified afterwards. It may be parts of the body, in order:
   * the last is written from its own buffer (a delivered message after its
   * callback header).
   */
  sendEvent(
    connId: number,
    payload: Uint8Array | readonly Uint8Array[],
  ): boolean {
    const conn = this.#conns.get(connId);
    if (conn === undefined) return false;
    return conn.sendEvent(payload);
  }

  /**
   * Closes connection `connId` after what is already queued for it: with
   * GOODBYE when `status` is OK, else with an ERROR frame carrying `status`
   * and `message`. The handler then hears `close(conn, "kicked")`. False
   * when there is no such open connection.
   */
  disconnect(
    connId: number,
    status: number = CsError.OK,
    message?: string,
  ): boolean {
    const conn = this.#conns.get(connId);
    if (conn === undefined || !conn.isOpen) return false;
    conn.kick(status, message ?? csErrorName(status));
    return true;
  }

  /**
   * While `held` is set, a connection whose next request it matches
   * (`held(service, fn)`) stops there: that request and everything after it
   * on the connection wait, unread in the socket or decoded in memory, until
   * `holdRequests(null)`. This is how a congested ring pushes back on
   * senders, as Corosync stops reading its IPC while Totem's queue is full:
   * the client's write waits instead of a whole message crossing the socket
   * only to be answered TRY_AGAIN and sent again. Order within a connection
   * is kept, and requests that do not match (on other connections) pass.
   */
  holdRequests(held: ((service: string, fn: number) => boolean) | null): void {
    this.#held = held;
    if (held !== null) return;
    const waiters = this.#released;
    this.#released = [];
    for (const wake of waiters) wake();
  }

  /** True when `connId` is in flow control (or gone). */
  isFlowControlled(connId: number): boolean {
    const conn = this.#conns.get(connId);
    return conn === undefined || !conn.isOpen || conn.budget.overLimit;
  }

  /** Counters of every connection that finished its handshake. */
  connectionStats(): IpcConnectionStats[] {
    const out: IpcConnectionStats[] = [];
    for (const conn of this.#conns.values()) {
      const stats = conn.stats();
      if (stats !== null) out.push(stats);
    }
    return out;
  }

  /** Server-wide counters. */
  stats(): IpcServerStats {
    return { ...this.#stats, connections: this.#conns.size };
  }

  /**
   * Stops listening (the socket file is removed), says GOODBYE to every
   * client, flushes what each queue holds for up to `drainMsMax`, logs what
   * could not be flushed, and closes. `handler.close(conn, "shutdown")` is
   * called for every open connection before this resolves.
   */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    this.#listener.close();
    await this.#acceptDone;
    const done: Promise<void>[] = [];
    for (const conn of [...this.#conns.values()]) {
      done.push(conn.done);
      conn.shutdown();
    }
    await Promise.all(done);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #acceptLoop(): Promise<void> {
    while (!this.#closing) {
      let socket: Deno.UnixConn;
      try {
        socket = await this.#listener.accept();
      } catch (error) {
        if (this.#closing) return;
        // EMFILE and friends: keep the daemon alive, retry shortly.
        this.#log.log(
          "warn",
          SUBSYS,
          `${this.path}: accept failed: ${(error as Error).message}`,
        );
        await new Promise((resolve) => setTimeout(resolve, 100));
        continue;
      }
      if (this.#closing) {
        socket.close();
        return;
      }
      this.#stats.accepted++;
      const conn = new ServerConn(this.#nextId++, socket, this.#context());
      this.#conns.set(conn.id, conn);
      if (this.#conns.size > this.#options.connectionsMax) {
        conn.refuse(
          CsError.NO_RESOURCES,
          `too many IPC connections (limit ${this.#options.connectionsMax})`,
        );
      } else {
        conn.start();
      }
    }
  }

  #context(): ServerContext {
    return {
      options: this.#options,
      handler: this.#handler,
      log: this.#log,
      stats: this.#stats,
      nodeId: () => this.nodeId,
      forget: (conn) => this.#conns.delete(conn.id),
      isHeld: (service, fn) => this.#held !== null && this.#held(service, fn),
      whenReleased: () =>
        new Promise<void>((resolve) => this.#released.push(resolve)),
    };
  }
}

interface ServerContext {
  options: ResolvedOptions;
  handler: IpcHandler;
  log: IpcLogger;
  stats: IpcServerStats;
  nodeId(): number;
  forget(conn: ServerConn): void;
  /** True while requests `fn` of `service` must wait (`holdRequests`). */
  isHeld(service: string, fn: number): boolean;
  /** Resolves at the next `holdRequests(null)`. */
  whenReleased(): Promise<void>;
}

type ConnState = "hello" | "open" | "closed";

/** One client connection: read loop, handshake, dispatch, flow control. */
class ServerConn {
  readonly id: number;
  readonly done: Promise<void>;
  budget: OutgoingBudget;
  #socket: Deno.UnixConn;
  #ctx: ServerContext;
  #reader: FrameReader;
  #writer: FrameWriter;
  #state: ConnState = "hello";
  #info: IpcConnectionInfo | null = null;
  #resolveDone!: () => void;
  #handshakeTimer: ReturnType<typeof setTimeout> | undefined;
  #stuckTimer: ReturnType<typeof setTimeout> | undefined;
  #inFlight = 0;
  #resumeReading: (() => void) | null = null;
  #counters = {
    requests: 0,
    responses: 0,
    dispatched: 0,
    eventsAcked: 0,
    flowControlCount: 0,
    flowControlHits: 0,
    invalidRequests: 0,
    requestsHeld: 0,
  };

  constructor(id: number, socket: Deno.UnixConn, ctx: ServerContext) {
    this.id = id;
    this.#socket = socket;
    this.#ctx = ctx;
    this.done = new Promise((resolve) => (this.#resolveDone = resolve));
    this.#reader = new FrameReader(
      socket,
      new FrameDecoder(HANDSHAKE_BYTES_MAX),
    );
    this.#writer = new FrameWriter(socket, {
      written: (frames, bytes, eventBytes) => {
        this.budget.written(frames, bytes, eventBytes);
        this.#updateFlow();
      },
      failed: (error) => {
        this.#teardown(
          "disconnect",
          false,
          `write failed: ${errorText(error)}`,
        );
      },
    });
    this.budget = new OutgoingBudget(ctx.options.limits, false);
  }

  get isOpen(): boolean {
    return this.#state === "open";
  }

  /** Starts the read loop and the handshake deadline. */
  start(): void {
    this.#handshakeTimer = setTimeout(() => {
      this.#handshakeTimer = undefined;
      if (this.#state !== "hello") return;
      this.refuse(
        CsError.TIMEOUT,
        `no HELLO within ${this.#ctx.options.handshakeMsMax} ms`,
      );
    }, this.#ctx.options.handshakeMsMax);
    this.#readLoop();
  }

  /** Refuses the handshake with an ERROR frame, then closes. */
  refuse(code: number, message: string): void {
    if (this.#state !== "hello") return;
    this.#ctx.stats.refused++;
    this.#log("info", `refused: ${message}`);
    this.#sendError(code, 0, message);
    this.#teardown("error", true, message);
  }

  sendEvent(body: Uint8Array | readonly Uint8Array[]): boolean {
    if (this.#state !== "open") return false;
    const { payload, tail } = splitBody(body);
    const size = payload.length + (tail?.length ?? 0);
    assert(
      FRAME_HEADER_BYTES + size <= this.#ctx.options.messageBytesMax,
      `event of ${size} bytes exceeds messageBytesMax`,
    );
    this.#counters.dispatched++;
    this.#enqueue({
      type: FrameType.EVENT,
      requestId: 0,
      code: 0,
      payload,
      tail,
      event: true,
    });
    if (this.#state !== "open") return false;
    if (this.budget.overLimit) {
      this.#counters.flowControlHits++;
      return false;
    }
    return true;
  }

  /** Closes on the handler's request, after what is queued. */
  kick(status: number, message: string): void {
    if (this.#state !== "open") return;
    if (status === CsError.OK) {
      this.#enqueue({
        type: FrameType.GOODBYE,
        requestId: 0,
        code: 0,
        payload: EMPTY,
        event: false,
      });
    } else {
      this.#sendError(status, 0, message);
    }
    this.#teardown("kicked", true, `disconnected by the server: ${message}`);
  }

  /** Server shutdown: GOODBYE, flush, close. */
  shutdown(): void {
    if (this.#state === "closed") return;
    if (this.#state === "open") {
      this.#enqueue({
        type: FrameType.GOODBYE,
        requestId: 0,
        code: 0,
        payload: EMPTY,
        event: false,
      });
    }
    this.#teardown("shutdown", true, "server shutting down");
  }

  stats(): IpcConnectionStats | null {
    const info = this.#info;
    if (info === null || this.#state !== "open") return null;
    return {
      id: this.id,
      service: info.service,
      pid: info.pid,
      ...this.#counters,
      bytesIn: this.#reader.bytesIn,
      bytesOut: this.#writer.bytesOut,
      flowControl: this.budget.flowControlled,
      queuedFrames: this.budget.queuedFrames,
      queuedBytes: this.budget.queuedBytes,
      pendingBytes: this.budget.pendingBytes,
      requestsInFlight: this.#inFlight,
    };
  }

  // A method, so TypeScript does not narrow the state across awaits.
  #isClosed(): boolean {
    return this.#state === "closed";
  }

  async #readLoop(): Promise<void> {
    while (!this.#isClosed()) {
      if (this.#inFlight >= this.#ctx.options.requestsInFlightMax) {
        // Back-pressure: stop reading until async replies come back, so a
        // pipelining client cannot pile up unbounded pending work.
        await new Promise<void>((resolve) => (this.#resumeReading = resolve));
        continue;
      }
      let result;
      try {
        result = await this.#reader.read();
      } catch (error) {
        if (this.#isClosed()) return;
        if (!isDisconnectError(error)) {
          this.#log("warn", `read failed: ${errorText(error)}`);
        }
        this.#teardown("disconnect", false, `read failed: ${errorText(error)}`);
        return;
      }
      if (this.#isClosed()) return;
      if (result === null) {
        const decoder = this.#reader.decoder;
        this.#teardown(
          "disconnect",
          false,
          decoder.bufferedBytes > 0
            ? `closed mid-frame (${decoder.bufferedBytes} of ${
              decoder.pendingFrameBytes || "?"
            } bytes)`
            : "closed by peer",
        );
        return;
      }
      for (const frame of result.frames) {
        while (
          frame.type === FrameType.REQUEST && this.#info !== null &&
          this.#ctx.isHeld(this.#info.service, frame.code)
        ) {
          this.#counters.requestsHeld++;
          // Teardown also wakes us (#resumeReading), so a client that
          // leaves while held does not keep its read loop waiting.
          await new Promise<void>((resolve) => {
            this.#resumeReading = resolve;
            this.#ctx.whenReleased().then(resolve);
          });
          this.#resumeReading = null;
          if (this.#isClosed()) return;
        }
        this.#onFrame(frame);
        if (this.#isClosed()) return;
      }
      if (result.error !== null) {
        this.#protocolError(
          result.error.code,
          result.error.reason,
          result.error.requestId,
        );
        return;
      }
    }
  }

  #onFrame(frame: Frame): void {
    if (this.#state === "hello") {
      this.#onHello(frame);
      return;
    }
    switch (frame.type) {
      case FrameType.REQUEST:
        this.#onRequest(frame);
        return;
      case FrameType.EVENT_ACK: {
        const ack = decodeEventAck(frame.payload);
        if (!ack.ok) {
          this.#protocolError(ack.code, ack.reason, frame.requestId);
          return;
        }
        if (!this.budget.acked(ack.value.events, ack.value.bytes)) {
          this.#protocolError(
            CsError.MESSAGE_ERROR,
            this.budget.eventAcks
              ? `EVENT_ACK of ${ack.value.events} events / ${ack.value.bytes} bytes exceeds what was sent`
              : "EVENT_ACK without the EVENT_ACKS feature",
            frame.requestId,
          );
          return;
        }
        this.#counters.eventsAcked += ack.value.events;
        this.#updateFlow();
        return;
      }
      case FrameType.GOODBYE:
        this.#teardown("goodbye", true, "client said GOODBYE");
        return;
      default:
        this.#protocolError(
          CsError.MESSAGE_ERROR,
          `unexpected ${frameTypeName(frame.type)} frame from a client`,
          frame.requestId,
        );
    }
  }

  #onHello(frame: Frame): void {
    if (frame.type !== FrameType.HELLO) {
      this.#protocolError(
        CsError.MESSAGE_ERROR,
        `expected HELLO first, got ${frameTypeName(frame.type)}`,
        frame.requestId,
      );
      return;
    }
    const hello = decodeHello(frame.payload);
    if (!hello.ok) {
      this.#protocolError(hello.code, hello.reason, frame.requestId);
      return;
    }
    const { version, features, pid, service } = hello.value;
    if (version !== IPC_PROTOCOL_VERSION) {
      this.refuse(
        CsError.VERSION,
        `protocol version ${version} is not supported; this server speaks ${IPC_PROTOCOL_VERSION}`,
      );
      return;
    }
    clearTimeout(this.#handshakeTimer);
    this.#handshakeTimer = undefined;
    const eventAcks = (features & Feature.EVENT_ACKS) !== 0;
    const info: IpcConnectionInfo = {
      id: this.id,
      service,
      pid,
      protocolVersion: version,
      eventAcks,
    };
    const opened = this.#ctx.handler.open(info);
    if (this.#state !== "hello") return;
    if (!opened.ok) {
      assert(opened.code !== CsError.OK, "open refused with CS_OK");
      this.refuse(opened.code, opened.message);
      return;
    }
    this.#info = info;
    this.#state = "open";
    this.budget = new OutgoingBudget(this.#ctx.options.limits, eventAcks);
    this.#reader.decoder.frameBytesMax = this.#ctx.options.messageBytesMax;
    this.#enqueue({
      type: FrameType.HELLO_OK,
      requestId: frame.requestId,
      code: 0,
      payload: encodeHelloOk({
        connectionId: this.id,
        nodeId: this.#ctx.nodeId(),
        messageBytesMax: this.#ctx.options.messageBytesMax,
        version: IPC_PROTOCOL_VERSION,
        features: features & Feature.EVENT_ACKS,
        eventWindowBytes: this.#ctx.options.limits.bytesMax,
      }),
      event: false,
    });
    this.#log("debug", `opened by pid ${pid} for ${service}`);
  }

  #onRequest(frame: Frame): void {
    this.#counters.requests++;
    const info = this.#info!;
    const reply = this.#ctx.handler.request(
      info,
      frame.code,
      frame.payload,
      frame.requestId,
    );
    if (reply instanceof Promise) {
      this.#inFlight++;
      // A rejection is a handler bug: it is left unhandled on purpose.
      reply.then((value) => {
        this.#inFlight--;
        this.#respond(frame.requestId, value);
        const resume = this.#resumeReading;
        if (
          resume !== null &&
          this.#inFlight < this.#ctx.options.requestsInFlightMax
        ) {
          this.#resumeReading = null;
          resume();
        }
      });
    } else {
      this.#respond(frame.requestId, reply);
    }
  }

  #respond(requestId: number, reply: IpcReply): void {
    if (this.#state !== "open") return; // the client left; nobody to answer
    const payload = reply.payload ?? EMPTY;
    assert(
      Number.isInteger(reply.status) && reply.status >= 0 &&
        reply.status <= 0xffff_ffff,
      `reply status ${reply.status} is not a u32`,
    );
    assert(
      FRAME_HEADER_BYTES + payload.length <= this.#ctx.options.messageBytesMax,
      `reply of ${payload.length} bytes exceeds messageBytesMax`,
    );
    this.#counters.responses++;
    if (
      reply.status === CsError.INVALID_PARAM ||
      reply.status === CsError.NOT_SUPPORTED
    ) {
      this.#counters.invalidRequests++;
    }
    this.#enqueue({
      type: FrameType.RESPONSE,
      requestId,
      code: reply.status,
      payload,
      event: false,
    });
  }

  #enqueue(frame: OutFrame): void {
    const bytes = this.#writer.enqueue(frame);
    this.budget.enqueued(bytes, frame.event);
    this.#updateFlow();
  }

  #updateFlow(): void {
    if (this.#state !== "open") return;
    const budget = this.budget;
    if (budget.overHardLimit) {
      this.#ctx.stats.overloaded++;
      const message =
        `outgoing queue of ${budget.pendingBytes} bytes passed the hard limit of ${budget.limits.bytesHardMax}; disconnecting`;
      this.#log("warn", message);
      this.#teardown("error", false, message);
      return;
    }
    const transition = budget.update();
    if (transition === "on") {
      this.#counters.flowControlCount++;
      this.#stuckTimer = setTimeout(
        () => this.#onStuck(),
        this.#ctx.options.stuckMsMax,
      );
      this.#notifyFlow(true);
    } else if (transition === "off") {
      clearTimeout(this.#stuckTimer);
      this.#stuckTimer = undefined;
      this.#notifyFlow(false);
    }
  }

  #notifyFlow(on: boolean): void {
    const handler = this.#ctx.handler;
    if (handler.flowControl === undefined) return;
    const info = this.#info!;
    queueMicrotask(() => {
      if (this.#state === "open") handler.flowControl!(info, on);
    });
  }

  #onStuck(): void {
    this.#stuckTimer = undefined;
    if (this.#state !== "open") return;
    this.#ctx.stats.overloaded++;
    const message =
      `client stuck: ${this.budget.pendingBytes} bytes pending over the limit of ${this.budget.limits.bytesMax} for ${this.#ctx.options.stuckMsMax} ms; disconnecting`;
    this.#log("warn", message);
    this.#teardown("error", false, message);
  }

  #protocolError(code: number, reason: string, requestId: number): void {
    if (this.#state === "closed") return;
    this.#ctx.stats.protocolErrors++;
    this.#counters.invalidRequests++;
    this.#log("warn", `protocol error, disconnecting: ${reason}`);
    this.#sendError(code, requestId, reason);
    this.#teardown("error", true, reason);
  }

  #sendError(code: number, requestId: number, message: string): void {
    this.#enqueue({
      type: FrameType.ERROR,
      requestId,
      code,
      payload: encodeErrorMessage(message),
      event: false,
    });
  }

  /**
   * Ends the connection once. The handler hears `close` (on a microtask)
   * only if it accepted `open`. With `flush`, queued frames (an ERROR, a
   * GOODBYE) get up to `drainMsMax` to leave before the socket closes.
   */
  #teardown(reason: IpcCloseReason, flush: boolean, detail: string): void {
    if (this.#state === "closed") return;
    const info = this.#state === "open" ? this.#info : null;
    this.#state = "closed";
    this.#ctx.forget(this);
    clearTimeout(this.#handshakeTimer);
    clearTimeout(this.#stuckTimer);
    this.#handshakeTimer = undefined;
    this.#stuckTimer = undefined;
    this.#resumeReading?.();
    this.#resumeReading = null;
    if (info !== null) {
      this.#log("debug", `closed (${reason}): ${detail}`);
      const handler = this.#ctx.handler;
      queueMicrotask(() => handler.close(info, reason));
    }
    if (!flush || this.#writer.idle) {
      this.#finish();
      return;
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), this.#ctx.options.drainMsMax);
    });
    Promise.race([this.#writer.whenIdle().then(() => true), deadline])
      .then((drained) => {
        clearTimeout(timer);
        if (!drained) {
          this.#log(
            "warn",
            `dropped ${this.budget.queuedFrames} queued frames (${this.budget.queuedBytes} bytes) after ${this.#ctx.options.drainMsMax} ms of draining`,
          );
        }
        this.#finish();
      });
  }

  #finish(): void {
    this.#writer.close();
    try {
      this.#socket.close();
    } catch (error) {
      // Already closed by the runtime after a failed read or write.
      if (!(error instanceof Deno.errors.BadResource)) throw error;
    }
    this.#resolveDone();
  }

  #log(level: LogLevel, message: string): void {
    const who = this.#info === null
      ? `connection ${this.id}`
      : `connection ${this.id} (${this.#info.service}, pid ${this.#info.pid})`;
    this.#ctx.log.log(level, SUBSYS, `${who}: ${message}`);
  }
}

function errorText(error: unknown): string {
  return error instanceof Error
    ? `${error.name}: ${error.message}`
    : String(error);
}

function positiveInt(
  value: number | undefined,
  fallback: number,
  name: string,
): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v <= 0) {
    throw new IpcConfigError(
      `ipc: ${name} must be a positive integer, got ${value}`,
    );
  }
  return v;
}

function resolveOptions(options: IpcServerOptions): ResolvedOptions {
  const path = options.path;
  if (path.length === 0) throw new IpcConfigError("ipc: socket path is empty");
  const pathBytes = unixPathBytes(path);
  if (pathBytes > UNIX_PATH_BYTES_MAX) {
    throw new IpcConfigError(
      `${path}: socket path is ${pathBytes} bytes; unix sockets allow at most ${UNIX_PATH_BYTES_MAX}`,
    );
  }
  const mode = options.mode ?? 0o660;
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o777) {
    throw new IpcConfigError(
      `${path}: socket mode must be within 0o000..0o777, got ${mode}`,
    );
  }
  const messageBytesMax = positiveInt(
    options.messageBytesMax,
    MESSAGE_BYTES_MAX_DEFAULT,
    "messageBytesMax",
  );
  if (
    messageBytesMax < HANDSHAKE_BYTES_MAX || messageBytesMax > 0xffff_ffff
  ) {
    throw new IpcConfigError(
      `ipc: messageBytesMax must be within ${HANDSHAKE_BYTES_MAX}..${0xffff_ffff}, got ${messageBytesMax}`,
    );
  }
  const bytesMax = positiveInt(
    options.outgoingBytesMax,
    8 * 1024 * 1024,
    "outgoingBytesMax",
  );
  const bytesHardMax = positiveInt(
    options.outgoingBytesHardMax,
    Math.max(32 * 1024 * 1024, bytesMax + 2 * messageBytesMax),
    "outgoingBytesHardMax",
  );
  if (bytesHardMax < bytesMax + messageBytesMax) {
    throw new IpcConfigError(
      `ipc: outgoingBytesHardMax (${bytesHardMax}) must be at least outgoingBytesMax + messageBytesMax (${
        bytesMax + messageBytesMax
      })`,
    );
  }
  return {
    messageBytesMax,
    limits: {
      bytesMax,
      bytesHardMax,
      framesMax: positiveInt(
        options.outgoingFramesMax,
        16_384,
        "outgoingFramesMax",
      ),
    },
    stuckMsMax: positiveInt(options.stuckMsMax, 10_000, "stuckMsMax"),
    handshakeMsMax: positiveInt(
      options.handshakeMsMax,
      5_000,
      "handshakeMsMax",
    ),
    requestsInFlightMax: positiveInt(
      options.requestsInFlightMax,
      128,
      "requestsInFlightMax",
    ),
    connectionsMax: positiveInt(
      options.connectionsMax,
      1024,
      "connectionsMax",
    ),
    drainMsMax: positiveInt(options.drainMsMax, 1_000, "drainMsMax"),
  };
}

/**
 * Removes a socket file left by a daemon that died without closing it. A
 * connect probe tells stale from live: a live daemon answers. Files that are
 * not sockets are never removed.
 */
async function removeStaleSocket(path: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw new IpcConfigError(
      `${path}: cannot inspect socket path: ${(error as Error).message}`,
    );
  }
  if (!info.isSocket) {
    throw new IpcConfigError(
      `${path} exists and is not a socket; refusing to replace it`,
    );
  }
  try {
    const probe = await Deno.connect({ transport: "unix", path });
    probe.close();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    if (!(error instanceof Deno.errors.ConnectionRefused)) {
      throw new IpcConfigError(
        `${path}: cannot probe the existing socket: ${
          (error as Error).message
        }`,
      );
    }
    try {
      await Deno.remove(path);
    } catch (removeError) {
      if (!(removeError instanceof Deno.errors.NotFound)) {
        throw new IpcConfigError(
          `${path}: cannot remove the stale socket: ${
            (removeError as Error).message
          }`,
        );
      }
    }
    return;
  }
  throw new IpcAddressInUseError(path);
}

/** Applies mode and group to the socket file and checks `allowedUids`. */
async function applyAccess(
  path: string,
  mode: number,
  allowedUids: readonly number[] | undefined,
  allowedGids: readonly number[] | undefined,
): Promise<void> {
  const gids = allowedGids ?? [];
  if (gids.length > 1) {
    throw new IpcConfigError(
      `${path}: ${gids.length} allowed groups given, but without peer credentials (no SO_PEERCRED in Deno) access is granted by the socket's one group; put the users in one group`,
    );
  }
  if (gids.length === 1 && (mode & 0o060) !== 0o060) {
    throw new IpcConfigError(
      `${path}: allowed group ${gids[0]} given, but mode 0o${
        mode.toString(8)
      } does not grant the group read and write`,
    );
  }
  try {
    await Deno.chmod(path, mode);
    if (gids.length === 1) await Deno.chown(path, null, gids[0]);
  } catch (error) {
    throw new IpcConfigError(
      `${path}: cannot set mode 0o${mode.toString(8)}${
        gids.length === 1 ? ` and group ${gids[0]}` : ""
      }: ${(error as Error).message}`,
    );
  }
  const owner = (await Deno.lstat(path)).uid;
  for (const uid of allowedUids ?? []) {
    if (uid === 0 || uid === owner) continue;
    throw new IpcConfigError(
      `${path}: uid ${uid} cannot be allowed individually: Deno gives no peer credentials (SO_PEERCRED), so access is granted only by the socket file's owner (uid ${owner}) and group; add uid ${uid} to an allowed group instead`,
    );
  }
}
