/**
 * The sort queue (Corosync's `sq.h`): a window of SORT_QUEUE_SLOTS slots
 * above the last released sequence number, indexed by seq modulo the window,
 * so add, lookup and release are O(1) per message. Each slot keeps a miss
 * counter so a hole is requested only after `miss_count_const` token visits
 * (TOTEM.md 2.4 step 10).
 */
import { assert } from "../lib/assert.ts";
import { SORT_QUEUE_SLOTS } from "./config.ts";
import type { McastMsg } from "./types.ts";

const MASK = SORT_QUEUE_SLOTS - 1;

/** One stored frame: the decoded message and its exact bytes (for resends). */
export interface SortQueueItem {
  readonly msg: McastMsg;
  readonly bytes: Uint8Array;
}

/** Window of received frames for one ring, keyed by u32 seq. */
export class SortQueue {
  #items: (SortQueueItem | undefined)[] = new Array(SORT_QUEUE_SLOTS);
  #misses = new Uint16Array(SORT_QUEUE_SLOTS);
  #base = 0;
  #count = 0;

  constructor(base = 0) {
    this.#base = base >>> 0;
  }

  /** Highest released seq: slots above it are usable. */
  get base(): number {
    return this.#base;
  }

  /** Number of frames currently held. */
  get size(): number {
    return this.#count;
  }

  /** Empties the queue and restarts it after `base`. */
  reinit(base: number): void {
    if (this.#count > 0) this.#items.fill(undefined);
    this.#misses.fill(0);
    this.#count = 0;
    this.#base = base >>> 0;
  }

  /** True when `seq` falls inside the window above the base. */
  inRange(seq: number): boolean {
    const d = (seq - this.#base) >>> 0;
    return d >= 1 && d < SORT_QUEUE_SLOTS;
  }

  /** True when `seq` is in range and held. */
  has(seq: number): boolean {
    return this.inRange(seq) && this.#items[seq & MASK] !== undefined;
  }

  /** The frame stored at `seq`, if held. */
  get(seq: number): SortQueueItem | undefined {
    return this.inRange(seq) ? this.#items[seq & MASK] : undefined;
  }

  /** Stores a frame; the slot must be in range and free. */
  add(seq: number, item: SortQueueItem): void {
    assert(
      this.inRange(seq),
      `sort queue: seq ${seq} outside window above ${this.#base}`,
    );
    const i = seq & MASK;
    assert(this.#items[i] === undefined, `sort queue: seq ${seq} already held`);
    this.#items[i] = item;
    this.#misses[i] = 0;
    this.#count++;
  }

  /** Counts one more token visit on which `seq` was missing; returns the total. */
  bumpMiss(seq: number): number {
    const i = seq & MASK;
    if (this.#misses[i] < 0xffff) this.#misses[i]++;
    return this.#misses[i];
  }

  /** Frees every slot up to and including `seq` and moves the base there. */
  releaseTo(seq: number): void {
    const range = (seq - this.#base) >>> 0;
    if (range === 0 || range >= 0x8000_0000) return;
    assert(
      range < SORT_QUEUE_SLOTS,
      `sort queue: release range ${range} too large`,
    );
    for (let k = 1; k <= range; k++) {
      const i = (this.#base + k) & MASK;
      if (this.#items[i] !== undefined) {
        this.#items[i] = undefined;
        this.#count--;
      }
      this.#misses[i] = 0;
    }
    this.#base = seq >>> 0;
  }
}
