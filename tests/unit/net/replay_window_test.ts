import assert from "node:assert/strict";
import { AssertionError } from "../../../src/lib/assert.ts";
import { Prng } from "../../../src/lib/prng.ts";
import { ReplayWindow } from "../../../src/net/replay_window.ts";

Deno.test("ReplayWindow accepts the first frame of any epoch", () => {
  const w = new ReplayWindow(64);
  assert.equal(w.check(0, 0), "fresh");
  assert.equal(w.check(7, 123_456), "fresh");
  w.commit(7, 123_456);
  assert.equal(w.epoch, 7);
  assert.equal(w.highest, 123_456);
});

Deno.test("ReplayWindow rejects duplicates and counters below the window", () => {
  const w = new ReplayWindow(64);
  w.commit(1, 100);
  const cases: [number, string][] = [
    [100, "replay"], // duplicate of the highest
    [99, "fresh"], // inside the window, never seen
    [37, "fresh"], // lowest counter still inside (100 - 64 + 1)
    [36, "replay"], // just below the window
    [0, "replay"],
    [101, "fresh"],
    [10_000, "fresh"],
  ];
  for (const [counter, verdict] of cases) {
    assert.equal(w.check(1, counter), verdict, `counter ${counter}`);
  }
});

Deno.test("ReplayWindow slides: bits of counters passed by are cleared", () => {
  const w = new ReplayWindow(32);
  for (let c = 0; c < 32; c++) w.commit(1, c);
  for (let c = 0; c < 32; c++) assert.equal(w.check(1, c), "replay");
  // Skip 32..39, jump to 40: 9..31 stay remembered, 32..39 are fresh.
  w.commit(1, 40);
  assert.equal(w.check(1, 8), "replay", "below the window");
  assert.equal(w.check(1, 9), "replay", "seen before the slide");
  for (let c = 32; c < 40; c++) assert.equal(w.check(1, c), "fresh");
  w.commit(1, 35);
  assert.equal(w.check(1, 35), "replay");
  // A jump larger than the window forgets everything below it.
  w.commit(1, 1_000);
  assert.equal(w.check(1, 968), "replay");
  assert.equal(w.check(1, 969), "fresh");
  assert.equal(w.check(1, 999), "fresh");
});

Deno.test("ReplayWindow rejects older epochs and resets on a newer one", () => {
  const w = new ReplayWindow(64);
  w.commit(5, 1_000);
  assert.equal(w.check(4, 2_000), "old_epoch");
  assert.equal(w.check(6, 0), "fresh");
  w.commit(6, 0);
  assert.equal(w.check(6, 0), "replay");
  assert.equal(w.check(6, 1), "fresh");
  assert.equal(w.check(5, 1_001), "old_epoch");
  assert.equal(w.highest, 0);
});

Deno.test("ReplayWindow commit of a stale frame is an assertion", () => {
  const w = new ReplayWindow(32);
  w.commit(1, 5);
  assert.throws(() => w.commit(1, 5), AssertionError);
  assert.throws(() => w.commit(0, 9), AssertionError);
  assert.throws(() => new ReplayWindow(100), AssertionError);
});

Deno.test("ReplayWindow matches a set-based model on random traffic", () => {
  for (const seed of [1, 2, 3, 42, 1234]) {
    const rng = new Prng(seed);
    const size = 64;
    const w = new ReplayWindow(size);
    const seen = new Set<number>();
    let highest = -1;
    for (let i = 0; i < 5_000; i++) {
      const base = Math.max(0, highest);
      const counter = Math.max(0, base + rng.int(200) - 150);
      const expected = counter > highest
        ? "fresh"
        : counter <= highest - size || seen.has(counter)
        ? "replay"
        : "fresh";
      assert.equal(w.check(1, counter), expected, `seed ${seed} step ${i}`);
      if (expected === "fresh") {
        w.commit(1, counter);
        seen.add(counter);
        highest = Math.max(highest, counter);
      }
    }
  }
});
