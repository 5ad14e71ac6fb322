/**
 * `denosync bench`: placeholder until it can be built on a running cluster with the IPC server and the cpg engine.
 * It answers `--help` and otherwise refuses with exit code 2.
 *
 * @module
 */
import { parseArgs } from "node:util";

const USAGE = `Usage: denosync bench [options]

Measure CPG throughput and latency against a running cluster.

Planned options (not implemented yet):
  --size BYTES       message size
  --duration SEC     how long to send
  --group NAME       CPG group to use
  --json             machine-readable output
  -h, --help         show this help
`;

/** Entry point of `denosync bench`; resolves to the exit code. */
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
    "denosync bench: not built yet (needs the IPC server and engines; see issue #4/#5/#6)",
  );
  return Promise.resolve(2);
}
