/**
 * Anti-replay state for one sender (TOTEM.md section 7.2): the highest boot
 * epoch seen and a sliding window of packet counters within that epoch.
 *
 * Corosync and knet have no replay protection; Totem's seq filters absorb
 * duplicates only within one ring, so an old MERGE_DETECT or join replayed
 * later would force a whole-cluster GATHER. The window follows the bitmap
 * scheme of IPsec (RFC 4303 section 3.4.3, RFC 6479): a counter is fresh when
 * it is above the highest one seen, or inside the window and not yet marked.
 *
 * Checking and committing are separate steps so that a frame is only
 * committed after it authenticated: a forged frame must never move the window.
 *
 * @module
 */
import { assert } from "../lib/assert.ts";

/** Default number of counters the window remembers below the highest one. */
export const REPLAY_WINDOW_DEFAULT = 1024;

/** Verdict on one (epoch, counter) pair. */
export type ReplayVerdict = "fresh" | "replay" | "old_epoch";

/** Highest epoch plus a bitmap of recently seen counters, for one sender. */
export class ReplayWindow {
  readonly size: number;
  #epoch = -1;
  /** Highest counter committed in `#epoch`; -1 before the first one. */
  #highest = -1;
  /** Bit `c % size` is set when counter `c` (within the window) was seen. */
  readonly #bits: Uint32Array;

  /** `size` must be a positive multiple of 32 (whole bitmap words). */
  constructor(size = REPLAY_WINDOW_DEFAULT) {
    assert(
      Number.isInteger(size) && size >= 32 && size % 32 === 0,
      `replay window size must be a positive multiple of 32, got ${size}`,
    );
    this.size = size;
    this.#bits = new Uint32Array(size / 32);
  }

  /** The highest epoch committed so far, or -1 before the first frame. */
  get epoch(): number {
    return this.#epoch;
  }

  /** The highest counter committed in `epoch`, or -1 before the first frame. */
  get highest(): number {
    return this.#highest;
  }

  /** Classifies a frame without changing any state. */
  check(epoch: number, counter: number): ReplayVerdict {
    if (epoch < this.#epoch) return "old_epoch";
    // A newer epoch means the sender rebooted: every counter is fresh again.
    if (epoch > this.#epoch) return "fresh";
    if (counter > this.#highest) return "fresh";
    if (counter <= this.#highest - this.size) return "replay";
    return this.#isSet(counter) ? "replay" : "fresh";
  }

  /**
   * Records an authenticated frame. The caller checked it first: committing
   * anything but a "fresh" pair is our bug.
   */
  commit(epoch: number, counter: number): void {
    assert(this.check(epoch, counter) === "fresh", "commit of a stale frame");
    if (epoch > this.#epoch) {
      this.#epoch = epoch;
      this.#highest = -1;
      this.#bits.fill(0);
    }
    if (counter > this.#highest) {
      this.#advance(counter);
    }
    this.#set(counter);
  }

  /** Clears the bits of every counter the window slides past. */
  #advance(counter: number): void {
    const shift = counter - this.#highest;
    if (shift >= this.size || this.#highest < 0) {
      this.#bits.fill(0);
    } else {
      for (let c = this.#highest + 1; c <= counter; c++) this.#clear(c);
    }
    this.#highest = counter;
  }

  #isSet(counter: number): boolean {
    const bit = counter % this.size;
    return (this.#bits[bit >>> 5] & (1 << (bit & 31))) !== 0;
  }

  #set(counter: number): void {
    const bit = counter % this.size;
    this.#bits[bit >>> 5] |= 1 << (bit & 31);
  }

  #clear(counter: number): void {
    const bit = counter % this.size;
    this.#bits[bit >>> 5] &= ~(1 << (bit & 31));
  }
}
