/**
 * `CpgClient`: closed process groups for applications (cpg_overview(3)).
 * A client joins one named group through its node's daemon and then sees,
 * in the same total order on every node, the messages sent to the group and
 * the configuration changes of its membership (with reasons JOIN, LEAVE,
 * NODEDOWN, NODEUP, PROCDOWN), plus the Totem ring's own changes.
 *
 * ```ts
 * const cpg = await CpgClient.initialize();
 * await cpg.join("my-group");
 * await cpg.mcast(new TextEncoder().encode("hello"));
 * for await (const ev of cpg.events()) if (ev.type === "deliver") ...
 * ```
 */
import {
  type CpgAddress,
  type CpgCallback,
  CpgIterationType,
  type CpgProcess,
  decodeCpgCallback,
  decodeIterationItem,
  decodeMembership,
  decodeU32,
  encodeCpgRequest,
  encodeCpgRequestParts,
  requestFn,
} from "../../engines/cpg/ipc.ts";
import type { CpgRequest } from "../../engines/cpg/ipc.ts";
import { CsError, csErrorName } from "../ipc/cs_error.ts";
import type { Guarantee, NodeId, RingId } from "../totem/types.ts";
import { IpcConnection } from "./ipc_connection.ts";

/** Default socket of a daemon started without `--run-dir`. */
export const DEFAULT_SOCKET_PATH = "/var/run/denosync/denosync.sock";

/** The daemon socket: `DENOSYNC_SOCKET` if set (and readable), else the default. */
export function defaultSocketPath(): string {
  try {
    return Deno.env.get("DENOSYNC_SOCKET") ?? DEFAULT_SOCKET_PATH;
  } catch {
    return DEFAULT_SOCKET_PATH;
  }
}

/** Why a process joined or left a group (`cpg_reason_t`). */
export type CpgReason = "join" | "leave" | "nodedown" | "nodeup" | "procdown";

const REASONS: Record<number, CpgReason> = {
  1: "join",
  2: "leave",
  3: "nodedown",
  4: "nodeup",
  5: "procdown",
};

/** A process that joined or left, and why. */
export interface CpgMemberChange extends CpgProcess {
  readonly reason: CpgReason;
}

/** What a client receives, in order. */
export type CpgEvent =
  | {
    readonly type: "deliver";
    readonly group: string;
    readonly nodeId: NodeId;
    readonly pid: number;
    readonly message: Uint8Array;
  }
  | {
    readonly type: "confchg";
    readonly group: string;
    readonly members: readonly CpgProcess[];
    readonly left: readonly CpgMemberChange[];
    readonly joined: readonly CpgMemberChange[];
  }
  | {
    readonly type: "totem_confchg";
    readonly ringId: RingId;
    readonly members: readonly NodeId[];
  };

/** A failed CPG call, with Corosync's `cs_error_t` code. */
export class CpgError extends Error {
  override name = "CpgError";
  readonly code: number;
  constructor(call: string, code: number) {
    super(`cpg ${call}: ${csErrorName(code)}`);
    this.code = code;
  }

  /** True for CS_ERR_TRY_AGAIN: the queue is full or the ring is syncing. */
  get tryAgain(): boolean {
    return this.code === CsError.TRY_AGAIN;
  }
}

/** Options of `CpgClient.initialize`. */
/** How long an operation keeps retrying TRY_AGAIN before it rejects. */
export interface RetryOptions {
  timeoutMs?: number;
}

/** Sync after a membership change takes milliseconds; 10 s is generous. */
const JOIN_LEAVE_RETRY_MS = 10_000;

export interface CpgClientOptions {
  /** The daemon's IPC socket (default: `defaultSocketPath()`). */
  socketPath?: string;
  /** Receives every event in order, instead of the `events()` iterator. */
  onEvent?: (event: CpgEvent) => void;
  /**
   * The pid this handle presents (default `Deno.pid`). A group holds one
   * member per (node, pid), as in Corosync; several handles of one process
   * joining the same group need distinct values.
   */
  pid?: number;
}

/** One CPG handle: at most one joined group at a time, as in Corosync. */
export class CpgClient {
  readonly #conn: IpcConnection;
  #group: string | null = null;

  private constructor(conn: IpcConnection) {
    this.#conn = conn;
  }

  /** Connects to the local daemon (`cpg_initialize`). */
  static async initialize(options: CpgClientOptions = {}): Promise<CpgClient> {
    const onEvent = options.onEvent;
    const conn = await IpcConnection.connect({
      path: options.socketPath ?? defaultSocketPath(),
      service: "cpg",
      pid: options.pid,
      onEvent: onEvent === undefined ? undefined : (payload) => {
        const ev = toEvent(payload);
        if (ev !== null) onEvent(ev);
      },
    });
    return new CpgClient(conn);
  }

  /** Node id of the local daemon. */
  get nodeId(): NodeId {
    return this.#conn.nodeId;
  }

  /** The joined group, or null. */
  get group(): string | null {
    return this.#group;
  }

  /** Resolves when the connection to the daemon ends. */
  get closed(): Promise<unknown> {
    return this.#conn.closed;
  }

  /**
   * Joins `group` (`cpg_join`). While the ring synchronises after a
   * membership change the daemon answers TRY_AGAIN (as Corosync does); that
   * is retried for up to `timeoutMs` (default 10 s) so callers need not loop
   * themselves. Other errors reject at once.
   */
  async join(group: string, options: RetryOptions = {}): Promise<void> {
    await this.#retryTryAgain(
      () => this.#call({ fn: "join", flags: 0, group }),
      options.timeoutMs ?? JOIN_LEAVE_RETRY_MS,
    );
    this.#group = group;
  }

  /** Leaves the joined group (`cpg_leave`), retrying TRY_AGAIN as `join`. */
  async leave(options: RetryOptions = {}): Promise<void> {
    await this.#retryTryAgain(
      () => this.#call({ fn: "leave" }),
      options.timeoutMs ?? JOIN_LEAVE_RETRY_MS,
    );
    this.#group = null;
  }

  /**
   * Sends `message` to the joined group (`cpg_mcast_joined`). Rejects with a
   * `CpgError` whose `tryAgain` is true when the daemon's queue is full or
   * the ring is syncing; the message was then not sent.
   */
  async mcast(
    message: Uint8Array,
    options: { guarantee?: Guarantee } = {},
  ): Promise<void> {
    await this.#call({
      fn: "mcast",
      guarantee: options.guarantee ?? "agreed",
      message,
    });
  }

  /** `mcast`, retrying after TRY_AGAIN with a short back-off. */
  async mcastRetry(
    message: Uint8Array,
    options: { guarantee?: Guarantee } & RetryOptions = {},
  ): Promise<void> {
    await this.#retryTryAgain(
      () => this.mcast(message, options),
      options.timeoutMs ?? 30_000,
    );
  }

  /** Current members of `group` (`cpg_membership_get`). */
  async membershipGet(group: string): Promise<CpgProcess[]> {
    const payload = await this.#call({ fn: "membership_get", group });
    const d = decodeMembership(payload);
    if (!d.ok) throw new CpgError("membership_get", CsError.MESSAGE_ERROR);
    return d.value;
  }

  /** The local node id as the daemon reports it (`cpg_local_get`). */
  async localGet(): Promise<NodeId> {
    const d = decodeU32(await this.#call({ fn: "local_get" }));
    if (!d.ok) throw new CpgError("local_get", CsError.MESSAGE_ERROR);
    return d.value;
  }

  /**
   * Every (group, node, pid) known cluster-wide, or the members of one group
   * (`cpg_iteration_*`).
   */
  async *iterate(
    group?: string,
  ): AsyncGenerator<{ group: string; nodeId: NodeId; pid: number }> {
    const init = await this.#call({
      fn: "iteration_initialize",
      iterationType: group === undefined
        ? CpgIterationType.ALL
        : CpgIterationType.ONE_GROUP,
      group: group ?? null,
    });
    const h = decodeU32(init);
    if (!h.ok) {
      throw new CpgError("iteration_initialize", CsError.MESSAGE_ERROR);
    }
    try {
      for (;;) {
        const r = await this.#conn.request(
          requestFn({ fn: "iteration_next", handle: h.value }),
          encodeCpgRequest({ fn: "iteration_next", handle: h.value }),
        );
        if (
          r.status === CsError.NO_SECTIONS || r.status === CsError.NOT_EXIST
        ) return;
        if (r.status !== CsError.OK) {
          throw new CpgError("iteration_next", r.status);
        }
        const item = decodeIterationItem(r.payload);
        if (!item.ok) {
          throw new CpgError("iteration_next", CsError.MESSAGE_ERROR);
        }
        yield item.value;
      }
    } finally {
      await this.#conn.request(
        requestFn({ fn: "iteration_finalize", handle: h.value }),
        encodeCpgRequest({ fn: "iteration_finalize", handle: h.value }),
      ).catch(() => {});
    }
  }

  /** Deliveries and configuration changes, in order (`cpg_dispatch`). */
  async *events(): AsyncGenerator<CpgEvent> {
    for await (const payload of this.#conn.events) {
      const ev = toEvent(payload);
      if (ev !== null) yield ev;
    }
  }

  /** Leaves and disconnects (`cpg_finalize`). */
  async finalize(): Promise<void> {
    await this.#conn.close();
  }

  /** Runs `op` until it does not fail with TRY_AGAIN, backing off 1-50 ms. */
  async #retryTryAgain<T>(op: () => Promise<T>, timeoutMs: number): Promise<T> {
    const end = performance.now() + timeoutMs;
    let waitMs = 1;
    for (;;) {
      try {
        return await op();
      } catch (e) {
        if (
          !(e instanceof CpgError) || !e.tryAgain || performance.now() > end
        ) throw e;
        await new Promise((r) => setTimeout(r, waitMs));
        waitMs = Math.min(50, waitMs * 2);
      }
    }
  }

  async #call(req: CpgRequest): Promise<Uint8Array> {
    const r = await this.#conn.request(
      requestFn(req),
      encodeCpgRequestParts(req),
    );
    if (r.status !== CsError.OK) throw new CpgError(req.fn, r.status);
    return r.payload;
  }
}

function reasons(list: readonly CpgAddress[]): CpgMemberChange[] {
  return list.map((a) => ({
    nodeId: a.nodeId,
    pid: a.pid,
    reason: REASONS[a.reason] ?? "join",
  }));
}

function toEvent(payload: Uint8Array): CpgEvent | null {
  const d = decodeCpgCallback(payload);
  if (!d.ok) return null;
  const cb: CpgCallback = d.value;
  switch (cb.kind) {
    case "deliver":
      return {
        type: "deliver",
        group: cb.group,
        nodeId: cb.nodeId,
        pid: cb.pid,
        message: cb.message,
      };
    case "confchg":
      return {
        type: "confchg",
        group: cb.group,
        members: cb.members,
        left: reasons(cb.left),
        joined: reasons(cb.joined),
      };
    case "totem_confchg":
      return { type: "totem_confchg", ringId: cb.ringId, members: cb.members };
  }
}
