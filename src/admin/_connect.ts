/**
 * What the admin tools share: their exit codes, where the daemon's socket
 * is, and how a failed connection becomes a message and an exit code.
 *
 * @module
 */
import { defaultSocketPath } from "../client/cpg.ts";
import {
  IpcError,
  IpcNotRunningError,
  IpcPermissionError,
} from "../ipc/errors.ts";

/** Exit codes every admin tool documents. */
export const EXIT = { OK: 0, ERROR: 1, USAGE: 2, NOT_CONNECTED: 3 } as const;

/** `--socket PATH`, else `--run-dir DIR`/denosync.sock, else the default. */
export function socketPathOf(
  values: { socket?: string; "run-dir"?: string },
): string {
  return values.socket ??
    (values["run-dir"] !== undefined
      ? `${values["run-dir"]}/denosync.sock`
      : defaultSocketPath());
}

/**
 * Opens a client; on failure prints why (prefixed with the tool's name) and
 * returns the exit code: NOT_CONNECTED when no daemon answers or the socket
 * is not permitted, ERROR when the daemon refused.
 */
export async function connectOrExit<T>(
  tool: string,
  open: () => Promise<T>,
): Promise<T | number> {
  try {
    return await open();
  } catch (e) {
    if (!(e instanceof IpcError)) throw e;
    console.error(`denosync ${tool}: ${e.message}`);
    return e instanceof IpcNotRunningError || e instanceof IpcPermissionError
      ? EXIT.NOT_CONNECTED
      : EXIT.ERROR;
  }
}
