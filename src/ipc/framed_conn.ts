/**
 * Framed reading and batched writing on one stream socket, shared by the IPC
 * server's connections and the client (an edge: async I/O lives here).
 *
 * Writes are coalesced: frames queued during one turn of the event loop, and
 * all frames queued while a write is in flight, leave in one `write` call
 * (DENO_NOTES.md section 4: 427k msg/s with one write per frame, 2.5M with 64
 * frames per write). Large payloads are written from the caller's buffer
 * without a copy. Reads land in a bump-allocated chunk that is never
 * overwritten, so decoded payloads can be views into it.
 */
import { assert } from "../lib/assert.ts";
import {
  type DecodeResult,
  encodeHeader,
  type Frame,
  FRAME_HEADER_BYTES,
  FrameDecoder,
  writeFrame,
} from "./codec.ts";
import { gather } from "../lib/gather.ts";

/** Size of one receive chunk. */
export const READ_CHUNK_BYTES = 64 * 1024;
/** A new chunk is taken when less than this is left in the current one. */
const READ_CHUNK_REFILL_BYTES = 4 * 1024;
/** Bodies missing at least this much are read straight into their buffer. */
const DIRECT_READ_BYTES_MIN = 32 * 1024;
/** Most bytes copied into one coalesced write. */
export const WRITE_BATCH_BYTES_MAX = 256 * 1024;
/** Payloads this large are written from their own buffer, not copied. */
const DIRECT_WRITE_PAYLOAD_BYTES = 64 * 1024;
/**
 * Batches up to this size are copied into one buffer the writer keeps and
 * reuses: a new buffer per write was the daemon's main source of garbage
 * (every delivery passes through one), and a connection holds no more than
 * this while idle.
 */
const REUSED_BATCH_BYTES = 64 * 1024;

/** A frame waiting to be written; `event` marks EVENT frames for accounting. */
export interface OutFrame extends Frame {
  event: boolean;
  /**
   * More body after `payload`, from its own buffer: a callback's header and
   * the application's message travel apart, and are copied at most once,
   * into the write batch (or not at all when large).
   */
  tail?: Uint8Array;
}

/** Callbacks of a `FrameWriter`. */
export interface FrameWriterHooks {
  /** Frames left the queue and reached the socket. */
  written(frames: number, bytes: number, eventBytes: number): void;
  /** A write failed: the peer is gone. Not called after `close()`. */
  failed(error: unknown): void;
}

/**
 * A frame body given whole or as parts, as `OutFrame` carries it: the last
 * part (the application's bytes) is the tail, written from its own buffer;
 * the parts before it, small headers, are joined.
 */
export function splitBody(
  body: Uint8Array | readonly Uint8Array[],
): { payload: Uint8Array; tail?: Uint8Array } {
  if (body instanceof Uint8Array) return { payload: body };
  if (body.length <= 1) return { payload: body[0] ?? new Uint8Array(0) };
  return { payload: gather(body.slice(0, -1)), tail: body[body.length - 1] };
}

/** Total size of `frame` on the wire. */
export function frameBytes(frame: Frame & { tail?: Uint8Array }): number {
  return FRAME_HEADER_BYTES + frame.payload.length + (frame.tail?.length ?? 0);
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let at = 0;
  while (at < bytes.length) {
    at += await conn.write(at === 0 ? bytes : bytes.subarray(at));
  }
}

/** Queues frames and writes them in batches, one writer loop at a time. */
export class FrameWriter {
  #conn: Deno.Conn;
  #hooks: FrameWriterHooks;
  #queue: (OutFrame | undefined)[] = [];
  #head = 0;
  #running = false;
  #closed = false;
  #idleWaiters: (() => void)[] = [];
  /** Reused for batches up to REUSED_BATCH_BYTES; taken on first use. */
  #batch: Uint8Array | null = null;
  /** Bytes written to the socket so far. */
  bytesOut = 0;

  constructor(conn: Deno.Conn, hooks: FrameWriterHooks) {
    this.#conn = conn;
    this.#hooks = hooks;
  }

  /** True when nothing is queued or being written. */
  get idle(): boolean {
    return !this.#running && this.#head === this.#queue.length;
  }

  /**
   * Queues one frame and returns its size on the wire. The write starts on
   * a microtask, so every frame queued in the same turn shares it.
   */
  enqueue(frame: OutFrame): number {
    assert(!this.#closed, "enqueue on a closed FrameWriter");
    this.#queue.push(frame);
    if (!this.#running) {
      this.#running = true;
      queueMicrotask(() => this.#run());
    }
    return frameBytes(frame);
  }

  /** Resolves once the queue is empty and no write is running (or closed). */
  whenIdle(): Promise<void> {
    if (this.idle || this.#closed) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Stops writing and forgets the queue. Does not close the socket. */
  close(): void {
    this.#closed = true;
    this.#queue = [];
    this.#head = 0;
    this.#wakeIdle();
  }

  async #run(): Promise<void> {
    try {
      while (!this.#closed && this.#head < this.#queue.length) {
        await this.#writeBatch();
      }
    } catch (error) {
      const wasClosed = this.#closed;
      this.close(); // the socket is dead: nothing queued can leave any more
      if (!wasClosed) this.#hooks.failed(error);
    } finally {
      this.#running = false;
      if (this.idle || this.#closed) this.#wakeIdle();
    }
  }

  async #writeBatch(): Promise<void> {
    const queue = this.#queue;
    const start = this.#head;
    const first = queue[start]!;
    let end = start;
    let bytes = 0;
    let eventBytes = 0;
    const firstBody = frameBytes(first) - FRAME_HEADER_BYTES;
    if (firstBody >= DIRECT_WRITE_PAYLOAD_BYTES) {
      // One big frame: the header alone (with a small payload when a tail
      // follows), then the big part from its own buffer. Two syscalls cost
      // less than copying a megabyte.
      const tail = first.tail;
      if (tail === undefined) {
        await writeAll(this.#conn, encodeHeader(first));
        await writeAll(this.#conn, first.payload);
      } else {
        const head = new Uint8Array(FRAME_HEADER_BYTES + first.payload.length);
        head.set(encodeHeader(first, firstBody));
        head.set(first.payload, FRAME_HEADER_BYTES);
        await writeAll(this.#conn, head);
        await writeAll(this.#conn, tail);
      }
      end = start + 1;
      bytes = frameBytes(first);
      if (first.event) eventBytes = bytes;
    } else {
      while (end < queue.length) {
        const frame = queue[end]!;
        const size = frameBytes(frame);
        if (size - FRAME_HEADER_BYTES >= DIRECT_WRITE_PAYLOAD_BYTES) break;
        if (bytes + size > WRITE_BATCH_BYTES_MAX) break;
        bytes += size;
        if (frame.event) eventBytes += size;
        end++;
      }
      // Safe to reuse: the write below is awaited before the next batch.
      let batch: Uint8Array;
      if (bytes <= REUSED_BATCH_BYTES) {
        this.#batch ??= new Uint8Array(REUSED_BATCH_BYTES);
        batch = this.#batch.subarray(0, bytes);
      } else {
        batch = new Uint8Array(bytes);
      }
      let at = 0;
      for (let i = start; i < end; i++) {
        at = writeFrame(batch, at, queue[i]!, queue[i]!.tail);
      }
      assert(at === bytes, "batch size mismatch");
      await writeAll(this.#conn, batch);
    }
    if (this.#closed || queue !== this.#queue) return;
    for (let i = start; i < end; i++) queue[i] = undefined;
    this.#head = end;
    if (this.#head === queue.length) {
      this.#queue = [];
      this.#head = 0;
    } else if (this.#head > 4096 && this.#head * 2 > queue.length) {
      this.#queue = queue.slice(this.#head);
      this.#head = 0;
    }
    this.bytesOut += bytes;
    this.#hooks.written(end - start, bytes, eventBytes);
  }

  #wakeIdle(): void {
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const wake of waiters) wake();
  }
}

/** Reads a socket into a `FrameDecoder`, one `read` call per `read()`. */
export class FrameReader {
  #conn: Deno.Conn;
  readonly decoder: FrameDecoder;
  #chunk = new Uint8Array(READ_CHUNK_BYTES);
  #offset = 0;
  /** Bytes read from the socket so far. */
  bytesIn = 0;

  constructor(conn: Deno.Conn, decoder: FrameDecoder) {
    this.#conn = conn;
    this.decoder = decoder;
  }

  /** Reads once and decodes; null at end of stream. Read errors propagate. */
  async read(): Promise<DecodeResult | null> {
    const direct = this.decoder.directTarget(DIRECT_READ_BYTES_MIN);
    if (direct !== null) {
      const count = await this.#conn.read(direct);
      if (count === null) return null;
      this.bytesIn += count;
      return this.decoder.commitDirect(count);
    }
    if (READ_CHUNK_BYTES - this.#offset < READ_CHUNK_REFILL_BYTES) {
      // Earlier payload views keep the old chunk alive; never reuse it.
      this.#chunk = new Uint8Array(READ_CHUNK_BYTES);
      this.#offset = 0;
    }
    const target = this.#chunk.subarray(this.#offset);
    const count = await this.#conn.read(target);
    if (count === null) return null;
    this.bytesIn += count;
    this.#offset += count;
    return this.decoder.push(target.subarray(0, count));
  }
}

/** True for the errors a socket gives when the peer vanished or we closed it. */
export function isDisconnectError(error: unknown): boolean {
  return error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.ConnectionAborted ||
    error instanceof Deno.errors.NotConnected ||
    error instanceof Deno.errors.BadResource ||
    error instanceof Deno.errors.Interrupted ||
    error instanceof Deno.errors.UnexpectedEof;
}
