/**
 * `denosync cfgtool`: placeholder until it can be built on the IPC server and the cfg engine.
 * It answers `--help` and otherwise refuses with exit code 2.
 *
 * @module
 */
import { notBuilt } from "./_not_built.ts";

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
  return notBuilt({
    name: "cfgtool",
    usage: USAGE,
    needs: "needs the cfg engine; see issue #5",
  }, args);
}
