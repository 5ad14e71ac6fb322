/**
 * `denosync run`: placeholder until it can be built on the UDP transport, the IPC server and the engines.
 * It answers `--help` and otherwise refuses with exit code 2.
 *
 * @module
 */
import { parseArgs } from "node:util";

const USAGE = `Usage: denosync run [options]

Run the node daemon.

Planned options (not implemented yet):
  -c FILE      configuration file: corosync.conf syntax, or YAML (.yaml/.yml)
               (default /etc/corosync/corosync.conf)
  -f           stay in the foreground
  -h, --help   show this help
`;

/** Entry point of `denosync run`; resolves to the exit code. */
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
    "denosync run: not built yet (needs the IPC server and engines; see issue #4/#5/#6)",
  );
  return Promise.resolve(2);
}
