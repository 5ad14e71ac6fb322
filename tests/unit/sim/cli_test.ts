// `denosync sim` and the narrated simulator demo: exit codes and output.
import {
  deepStrictEqual as assertEquals,
  ok as assert,
} from "node:assert/strict";
import { main as simMain } from "../../../src/sim/cli.ts";
import { main as demoMain } from "../../../src/sim/demo.ts";

async function capture(
  run: () => Promise<number>,
): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = console.log;
  const error = console.error;
  console.log = (...a: unknown[]) => out.push(a.join(" "));
  console.error = (...a: unknown[]) => err.push(a.join(" "));
  try {
    const code = await run();
    return { code, out: out.join("\n"), err: err.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

Deno.test("denosync sim runs seeds and prints the summary line", async () => {
  const r = await capture(() =>
    simMain([
      "--nodes",
      "3",
      "--seeds",
      "2",
      "--seed",
      "7",
      "--duration",
      "4000",
      "--faults",
      "loss,crash",
    ])
  );
  assertEquals(r.code, 0, r.out);
  assert(
    /^seeds: 2, violations: 0, live: 2\/2, messages delivered: \d+, virtual: [\d.]+s, wall: [\d.]+s$/m
      .test(r.out),
    r.out,
  );
});

Deno.test("denosync sim --json prints one JSON summary", async () => {
  const r = await capture(() =>
    simMain(["--nodes", "2", "--seed", "3", "--duration", "3000", "--json"])
  );
  assertEquals(r.code, 0);
  const summary = JSON.parse(r.out);
  assertEquals(summary.seeds, 1);
  assertEquals(summary.firstSeed, 3);
  assertEquals(summary.violations, 0);
  assertEquals(summary.faults, "all");
});

Deno.test("denosync sim rejects bad options with exit code 2", async () => {
  for (
    const args of [["--faults", "meteor"], ["--nodes", "0"], [
      "--profile",
      "slow",
    ], ["--bogus"]]
  ) {
    const r = await capture(() => simMain(args));
    assertEquals(r.code, 2, args.join(" "));
    assert(r.err.includes("denosync sim:"), r.err);
  }
  assertEquals((await capture(() => simMain(["--help"]))).code, 0);
});

Deno.test("simulator demo narrates rings and faults and ends with violations: 0", async () => {
  const r = await capture(() => demoMain(["--duration", "6", "--seed", "2"]));
  assertEquals(r.code, 0, r.out);
  assert(/ring \d+\.\d+ formed: members \[1, 2, 3, 4, 5\]/.test(r.out), r.out);
  assert(r.out.trimEnd().endsWith("violations: 0"), r.out);
});
