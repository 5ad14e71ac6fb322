import assert from "node:assert/strict";
import {
  DeadlineTimers,
  type TimerHost,
} from "../../../src/lib/deadline_timers.ts";

/** A manual clock with runtime timers that fire when it is advanced. */
class FakeHost implements TimerHost {
  time = 0;
  #next = 1;
  pending = new Map<number, { at: number; fn: () => void }>();
  now(): number {
    return this.time;
  }
  set(fn: () => void, afterMs: number): unknown {
    const id = this.#next++;
    this.pending.set(id, { at: this.time + afterMs, fn });
    return id;
  }
  clear(handle: unknown): void {
    this.pending.delete(handle as number);
  }
  /** Moves time to `to`, firing due timers in time order as it goes. */
  advance(to: number): void {
    for (;;) {
      let first: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.pending) {
        if (e[1].at <= to && (first === undefined || e[1].at < first[1].at)) {
          first = e;
        }
      }
      if (first === undefined) break;
      this.pending.delete(first[0]);
      this.time = first[1].at;
      first[1].fn();
    }
    this.time = to;
  }
}

function setup() {
  const host = new FakeHost();
  const fired: [string, number][] = [];
  const timers = new DeadlineTimers<string>(
    (key) => fired.push([key, host.time]),
    host,
  );
  return { host, fired, timers };
}

Deno.test("A timer re-armed to a later deadline fires once, at the last deadline, with one runtime timer per wake-up", () => {
  const { host, fired, timers } = setup();
  timers.arm("token", 100);
  for (let t = 10; t <= 90; t += 10) {
    host.advance(t);
    timers.arm("token", 100); // every token visit
  }
  assert.equal(timers.runtimeTimers, 1, "re-arming later makes no timer");
  host.advance(100);
  assert.deepEqual(fired, [], "the old wake-up only sleeps again");
  assert.equal(timers.runtimeTimers, 2);
  host.advance(189);
  assert.deepEqual(fired, []);
  host.advance(190);
  assert.deepEqual(fired, [["token", 190]]);
  assert.equal(timers.armed("token"), false);
  host.advance(1000);
  assert.equal(fired.length, 1, "one-shot");
});

Deno.test("An earlier deadline replaces the pending runtime timer", () => {
  const { host, fired, timers } = setup();
  timers.arm("retransmit", 500);
  host.advance(10);
  timers.arm("retransmit", 20);
  assert.equal(host.pending.size, 1, "the 500 ms timer is gone");
  host.advance(30);
  assert.deepEqual(fired, [["retransmit", 30]]);
  assert.equal(host.pending.size, 0);
});

Deno.test("A cancelled timer never fires, and arming it again restarts it from now", () => {
  const { host, fired, timers } = setup();
  timers.arm("hold", 50);
  timers.cancel("hold");
  assert.equal(timers.armed("hold"), false);
  host.advance(200);
  assert.deepEqual(fired, []);
  assert.equal(host.pending.size, 0, "its lapsed wake-up left nothing");

  timers.arm("hold", 50);
  host.advance(220);
  timers.cancel("hold");
  timers.arm("hold", 50); // re-armed before the old wake-up: reused
  assert.equal(host.pending.size, 1);
  host.advance(269);
  assert.deepEqual(fired, []);
  host.advance(270);
  assert.deepEqual(fired, [["hold", 270]]);
  timers.cancel("never-armed");
});

Deno.test("Timers are independent, and a wake-up even a fraction of a millisecond early sleeps again", () => {
  const { host, fired, timers } = setup();
  timers.arm("a", 30);
  timers.arm("b", 10);
  host.advance(5);
  timers.arm("a", 25.5); // due 0.5 ms after the wake-up at 30
  host.advance(30);
  assert.deepEqual(fired, [["b", 10]]);
  host.advance(30.5);
  assert.deepEqual(fired, [["b", 10], ["a", 30.5]]);
  timers.arm("c", 0);
  host.advance(30.5);
  assert.deepEqual(fired.at(-1), ["c", 30.5]);
});

Deno.test("clear() stops every timer and drops its runtime timer; a timer may re-arm itself when it fires", () => {
  const host = new FakeHost();
  const fired: string[] = [];
  const timers: DeadlineTimers<string> = new DeadlineTimers((key) => {
    fired.push(key);
    if (fired.length < 3) timers.arm(key, 10);
  }, host);
  timers.arm("beat", 10);
  host.advance(100);
  assert.deepEqual(fired, ["beat", "beat", "beat"]);
  timers.arm("x", 10);
  timers.arm("y", 20);
  timers.clear();
  assert.equal(host.pending.size, 0);
  host.advance(200);
  assert.equal(fired.length, 3);
  assert.throws(() => timers.arm("x", -1), /armed -1 ms ahead/);
});
