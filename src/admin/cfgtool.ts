/**
 * `denosync cfgtool`: placeholder until it can be built on the IPC server and the cfg engine.
 * It answers `--help` and otherwise refuses with exit code 2.
 *
 * @module
 */
import { parseArgs } from "node:util";

const USAGE = `Usage: denosync cfgtool [options]

Show and steer the rings of the local node, like corosync-cfgtool.

Planned options (not implemented yet):
  -s           show link status of this node
  -n           show the nodes this node sees, with link status
  -a NODEID    show the addresses of a node
  -R           tell every node to reload its configuration
  -L           reopen the log files
  -k NODEID    kill a node
  -H           shut down this node's daemon
  --json       machine-readable output
  -h, --help   show this help
`;

/** Entry point of `denosync cfgtool`; resolves to the exit code. */
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
    "denosync cfgtool: not built yet (needs the IPC server and engines; see issue #4/#5/#6)",
  );
  return Promise.resolve(2);
}
