// Same seed ⇒ bit-identical run; the simulator's own bookkeeping.
import {
  deepStrictEqual as assertEquals,
  notDeepStrictEqual as assertNotEquals,
  ok as assert,
} from "node:assert/strict";
import { FAULT_KINDS } from "../../../src/sim/faults.ts";
import { hashHistory } from "../../../src/sim/history.ts";
import { simulate, Simulation } from "../../../src/sim/simulate.ts";

const SHORT = { nodes: 3, faults: FAULT_KINDS, durationMs: 6000 } as const;

Deno.test("simulate() gives the same history hash for the same seed", () => {
  const a = simulate({ seed: 42, ...SHORT });
  const b = simulate({ seed: 42, ...SHORT });
  assertEquals(a.stats.historyHash, b.stats.historyHash);
  assertEquals(hashHistory(a.history), hashHistory(b.history));
  assertEquals(a.stats, b.stats);
  assertEquals(a.violations, b.violations);
  assert(a.stats.submitted > 0);
});

Deno.test("simulate() gives different histories for different seeds", () => {
  const a = simulate({ seed: 1, ...SHORT });
  const b = simulate({ seed: 2, ...SHORT });
  assertNotEquals(a.stats.historyHash, b.stats.historyHash);
});

Deno.test("Simulation can be driven in steps with the same result as one run", () => {
  const whole = simulate({ seed: 5, ...SHORT });
  const sim = new Simulation({ seed: 5, ...SHORT });
  for (let t = 0; t < sim.endMs; t += 777) sim.runUntil(t);
  sim.runUntil(sim.endMs);
  assertEquals(sim.finish().stats.historyHash, whole.stats.historyHash);
});

Deno.test("simulate() without faults forms one ring and orders every message", () => {
  const r = simulate({ seed: 3, nodes: 3, durationMs: 5000 });
  assertEquals(r.violations, []);
  assert(r.live);
  // Everything submitted after the first full ring is delivered everywhere.
  assert(r.stats.ordered > 0.9 * r.stats.submitted, JSON.stringify(r.stats));
});

Deno.test("Simulation keeps crashed nodes' stable storage and counts incarnations", () => {
  const sim = new Simulation({
    seed: 8,
    nodes: 3,
    durationMs: 6000,
    app: { intervalMs: 0 },
  });
  sim.runUntil(3000);
  const host = sim.host(2);
  const stored = host.storedRingSeq;
  assert(stored !== null && stored > 0);
  sim.crash(2);
  assert(!host.up);
  sim.runUntil(3100);
  const lastStart = () =>
    sim.history.log(2).filter((e) => e.kind === "start").at(-1)!;
  sim.restart(2, "kept");
  assertEquals(host.incarnation, 2);
  assertEquals(lastStart(), {
    ...lastStart(),
    kind: "start",
    inc: 2,
    storage: "kept",
    storedRingSeq: stored,
  });
  sim.crash(2);
  sim.restart(2, "lost");
  assertEquals(lastStart(), {
    ...lastStart(),
    kind: "start",
    inc: 3,
    storage: "lost",
    storedRingSeq: null,
  });
  const r = sim.run();
  assertEquals(r.violations, []);
});

Deno.test("Simulation pause queues datagrams and replays them on resume", () => {
  const sim = new Simulation({
    seed: 4,
    nodes: 3,
    durationMs: 8000,
    app: { intervalMs: 0 },
  });
  sim.runUntil(2000);
  sim.pause(3, 3000);
  assert(sim.host(3).paused);
  sim.runUntil(4000);
  assert(sim.host(3).paused);
  sim.runUntil(5001);
  assert(!sim.host(3).paused);
  const r = sim.run();
  assertEquals(r.violations, []);
  assert(r.history.logs.get(3)!.some((e) => e.kind === "pause"));
});

Deno.test("Simulation reports an exception as an ASSERT violation with a trace", () => {
  const sim = new Simulation({ seed: 6, nodes: 3, durationMs: 4000 });
  sim.at(1500, () => {
    throw new Error("boom");
  });
  const r = sim.run();
  const v = r.violations.find((x) => x.property === "ASSERT");
  assert(v !== undefined, JSON.stringify(r.violations));
  assert(v.message.includes("boom"));
  assert(r.traces[r.violations.indexOf(v)].some((l) => l.includes("threw")));
  assert(r.stats.virtualMs < 2000);
});

Deno.test("Simulation aborts an event storm as an L1 violation", () => {
  const r = simulate({
    seed: 6,
    nodes: 3,
    durationMs: 4000,
    maxPendingEvents: 50,
  });
  assert(
    r.violations.some((v) =>
      v.property === "L1" && v.message.includes("event storm")
    ),
  );
  assert(!r.live);
});

Deno.test("Simulation ignores the resume event of an earlier pause", () => {
  const sim = new Simulation({
    seed: 4,
    nodes: 3,
    durationMs: 9000,
    app: { intervalMs: 0 },
  });
  sim.runUntil(1000);
  sim.pause(2, 3000); // would resume at 4000
  sim.runUntil(1500);
  sim.resume(2);
  sim.runUntil(2000);
  sim.pause(2, 4000); // resumes at 6000
  sim.runUntil(4500);
  assert(sim.host(2).paused, "a stale resume event ended the second pause");
  sim.runUntil(6001);
  assert(!sim.host(2).paused);
});
