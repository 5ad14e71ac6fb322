/**
 * Packing side of the totempg layer (TOTEM.md 5.1): application messages in,
 * Totem mcast payloads ("frames") out.
 *
 * Frame layout, little-endian (`PG_HEADER_BYTES` = 6):
 *
 * | Off | Field            | Notes                                          |
 * |-----|------------------|------------------------------------------------|
 * | 0   | u8 version       | `PG_VERSION`                                   |
 * | 1   | u8 fragmented    | id 1..255 when the last chunk continues in the next frame, else 0 |
 * | 2   | u8 continuation  | id of the previous frame when the first chunk continues it, else 0 |
 * | 3   | u8 reserved      | 0                                              |
 * | 4   | u16 msgCount     | chunks in this frame, at least 1               |
 * | 6   | u16 len[count]   | length of each chunk                           |
 * | ... | data             | the chunks, back to back                       |
 *
 * Like Corosync's totempg, a message that does not fit the room left in the
 * current frame fills it and continues in the next one, so frames leave the
 * node nearly full: fewer frames per message means fewer Totem seqs, less
 * crypto and fewer token-window slots. The one exception is a sliver of
 * room (below `fragmentBytesMin`): the frame is closed instead, since a tiny
 * fragment costs reassembly work and saves nothing.
 *
 * A chunk holds at most `frameBytesMax - 8` bytes, so u16 lengths suffice
 * even though messages reach `MESSAGE_BYTES_MAX` (1 MiB).
 *
 * @module
 */
import { assert } from "../../lib/assert.ts";
import { withHeadroom } from "../../lib/headroom.ts";
import { MESSAGE_BYTES_MAX } from "../config.ts";

/** Version byte of a packed frame; others are rejected with "bad_version". */
export const PG_VERSION = 1;
/** Bytes before the length table. */
export const PG_HEADER_BYTES = 6;
/** Bytes of one entry in the length table. */
export const PG_LEN_BYTES = 2;
/** Smallest frame budget the packer accepts. */
export const PG_FRAME_BYTES_MIN = 64;
/** Largest frame budget: a chunk length must fit a u16 and a frame one UDP datagram. */
export const PG_FRAME_BYTES_MAX = 65_507;
/** Default for `PackerOptions.fragmentBytesMin`. */
export const FRAGMENT_BYTES_MIN_DEFAULT = 32;

/** Options of `Packer`. */
export interface PackerOptions {
  /**
   * Largest frame to produce: the MTU minus IP/UDP, the Totem mcast header
   * and `CRYPTO_OVERHEAD_BYTES`.
   */
  frameBytesMax: number;
  /** Close the frame rather than start a fragment with less data room; default 32. */
  fragmentBytesMin?: number;
  /**
   * Header sizes the layers below write in front of each frame, innermost
   * first: frames are allocated with that much free room before them
   * (src/lib/headroom.ts), so the headers go in place. Default none.
   */
  headroom?: readonly number[];
}

/** Turns messages into frames; one per node (fragment ids are per sender). */
export class Packer {
  readonly frameBytesMax: number;
  /** Largest chunk: a frame holding a single chunk. */
  readonly chunkBytesMax: number;
  readonly fragmentBytesMin: number;
  /** Data segments of the pending frame, in order (views, not copies). */
  #segs: Uint8Array[] = [];
  /** Chunk lengths of the pending frame. */
  #lens: number[] = [];
  #dataBytes = 0;
  /** Continuation id of the pending frame's first chunk, or 0. */
  #continuation = 0;
  /** Last fragment id used; ids roll 1..255, skipping 0. */
  #fragId = 0;
  readonly #headroom: readonly number[];

  constructor(options: PackerOptions) {
    const { frameBytesMax } = options;
    assert(
      Number.isInteger(frameBytesMax) && frameBytesMax >= PG_FRAME_BYTES_MIN &&
        frameBytesMax <= PG_FRAME_BYTES_MAX,
      `frameBytesMax must be ${PG_FRAME_BYTES_MIN}..${PG_FRAME_BYTES_MAX}, got ${frameBytesMax}`,
    );
    this.frameBytesMax = frameBytesMax;
    this.chunkBytesMax = frameBytesMax - PG_HEADER_BYTES - PG_LEN_BYTES;
    this.#headroom = options.headroom ?? [];
    this.fragmentBytesMin = options.fragmentBytesMin ??
      FRAGMENT_BYTES_MIN_DEFAULT;
    assert(
      Number.isInteger(this.fragmentBytesMin) && this.fragmentBytesMin >= 1 &&
        this.fragmentBytesMin <= this.chunkBytesMax,
      `fragmentBytesMin must be 1..${this.chunkBytesMax}, got ${this.fragmentBytesMin}`,
    );
  }

  /** True when a partially filled frame waits for `flush()`. */
  get hasPending(): boolean {
    return this.#lens.length > 0;
  }

  /** Bytes the pending frame would have if flushed now (0 when none). */
  get pendingBytes(): number {
    return this.#lens.length === 0 ? 0 : this.#frameBytes();
  }

  /**
   * Upper bound on the new frames a `size`-byte message adds to the Totem
   * send queue, counting the frame its tail ends in but not an already
   * pending frame. Flow control: when
   * `queued + (hasPending ? 1 : 0) + frameCount(size)` exceeds the queue's
   * capacity, refuse the send with TRY_AGAIN (never evict).
   */
  frameCount(size: number): number {
    assert(
      Number.isInteger(size) && size >= 0 && size <= MESSAGE_BYTES_MAX,
      `message size must be 0..${MESSAGE_BYTES_MAX}, got ${size}`,
    );
    return Math.max(1, Math.ceil(size / this.chunkBytesMax));
  }

  /**
   * Appends one message, given whole or as parts to gather (a header and a
   * payload, say: the parts are copied once, straight into the frame).
   * Returns the frames this call completed, oldest first. The message's last
   * bytes may stay in the pending frame until a later `add` or `flush`.
   */
  add(message: Uint8Array | readonly Uint8Array[]): Uint8Array[] {
    const parts = message instanceof Uint8Array ? [message] : message;
    let size = 0;
    for (const p of parts) size += p.length;
    assert(
      size <= MESSAGE_BYTES_MAX,
      `message of ${size} bytes exceeds ${MESSAGE_BYTES_MAX}`,
    );

    const done: Uint8Array[] = [];
    let room = this.#room();
    if (size > room && room < this.fragmentBytesMin) {
      // Too little room to be worth a fragment: start the message afresh.
      done.push(this.#finish(0));
      room = this.chunkBytesMax;
    }
    const cursor = { part: 0, offset: 0 };
    let remaining = size;
    for (;;) {
      const take = Math.min(room, remaining);
      this.#appendChunk(parts, cursor, take);
      remaining -= take;
      if (remaining === 0) break;
      // The message continues in the next frame (TOTEM.md 5.1).
      const id = this.#nextFragId();
      done.push(this.#finish(id));
      this.#continuation = id;
      room = this.chunkBytesMax;
    }
    // A frame with no room for another length entry cannot take anything.
    if (this.frameBytesMax - this.#frameBytes() < PG_LEN_BYTES) {
      done.push(this.#finish(0));
    }
    return done;
  }

  /**
   * Completes the pending frame, or returns null when there is none. The SRP
   * driver calls it when the token arrives, so data waits at most one
   * rotation. Its last chunk always ends a message.
   */
  flush(): Uint8Array | null {
    return this.#lens.length === 0 ? null : this.#finish(0);
  }

  /** Data bytes a new chunk can take in the pending frame. */
  #room(): number {
    return this.frameBytesMax - this.#frameBytes() - PG_LEN_BYTES;
  }

  #frameBytes(): number {
    return PG_HEADER_BYTES + PG_LEN_BYTES * this.#lens.length +
      this.#dataBytes;
  }

  #nextFragId(): number {
    this.#fragId = this.#fragId === 255 ? 1 : this.#fragId + 1;
    return this.#fragId;
  }

  /** Adds one chunk of `take` bytes taken from `parts` at `cursor`. */
  #appendChunk(
    parts: readonly Uint8Array[],
    cursor: { part: number; offset: number },
    take: number,
  ): void {
    this.#lens.push(take);
    this.#dataBytes += take;
    let left = take;
    while (left > 0) {
      const p = parts[cursor.part];
      const n = Math.min(p.length - cursor.offset, left);
      if (n > 0) {
        this.#segs.push(
          n === p.length ? p : p.subarray(cursor.offset, cursor.offset + n),
        );
      }
      left -= n;
      cursor.offset += n;
      if (cursor.offset === p.length) {
        cursor.part++;
        cursor.offset = 0;
      }
    }
  }

  /** Builds the pending frame with `fragmented` and starts an empty one. */
  #finish(fragmented: number): Uint8Array {
    const lens = this.#lens;
    const count = lens.length;
    assert(count > 0, "finishing an empty frame");
    const total = this.#frameBytes();
    assert(total <= this.frameBytesMax, "frame over budget");
    const frame = withHeadroom(total, this.#headroom);
    frame[0] = PG_VERSION;
    frame[1] = fragmented;
    frame[2] = this.#continuation;
    frame[3] = 0;
    frame[4] = count & 0xff;
    frame[5] = count >>> 8;
    let at = PG_HEADER_BYTES;
    for (let i = 0; i < count; i++) {
      frame[at] = lens[i] & 0xff;
      frame[at + 1] = lens[i] >>> 8;
      at += PG_LEN_BYTES;
    }
    for (const seg of this.#segs) {
      frame.set(seg, at);
      at += seg.length;
    }
    assert(at === total, "frame length mismatch");
    // Fragments are never empty: the assembler rejects empty ones.
    assert(fragmented === 0 || lens[count - 1] > 0, "empty trailing fragment");
    assert(this.#continuation === 0 || lens[0] > 0, "empty continuation");
    this.#segs = [];
    this.#lens = [];
    this.#dataBytes = 0;
    this.#continuation = 0;
    return frame;
  }
}
