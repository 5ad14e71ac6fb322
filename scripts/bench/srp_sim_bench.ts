/**
 * Throughput of the Totem SRP core in the deterministic simulator: 3 and 5
 * nodes, 1 KiB messages, no faults, every node submitting as fast as the
 * send queue allows. Reports messages ordered (delivered at every node) per
 * second of CPU time; the simulator's own work (event queue, virtual network,
 * history) is included, the EVS check is not.
 *
 * `deno bench -A scripts/bench/srp_sim_bench.ts` runs it under `deno bench`;
 * `deno run -A scripts/bench/srp_sim_bench.ts [virtual-seconds]` prints
 * messages per CPU second directly.
 *
 * @module
 */
import { cpuUsage } from "node:process";
import { Simulation } from "../../src/sim/simulate.ts";

/** Payload bytes per message: 12-byte message id plus padding. */
const MESSAGE_BYTES = 1024;

/** Runs `virtualMs` of saturated traffic; returns messages delivered at every node. */
export function saturatedRun(
  nodes: number,
  virtualMs: number,
  seed = 1,
): number {
  const sim = new Simulation({
    seed,
    nodes,
    durationMs: virtualMs,
    noQuietPhase: true,
    maxEvents: Infinity,
    app: {
      intervalMs: 1,
      safeRatio: 0,
      padBytes: [MESSAGE_BYTES - 12, MESSAGE_BYTES - 12],
      burstP: 1,
      burstSize: 64,
    },
  });
  sim.runUntil(virtualMs);
  if (sim.aborted !== null) throw new Error(sim.aborted);
  let ordered = Infinity;
  for (const host of sim.hosts.values()) {
    ordered = Math.min(ordered, host.stats.delivered);
  }
  return ordered;
}

for (const nodes of [3, 5]) {
  Deno.bench(`srp sim: ${nodes} nodes, 1 KiB messages, 1 s virtual`, {
    group: "srp_sim",
  }, () => {
    saturatedRun(nodes, 1000);
  });
}

if (import.meta.main) {
  const virtualMs = 1000 * Number(Deno.args[0] ?? "5");
  for (const nodes of [3, 5]) {
    const before = cpuUsage();
    const ordered = saturatedRun(nodes, virtualMs);
    const used = cpuUsage(before);
    const cpuS = (used.user + used.system) / 1e6;
    console.log(
      `${nodes} nodes: ${ordered} messages of ${MESSAGE_BYTES} B ordered in ${
        virtualMs / 1000
      }s virtual, ${cpuS.toFixed(2)}s CPU: ${
        Math.round(ordered / cpuS)
      } msgs/CPU-s (${
        (ordered / (virtualMs / 1000)).toFixed(0)
      } msgs/virtual-s)`,
    );
  }
}
