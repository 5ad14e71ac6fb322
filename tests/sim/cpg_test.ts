// CPG on the real Totem core, packing layer and executive under faults
// (src/sim/cpg_sim.ts, checks in src/sim/cpg_checker.ts: virtual synchrony
// per group, S1, S2, no client traffic during sync, liveness).
// SIM_SEEDS scales the sweeps (default 100; each sweep takes a share of
// it); SIM_SEED sets the first seed. A failure prints the seed and how to
// replay it.
import assert from "node:assert/strict";
import {
  type CpgSimOptions,
  type CpgSimResult,
  describeCpgResult,
  simulateCpg,
} from "../../src/sim/cpg_sim.ts";
import { FAULT_KINDS } from "../../src/sim/faults.ts";

function envInt(name: string, fallback: number): number {
  const raw = Deno.env.get(name);
  const v = raw === undefined ? NaN : Number(raw);
  return Number.isInteger(v) && v >= 0 ? v : fallback;
}

/** `share` of SIM_SEEDS (default 100) seeds, at least one, from SIM_SEED (default 1). */
function seedsFromEnv(share: number): number[] {
  const n = Math.max(1, Math.round(envInt("SIM_SEEDS", 100) * share));
  const first = envInt("SIM_SEED", 1);
  return Array.from({ length: n }, (_, k) => first + k);
}

function sweep(
  name: string,
  options: Omit<CpgSimOptions, "seed">,
  seeds: number[],
  filter: (property: string) => boolean = () => true,
): CpgSimResult[] {
  const failures: string[] = [];
  const results: CpgSimResult[] = [];
  for (const seed of seeds) {
    const r = simulateCpg({ ...options, seed });
    results.push(r);
    const bad = r.violations.filter((v) => filter(v.property));
    if (bad.length > 0) {
      failures.push(
        [
          ...describeCpgResult({ ...r, violations: bad }),
          `  replay: SIM_SEED=${seed} SIM_SEEDS=1 deno test -A tests/sim/cpg_test.ts --filter "${name}"`,
        ].join("\n"),
      );
      if (failures.length >= 3) break;
    }
  }
  assert.equal(failures.length, 0, failures.join("\n\n"));
  return results;
}

Deno.test("cpg keeps virtual synchrony, S1 and S2 under every fault, 3 nodes", () => {
  sweep("3 nodes", { nodes: 3, faults: FAULT_KINDS }, seedsFromEnv(0.8));
});

Deno.test("cpg keeps virtual synchrony, S1 and S2 under every fault, 4 nodes", () => {
  const results = sweep(
    "4 nodes",
    { nodes: 4, faults: FAULT_KINDS },
    seedsFromEnv(1),
  );
  // The sweep must really exercise the paths it claims to check.
  const total = (k: keyof CpgSimResult["stats"]) =>
    results.reduce((s, r) => s + r.stats[k], 0);
  assert.ok(total("crashes") > 0 && total("syncs") > results.length * 4);
  assert.ok(
    total("views") > 0 && total("deliveries") > 0 && total("tryAgain") > 0,
  );
});

Deno.test("cpg keeps virtual synchrony, S1 and S2 under every fault, 2 nodes", () => {
  sweep("2 nodes", { nodes: 2, faults: FAULT_KINDS }, seedsFromEnv(0.3));
});

Deno.test("cpg keeps virtual synchrony, S1 and S2 under every fault, 5 nodes", () => {
  sweep("5 nodes", { nodes: 5, faults: FAULT_KINDS }, seedsFromEnv(0.4));
});

Deno.test("cpg liveness with 5 nodes on seeds where the core once livelocked", () => {
  // After the faults stopped, the cluster split in two halves re-forming
  // rings every ~12 ms: one node never left RECOVERY, its partners'
  // joins aborted it, and its stale fail set made the other half fail it
  // again and again. Fixed in srp.ts (a join from a member that installed
  // the ring we recover resets our sets as installation would).
  const seeds = [
    5,
    8,
    315,
    444,
    455,
    491,
    512,
    1032,
    1052,
    1176,
    1201,
    1291,
    7208,
    7250,
    7269,
  ];
  for (const seed of seeds) {
    sweep("5 nodes liveness", { nodes: 5, faults: FAULT_KINDS }, [seed]);
  }
});

Deno.test("cpg stays correct when the send queue is tiny (backlog and TRY_AGAIN paths)", () => {
  const results = sweep(
    "tiny send queue",
    {
      nodes: 4,
      faults: FAULT_KINDS,
      totem: { sendQueueFramesMax: 4 },
      clientIntervalMs: 20,
    },
    seedsFromEnv(0.15),
  );
  assert.ok(
    results.some((r) => r.stats.backlogged > 0),
    "no multicast ever waited for room",
  );
});

Deno.test("cpg simulation is deterministic for a seed", () => {
  const a = simulateCpg({
    seed: 42,
    nodes: 4,
    faults: FAULT_KINDS,
    durationMs: 6000,
  });
  const b = simulateCpg({
    seed: 42,
    nodes: 4,
    faults: FAULT_KINDS,
    durationMs: 6000,
  });
  assert.deepEqual(a.stats, b.stats);
  assert.deepEqual(JSON.stringify(a.conns), JSON.stringify(b.conns));
  assert.deepEqual(a.syncs, b.syncs);
});

Deno.test("cpg without faults: every client sees every message of its group, in one order", () => {
  const [r] = sweep("no faults", { nodes: 4 }, [7]);
  assert.equal(r.stats.crashes, 0);
  assert.ok(r.stats.accepted > 500 && r.stats.tryAgain === 0);
});
