// Seed sweeps of the real Totem core under every fault kind (TOTEM.md 9.2).
// SIM_SEEDS sets the number of seeds of the main sweeps (default 100; the
// smaller sweeps scale with it); SIM_SEED sets the first seed. A failure prints the command that replays it.
import { FAULT_KINDS } from "../../src/sim/faults.ts";
import {
  type SimOptions,
  type SimResult,
  simulate,
} from "../../src/sim/simulate.ts";

function envInt(name: string, fallback: number): number {
  const raw = Deno.env.get(name);
  const v = raw === undefined ? NaN : Number(raw);
  return Number.isInteger(v) && v >= 0 ? v : fallback;
}

/**
 * Seeds of one sweep: `share` of SIM_SEEDS (default 100) seeds, at least
 * one, starting at SIM_SEED (default 1).
 */
function seedsFromEnv(share: number): number[] {
  const n = Math.max(1, Math.round(envInt("SIM_SEEDS", 100) * share));
  const first = envInt("SIM_SEED", 1);
  return Array.from({ length: n }, (_, k) => first + k);
}

function describe(r: SimResult, replay: string): string {
  const lines = [
    `seed ${r.seed}: ${r.violations.length} violation(s); replay: ${replay}`,
  ];
  r.violations.slice(0, 6).forEach((v, i) => {
    lines.push(`  ${v.property} [nodes ${v.nodes.join(",")}] ${v.message}`);
    if (i === 0) { for (const t of r.traces[i]) lines.push(`      ${t}`); }
  });
  return lines.join("\n");
}

function sweep(
  options: Omit<SimOptions, "seed">,
  seeds: number[],
  replayArgs: string,
): void {
  const failures: string[] = [];
  for (const seed of seeds) {
    let r: SimResult;
    try {
      r = simulate({ ...options, seed });
    } catch (e) {
      failures.push(
        `seed ${seed}: threw ${
          (e as Error).stack
        }\n  replay: deno task sim --seed ${seed} ${replayArgs}`,
      );
      continue;
    }
    if (r.violations.length > 0) {
      failures.push(describe(r, `deno task sim --seed ${seed} ${replayArgs}`));
    }
  }
  if (failures.length > 0) {
    throw new Error(
      `${failures.length}/${seeds.length} seeds broke EVS:\n${
        failures.join("\n")
      }`,
    );
  }
}

Deno.test("srp keeps EVS with 3 nodes under all faults", () => {
  sweep(
    { nodes: 3, faults: FAULT_KINDS, durationMs: 30_000 },
    seedsFromEnv(1),
    "--nodes 3 --faults all --duration 30000",
  );
});

Deno.test("srp keeps EVS with 5 nodes under all faults", () => {
  sweep(
    { nodes: 5, faults: FAULT_KINDS, durationMs: 30_000 },
    seedsFromEnv(1),
    "--nodes 5 --faults all --duration 30000",
  );
});

Deno.test("srp keeps EVS with 2 nodes under all faults", () => {
  sweep(
    { nodes: 2, faults: FAULT_KINDS, durationMs: 30_000 },
    seedsFromEnv(0.5),
    "--nodes 2 --faults all --duration 30000",
  );
});

Deno.test("srp keeps EVS with 7 nodes under all faults", () => {
  sweep(
    { nodes: 7, faults: FAULT_KINDS, durationMs: 30_000 },
    seedsFromEnv(0.2),
    "--nodes 7 --faults all --duration 30000",
  );
});

Deno.test("srp keeps EVS with 4 nodes under crashes and partitions only", () => {
  sweep(
    {
      nodes: 4,
      faults: ["partition", "oneway", "crash", "pause"],
      durationMs: 30_000,
    },
    seedsFromEnv(0.4),
    "--nodes 4 --faults partition,oneway,crash,pause --duration 30000",
  );
});

Deno.test("srp keeps EVS with Corosync default timers", () => {
  sweep(
    { nodes: 5, faults: FAULT_KINDS, durationMs: 60_000, profile: "corosync" },
    seedsFromEnv(0.12),
    "--nodes 5 --faults all --duration 60000 --profile corosync",
  );
});
