/**
 * denosync: one binary, many subcommands. This file only dispatches: every
 * subcommand lives in its own module, loaded on demand, whose `main(args)`
 * resolves to the process exit code (ARCHITECTURE.md, "Product surface").
 *
 * @module
 */
import { parseArgs } from "node:util";

/** The product version printed by `denosync --version`. */
export const VERSION = "0.1.0";

/** What a subcommand module exports. */
export interface SubcommandModule {
  /** Runs the subcommand with the arguments after its name; resolves to the exit code. */
  main(args: string[]): Promise<number>;
}

/** One row of the dispatch table. */
export interface Subcommand {
  readonly name: string;
  readonly summary: string;
  readonly load: () => Promise<SubcommandModule>;
}

// Import specifiers stay string literals so that `deno check` type-checks
// every subcommand and `deno compile` bundles them all.
/** Every subcommand, in the order `--help` lists them. */
export const SUBCOMMANDS: readonly Subcommand[] = [
  {
    name: "run",
    summary: "run the node daemon (corosync.conf or YAML config)",
    load: () => import("./src/daemon/cli.ts"),
  },
  {
    name: "demo",
    summary: "show a small cluster forming, losing a node and re-forming",
    load: () => import("./src/demo/cli.ts"),
  },
  {
    name: "sim",
    summary: "deterministic simulator: run Totem under faults, check EVS",
    load: () => import("./src/sim/cli.ts"),
  },
  {
    name: "cfgtool",
    summary: "show and steer ring status (like corosync-cfgtool)",
    load: () => import("./src/admin/cfgtool.ts"),
  },
  {
    name: "cmapctl",
    summary: "read, write and track the cmap database (like corosync-cmapctl)",
    load: () => import("./src/admin/cmapctl.ts"),
  },
  {
    name: "quorumtool",
    summary: "show quorum and votes (like corosync-quorumtool)",
    load: () => import("./src/admin/quorumtool.ts"),
  },
  {
    name: "cpgtool",
    summary: "list process groups and members (like corosync-cpgtool)",
    load: () => import("./src/admin/cpgtool.ts"),
  },
  {
    name: "keygen",
    summary: "create the cluster authentication key (like corosync-keygen)",
    load: () => import("./src/admin/keygen.ts"),
  },
  {
    name: "bench",
    summary: "CPG throughput and latency benchmark against a running cluster",
    load: () => import("./src/bench/cli.ts"),
  },
];

/** The top-level usage text. */
export function usage(): string {
  const width = Math.max(...SUBCOMMANDS.map((s) => s.name.length));
  const rows = SUBCOMMANDS.map((s) =>
    `  ${s.name.padEnd(width)}  ${s.summary}`
  );
  return [
    "Usage: denosync <subcommand> [options]",
    "       denosync --help | --version",
    "",
    "Subcommands:",
    ...rows,
    "",
    "Options:",
    "  -h, --help     show this help; `denosync <subcommand> --help` for one subcommand",
    "  -V, --version  print the version",
    "",
  ].join("\n");
}

/**
 * Dispatches `args` (the process arguments) and resolves to the exit code:
 * 0 for success, 2 for a usage error, otherwise whatever the subcommand says.
 */
export async function main(args: string[]): Promise<number> {
  // Global options are the ones before the subcommand name; everything after
  // it belongs to the subcommand, which parses its own flags.
  const split = args.findIndex((arg) => !arg.startsWith("-"));
  const globalArgs = split === -1 ? args : args.slice(0, split);
  const rest = split === -1 ? [] : args.slice(split);

  let values: { help?: boolean; version?: boolean };
  try {
    ({ values } = parseArgs({
      args: globalArgs,
      options: {
        help: { type: "boolean", short: "h" },
        version: { type: "boolean", short: "V" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    return usageError(error instanceof Error ? error.message : String(error));
  }
  if (values.help) {
    console.log(usage());
    return 0;
  }
  if (values.version) {
    console.log(`denosync ${VERSION} (deno ${Deno.version.deno})`);
    return 0;
  }
  if (rest.length === 0) {
    return usageError("missing subcommand");
  }

  const [name, ...subArgs] = rest;
  if (name === "help") {
    // `denosync help cfgtool` is `denosync cfgtool --help`.
    if (subArgs.length === 0) {
      console.log(usage());
      return 0;
    }
    return await dispatch(subArgs[0], ["--help"]);
  }
  return await dispatch(name, subArgs);
}

async function dispatch(name: string, args: string[]): Promise<number> {
  const subcommand = SUBCOMMANDS.find((s) => s.name === name);
  if (subcommand === undefined) {
    return usageError(`unknown subcommand "${name}"`);
  }
  const module = await subcommand.load();
  return await module.main(args);
}

function usageError(message: string): number {
  console.error(`denosync: ${message}\n`);
  console.error(usage());
  return 2;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
