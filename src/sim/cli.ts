/**
 * `denosync sim`: runs the real Totem core in the deterministic simulator
 * over a range of seeds with seeded faults, checks EVS (TOTEM.md 1.3) after
 * every run, prints each violation with a trace and the command that replays
 * it, and exits 1 if any run broke an invariant.
 */
import { parseArgs } from "node:util";
import type { Violation } from "./checker.ts";
import { FAULT_KINDS, type FaultKind, parseFaults } from "./faults.ts";
import { type SimResult, simulate, type TimerProfile } from "./simulate.ts";
import { describeCpgResult, simulateCpg } from "./cpg_sim.ts";

const USAGE =
  `Usage: denosync sim [--nodes N] [--seeds S] [--seed X] [--faults LIST]
                    [--duration MS] [--profile fast|corosync] [--token MS]
                    [--consensus MS] [--verbose] [--json]

Runs the Totem SRP core on a virtual network with a virtual clock, for seeds
X .. X+S-1, with the selected faults during a safety phase of --duration ms,
then a quiet connected phase. Checks the EVS invariants E1-E12 and L1 over
every node's log; a violation prints the seed, the property, the nodes, a
trace, and the command that replays the run exactly.

Options:
  --cpg            run CPG and service sync on top of the core (clients
                   joining, sending, dying) and check the CPG guarantees;
                   takes --nodes (default 3), --seeds, --seed, --faults
  --nodes N        cluster size, 1..32 (default 5)
  --seeds S        number of seeds (default 100, or 1 with --seed)
  --seed X         first seed (default 1)
  --faults LIST    all, none, or a comma list of: ${FAULT_KINDS.join(",")}
                   (default all)
  --duration MS    safety phase length in virtual ms (default 30000)
  --profile P      fast (token 1000 ms, consensus 1200 ms; default) or
                   corosync (Corosync 3 defaults)
  --token MS       override totem.token
  --consensus MS   override totem.consensus
  --verbose        print one line per seed and every violation's trace
  --json           print one JSON object (summary and violations) on stdout
  -h, --help       show this help

Exit status: 0 if every run kept every invariant, 1 on any violation, 2 on a
usage error.`;

interface CliOptions {
  nodes: number;
  firstSeed: number;
  seeds: number;
  faults: FaultKind[];
  faultsText: string;
  durationMs: number;
  profile: TimerProfile;
  tokenMs: number | undefined;
  consensusMs: number | undefined;
  verbose: boolean;
  json: boolean;
}

function parseIntArg(
  name: string,
  raw: string,
  min: number,
  max: number,
): number {
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new RangeError(
      `--${name}: expected an integer in ${min}..${max}, got "${raw}"`,
    );
  }
  return v;
}

function parse(args: string[]): CliOptions | "help" {
  const { values } = parseArgs({
    args,
    options: {
      nodes: { type: "string", default: "5" },
      seeds: { type: "string" },
      seed: { type: "string" },
      faults: { type: "string", default: "all" },
      duration: { type: "string", default: "30000" },
      profile: { type: "string", default: "fast" },
      token: { type: "string" },
      consensus: { type: "string" },
      verbose: { type: "boolean", default: false },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return "help";
  if (values.profile !== "fast" && values.profile !== "corosync") {
    throw new RangeError(
      `--profile: expected fast or corosync, got "${values.profile}"`,
    );
  }
  const faults = parseFaults(values.faults);
  return {
    nodes: parseIntArg("nodes", values.nodes, 1, 32),
    firstSeed: values.seed === undefined
      ? 1
      : parseIntArg("seed", values.seed, 0, 0xffff_ffff),
    seeds: values.seeds !== undefined
      ? parseIntArg("seeds", values.seeds, 1, 10_000_000)
      : values.seed !== undefined
      ? 1
      : 100,
    faults,
    faultsText: faults.length === FAULT_KINDS.length
      ? "all"
      : faults.length === 0
      ? "none"
      : faults.join(","),
    durationMs: parseIntArg("duration", values.duration, 1000, 3_600_000),
    profile: values.profile,
    tokenMs: values.token === undefined
      ? undefined
      : parseIntArg("token", values.token, 30, 600_000),
    consensusMs: values.consensus === undefined
      ? undefined
      : parseIntArg("consensus", values.consensus, 30, 600_000),
    verbose: values.verbose,
    json: values.json,
  };
}

/** The command line that replays `seed` with the same options. */
export function replayCommand(o: CliOptions, seed: number): string {
  const parts = [
    "deno task sim",
    `--seed ${seed}`,
    `--nodes ${o.nodes}`,
    `--faults ${o.faultsText}`,
    `--duration ${o.durationMs}`,
  ];
  if (o.profile !== "fast") parts.push(`--profile ${o.profile}`);
  if (o.tokenMs !== undefined) parts.push(`--token ${o.tokenMs}`);
  if (o.consensusMs !== undefined) parts.push(`--consensus ${o.consensusMs}`);
  return parts.join(" ");
}

function violationJson(v: Violation, trace: string[]): Record<string, unknown> {
  return {
    property: v.property,
    message: v.message,
    nodes: v.nodes,
    msgs: v.msgs,
    trace,
  };
}

/**
 * `denosync sim --cpg`: CPG and service sync on top of the core, with the
 * CPG-level checker (same views, same order per group, S1, S2).
 */
function mainCpg(args: string[]): number {
  const { values } = parseArgs({
    args,
    options: {
      nodes: { type: "string", default: "3" },
      seeds: { type: "string" },
      seed: { type: "string" },
      faults: { type: "string", default: "all" },
    },
    strict: true,
  });
  const nodes = parseIntArg("nodes", values.nodes!, 1, 16);
  const first = values.seed === undefined
    ? 1
    : parseIntArg("seed", values.seed, 0, 0xffff_ffff);
  const count = values.seeds === undefined
    ? (values.seed === undefined ? 100 : 1)
    : parseIntArg("seeds", values.seeds, 1, 1_000_000);
  const faults = parseFaults(values.faults!);
  let failed = 0;
  for (let seed = first; seed < first + count; seed++) {
    const r = simulateCpg({ seed, nodes, faults });
    if (r.violations.length > 0) {
      failed++;
      for (const line of describeCpgResult(r)) console.log(line);
      console.log(
        `  replay: deno task sim --cpg --seed ${seed} --nodes ${nodes} --faults ${values.faults}`,
      );
    }
    if ((seed - first + 1) % 25 === 0) {
      console.error(
        `sim --cpg: ${seed - first + 1}/${count} seeds, ${failed} failed`,
      );
    }
  }
  console.log(`cpg seeds: ${count}, failed seeds: ${failed}`);
  return failed > 0 ? 1 : 0;
}

/** Entry point of `denosync sim`. */
export async function main(args: string[]): Promise<number> {
  if (args.includes("--cpg")) {
    try {
      return mainCpg(args.filter((a) => a !== "--cpg"));
    } catch (e) {
      console.error(`denosync sim --cpg: ${(e as Error).message}`);
      return 2;
    }
  }
  let o: CliOptions;
  try {
    const parsed = parse(args);
    if (parsed === "help") {
      console.log(USAGE);
      return 0;
    }
    o = parsed;
  } catch (e) {
    console.error(`denosync sim: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const totem = {
    ...(o.tokenMs === undefined ? {} : { tokenMs: o.tokenMs }),
    ...(o.consensusMs === undefined ? {} : { consensusMs: o.consensusMs }),
  };
  const started = performance.now();
  let violations = 0;
  let failedSeeds = 0;
  let live = 0;
  let ordered = 0;
  let virtualMs = 0;
  let maxSettleMs = 0;
  const failures: Record<string, unknown>[] = [];
  const progressEvery = 25;
  for (let k = 0; k < o.seeds; k++) {
    const seed = (o.firstSeed + k) >>> 0;
    let result: SimResult;
    try {
      result = simulate({
        seed,
        nodes: o.nodes,
        faults: o.faults,
        durationMs: o.durationMs,
        profile: o.profile,
        totem,
      });
    } catch (e) {
      // An assertion inside the core or the simulator is a bug: report it
      // with the replay command, as a violation of its own.
      violations++;
      failedSeeds++;
      const message = e instanceof Error
        ? `${e.name}: ${e.message}`
        : String(e);
      failures.push({ seed, replay: replayCommand(o, seed), crash: message });
      if (!o.json) {
        console.log(`seed ${seed}: the run threw ${message}`);
        if (e instanceof Error && e.stack) {
          console.log(e.stack.split("\n").slice(1, 8).join("\n"));
        }
        console.log(`  replay: ${replayCommand(o, seed)}`);
      }
      continue;
    }
    const s = result.stats;
    virtualMs += s.virtualMs;
    ordered += s.ordered;
    if (result.live) live++;
    if (s.settleMs !== null) maxSettleMs = Math.max(maxSettleMs, s.settleMs);
    if (o.verbose && !o.json) {
      console.log(
        `seed ${seed}: violations ${result.violations.length}, live ${result.live}, submitted ${s.submitted}, ordered ${s.ordered}, rings ${s.regularConfigs}, crashes ${s.crashes}, pauses ${s.pauses}, dropped ${s.dropped}/${s.datagrams}, settle ${
          s.settleMs?.toFixed(0)
        }ms, hash ${s.historyHash}`,
      );
    }
    if (result.violations.length > 0) {
      violations += result.violations.length;
      failedSeeds++;
      failures.push({
        seed,
        replay: replayCommand(o, seed),
        violations: result.violations.map((v, i) =>
          violationJson(v, result.traces[i])
        ),
      });
      if (!o.json) {
        console.log(`seed ${seed}: ${result.violations.length} violation(s)`);
        result.violations.forEach((v, i) => {
          console.log(
            `  ${v.property} [nodes ${v.nodes.join(",")}] ${v.message}`,
          );
          if (i === 0 || o.verbose) {
            console.log("    trace:");
            for (const line of result.traces[i]) console.log(`      ${line}`);
          }
        });
        console.log(`  replay: ${replayCommand(o, seed)}`);
      }
    }
    if (
      o.seeds > progressEvery && (k + 1) % progressEvery === 0 &&
      k + 1 < o.seeds
    ) {
      const wall = (performance.now() - started) / 1000;
      console.error(
        `sim: ${k + 1}/${o.seeds} seeds, ${violations} violation(s), ${
          wall.toFixed(1)
        }s`,
      );
    }
  }
  const wallS = (performance.now() - started) / 1000;
  if (o.json) {
    console.log(JSON.stringify({
      nodes: o.nodes,
      firstSeed: o.firstSeed,
      seeds: o.seeds,
      faults: o.faultsText,
      durationMs: o.durationMs,
      profile: o.profile,
      violations,
      failedSeeds,
      live,
      ordered,
      virtualMs,
      maxSettleMs,
      wallMs: Math.round(wallS * 1000),
      failures,
    }));
  } else {
    console.log(
      `seeds: ${o.seeds}, violations: ${violations}, live: ${live}/${o.seeds}, messages delivered: ${ordered}, virtual: ${
        (virtualMs / 1000).toFixed(1)
      }s, wall: ${wallS.toFixed(1)}s`,
    );
  }
  // Keep the signature async for the dispatcher; nothing here awaits.
  await Promise.resolve();
  return violations > 0 ? 1 : 0;
}
