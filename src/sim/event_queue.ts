/**
 * Priority queue of simulation events ordered by virtual time, then by
 * insertion order. The insertion counter breaks ties deterministically, so two
 * events scheduled for the same millisecond run in the order they were
 * scheduled (TOTEM.md 9.2: every timer and datagram is an event).
 */

interface Slot<T> {
  readonly atMs: number;
  readonly order: number;
  readonly item: T;
}

/** A binary min-heap keyed by `(atMs, insertion order)`. */
export class EventQueue<T> {
  #heap: Slot<T>[] = [];
  #order = 0;

  /** Number of pending events. */
  get size(): number {
    return this.#heap.length;
  }

  /** Schedules `item` at `atMs`. */
  push(atMs: number, item: T): void {
    const slot: Slot<T> = { atMs, order: this.#order++, item };
    const heap = this.#heap;
    heap.push(slot);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(slot, heap[parent])) break;
      heap[i] = heap[parent];
      i = parent;
    }
    heap[i] = slot;
  }

  /** Time of the earliest event, or `Infinity` when empty. */
  peekTime(): number {
    return this.#heap.length === 0 ? Infinity : this.#heap[0].atMs;
  }

  /** Removes and returns the earliest event, or undefined when empty. */
  pop(): { atMs: number; item: T } | undefined {
    const heap = this.#heap;
    if (heap.length === 0) return undefined;
    const top = heap[0];
    const last = heap.pop()!;
    if (heap.length > 0) {
      let i = 0;
      const n = heap.length;
      while (true) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const child = r < n && before(heap[r], heap[l]) ? r : l;
        if (!before(heap[child], last)) break;
        heap[i] = heap[child];
        i = child;
      }
      heap[i] = last;
    }
    return { atMs: top.atMs, item: top.item };
  }
}

function before<T>(a: Slot<T>, b: Slot<T>): boolean {
  return a.atMs < b.atMs || (a.atMs === b.atMs && a.order < b.order);
}
