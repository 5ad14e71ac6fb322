/**
 * Virtual clock of the simulator. Time only moves when the event loop takes
 * the next event; nothing reads a real clock (STYLE.md section 1).
 */
import { assert } from "../lib/assert.ts";

/** Monotonic virtual time in milliseconds. */
export class VirtualClock {
  #nowMs = 0;

  /** Current virtual time. */
  get nowMs(): number {
    return this.#nowMs;
  }

  /** Moves time forward to `atMs`; time never goes back. */
  advanceTo(atMs: number): void {
    assert(
      atMs >= this.#nowMs,
      `clock moved back from ${this.#nowMs} to ${atMs}`,
    );
    this.#nowMs = atMs;
  }
}
