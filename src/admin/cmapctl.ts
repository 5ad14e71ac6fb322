/**
 * `denosync cmapctl`: placeholder until it can be built on the IPC server and the cmap engine.
 * It answers `--help` and otherwise refuses with exit code 2.
 *
 * @module
 */
import { notBuilt } from "./_not_built.ts";

const USAGE = `Usage: denosync cmapctl [options] [PREFIX]

Read, write and track the cmap database, like corosync-cmapctl.

Planned options (not implemented yet):
  (none)             print every key, or every key under PREFIX
  -g KEY             get one key
  -s KEY TYPE VALUE  set a key (TYPE: i8 u8 i16 u16 i32 u32 i64 u64 flt dbl str bin)
  -d KEY             delete a key
  -D PREFIX          delete every key under PREFIX
  -t KEY             track changes of a key
  -T PREFIX          track changes under PREFIX
  -m MAP             use map icmap (default) or stats
  --json             machine-readable output
  -h, --help         show this help
`;

/** Entry point of `denosync cmapctl`; resolves to the exit code. */
export function main(args: string[]): Promise<number> {
  return notBuilt({
    name: "cmapctl",
    usage: USAGE,
    needs: "needs the cmap engine; see issue #5",
  }, args);
}
