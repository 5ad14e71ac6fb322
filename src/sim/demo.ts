/**
 * A narrated simulator run: a 5-node cluster on the virtual network with
 * crashes, partitions, loss, pauses and token loss. It prints every ring as
 * it forms (ring id and members), every fault as it strikes, running delivery
 * counts, and finally the EVS check (`violations: 0`). Everything is derived
 * from `--seed`, so a run can be repeated exactly.
 */
import { parseArgs } from "node:util";
import { parseFaults } from "./faults.ts";
import type { HistoryEntry } from "./history.ts";
import { Simulation } from "./simulate.ts";

const USAGE =
  `Usage: denosync sim-demo [--duration SECONDS] [--seed N] [--nodes N]
                         [--faults LIST] [--speed X]

Runs a narrated simulation of a cluster under faults and checks the EVS
invariants at the end.

Options:
  --duration SECONDS  virtual length of the fault phase (default 30)
  --seed N            seed of the whole run (default 1)
  --nodes N           cluster size, 2..16 (default 5)
  --faults LIST       fault kinds (default crash,partition,loss,pause,tokenloss)
  --speed X           pace the narration at X times real time (default 0:
                      as fast as possible)
  -h, --help          show this help`;

function stamp(ms: number): string {
  return `[${(ms / 1000).toFixed(2).padStart(7)}s]`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Entry point of the narrated simulator demo. */
export async function main(args: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        duration: { type: "string", default: "30" },
        seed: { type: "string", default: "1" },
        nodes: { type: "string", default: "5" },
        faults: {
          type: "string",
          default: "crash,partition,loss,pause,tokenloss",
        },
        speed: { type: "string", default: "0" },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    console.error(`denosync sim-demo: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const durationS = Number(values.duration);
  const seed = Number(values.seed);
  const nodes = Number(values.nodes);
  const speed = Number(values.speed);
  let faults;
  try {
    faults = parseFaults(values.faults);
    if (!(durationS >= 1 && durationS <= 3600)) {
      throw new RangeError(
        `--duration: expected 1..3600 seconds, got "${values.duration}"`,
      );
    }
    if (!Number.isInteger(seed) || seed < 0) {
      throw new RangeError(
        `--seed: expected a non-negative integer, got "${values.seed}"`,
      );
    }
    if (!Number.isInteger(nodes) || nodes < 2 || nodes > 16) {
      throw new RangeError(`--nodes: expected 2..16, got "${values.nodes}"`);
    }
    if (!(speed >= 0)) {
      throw new RangeError(
        `--speed: expected a number >= 0, got "${values.speed}"`,
      );
    }
  } catch (e) {
    console.error(`denosync sim-demo: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }

  const seenRings = new Set<string>();
  let rings = 0;
  let faultCount = 0;
  const narrate = (node: number | null, e: HistoryEntry): void => {
    switch (e.kind) {
      case "fault":
        // Plain crashes and restarts are narrated by the network note and
        // the "back up" line; crash points and everything else are shown.
        if (
          node !== null &&
          (e.text === "crash" || e.text.startsWith("restart ("))
        ) break;
        faultCount++;
        console.log(
          `${stamp(e.t)} ${
            node === null ? "network" : `node ${node}`
          }: ${e.text}`,
        );
        break;
      case "start":
        if (e.inc > 1) {
          console.log(
            `${
              stamp(e.t)
            } node ${node}: back up (incarnation ${e.inc}, ring-seq file ${e.storage})`,
          );
        }
        break;
      case "pause":
        console.log(`${stamp(e.t)} node ${node}: process paused`);
        break;
      case "resume":
        console.log(`${stamp(e.t)} node ${node}: process resumed`);
        break;
      case "confchg": {
        if (e.type !== "REG") break;
        const key = `${e.ringId.rep}.${e.ringId.seq}/${e.members.join(",")}`;
        if (seenRings.has(key)) break;
        seenRings.add(key);
        rings++;
        console.log(
          `${
            stamp(e.t)
          } ring ${e.ringId.rep}.${e.ringId.seq} formed: members [${
            e.members.join(", ")
          }]${e.members.length === nodes ? " (whole cluster)" : ""}`,
        );
        break;
      }
      default:
        break;
    }
  };

  const sim = new Simulation({
    seed,
    nodes,
    faults,
    durationMs: durationS * 1000,
    observer: narrate,
  });
  console.log(
    `denosync simulator demo: ${nodes} nodes, seed ${seed}, faults ${
      faults.join(",") || "none"
    }, ${durationS}s of faults then a quiet phase (token ${sim.config.tokenMs} ms, consensus ${sim.config.consensusMs} ms)`,
  );
  const stepMs = 5000;
  for (let t = stepMs; t < sim.endMs; t += stepMs) {
    sim.runUntil(t);
    const counts = [...sim.hosts.values()].map((h) =>
      `n${h.id} ${h.up ? h.stats.delivered : "down"}`
    );
    console.log(`${stamp(t)} deliveries so far: ${counts.join(", ")}`);
    if (speed > 0) await sleep(stepMs / speed);
  }
  const result = sim.run();
  const s = result.stats;
  const distinct = new Set<string>();
  for (const log of result.history.logs.values()) {
    for (const e of log) {
      if (e.kind === "deliver" && e.msg !== null) distinct.add(e.msg);
    }
  }
  console.log(
    `${
      stamp(s.virtualMs)
    } done: ${rings} ring(s) formed, ${faultCount} fault event(s), ${s.crashes} crash(es), ${s.submitted} messages submitted, ${distinct.size} delivered (${s.deliveries} deliveries), checked against EVS`,
  );
  for (const v of result.violations) {
    console.log(`  ${v.property} [nodes ${v.nodes.join(",")}] ${v.message}`);
  }
  console.log(`violations: ${result.violations.length}`);
  if (result.violations.length > 0) {
    console.log(
      `replay: deno task sim --seed ${seed} --nodes ${nodes} --faults ${
        faults.join(",")
      } --duration ${durationS * 1000}`,
    );
  }
  return result.violations.length === 0 ? 0 : 1;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
