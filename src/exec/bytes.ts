/**
 * Little-endian byte writing and bounds-checked reading for the executive's
 * and the engines' messages. Readers never throw: every read past the end
 * or of a malformed field marks the reader failed and returns a zero value,
 * so a decoder checks `ok` once at the end (STYLE.md section 6, frames are
 * rejected, never thrown on).
 *
 * @module
 */
import { assert } from "../lib/assert.ts";
import { smallBytes } from "../lib/small_bytes.ts";
import { utf8DecodeStrict, utf8Encode, utf8Length } from "../lib/utf8.ts";
import type { Decoded, RejectReason, RingId } from "../totem/types.ts";

/** Largest integer a u64 field may carry: JS numbers stay exact below 2^53. */
export const U64_SAFE_MAX = Number.MAX_SAFE_INTEGER;

/** Appends little-endian fields to a growing buffer. */
export class ByteWriter {
  #buf: Uint8Array;
  #view: DataView;
  #len = 0;

  /** `initial`: a starting size, or the buffer to start writing into. */
  constructor(initial: number | Uint8Array = 64) {
    this.#buf = typeof initial === "number"
      ? new Uint8Array(Math.max(8, initial))
      : initial;
    this.#view = new DataView(
      this.#buf.buffer,
      this.#buf.byteOffset,
      this.#buf.byteLength,
    );
  }

  /**
   * A writer for a header that is copied on and dropped at once (into a
   * frame or an IPC write batch): its buffer is a view of a shared chunk
   * (`smallBytes`), which saves an allocation per message. Size it exactly:
   * growing moves it to a buffer of its own.
   */
  static transient(bytes: number): ByteWriter {
    return new ByteWriter(smallBytes(Math.max(8, bytes)));
  }

  /** Bytes written so far. */
  get length(): number {
    return this.#len;
  }

  #room(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.#len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
    this.#view = new DataView(next.buffer);
  }

  /** One unsigned byte. */
  u8(v: number): this {
    assert(Number.isInteger(v) && v >= 0 && v <= 0xff, `u8 out of range: ${v}`);
    this.#room(1);
    this.#buf[this.#len++] = v;
    return this;
  }

  /** Unsigned 16-bit. */
  u16(v: number): this {
    assert(
      Number.isInteger(v) && v >= 0 && v <= 0xffff,
      `u16 out of range: ${v}`,
    );
    this.#room(2);
    this.#view.setUint16(this.#len, v, true);
    this.#len += 2;
    return this;
  }

  /** Unsigned 32-bit. */
  u32(v: number): this {
    assert(
      Number.isInteger(v) && v >= 0 && v <= 0xffff_ffff,
      `u32 out of range: ${v}`,
    );
    this.#room(4);
    this.#view.setUint32(this.#len, v, true);
    this.#len += 4;
    return this;
  }

  /** Unsigned 64-bit, exact up to 2^53 - 1. */
  u64(v: number): this {
    assert(
      Number.isInteger(v) && v >= 0 && v <= U64_SAFE_MAX,
      `u64 out of range: ${v}`,
    );
    this.u32(v % 0x1_0000_0000);
    this.u32(Math.floor(v / 0x1_0000_0000));
    return this;
  }

  /** Raw bytes, no length prefix. */
  bytes(b: Uint8Array): this {
    this.#room(b.length);
    this.#buf.set(b, this.#len);
    this.#len += b.length;
    return this;
  }

  /** `u16 length | UTF-8 bytes`; the caller checked the length bound. */
  name(s: string): this {
    const b = utf8Encode(s);
    this.u16(b.length);
    return this.bytes(b);
  }

  /** `u32 length | bytes`. */
  blob(b: Uint8Array): this {
    this.u32(b.length);
    return this.bytes(b);
  }

  /** Ring id as `u32 rep | u64 seq`. */
  ringId(r: RingId): this {
    return this.u32(r.rep).u64(r.seq);
  }

  /**
   * The written bytes. When the buffer is exactly full (sized up front) it
   * is returned as is: bytes before `length` never change, and a later
   * write moves to a new buffer. Otherwise a copy of the written part.
   */
  finish(): Uint8Array {
    return this.#len === this.#buf.length
      ? this.#buf
      : this.#buf.slice(0, this.#len);
  }
}

export { utf8Length };

/** Reads little-endian fields; any failure sticks and is reported by `ok`. */
export class ByteReader {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  #at = 0;
  #failure: string | null = null;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** False once any read failed. */
  get ok(): boolean {
    return this.#failure === null;
  }

  /** What failed first, or null. */
  get failure(): string | null {
    return this.#failure;
  }

  /** Bytes not read yet. */
  get remaining(): number {
    return this.#bytes.length - this.#at;
  }

  /** Marks the reader failed (first reason wins). */
  fail(reason: string): void {
    if (this.#failure === null) this.#failure = reason;
  }

  #take(n: number, what: string): number {
    if (this.#failure !== null) return -1;
    if (n < 0 || this.#at + n > this.#bytes.length) {
      this.fail(`truncated ${what}`);
      return -1;
    }
    const at = this.#at;
    this.#at += n;
    return at;
  }

  /** One unsigned byte (0 on failure). */
  u8(what = "u8"): number {
    const at = this.#take(1, what);
    return at < 0 ? 0 : this.#bytes[at];
  }

  /** Unsigned 16-bit (0 on failure). */
  u16(what = "u16"): number {
    const at = this.#take(2, what);
    return at < 0 ? 0 : this.#view.getUint16(at, true);
  }

  /** Unsigned 32-bit (0 on failure). */
  u32(what = "u32"): number {
    const at = this.#take(4, what);
    return at < 0 ? 0 : this.#view.getUint32(at, true);
  }

  /** Unsigned 64-bit; fails above 2^53 - 1. */
  u64(what = "u64"): number {
    const lo = this.u32(what);
    const hi = this.u32(what);
    if (hi > 0x1f_ffff) {
      this.fail(`${what} above 2^53`);
      return 0;
    }
    return hi * 0x1_0000_0000 + lo;
  }

  /** `n` raw bytes sharing memory with the input (empty on failure). */
  bytes(n: number, what = "bytes"): Uint8Array {
    const at = this.#take(n, what);
    return at < 0 ? new Uint8Array(0) : this.#bytes.subarray(at, at + n);
  }

  /** The rest of the input. */
  rest(): Uint8Array {
    return this.bytes(this.remaining, "rest");
  }

  /** `u16 length | UTF-8`, length in [1, maxBytes], strict UTF-8. */
  name(maxBytes: number, what = "name"): string {
    const len = this.u16(`${what} length`);
    if (this.#failure !== null) return "";
    if (len === 0 || len > maxBytes) {
      this.fail(`${what} length ${len} outside 1..${maxBytes}`);
      return "";
    }
    const raw = this.bytes(len, what);
    if (this.#failure !== null) return "";
    try {
      return utf8DecodeStrict(raw);
    } catch {
      // A fatal decoder throws on malformed input; that is a rejection here.
      this.fail(`${what} is not UTF-8`);
      return "";
    }
  }

  /** `u32 length | bytes`, length at most `maxBytes`. */
  blob(maxBytes: number, what = "blob"): Uint8Array {
    const len = this.u32(`${what} length`);
    if (this.#failure !== null) return new Uint8Array(0);
    if (len > maxBytes) {
      this.fail(`${what} length ${len} above ${maxBytes}`);
      return new Uint8Array(0);
    }
    return this.bytes(len, what);
  }

  /** Ring id as `u32 rep | u64 seq`; rep must be non-zero. */
  ringId(what = "ring id"): RingId {
    const rep = this.u32(`${what} rep`);
    const seq = this.u64(`${what} seq`);
    if (this.#failure === null && rep === 0) this.fail(`${what} rep is 0`);
    return { rep, seq };
  }

  /** A count field bounded by `max` and by the bytes left (`minItemBytes` each). */
  count(max: number, minItemBytes: number, what = "count"): number {
    const n = this.u32(what);
    if (this.#failure !== null) return 0;
    if (n > max) {
      this.fail(`${what} ${n} above ${max}`);
      return 0;
    }
    if (n * minItemBytes > this.remaining) {
      this.fail(`truncated ${what} entries`);
      return 0;
    }
    return n;
  }

  /** Fails unless every byte was read. */
  end(): void {
    if (this.#failure === null && this.#at !== this.#bytes.length) {
      this.fail(`${this.#bytes.length - this.#at} trailing bytes`);
    }
  }
}

/**
 * Ends a decode: `{ ok: true, value }` when the reader consumed everything
 * without failure, else a rejection whose reason names the failure class.
 */
export function finishDecode<T>(reader: ByteReader, value: T): Decoded<T> {
  reader.end();
  const failure = reader.failure;
  if (failure === null) return { ok: true, value };
  const reason: RejectReason = failure.startsWith("truncated")
    ? "truncated"
    : failure.endsWith("trailing bytes")
    ? "trailing_bytes"
    : failure.includes(" above ") && failure.includes("count")
    ? "too_many_entries"
    : "bad_field";
  return { ok: false, reason, detail: failure };
}
