/**
 * The client end of the IPC protocol (src/ipc/PROTOCOL.md): one connection
 * from an application to its node's daemon for one service. CpgClient,
 * CmapClient and the other service clients are built on it.
 *
 * ```ts
 * const conn = await IpcConnection.connect({ path, service: "cmap" });
 * try {
 *   const { status, payload } = await conn.request(1, body);
 *   for await (const event of conn.events) handle(event);
 * } finally {
 *   await conn.close();
 * }
 * ```
 *
 * The socket is read eagerly, so a response never waits behind events the
 * application has not consumed yet; consumption is reported to the daemon
 * with EVENT_ACK frames, and that is what the daemon's flow control counts.
 */
import { CsError } from "../ipc/cs_error.ts";
import {
  decodeErrorMessage,
  decodeHelloOk,
  encodeEventAck,
  encodeHello,
  Feature,
  type Frame,
  FRAME_HEADER_BYTES,
  FrameDecoder,
  type FrameReject,
  FrameType,
  frameTypeName,
  HANDSHAKE_BYTES_MAX,
  type HelloOk,
  IPC_PROTOCOL_VERSION,
  SERVICE_NAME_PATTERN,
} from "../ipc/codec.ts";
import {
  IpcClosedError,
  IpcError,
  IpcNotRunningError,
  IpcPermissionError,
  UNIX_PATH_BYTES_MAX,
  unixPathBytes,
} from "../ipc/errors.ts";
import {
  FrameReader,
  FrameWriter,
  isDisconnectError,
  splitBody,
} from "../ipc/framed_conn.ts";

/** Options of `IpcConnection.connect`. */
export interface IpcConnectOptions {
  /** The daemon's socket path. */
  path: string;
  /** "cpg", "cmap", "cfg", "quorum", "votequorum", ... */
  service: string;
  /** Process id sent in HELLO (informational). Defaults to `Deno.pid`. */
  pid?: number;
  /**
   * Receives each event in order, instead of the `events` iterator. The
   * event counts as consumed when the callback returns, or when the promise
   * it returns settles. A throw is reported as an uncaught error.
   */
  onEvent?: (payload: Uint8Array) => void | Promise<void>;
  /** How long to wait for the daemon's answer to HELLO. 5 s. */
  handshakeMsMax?: number;
  /** Acknowledge consumed events (Feature.EVENT_ACKS). True. */
  eventAcks?: boolean;
}

/** A response: the `cs_error_t` status and the body. */
export interface IpcResponse {
  status: number;
  payload: Uint8Array;
}

/**
 * How the connection ended: `close()` here; the daemon said GOODBYE
 * (shutdown); the socket went away; or a protocol error / ERROR frame.
 */
export interface IpcCloseInfo {
  reason: "local" | "goodbye" | "disconnect" | "error";
  /** What pending and later requests are rejected with. */
  error: IpcError;
}

interface Pending {
  resolve(response: IpcResponse): void;
  reject(error: IpcError): void;
}

const EMPTY = new Uint8Array(0);
const ACK_BYTES_MAX = 64 * 1024;
const ACK_DELAY_MS = 5;
const CLOSE_DRAIN_MS = 1_000;

/** One open connection to the daemon. Create with `IpcConnection.connect`. */
export class IpcConnection {
  /** Socket path and service of this connection. */
  readonly path: string;
  readonly service: string;
  /** Id the daemon gave this connection (its stats.ipcs entry). */
  readonly connectionId: number;
  /** Node id of the daemon. */
  readonly nodeId: number;
  /** Largest frame either side may send, header included. */
  readonly messageBytesMax: number;
  /** Whether consumed events are acknowledged. */
  readonly eventAcks: boolean;
  /** Resolves (never rejects) once the connection is closed. */
  readonly closed: Promise<IpcCloseInfo>;

  #socket: Deno.UnixConn;
  #reader: FrameReader;
  #writer: FrameWriter;
  #pending = new Map<number, Pending>();
  #nextRequestId = 1;
  #closeInfo: IpcCloseInfo | null = null;
  #resolveClosed!: (info: IpcCloseInfo) => void;
  #onEvent: ((payload: Uint8Array) => void | Promise<void>) | undefined;
  #events: (Uint8Array | undefined)[] = [];
  #eventsHead = 0;
  #eventWaiter: (() => void) | null = null;
  #ackEvents = 0;
  #ackBytes = 0;
  #ackBytesMax: number;
  #ackTimer: ReturnType<typeof setTimeout> | undefined;

  private constructor(
    socket: Deno.UnixConn,
    reader: FrameReader,
    hello: HelloOk,
    options: IpcConnectOptions,
  ) {
    this.path = options.path;
    this.service = options.service;
    this.connectionId = hello.connectionId;
    this.nodeId = hello.nodeId;
    this.messageBytesMax = hello.messageBytesMax;
    this.eventAcks = (hello.features & Feature.EVENT_ACKS) !== 0;
    this.#ackBytesMax = Math.max(
      FRAME_HEADER_BYTES,
      Math.min(ACK_BYTES_MAX, Math.floor(hello.eventWindowBytes / 4)),
    );
    this.#socket = socket;
    this.#reader = reader;
    this.#onEvent = options.onEvent;
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
    this.#writer = new FrameWriter(socket, {
      written: () => {},
      failed: (error) =>
        this.#end(
          "disconnect",
          new IpcClosedError(
            `${this.path}: connection to the daemon lost: ${
              (error as Error).message
            }`,
          ),
        ),
    });
  }

  /**
   * Connects and says HELLO. Throws `IpcNotRunningError` when no daemon
   * listens, `IpcPermissionError` when the socket may not be opened, and
   * `IpcError` with the daemon's code when it refuses (e.g. ERR_NOT_EXIST
   * for an unknown service, ERR_VERSION).
   */
  static async connect(options: IpcConnectOptions): Promise<IpcConnection> {
    const { path, service } = options;
    const pathBytes = unixPathBytes(path);
    if (pathBytes === 0 || pathBytes > UNIX_PATH_BYTES_MAX) {
      throw new IpcError(
        CsError.INVALID_PARAM,
        `${path}: socket path must be 1 to ${UNIX_PATH_BYTES_MAX} bytes, got ${pathBytes}`,
      );
    }
    if (!SERVICE_NAME_PATTERN.test(service)) {
      throw new IpcError(
        CsError.INVALID_PARAM,
        `service name ${
          JSON.stringify(service)
        } is not a lower-case name of 1 to 32 characters`,
      );
    }
    const socket = await connectSocket(path);
    try {
      const reader = new FrameReader(
        socket,
        new FrameDecoder(HANDSHAKE_BYTES_MAX),
      );
      const { hello, rest, error } = await handshake(socket, reader, options);
      reader.decoder.frameBytesMax = hello.messageBytesMax;
      const conn = new IpcConnection(socket, reader, hello, options);
      conn.#start(rest, error);
      return conn;
    } catch (error) {
      closeQuietly(socket);
      throw error;
    }
  }

  /** Requests sent and not yet answered. */
  get requestsInFlight(): number {
    return this.#pending.size;
  }

  /**
   * Sends one request and resolves with the daemon's response; any number
   * may be in flight. Rejects with `IpcError` ERR_TOO_BIG when the payload
   * cannot fit a frame, and with the close error once the connection ends.
   * Do not modify `payload` until the promise settles. It may be parts of
   * the body, in order (a header, then the application's bytes, which are
   * written from their own buffer instead of being copied behind it).
   */
  request(
    fn: number,
    body: Uint8Array | readonly Uint8Array[] = EMPTY,
  ): Promise<IpcResponse> {
    if (this.#closeInfo !== null) {
      return Promise.reject(this.#closeInfo.error);
    }
    if (!Number.isInteger(fn) || fn < 0 || fn > 0xffff_ffff) {
      return Promise.reject(
        new IpcError(CsError.INVALID_PARAM, `fn ${fn} is not a u32`),
      );
    }
    const { payload, tail } = splitBody(body);
    const size = payload.length + (tail?.length ?? 0);
    if (FRAME_HEADER_BYTES + size > this.messageBytesMax) {
      return Promise.reject(
        new IpcError(
          CsError.TOO_BIG,
          `request of ${size} bytes exceeds the daemon's limit of ${
            this.messageBytesMax - FRAME_HEADER_BYTES
          } payload bytes`,
        ),
      );
    }
    let requestId = this.#nextRequestId;
    while (this.#pending.has(requestId)) {
      requestId = requestId === 0xffff_ffff ? 1 : requestId + 1;
    }
    this.#nextRequestId = requestId === 0xffff_ffff ? 1 : requestId + 1;
    return new Promise((resolve, reject) => {
      this.#pending.set(requestId, { resolve, reject });
      this.#writer.enqueue({
        type: FrameType.REQUEST,
        requestId,
        code: fn,
        payload,
        tail,
        event: false,
      });
    });
  }

  /**
   * Events from the daemon, in order, for one consumer. Ends after
   * `close()`; throws the close error when the daemon went away. Events are
   * acknowledged as they are taken, so a consumer that stops taking them
   * (or breaks out of the loop) puts this connection in flow control.
   * Unused when `onEvent` was given.
   */
  get events(): AsyncIterable<Uint8Array> {
    return { [Symbol.asyncIterator]: () => this.#iterator() };
  }

  /**
   * Says GOODBYE, lets queued frames leave (up to 1 s) and closes. Pending
   * requests reject with `IpcClosedError` (ERR_BAD_HANDLE).
   */
  async close(): Promise<void> {
    if (this.#closeInfo === null) {
      this.#sendAck();
      this.#writer.enqueue({
        type: FrameType.GOODBYE,
        requestId: 0,
        code: 0,
        payload: EMPTY,
        event: false,
      });
      const drained = this.#writer.whenIdle();
      this.#end(
        "local",
        new IpcClosedError(
          `${this.path}: connection closed by the application`,
          CsError.BAD_HANDLE,
        ),
        drained,
      );
    }
    await this.closed;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #start(rest: Frame[], error: FrameReject | null): void {
    for (const frame of rest) {
      this.#onFrame(frame);
      if (this.#closeInfo !== null) return;
    }
    if (error !== null) {
      this.#badFrame(error);
      return;
    }
    this.#readLoop();
  }

  #badFrame(error: FrameReject): void {
    this.#end(
      "error",
      new IpcError(
        CsError.MESSAGE_ERROR,
        `${this.path}: bad frame from the daemon: ${error.reason}`,
      ),
    );
  }

  // A method, so TypeScript does not narrow the state across awaits.
  #isClosed(): boolean {
    return this.#closeInfo !== null;
  }

  async #readLoop(): Promise<void> {
    while (!this.#isClosed()) {
      let result;
      try {
        result = await this.#reader.read();
      } catch (error) {
        if (this.#isClosed()) return;
        this.#end(
          "disconnect",
          new IpcClosedError(
            `${this.path}: connection to the daemon lost: ${
              (error as Error).message
            }`,
          ),
        );
        return;
      }
      if (this.#isClosed()) return;
      if (result === null) {
        this.#end(
          "disconnect",
          new IpcClosedError(
            `${this.path}: the daemon closed the connection`,
          ),
        );
        return;
      }
      for (const frame of result.frames) {
        this.#onFrame(frame);
        if (this.#isClosed()) return;
      }
      if (result.error !== null) {
        this.#badFrame(result.error);
        return;
      }
    }
  }

  #onFrame(frame: Frame): void {
    switch (frame.type) {
      case FrameType.RESPONSE: {
        const pending = this.#pending.get(frame.requestId);
        if (pending === undefined) {
          this.#end(
            "error",
            new IpcError(
              CsError.MESSAGE_ERROR,
              `${this.path}: response to unknown request ${frame.requestId}`,
            ),
          );
          return;
        }
        this.#pending.delete(frame.requestId);
        pending.resolve({ status: frame.code, payload: frame.payload });
        return;
      }
      case FrameType.EVENT:
        this.#onEventFrame(frame.payload);
        return;
      case FrameType.ERROR:
        this.#end(
          "error",
          new IpcError(
            frame.code,
            `${this.path}: the daemon closed the connection: ${
              decodeErrorMessage(frame.payload)
            }`,
          ),
        );
        return;
      case FrameType.GOODBYE:
        this.#end(
          "goodbye",
          new IpcClosedError(
            `${this.path}: the daemon said GOODBYE (shutting down, or the service closed this connection)`,
          ),
        );
        return;
      default:
        this.#end(
          "error",
          new IpcError(
            CsError.MESSAGE_ERROR,
            `${this.path}: unexpected ${
              frameTypeName(frame.type)
            } frame from the daemon`,
          ),
        );
    }
  }

  #onEventFrame(payload: Uint8Array): void {
    const onEvent = this.#onEvent;
    if (onEvent === undefined) {
      this.#events.push(payload);
      const wake = this.#eventWaiter;
      this.#eventWaiter = null;
      wake?.();
      return;
    }
    let result: void | Promise<void>;
    try {
      result = onEvent(payload);
    } catch (error) {
      this.#consumed(payload);
      reportError(error);
      return;
    }
    if (result instanceof Promise) {
      result.then(
        () => this.#consumed(payload),
        (error) => {
          this.#consumed(payload);
          reportError(error);
        },
      );
    } else {
      this.#consumed(payload);
    }
  }

  async *#iterator(): AsyncGenerator<Uint8Array> {
    while (true) {
      if (this.#eventsHead < this.#events.length) {
        const payload = this.#events[this.#eventsHead]!;
        this.#events[this.#eventsHead++] = undefined;
        if (this.#eventsHead === this.#events.length) {
          this.#events = [];
          this.#eventsHead = 0;
        } else if (
          this.#eventsHead > 1024 && this.#eventsHead * 2 > this.#events.length
        ) {
          this.#events = this.#events.slice(this.#eventsHead);
          this.#eventsHead = 0;
        }
        this.#consumed(payload);
        yield payload;
        continue;
      }
      const info = this.#closeInfo;
      if (info !== null) {
        if (info.reason === "local") return;
        throw info.error;
      }
      await new Promise<void>((resolve) => (this.#eventWaiter = resolve));
    }
  }

  #consumed(payload: Uint8Array): void {
    if (!this.eventAcks || this.#closeInfo !== null) return;
    this.#ackEvents++;
    this.#ackBytes += FRAME_HEADER_BYTES + payload.length;
    if (this.#ackBytes >= this.#ackBytesMax) {
      this.#sendAck();
    } else if (this.#ackTimer === undefined) {
      // Batch small acks: one frame per few milliseconds at most.
      this.#ackTimer = setTimeout(() => {
        this.#ackTimer = undefined;
        this.#sendAck();
      }, ACK_DELAY_MS);
    }
  }

  #sendAck(): void {
    clearTimeout(this.#ackTimer);
    this.#ackTimer = undefined;
    if (this.#ackEvents === 0 || this.#closeInfo !== null) return;
    this.#writer.enqueue({
      type: FrameType.EVENT_ACK,
      requestId: 0,
      code: 0,
      payload: encodeEventAck({
        events: this.#ackEvents,
        bytes: this.#ackBytes,
      }),
      event: false,
    });
    this.#ackEvents = 0;
    this.#ackBytes = 0;
  }

  /** Ends the connection once: rejects pending requests, wakes the reader. */
  #end(
    reason: IpcCloseInfo["reason"],
    error: IpcError,
    drained: Promise<void> = Promise.resolve(),
  ): void {
    if (this.#closeInfo !== null) return;
    const info: IpcCloseInfo = { reason, error };
    this.#closeInfo = info;
    clearTimeout(this.#ackTimer);
    this.#ackTimer = undefined;
    const pending = this.#pending;
    this.#pending = new Map();
    for (const p of pending.values()) p.reject(error);
    const wake = this.#eventWaiter;
    this.#eventWaiter = null;
    wake?.();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, CLOSE_DRAIN_MS);
    });
    Promise.race([drained, deadline]).then(() => {
      clearTimeout(timer);
      this.#writer.close();
      closeQuietly(this.#socket);
      this.#resolveClosed(info);
    });
  }
}

async function connectSocket(path: string): Promise<Deno.UnixConn> {
  try {
    return await Deno.connect({ transport: "unix", path });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new IpcNotRunningError(path, "missing");
    }
    if (error instanceof Deno.errors.ConnectionRefused) {
      throw new IpcNotRunningError(path, "refused");
    }
    if (error instanceof Deno.errors.PermissionDenied) {
      throw new IpcPermissionError(
        path,
        "permission denied by the socket file's mode or group; run as a member of the daemon's IPC group",
      );
    }
    if (error instanceof Deno.errors.NotCapable) {
      throw new IpcPermissionError(
        path,
        `Deno permission missing: run with --allow-read=${path} --allow-write=${path}`,
      );
    }
    throw new IpcError(
      CsError.LIBRARY,
      `${path}: cannot connect: ${(error as Error).message}`,
    );
  }
}

/** Sends HELLO and waits for HELLO_OK; frames after it are returned too. */
async function handshake(
  socket: Deno.UnixConn,
  reader: FrameReader,
  options: IpcConnectOptions,
): Promise<{ hello: HelloOk; rest: Frame[]; error: FrameReject | null }> {
  const { path, service } = options;
  const handshakeMsMax = options.handshakeMsMax ?? 5_000;
  const writer = new FrameWriter(socket, {
    written: () => {},
    failed: () => {}, // the read below reports the broken socket
  });
  writer.enqueue({
    type: FrameType.HELLO,
    requestId: 0,
    code: 0,
    payload: encodeHello({
      version: IPC_PROTOCOL_VERSION,
      features: options.eventAcks === false ? 0 : Feature.EVENT_ACKS,
      pid: options.pid ?? Deno.pid,
      service,
    }),
    event: false,
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    closeQuietly(socket);
  }, handshakeMsMax);
  try {
    await writer.whenIdle();
    writer.close();
    while (true) {
      let result;
      try {
        result = await reader.read();
      } catch (error) {
        if (timedOut) {
          throw new IpcError(
            CsError.TIMEOUT,
            `${path}: no answer to HELLO within ${handshakeMsMax} ms`,
          );
        }
        if (isDisconnectError(error)) result = null;
        else throw error;
      }
      if (result === null) {
        throw new IpcClosedError(
          `${path}: the daemon closed the connection during the handshake`,
        );
      }
      const [first, ...rest] = result.frames;
      if (first !== undefined) {
        const hello = acceptHello(path, service, first);
        return { hello, rest, error: result.error };
      }
      if (result.error !== null) {
        throw new IpcError(
          CsError.MESSAGE_ERROR,
          `${path}: bad handshake frame from the daemon: ${result.error.reason}`,
        );
      }
    }
  } finally {
    clearTimeout(timer);
  }
}

function acceptHello(path: string, service: string, frame: Frame): HelloOk {
  if (frame.type === FrameType.ERROR) {
    throw new IpcError(
      frame.code,
      `${path}: the daemon refused service ${JSON.stringify(service)}: ${
        decodeErrorMessage(frame.payload)
      }`,
    );
  }
  if (frame.type !== FrameType.HELLO_OK) {
    throw new IpcError(
      CsError.MESSAGE_ERROR,
      `${path}: expected HELLO_OK from the daemon, got ${
        frameTypeName(frame.type)
      }`,
    );
  }
  const hello = decodeHelloOk(frame.payload);
  if (!hello.ok) {
    throw new IpcError(hello.code, `${path}: ${hello.reason}`);
  }
  if (hello.value.version !== IPC_PROTOCOL_VERSION) {
    throw new IpcError(
      CsError.VERSION,
      `${path}: the daemon answered protocol version ${hello.value.version}, expected ${IPC_PROTOCOL_VERSION}`,
    );
  }
  return hello.value;
}

function closeQuietly(socket: Deno.Conn): void {
  try {
    socket.close();
  } catch (error) {
    // Closing twice (after a timeout, or a runtime close) is fine.
    if (!(error instanceof Deno.errors.BadResource)) throw error;
  }
}
