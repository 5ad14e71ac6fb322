import { ok as check } from "node:assert/strict";
import { permissionFlags } from "../../scripts/compile.ts";

const ROOT = new URL("../../", import.meta.url);
const SUBCOMMANDS = [
  "run",
  "demo",
  "sim",
  "cfgtool",
  "cmapctl",
  "quorumtool",
  "cpgtool",
  "keygen",
  "bench",
];

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `deno run [flags] main.ts ...args` from the repository root. */
async function denosync(args: string[], flags: string[] = []): Promise<Result> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...flags, "main.ts", ...args],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const decoder = new TextDecoder();
  return {
    code: out.code,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
  };
}

function show(r: Result): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;
}

async function productFlags(): Promise<string[]> {
  const config = JSON.parse(
    await Deno.readTextFile(new URL("deno.json", ROOT)),
  );
  return permissionFlags(config.tasks.denosync.command);
}

Deno.test("main --help lists every subcommand and exits 0", async () => {
  for (const flag of ["--help", "-h"]) {
    const r = await denosync([flag]);
    check(r.code === 0, show(r));
    check(r.stdout.includes("Usage: denosync <subcommand>"), show(r));
    for (const name of SUBCOMMANDS) {
      check(
        new RegExp(`^  ${name} `, "m").test(r.stdout),
        `${name} missing:\n${show(r)}`,
      );
    }
  }
});

Deno.test("main --version prints the version and exits 0", async () => {
  const r = await denosync(["--version"]);
  check(r.code === 0, show(r));
  check(/^denosync \d+\.\d+\.\d+ \(deno /.test(r.stdout), show(r));
});

Deno.test("main rejects an unknown subcommand with usage and exit 2", async () => {
  const r = await denosync(["frobnicate", "--x"]);
  check(r.code === 2, show(r));
  check(r.stderr.includes('unknown subcommand "frobnicate"'), show(r));
  check(r.stderr.includes("Usage: denosync"), show(r));
  check(r.stdout === "", show(r));
});

Deno.test("main rejects a missing subcommand and unknown global options with exit 2", async () => {
  const missing = await denosync([]);
  check(missing.code === 2, show(missing));
  check(missing.stderr.includes("missing subcommand"), show(missing));
  const unknown = await denosync(["--bogus", "run"]);
  check(unknown.code === 2, show(unknown));
  check(unknown.stderr.includes("--bogus"), show(unknown));
});

Deno.test("every subcommand answers --help with usage and exit 0 under the product permissions", async () => {
  const flags = await productFlags();
  const results = await Promise.all(
    SUBCOMMANDS.map(async (name) => ({
      name,
      r: await denosync([name, "--help"], flags),
    })),
  );
  const failures = results
    .filter(({ r }) => r.code !== 0 || !/usage/i.test(r.stdout))
    .map(({ name, r }) => `denosync ${name} --help: ${show(r)}`);
  check(failures.length === 0, failures.join("\n"));
  // `denosync help NAME` is the same as `denosync NAME --help`.
  const viaHelp = await denosync(["help", "cfgtool"], flags);
  check(viaHelp.code === 0 && /usage/i.test(viaHelp.stdout), show(viaHelp));
});
