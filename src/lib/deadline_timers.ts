/**
 * Named one-shot timers that are cheap to re-arm.
 *
 * The Totem core re-arms its token, token-retransmit and heartbeat timers on
 * every token visit, thousands of times a second on a busy ring, and almost
 * always to a later deadline than the one pending. Cancelling and creating a
 * runtime timer each time cost about 8 % of a daemon's busy time in the
 * latency benchmark. Here re-arming to a later deadline only records it: the
 * pending timer still fires at the old time, sees the deadline has moved and
 * sleeps again for the rest. A runtime timer is replaced only when the new
 * deadline is earlier than the pending one, and a cancel only marks the
 * entry, so the hot path does no timer calls at all.
 *
 * A timer never fires before its deadline, as a runtime timer does not: a
 * wake-up even a fraction of a millisecond early sleeps again. Firing early
 * is not harmless here: the fast token retransmit is armed a few
 * milliseconds ahead, and one early retransmission costs the ring a
 * duplicate token visit.
 *
 * @module
 */
import { assert } from "./assert.ts";

/** Where time and runtime timers come from (real ones, or a test's). */
export interface TimerHost {
  /** Monotonic milliseconds. */
  now(): number;
  set(fn: () => void, afterMs: number): unknown;
  clear(handle: unknown): void;
}

/** The runtime's clock and timers. */
export const REAL_TIMERS: TimerHost = {
  now: () => performance.now(),
  set: (fn, afterMs) => setTimeout(fn, afterMs),
  clear: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

interface Entry {
  /** When the timer is due, or null once cancelled. */
  deadline: number | null;
  /** The runtime timer, or null while none is pending. */
  handle: unknown;
  /** When `handle` fires. */
  wakeAt: number;
}

/** One-shot timers keyed by name; see the module comment. */
export class DeadlineTimers<K> {
  readonly #host: TimerHost;
  readonly #onFire: (key: K) => void;
  readonly #entries = new Map<K, Entry>();
  /** Runtime timers created, for tests and benchmarks. */
  runtimeTimers = 0;

  constructor(onFire: (key: K) => void, host: TimerHost = REAL_TIMERS) {
    this.#onFire = onFire;
    this.#host = host;
  }

  /** (Re)starts `key` to fire `afterMs` from now, replacing any deadline. */
  arm(key: K, afterMs: number): void {
    assert(afterMs >= 0, `timer ${String(key)} armed ${afterMs} ms ahead`);
    const deadline = this.#host.now() + afterMs;
    const e = this.#entries.get(key);
    if (e === undefined) {
      const entry: Entry = { deadline, handle: null, wakeAt: deadline };
      this.#entries.set(key, entry);
      this.#schedule(key, entry, afterMs);
      return;
    }
    e.deadline = deadline;
    if (e.handle !== null && e.wakeAt <= deadline) return;
    if (e.handle !== null) this.#host.clear(e.handle);
    this.#schedule(key, e, afterMs);
  }

  /** Stops `key` if armed; its runtime timer, if any, lapses unseen. */
  cancel(key: K): void {
    const e = this.#entries.get(key);
    if (e !== undefined) e.deadline = null;
  }

  /** True while `key` is armed and not yet fired. */
  armed(key: K): boolean {
    return (this.#entries.get(key)?.deadline ?? null) !== null;
  }

  /** Stops everything, runtime timers included (shutdown). */
  clear(): void {
    for (const e of this.#entries.values()) {
      if (e.handle !== null) this.#host.clear(e.handle);
    }
    this.#entries.clear();
  }

  #schedule(key: K, e: Entry, afterMs: number): void {
    this.runtimeTimers++;
    e.wakeAt = this.#host.now() + afterMs;
    e.handle = this.#host.set(() => this.#wake(key, e), afterMs);
  }

  #wake(key: K, e: Entry): void {
    // A cleared map or a newer entry means this wake-up belongs to no one.
    if (this.#entries.get(key) !== e) return;
    e.handle = null;
    if (e.deadline === null) {
      this.#entries.delete(key);
      return;
    }
    const left = e.deadline - this.#host.now();
    if (left > 0) {
      this.#schedule(key, e, left);
      return;
    }
    this.#entries.delete(key);
    this.#onFire(key);
  }
}
