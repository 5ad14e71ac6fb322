/**
 * `denosync cpgtool`: placeholder until it can be built on the IPC server and the cpg engine.
 * It answers `--help` and otherwise refuses with exit code 2.
 *
 * @module
 */
import { parseArgs } from "node:util";

const USAGE = `Usage: denosync cpgtool [options]

List the process groups and their members, like corosync-cpgtool.

Planned options (not implemented yet):
  -e           show only the group names
  -n           show the members' node ids only
  -d DELIM     separate fields with DELIM
  --json       machine-readable output
  -h, --help   show this help
`;

/** Entry point of `denosync cpgtool`; resolves to the exit code. */
export function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { help: { type: "boolean", short: "h" } },
    strict: false,
    allowPositionals: true,
  });
  if (values.help) {
    console.log(USAGE);
    return Promise.resolve(0);
  }
  console.error(
    "denosync cpgtool: not built yet (needs the IPC server and engines; see issue #4/#5/#6)",
  );
  return Promise.resolve(2);
}
