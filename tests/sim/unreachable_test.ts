// Link-layer verdicts in the full simulator with the EVS checker: right ones
// make the survivors of a crash re-form a consensus timeout sooner; wrong
// ones (a live peer called unreachable) may cost a membership change but
// never an EVS property. SIM_SEEDS scales the sweep (default 100 -> 30 seeds).
import {
  deepStrictEqual as assertEquals,
  ok as assert,
} from "node:assert/strict";
import { FAULT_KINDS, type FaultEvent } from "../../src/sim/faults.ts";
import { type SimResult, simulate } from "../../src/sim/simulate.ts";

function envInt(name: string, fallback: number): number {
  const raw = Deno.env.get(name);
  const v = raw === undefined ? NaN : Number(raw);
  return Number.isInteger(v) && v >= 0 ? v : fallback;
}

/** Virtual time at which `node` installs a regular ring of `members`. */
function installedAt(
  r: SimResult,
  node: number,
  members: number[],
): number | null {
  const e = (r.history.logs.get(node) ?? []).find((h) =>
    h.kind === "confchg" && h.type === "REG" &&
    h.members.join() === members.join()
  );
  return e === undefined ? null : e.t;
}

Deno.test("sim: survivors of a crash re-form one consensus timeout sooner when their links report it", () => {
  const crashAt = 4000;
  const crash: FaultEvent = {
    atMs: crashAt,
    kind: "crash",
    node: 3,
    point: "now",
    restartAfterMs: null,
    storage: "kept",
  };
  // Heartbeats time out well before the token (ping timeout = token / 2).
  const verdicts: FaultEvent[] = [1, 2].map((observer) => ({
    atMs: crashAt + 300,
    kind: "reachability",
    observer,
    peer: 3,
    reachable: false,
  }));
  const run = (events: FaultEvent[]) =>
    simulate({
      seed: 11,
      nodes: 3,
      durationMs: 12_000,
      plan: { events },
    });
  const told = run([crash, ...verdicts]);
  const silent = run([crash]);
  for (const r of [told, silent]) {
    assertEquals(r.violations, []);
    assert(r.live, "live after the quiet phase");
  }
  const fast = installedAt(told, 1, [1, 2]);
  const slow = installedAt(silent, 1, [1, 2]);
  assert(fast !== null && slow !== null, "both re-form without node 3");
  // The same token loss; only the consensus wait differs.
  assert(
    slow! - fast! > 500,
    `told ${fast! - crashAt} ms, silent ${slow! - crashAt} ms after the crash`,
  );
});

Deno.test("sim: wrong and right unreachability verdicts keep EVS under every fault", () => {
  const n = Math.max(3, Math.round(envInt("SIM_SEEDS", 100) * 0.3));
  const first = envInt("SIM_SEED", 1);
  const failures: string[] = [];
  for (let seed = first; seed < first + n; seed++) {
    const nodes = 3 + (seed % 3);
    const r = simulate({
      seed,
      nodes,
      faults: FAULT_KINDS,
      durationMs: 20_000,
    });
    if (r.violations.length > 0 || !r.live) {
      const v = r.violations[0];
      failures.push(
        `seed ${seed}: ${
          v === undefined ? "not live" : `${v.property} ${v.message}`
        }; replay: deno task sim --seed ${seed} --nodes ${nodes} --faults all --duration 20000`,
      );
    }
  }
  assertEquals(failures, []);
});
