/**
 * `denosync bench`: placeholder until it can be built on a running cluster with the IPC server and the cpg engine.
 * It answers `--help` and otherwise refuses with exit code 2.
 *
 * @module
 */
import { notBuilt } from "../admin/_not_built.ts";

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
  return notBuilt({
    name: "bench",
    usage: USAGE,
    needs: "see issue #6; scripts/cpg_bench.ts measures CPG meanwhile",
  }, args);
}
