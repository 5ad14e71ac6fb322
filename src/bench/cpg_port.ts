/**
 * The seam between `denosync bench` workloads and the cluster engine they
 * measure. The same workload code drives denosync (through `CpgClient`) and,
 * in scripts/bench, Corosync (through libcpg over Deno's FFI), so both are
 * measured by one implementation of timing, gap and duplicate checks.
 *
 * @module
 */

/** One process's handle on a CPG group, whatever engine is underneath. */
export interface CpgPort {
  /** Which engine this port talks to, for reports ("denosync", "corosync"). */
  readonly engine: string;
  /** The node id of the daemon this port is connected to. */
  readonly nodeId: number;
  /** Join `group`; resolves once the join request was accepted. */
  join(group: string): Promise<void>;
  /**
   * Multicast one message with agreed ordering. Resolves `"ok"` when it was
   * queued, `"try_again"` when the engine refused it for flow control (the
   * caller counts and retries).
   */
  send(payload: Uint8Array): Promise<"ok" | "try_again">;
  /**
   * Called for every delivered message, in delivery order; a later call
   * replaces the handler. `payload` may be a view into a reused buffer:
   * copy what you keep.
   */
  onDeliver(
    handler: (
      senderNode: number,
      senderPid: number,
      payload: Uint8Array,
    ) => void,
  ): void;
  /** Number of group members the port currently sees (from confchg). */
  memberCount(): number;
  /** Leave the group and close the connection. */
  close(): Promise<void>;
}
