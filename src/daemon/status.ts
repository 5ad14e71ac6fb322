/**
 * The daemon's status file (`<run-dir>/status.json`): a snapshot of ring,
 * members and links, rewritten atomically when it changed (membership and
 * link changes at once, anything else within a second) and at least every
 * 10 s (`updatedMs` then shows the daemon alive).
 * The demo and the integration tests read it to wait for readiness; the IPC
 * admin tools (later issues) will ask the daemon directly.
 */

/** One link to one peer as the transport sees it. */
export interface LinkStatusEntry {
  nodeId: number;
  link: number;
  connected: boolean;
  src?: string;
  dst?: string;
}

/** Snapshot of one daemon. */
export interface DaemonStatus {
  nodeId: number;
  pid: number;
  state: string;
  ringId: { rep: number; seq: number };
  members: number[];
  delivered: number;
  sendQueue: number;
  links: LinkStatusEntry[];
  rejected: Record<string, number>;
  updatedMs: number;
}

/** Path of the status file in a run directory. */
export function statusPath(runDir: string): string {
  return `${runDir}/status.json`;
}

/** Writes the status file atomically (temp + rename). */
export async function writeStatus(
  runDir: string,
  status: DaemonStatus,
): Promise<void> {
  const path = statusPath(runDir);
  const tmp = `${path}.tmp`;
  await Deno.writeTextFile(tmp, JSON.stringify(status) + "\n");
  await Deno.rename(tmp, path);
}

/** Reads the status file; null when it does not exist yet or is partial. */
export async function readStatus(runDir: string): Promise<DaemonStatus | null> {
  try {
    return JSON.parse(
      await Deno.readTextFile(statusPath(runDir)),
    ) as DaemonStatus;
  } catch {
    return null;
  }
}
