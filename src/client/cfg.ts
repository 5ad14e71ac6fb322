/**
 * `CfgClient`: steer the local node and the cluster, like Corosync's
 * libcfg (corosync-cfgtool is built on it). Node and link status, kill
 * another node, shut this node down (clients that called `trackShutdown`
 * are asked first and may veto), reload the configuration cluster-wide,
 * reopen the log files.
 *
 * ```ts
 * const cfg = await CfgClient.initialize();
 * const status = await cfg.nodeStatus();
 * await cfg.trackShutdown();
 * for await (const ev of cfg.events()) {
 *   if (ev.type === "shutdown_request") await cfg.replyToShutdown(false); // veto
 * }
 * ```
 *
 * @module
 */
import {
  CFG_SHUTDOWN_FLAG,
  type CfgReloadReport,
  type CfgRequest,
  cfgRequestFn,
  type CfgShutdownFlag,
  type CfgStatus,
  decodeCfgCallback,
  decodeCfgStatus,
  decodeCfgU32,
  decodeErrorText,
  decodeReloadReport,
  encodeCfgRequest,
} from "../../engines/cfg/ipc.ts";
import { CsError, csErrorName } from "../ipc/cs_error.ts";
import type { NodeId } from "../totem/types.ts";
import { defaultSocketPath } from "./cpg.ts";
import { IpcConnection } from "./ipc_connection.ts";

export type {
  CfgLinkStatus,
  CfgNodeStatus,
  CfgReloadOutcome,
  CfgReloadReport,
  CfgStatus,
  CfgVerdict,
} from "../../engines/cfg/ipc.ts";
export { defaultSocketPath };

/** How a shutdown is asked for (`corosync_cfg_shutdown_flags_t`). */
export type CfgShutdownMode = "request" | "regardless" | "immediate";

const MODE_FLAG: Record<CfgShutdownMode, CfgShutdownFlag> = {
  request: CFG_SHUTDOWN_FLAG.REQUEST,
  regardless: CFG_SHUTDOWN_FLAG.REGARDLESS,
  immediate: CFG_SHUTDOWN_FLAG.IMMEDIATE,
};
const FLAG_MODE: Record<CfgShutdownFlag, CfgShutdownMode> = {
  0: "request",
  1: "regardless",
  2: "immediate",
};

/**
 * What a client receives. `shutdown_request`: the node is asked to shut
 * down; answer with `replyToShutdown` (false vetoes a "request" shutdown)
 * within the node's `cfg.shutdown_timeout`, or it counts as yes.
 */
export type CfgEvent = {
  readonly type: "shutdown_request";
  readonly mode: CfgShutdownMode;
};

/** A failed cfg call: Corosync's `cs_error_t` code and the daemon's reason. */
export class CfgError extends Error {
  override name = "CfgError";
  readonly code: number;
  /** Why, as the daemon said it ("" when it did not). */
  readonly detail: string;
  constructor(call: string, code: number, detail = "") {
    super(
      `cfg ${call}: ${csErrorName(code)}${detail === "" ? "" : `: ${detail}`}`,
    );
    this.code = code;
    this.detail = detail;
  }
}

/** A reload that did not apply, with every node's verdict. */
export class CfgReloadError extends CfgError {
  override name = "CfgReloadError";
  readonly report: CfgReloadReport;
  constructor(code: number, report: CfgReloadReport) {
    super("reload_config", code, report.message);
    this.report = report;
  }
}

/** Options of `CfgClient.initialize`. */
export interface CfgClientOptions {
  /** The daemon's IPC socket (default: `defaultSocketPath()`). */
  socketPath?: string;
  /** Receives every event, instead of the `events()` iterator. */
  onEvent?: (event: CfgEvent) => void;
}

/** How long kill and reload retry while the ring is syncing. */
const TRY_AGAIN_MS_MAX = 10_000;

/** One cfg handle. */
export class CfgClient {
  readonly #conn: IpcConnection;

  private constructor(conn: IpcConnection) {
    this.#conn = conn;
  }

  /** Connects to the local daemon (`corosync_cfg_initialize`). */
  static async initialize(options: CfgClientOptions = {}): Promise<CfgClient> {
    const onEvent = options.onEvent;
    const conn = await IpcConnection.connect({
      path: options.socketPath ?? defaultSocketPath(),
      service: "cfg",
      onEvent: onEvent === undefined ? undefined : (payload) => {
        const ev = toEvent(payload);
        if (ev !== null) onEvent(ev);
      },
    });
    return new CfgClient(conn);
  }

  /** Node id of the local daemon (from the handshake). */
  get nodeId(): NodeId {
    return this.#conn.nodeId;
  }

  /** Resolves when the connection to the daemon ends. */
  get closed(): Promise<unknown> {
    return this.#conn.closed;
  }

  /** The local node id as the cfg engine reports it (`corosync_cfg_local_get`). */
  async localGet(): Promise<NodeId> {
    const d = decodeCfgU32(await this.#call({ fn: "local_get" }));
    if (!d.ok) throw new CfgError("local_get", CsError.MESSAGE_ERROR);
    return d.value;
  }

  /**
   * Every configured node with its links and whether it is in this node's
   * ring (`corosync_cfg_node_status_get`, for all nodes at once).
   */
  async nodeStatus(): Promise<CfgStatus> {
    const d = decodeCfgStatus(await this.#call({ fn: "node_status_get" }));
    if (!d.ok) {
      throw new CfgError("node_status_get", CsError.MESSAGE_ERROR, d.detail);
    }
    return d.value;
  }

  /**
   * Makes `nodeId` shut down, with `reason` in its log
   * (`corosync_cfg_kill_node`). Resolves once the order is in the ring's
   * total order. NOT_EXIST when the node is not a member.
   */
  async killNode(nodeId: NodeId, reason: string): Promise<void> {
    if (!Number.isInteger(nodeId) || nodeId <= 0 || nodeId > 0xffff_ffff) {
      throw new CfgError(
        "kill_node",
        CsError.INVALID_PARAM,
        `node id must be 1 to 4294967295, got ${nodeId}`,
      );
    }
    await this.#callRetry({ fn: "kill_node", nodeId, reason });
  }

  /**
   * Asks the local node to shut down (`corosync_cfg_try_shutdown`).
   * "request": clients tracking shutdown are asked and one veto refuses it
   * (CfgError CS_ERR_BUSY); "regardless": they are told, then it shuts
   * down; "immediate": it shuts down without asking.
   */
  async tryShutdown(mode: CfgShutdownMode = "request"): Promise<void> {
    await this.#call({ fn: "try_shutdown", flags: MODE_FLAG[mode] });
  }

  /** Answers a shutdown_request event (`corosync_cfg_replyto_shutdown`). */
  async replyToShutdown(allow: boolean): Promise<void> {
    await this.#call({ fn: "reply_to_shutdown", allow });
  }

  /** Starts receiving shutdown_request events (a libcfg shutdown callback). */
  async trackShutdown(): Promise<void> {
    await this.#call({ fn: "track_start" });
  }

  /** Stops receiving shutdown_request events. */
  async untrackShutdown(): Promise<void> {
    await this.#call({ fn: "track_stop" });
  }

  /**
   * Reloads the configuration file on every member, atomically
   * (`corosync_cfg_reload_config`): each member validates its file and
   * votes; all apply only if all agree. Resolves with the report when
   * applied; rejects with `CfgReloadError` (its `report` holds every
   * member's verdict) when refused, interrupted or failed.
   */
  async reloadConfig(): Promise<CfgReloadReport> {
    const req: CfgRequest = { fn: "reload_config" };
    const r = await this.#requestRetry(req);
    if (r.payload.length === 0) {
      throw new CfgError("reload_config", r.status);
    }
    const d = decodeReloadReport(r.payload);
    if (!d.ok) {
      throw new CfgError("reload_config", CsError.MESSAGE_ERROR, d.detail);
    }
    if (r.status !== CsError.OK) throw new CfgReloadError(r.status, d.value);
    return d.value;
  }

  /** Reopens the daemon's log files (`corosync_cfg_reopen_log_files`). */
  async reopenLogFiles(): Promise<void> {
    await this.#call({ fn: "reopen_log_files" });
  }

  /** Events in order (`corosync_cfg_dispatch`); unused with `onEvent`. */
  async *events(): AsyncGenerator<CfgEvent> {
    for await (const payload of this.#conn.events) {
      const ev = toEvent(payload);
      if (ev !== null) yield ev;
    }
  }

  /** Disconnects (`corosync_cfg_finalize`). */
  async finalize(): Promise<void> {
    await this.#conn.close();
  }

  async #call(req: CfgRequest): Promise<Uint8Array> {
    const r = await this.#conn.request(
      cfgRequestFn(req),
      encodeCfgRequest(req),
    );
    if (r.status !== CsError.OK) {
      throw new CfgError(req.fn, r.status, decodeErrorText(r.payload));
    }
    return r.payload;
  }

  async #callRetry(req: CfgRequest): Promise<Uint8Array> {
    const r = await this.#requestRetry(req);
    if (r.status !== CsError.OK) {
      throw new CfgError(req.fn, r.status, decodeErrorText(r.payload));
    }
    return r.payload;
  }

  /**
   * Sends `req`, again after a bare TRY_AGAIN (the ring is syncing or the
   * queue is full: nothing was sent), with a short back-off.
   */
  async #requestRetry(
    req: CfgRequest,
  ): Promise<{ status: number; payload: Uint8Array }> {
    const end = performance.now() + TRY_AGAIN_MS_MAX;
    let waitMs = 5;
    for (;;) {
      const r = await this.#conn.request(
        cfgRequestFn(req),
        encodeCfgRequest(req),
      );
      if (
        r.status !== CsError.TRY_AGAIN || r.payload.length > 0 ||
        performance.now() > end
      ) return r;
      await new Promise((resolve) => setTimeout(resolve, waitMs));
      waitMs = Math.min(100, waitMs * 2);
    }
  }
}

function toEvent(payload: Uint8Array): CfgEvent | null {
  const d = decodeCfgCallback(payload);
  if (!d.ok) return null;
  return { type: "shutdown_request", mode: FLAG_MODE[d.value.flags] };
}
