/**
 * `denosync quorumtool`: placeholder until it can be built on the IPC server and the votequorum engine.
 * It answers `--help` and otherwise refuses with exit code 2.
 *
 * @module
 */
import { notBuilt } from "./_not_built.ts";

const USAGE = `Usage: denosync quorumtool [options]

Show quorum and votes, like corosync-quorumtool.

Planned options (not implemented yet):
  -s           show quorum status (default)
  -m           monitor quorum status until interrupted
  -l           list the nodes and their votes
  -e VOTES     change the number of expected votes
  -v VOTES     change the votes of a node (with -n NODEID)
  -n NODEID    the node for -v
  --json       machine-readable output
  -h, --help   show this help
`;

/** Entry point of `denosync quorumtool`; resolves to the exit code. */
export function main(args: string[]): Promise<number> {
  return notBuilt({
    name: "quorumtool",
    usage: USAGE,
    needs: "needs the votequorum engine; see issue #5",
  }, args);
}
