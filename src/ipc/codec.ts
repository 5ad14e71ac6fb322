/**
 * The IPC wire codec (PROTOCOL.md beside this file is the reference): frame
 * header, the incremental frame decoder and the bodies of HELLO, HELLO_OK,
 * ERROR and EVENT_ACK. Pure: no I/O, and no input bytes ever make it throw.
 * Malformed input becomes a `FrameReject` (STYLE.md section 6, network input).
 */
import { assert } from "../lib/assert.ts";
import { CsError, type CsErrorCode } from "./cs_error.ts";

/** "DSYN" read as a little-endian u32: the first four bytes of every HELLO body. */
export const IPC_MAGIC = 0x4e59_5344;
/** The protocol version this code speaks; the server accepts exactly this one. */
export const IPC_PROTOCOL_VERSION = 1;
/** Bytes of the fixed header that starts every frame. */
export const FRAME_HEADER_BYTES = 16;
/**
 * Default largest frame, header included, in either direction: Corosync's 1 MiB
 * message plus room for the engines' own headers.
 */
export const MESSAGE_BYTES_MAX_DEFAULT = 1024 * 1024 + 64 * 1024;
/**
 * Largest frame accepted before the handshake completes. HELLO, HELLO_OK and
 * ERROR all fit, so a garbage length field before the handshake is refused
 * at once instead of being waited for.
 */
export const HANDSHAKE_BYTES_MAX = 1024;
/** Longest ERROR message, in UTF-8 bytes; longer ones are cut. */
export const ERROR_MESSAGE_BYTES_MAX = 512;
/** Service names: lower-case identifier, 1 to 32 bytes ("cpg", "votequorum"). */
export const SERVICE_NAME_PATTERN = /^[a-z][a-z0-9_]{0,31}$/;

/** Frame types (header offset 4). On the wire forever, never reused. */
export const FrameType = {
  HELLO: 1,
  HELLO_OK: 2,
  ERROR: 3,
  REQUEST: 4,
  RESPONSE: 5,
  EVENT: 6,
  EVENT_ACK: 7,
  GOODBYE: 8,
} as const;

/** One frame type number. */
export type FrameTypeCode = (typeof FrameType)[keyof typeof FrameType];

const FRAME_TYPE_MAX = FrameType.GOODBYE;

/** Feature bits a client asks for in HELLO and the server grants in HELLO_OK. */
export const Feature = {
  /** The client sends EVENT_ACK as its application consumes events. */
  EVENT_ACKS: 0x0001,
} as const;

/** Every feature bit this code understands. */
export const FEATURES_KNOWN = Feature.EVENT_ACKS;

const EMPTY = new Uint8Array(0);

/** The fixed 16-byte header, decoded. */
export interface FrameHeader {
  /** Whole frame, header included. */
  length: number;
  type: number;
  flags: number;
  requestId: number;
  /** REQUEST: function number. RESPONSE: status. ERROR: error code. Else 0. */
  code: number;
}

/** A whole frame. `payload` may be a view into a larger receive buffer. */
export interface Frame {
  type: FrameTypeCode;
  requestId: number;
  code: number;
  payload: Uint8Array;
}

/** Why a byte stream was refused; the stream is unusable after it. */
export interface FrameReject {
  /** What to put in the ERROR frame sent back. */
  code: CsErrorCode;
  reason: string;
  /** Request id of the offending frame when its header was readable, else 0. */
  requestId: number;
}

/** What one `FrameDecoder.push` produced: frames first, then maybe an error. */
export interface DecodeResult {
  frames: Frame[];
  error: FrameReject | null;
}

/** Result of decoding one body: a value or the reason it was refused. */
export type Decoded<T> =
  | { ok: true; value: T }
  | { ok: false; code: CsErrorCode; reason: string };

/** Reads a little-endian u32. The caller guarantees four bytes at `at`. */
export function readU32(bytes: Uint8Array, at: number): number {
  return (bytes[at] | (bytes[at + 1] << 8) | (bytes[at + 2] << 16) |
    (bytes[at + 3] << 24)) >>> 0;
}

/** Reads a little-endian u16. The caller guarantees two bytes at `at`. */
export function readU16(bytes: Uint8Array, at: number): number {
  return bytes[at] | (bytes[at + 1] << 8);
}

/** Writes a little-endian u32. */
export function writeU32(bytes: Uint8Array, at: number, value: number): void {
  bytes[at] = value;
  bytes[at + 1] = value >>> 8;
  bytes[at + 2] = value >>> 16;
  bytes[at + 3] = value >>> 24;
}

/** Writes a little-endian u16. */
export function writeU16(bytes: Uint8Array, at: number, value: number): void {
  bytes[at] = value;
  bytes[at + 1] = value >>> 8;
}

/** Decodes the header at `at`; the caller guarantees 16 bytes there. */
export function readHeader(bytes: Uint8Array, at: number): FrameHeader {
  return {
    length: readU32(bytes, at),
    type: readU16(bytes, at + 4),
    flags: readU16(bytes, at + 6),
    requestId: readU32(bytes, at + 8),
    code: readU32(bytes, at + 12),
  };
}

function isU32(value: number): boolean {
  return Number.isInteger(value) && value >= 0 && value <= 0xffff_ffff;
}

/**
 * Writes one frame (header and payload) into `target` at `at` and returns the
 * offset just past it. Flags are always 0 in protocol version 1.
 */
export function writeFrame(
  target: Uint8Array,
  at: number,
  frame: Frame,
  tail?: Uint8Array,
): number {
  const length = FRAME_HEADER_BYTES + frame.payload.length +
    (tail?.length ?? 0);
  assert(isU32(frame.requestId), "frame requestId is not a u32");
  assert(isU32(frame.code), "frame code is not a u32");
  assert(at + length <= target.length, "frame does not fit its target");
  writeU32(target, at, length);
  writeU16(target, at + 4, frame.type);
  writeU16(target, at + 6, 0);
  writeU32(target, at + 8, frame.requestId);
  writeU32(target, at + 12, frame.code);
  target.set(frame.payload, at + FRAME_HEADER_BYTES);
  if (tail !== undefined) {
    target.set(tail, at + FRAME_HEADER_BYTES + frame.payload.length);
  }
  return at + length;
}

/** Encodes one frame into a new buffer of exactly its size. */
export function encodeFrame(frame: Frame): Uint8Array {
  const bytes = new Uint8Array(FRAME_HEADER_BYTES + frame.payload.length);
  writeFrame(bytes, 0, frame);
  return bytes;
}

/**
 * Encodes only the 16-byte header of `frame` (the payload goes separately),
 * for a body of `bodyBytes` (the payload's length unless more follows it).
 */
export function encodeHeader(
  frame: Frame,
  bodyBytes = frame.payload.length,
): Uint8Array {
  const bytes = new Uint8Array(FRAME_HEADER_BYTES);
  writeU32(bytes, 0, FRAME_HEADER_BYTES + bodyBytes);
  writeU16(bytes, 4, frame.type);
  writeU32(bytes, 8, frame.requestId);
  writeU32(bytes, 12, frame.code);
  return bytes;
}

/**
 * Splits a byte stream into frames. Feed it whatever each socket read
 * returned; it keeps partial headers and bodies across calls. Frames that
 * lie whole inside one chunk are returned as views into it (no copy), so a
 * chunk must not be overwritten after it was pushed. A length field is
 * checked before anything is allocated for it. After the first error the
 * decoder stays failed and returns that error again.
 */
export class FrameDecoder {
  #frameBytesMax: number;
  #head = new Uint8Array(FRAME_HEADER_BYTES);
  #headFill = 0;
  #pending: FrameHeader | null = null;
  #body: Uint8Array = EMPTY;
  #bodyFill = 0;
  #error: FrameReject | null = null;

  /** `frameBytesMax`: the largest frame accepted, header included. */
  constructor(frameBytesMax: number) {
    assert(frameBytesMax >= FRAME_HEADER_BYTES, "frameBytesMax below header");
    this.#frameBytesMax = frameBytesMax;
  }

  /** Raises or lowers the limit (after the handshake). */
  set frameBytesMax(value: number) {
    assert(value >= FRAME_HEADER_BYTES, "frameBytesMax below header");
    this.#frameBytesMax = value;
  }

  /** The current limit on a frame, header included. */
  get frameBytesMax(): number {
    return this.#frameBytesMax;
  }

  /** Bytes of an incomplete frame held: non-zero at EOF means truncated. */
  get bufferedBytes(): number {
    return this.#pending !== null
      ? FRAME_HEADER_BYTES + this.#bodyFill
      : this.#headFill;
  }

  /** Length of the incomplete frame being assembled, or 0. */
  get pendingFrameBytes(): number {
    return this.#pending?.length ?? 0;
  }

  /** The error that stopped this decoder, if any. */
  get error(): FrameReject | null {
    return this.#error;
  }

  /** Consumes one chunk of the stream. */
  push(chunk: Uint8Array): DecodeResult {
    if (this.#error !== null) return { frames: [], error: this.#error };
    const frames: Frame[] = [];
    const end = chunk.length;
    let at = 0;
    while (at < end) {
      if (this.#pending !== null) {
        const take = Math.min(this.#body.length - this.#bodyFill, end - at);
        this.#body.set(chunk.subarray(at, at + take), this.#bodyFill);
        this.#bodyFill += take;
        at += take;
        if (this.#bodyFill === this.#body.length) frames.push(this.#finish());
        continue;
      }
      if (this.#headFill === 0 && end - at >= FRAME_HEADER_BYTES) {
        // Fast path: the header lies whole in this chunk.
        const header = readHeader(chunk, at);
        const reject = this.#check(header);
        if (reject !== null) return this.#fail(frames, reject);
        if (end - at >= header.length) {
          frames.push({
            type: header.type as FrameTypeCode,
            requestId: header.requestId,
            code: header.code,
            payload: chunk.subarray(
              at + FRAME_HEADER_BYTES,
              at + header.length,
            ),
          });
          at += header.length;
        } else {
          this.#start(header);
          at += FRAME_HEADER_BYTES;
        }
        continue;
      }
      const take = Math.min(FRAME_HEADER_BYTES - this.#headFill, end - at);
      this.#head.set(chunk.subarray(at, at + take), this.#headFill);
      this.#headFill += take;
      at += take;
      if (this.#headFill < FRAME_HEADER_BYTES) continue;
      this.#headFill = 0;
      const header = readHeader(this.#head, 0);
      const reject = this.#check(header);
      if (reject !== null) return this.#fail(frames, reject);
      this.#start(header);
      if (header.length === FRAME_HEADER_BYTES) frames.push(this.#finish());
    }
    return { frames, error: null };
  }

  /**
   * Where the next read may go directly when a large body is incomplete
   * (`minBytes` or more still missing), so big messages are not copied
   * twice; null otherwise. Report what was read with `commitDirect`.
   */
  directTarget(minBytes: number): Uint8Array | null {
    if (this.#pending === null || this.#error !== null) return null;
    if (this.#body.length - this.#bodyFill < minBytes) return null;
    return this.#body.subarray(this.#bodyFill);
  }

  /** Accounts `count` bytes read into the last `directTarget`. */
  commitDirect(count: number): DecodeResult {
    assert(this.#pending !== null, "commitDirect without a pending frame");
    assert(count >= 0 && this.#bodyFill + count <= this.#body.length);
    this.#bodyFill += count;
    if (this.#bodyFill < this.#body.length) return { frames: [], error: null };
    return { frames: [this.#finish()], error: null };
  }

  #check(header: FrameHeader): FrameReject | null {
    const requestId = header.requestId;
    if (header.length < FRAME_HEADER_BYTES) {
      return {
        code: CsError.MESSAGE_ERROR,
        reason: `frame length ${header.length} is below the 16-byte header`,
        requestId,
      };
    }
    if (header.length > this.#frameBytesMax) {
      return {
        code: CsError.TOO_BIG,
        reason:
          `frame length ${header.length} exceeds the limit of ${this.#frameBytesMax} bytes`,
        requestId,
      };
    }
    if (header.type < 1 || header.type > FRAME_TYPE_MAX) {
      return {
        code: CsError.MESSAGE_ERROR,
        reason: `unknown frame type ${header.type}`,
        requestId,
      };
    }
    if (header.flags !== 0) {
      return {
        code: CsError.BAD_FLAGS,
        reason: `frame flags must be 0, got 0x${header.flags.toString(16)}`,
        requestId,
      };
    }
    return null;
  }

  #start(header: FrameHeader): void {
    this.#pending = header;
    this.#body = header.length === FRAME_HEADER_BYTES
      ? EMPTY
      : new Uint8Array(header.length - FRAME_HEADER_BYTES);
    this.#bodyFill = 0;
  }

  #finish(): Frame {
    const header = this.#pending!;
    const frame: Frame = {
      type: header.type as FrameTypeCode,
      requestId: header.requestId,
      code: header.code,
      payload: this.#body,
    };
    this.#pending = null;
    this.#body = EMPTY;
    this.#bodyFill = 0;
    return frame;
  }

  #fail(frames: Frame[], reject: FrameReject): DecodeResult {
    this.#error = reject;
    this.#pending = null;
    this.#body = EMPTY;
    this.#headFill = 0;
    return { frames, error: reject };
  }
}

// ---------------------------------------------------------------- bodies

/** HELLO body: what a client says first. */
export interface Hello {
  version: number;
  /** Feature bits asked for (`Feature`). */
  features: number;
  pid: number;
  service: string;
}

/** Bytes of the HELLO body before the service name. */
export const HELLO_FIXED_BYTES = 12;

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder("utf-8", { fatal: true });
const utf8Lenient = new TextDecoder("utf-8");

/** Encodes a HELLO body. */
export function encodeHello(hello: Hello): Uint8Array {
  assert(SERVICE_NAME_PATTERN.test(hello.service), "bad service name");
  assert(hello.version >= 0 && hello.version <= 0xffff, "version not u16");
  assert(hello.features >= 0 && hello.features <= 0xffff, "features not u16");
  assert(isU32(hello.pid), "pid not u32");
  const name = utf8.encode(hello.service);
  const bytes = new Uint8Array(HELLO_FIXED_BYTES + name.length);
  writeU32(bytes, 0, IPC_MAGIC);
  writeU16(bytes, 4, hello.version);
  writeU16(bytes, 6, hello.features);
  writeU32(bytes, 8, hello.pid);
  bytes.set(name, HELLO_FIXED_BYTES);
  return bytes;
}

/**
 * Decodes a HELLO body. The version is returned as sent: refusing an
 * unsupported one (with ERR_VERSION) is the server's call.
 */
export function decodeHello(payload: Uint8Array): Decoded<Hello> {
  if (payload.length < HELLO_FIXED_BYTES + 1) {
    return {
      ok: false,
      code: CsError.MESSAGE_ERROR,
      reason: `HELLO body of ${payload.length} bytes is too short`,
    };
  }
  if (readU32(payload, 0) !== IPC_MAGIC) {
    return {
      ok: false,
      code: CsError.MESSAGE_ERROR,
      reason: "HELLO does not start with the DSYN magic",
    };
  }
  let service: string;
  try {
    service = utf8Strict.decode(payload.subarray(HELLO_FIXED_BYTES));
  } catch {
    // A fatal TextDecoder throws TypeError on invalid UTF-8: network input.
    return {
      ok: false,
      code: CsError.INVALID_PARAM,
      reason: "HELLO service name is not valid UTF-8",
    };
  }
  if (!SERVICE_NAME_PATTERN.test(service)) {
    return {
      ok: false,
      code: CsError.INVALID_PARAM,
      reason: `HELLO service name ${
        JSON.stringify(service.slice(0, 40))
      } is not a lower-case name of 1 to 32 characters`,
    };
  }
  return {
    ok: true,
    value: {
      version: readU16(payload, 4),
      features: readU16(payload, 6),
      pid: readU32(payload, 8),
      service,
    },
  };
}

/** HELLO_OK body: the server's acceptance. */
export interface HelloOk {
  connectionId: number;
  nodeId: number;
  /** Largest frame, header included, either side may send from now on. */
  messageBytesMax: number;
  version: number;
  /** Feature bits granted: a subset of those asked for. */
  features: number;
  /**
   * Pending outgoing bytes above which the server puts this connection in
   * flow control; a client acknowledges events well before it.
   */
  eventWindowBytes: number;
}

/** Bytes of a version-1 HELLO_OK body; later versions may append fields. */
export const HELLO_OK_BYTES = 20;

/** Encodes a HELLO_OK body. */
export function encodeHelloOk(ok: HelloOk): Uint8Array {
  const bytes = new Uint8Array(HELLO_OK_BYTES);
  writeU32(bytes, 0, ok.connectionId);
  writeU32(bytes, 4, ok.nodeId);
  writeU32(bytes, 8, ok.messageBytesMax);
  writeU16(bytes, 12, ok.version);
  writeU16(bytes, 14, ok.features);
  writeU32(bytes, 16, ok.eventWindowBytes);
  return bytes;
}

/** Decodes a HELLO_OK body; trailing bytes from a later version are ignored. */
export function decodeHelloOk(payload: Uint8Array): Decoded<HelloOk> {
  if (payload.length < HELLO_OK_BYTES) {
    return {
      ok: false,
      code: CsError.MESSAGE_ERROR,
      reason: `HELLO_OK body of ${payload.length} bytes is too short`,
    };
  }
  const value: HelloOk = {
    connectionId: readU32(payload, 0),
    nodeId: readU32(payload, 4),
    messageBytesMax: readU32(payload, 8),
    version: readU16(payload, 12),
    features: readU16(payload, 14),
    eventWindowBytes: readU32(payload, 16),
  };
  if (value.messageBytesMax < FRAME_HEADER_BYTES) {
    return {
      ok: false,
      code: CsError.MESSAGE_ERROR,
      reason:
        `HELLO_OK message size ${value.messageBytesMax} is below a header`,
    };
  }
  return { ok: true, value };
}

/** Encodes an ERROR body: the message as UTF-8, cut to the byte limit. */
export function encodeErrorMessage(message: string): Uint8Array {
  const bytes = utf8.encode(message);
  if (bytes.length <= ERROR_MESSAGE_BYTES_MAX) return bytes;
  // Cut on a character boundary: back off UTF-8 continuation bytes.
  let end = ERROR_MESSAGE_BYTES_MAX;
  while (end > 0 && (bytes[end] & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end);
}

/** Decodes an ERROR body leniently: it is only ever shown to a person. */
export function decodeErrorMessage(payload: Uint8Array): string {
  return utf8Lenient.decode(
    payload.subarray(0, Math.min(payload.length, ERROR_MESSAGE_BYTES_MAX)),
  );
}

/** EVENT_ACK body: events (and their frame bytes) the application consumed. */
export interface EventAck {
  events: number;
  /** Sum of the consumed EVENT frames' lengths, headers included. */
  bytes: number;
}

/** Bytes of an EVENT_ACK body. */
export const EVENT_ACK_BYTES = 8;

/** Encodes an EVENT_ACK body. */
export function encodeEventAck(ack: EventAck): Uint8Array {
  assert(isU32(ack.events) && isU32(ack.bytes), "event ack not u32");
  const bytes = new Uint8Array(EVENT_ACK_BYTES);
  writeU32(bytes, 0, ack.events);
  writeU32(bytes, 4, ack.bytes);
  return bytes;
}

/** Decodes an EVENT_ACK body, which must be exactly 8 bytes. */
export function decodeEventAck(payload: Uint8Array): Decoded<EventAck> {
  if (payload.length !== EVENT_ACK_BYTES) {
    return {
      ok: false,
      code: CsError.MESSAGE_ERROR,
      reason: `EVENT_ACK body must be 8 bytes, got ${payload.length}`,
    };
  }
  const events = readU32(payload, 0);
  const bytes = readU32(payload, 4);
  if (bytes < events * FRAME_HEADER_BYTES) {
    return {
      ok: false,
      code: CsError.MESSAGE_ERROR,
      reason: `EVENT_ACK of ${events} events cannot be only ${bytes} bytes`,
    };
  }
  return { ok: true, value: { events, bytes } };
}

/** Name of a frame type for logs and errors. */
export function frameTypeName(type: number): string {
  for (const [name, code] of Object.entries(FrameType)) {
    if (code === type) return name;
  }
  return `type ${type}`;
}
