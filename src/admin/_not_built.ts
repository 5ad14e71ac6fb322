/**
 * The shared body of subcommands that exist only as a plan: `--help` prints
 * their planned usage, anything else says what is missing and exits 2.
 *
 * @module
 */
import { parseArgs } from "node:util";

/** Runs a placeholder subcommand; resolves to its exit code. */
export function notBuilt(
  options: { name: string; usage: string; needs: string },
  args: string[],
): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { help: { type: "boolean", short: "h" } },
    strict: false,
    allowPositionals: true,
  });
  if (values.help) {
    console.log(options.usage);
    return Promise.resolve(0);
  }
  console.error(`denosync ${options.name}: not built yet (${options.needs})`);
  return Promise.resolve(2);
}
