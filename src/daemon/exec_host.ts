/**
 * The daemon's driver of the executive (an edge): it connects the pure
 * `Executive` to the Unix-socket IPC server on one side and to the Totem
 * runtime on the other, performing the executive's actions — replies and
 * callbacks to clients, ordered multicasts, the end of a sync barrier.
 */
import { ENGINES } from "../../engines/mod.ts";
import { createEngines } from "../../engines/mod.ts";
import { type CmapEngine, cmapOf, seedCmap } from "../../engines/cmap/mod.ts";
import { unreachable } from "../lib/assert.ts";
import type { ExecAction, ExecEvent } from "../exec/executive.ts";
import { Executive } from "../exec/executive.ts";
import type { NodeControlResult } from "../exec/engine.ts";
import { CsError } from "../ipc/cs_error.ts";
import {
  type IpcConnectionInfo,
  type IpcReply,
  IpcServer,
} from "../ipc/server.ts";
import { smallCopy } from "../lib/small_bytes.ts";
import type { Logger } from "../log/logger.ts";
import { sameRing } from "../totem/types.ts";
import type { DaemonNodeControl } from "./node_control.ts";
import type { NodeRuntime } from "./node_runtime.ts";

/** Request payloads shorter than this are copied (see `#request`). */
const PAYLOAD_COPY_BYTES_MAX = 4096;

function copyRequestPayload(payload: Uint8Array): Uint8Array {
  return payload.length >= PAYLOAD_COPY_BYTES_MAX
    ? payload
    : smallCopy(payload);
}

/** How often a sync step answering "again" is retried. */
const TICK_MS = 20;

/** Options of `ExecHost.start`. */
export interface ExecHostOptions {
  runtime: NodeRuntime;
  logger: Logger;
  /** The IPC socket path. */
  socketPath: string;
  /** Group allowed to use the socket (uidgid), if any. */
  socketGid?: number;
  /** The configuration's cmap keys (`flatToRecord(loaded.flat)`). */
  cmapSeed?: Record<string, string>;
  /**
   * Performs engines' node control requests (cfg: status, shutdown, log
   * reopen, reload); without it they are answered "not available".
   */
  control?: DaemonNodeControl;
}

/** Runs the executive and the IPC server of one daemon. */
export class ExecHost {
  readonly exec: Executive;
  readonly server: IpcServer;
  /** This node's cmap engine, for the daemon's own keys (stats_feed.ts). */
  readonly cmap: CmapEngine | null;
  #runtime: NodeRuntime;
  #logger: Logger;
  #pending = new Map<string, (reply: IpcReply) => void>();
  /** Multicasts the runtime could not take yet, in order. */
  #backlog: Extract<ExecAction, { type: "mcast" }>[] = [];
  /** Armed only while the executive wants a `tick` (idle daemons sleep). */
  #ticker: ReturnType<typeof setTimeout> | undefined;
  #control: DaemonNodeControl | undefined;
  /** Engine timers (node control "timer") not yet fired. */
  #timers = new Set<ReturnType<typeof setTimeout>>();
  #closed = false;
  /** True while `exec.step` runs. */
  #inStep = false;

  private constructor(
    options: ExecHostOptions,
    server: IpcServer,
    exec: Executive,
    cmap: CmapEngine | null,
  ) {
    this.#runtime = options.runtime;
    this.#logger = options.logger;
    this.#control = options.control;
    this.server = server;
    this.exec = exec;
    this.cmap = cmap;
    this.#runtime.listen({
      deliver: (d) =>
        this.#step({ type: "deliver", from: d.from, payload: d.payload }),
      confchg: (change, reason) =>
        this.#step({ type: "confchg", change, reason }),
    });
  }

  /** Opens the IPC socket and attaches the executive to the runtime. */
  static async start(options: ExecHostOptions): Promise<ExecHost> {
    const engines = createEngines();
    const cmap = cmapOf(engines);
    let host: ExecHost | null = null;
    if (cmap !== null) {
      // The daemon also writes cmap between steps (statistics, runtime
      // keys). The executive collects engine events only during a step, so
      // track callbacks of such writes go straight to the IPC server; both
      // paths keep the order in which the changes happened.
      const init = cmap.init.bind(cmap);
      cmap.init = (api) =>
        init({
          ...api,
          event: (conn, payload) =>
            host === null || host.#inStep
              ? api.event(conn, payload)
              : host.server.sendEvent(conn, payload),
        });
    }
    for (const key of seedCmap(engines, options.cmapSeed ?? {})) {
      options.logger.log(
        "warn",
        "CMAP",
        `configuration key "${key}" is not a valid cmap key name; not stored`,
      );
    }
    const exec = new Executive({
      nodeId: options.runtime.nodeId,
      engines,
    });
    const server = await IpcServer.listen({
      path: options.socketPath,
      nodeId: options.runtime.nodeId,
      logger: options.logger,
      allowedGids: options.socketGid === undefined
        ? undefined
        : [options.socketGid],
      handler: {
        open: (conn) => host!.#open(conn),
        request: (conn, fn, payload, requestId) =>
          host!.#request(conn, fn, payload, requestId),
        close: (conn) => host!.#closeConn(conn),
        // A client whose callbacks pile up gets TRY_AGAIN on its sends.
        flowControl: (conn, on) => host!.#flow(conn, on),
      },
    });
    host = new ExecHost(options, server, exec, cmap);
    return host;
  }

  /** Stops callbacks and closes the socket (clients get GOODBYE). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#ticker);
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    for (const resolve of this.#pending.values()) {
      resolve({ status: CsError.LIBRARY });
    }
    this.#pending.clear();
    await this.server.close();
  }

  #open(
    conn: IpcConnectionInfo,
  ): { ok: true } | { ok: false; code: number; message: string } {
    const engine = ENGINES.find((e) => e.name === conn.service);
    if (engine === undefined) {
      return {
        ok: false,
        code: CsError.NOT_EXIST,
        message: `no service "${conn.service}" here (have: ${
          ENGINES.map((e) => e.name).join(", ")
        })`,
      };
    }
    this.#step({
      type: "ipc_open",
      conn: conn.id,
      service: engine.serviceId,
      pid: conn.pid,
    });
    return { ok: true };
  }

  #flow(conn: IpcConnectionInfo, blocked: boolean): void {
    this.#step({ type: "ipc_flow", conn: conn.id, blocked });
  }

  #closeConn(conn: IpcConnectionInfo): void {
    this.#step({ type: "ipc_close", conn: conn.id });
    // Requests still waiting for the total order will never be answered to
    // a client that is gone: drop them rather than keep them forever.
    const prefix = `${conn.id}:`;
    for (const [key, resolve] of this.#pending) {
      if (!key.startsWith(prefix)) continue;
      this.#pending.delete(key);
      resolve({ status: CsError.LIBRARY });
    }
  }

  #request(
    conn: IpcConnectionInfo,
    fn: number,
    payload: Uint8Array,
    requestId: number,
  ): Promise<IpcReply> {
    const key = `${conn.id}:${requestId}`;
    const reply = new Promise<IpcReply>((resolve) =>
      this.#pending.set(key, resolve)
    );
    // The executive may answer at once or after the request's message has
    // come back through the total order (joins, leaves).
    this.#step({
      type: "ipc_request",
      conn: conn.id,
      requestId,
      fn,
      // The server's payload is a view into a read buffer that is never
      // reused. Small ones are copied so a kept one does not pin that
      // buffer: the smallest into a shared chunk (a new buffer per request
      // costs more than the request, small_bytes.ts), which is fine as
      // engines copy what they keep (EngineRequest). Large ones (mcast
      // bodies, mostly read into their own buffer) are not worth a copy on
      // the hot path.
      payload: copyRequestPayload(payload),
    });
    return reply;
  }

  #trySend(a: Extract<ExecAction, { type: "mcast" }>): boolean {
    return this.#runtime.send(a.payload, a.guarantee, { sync: a.sync });
  }

  #hold(a: Extract<ExecAction, { type: "mcast" }>): void {
    this.#backlog.push(a);
    if (this.#backlog.length > 1) return;
    // First one held: the executive answers TRY_AGAIN to new sends until the
    // backlog has drained, and the server stops taking them off the socket
    // meanwhile, so clients wait instead of sending each message twice.
    this.#step({ type: "congestion", congested: true });
    this.server.holdRequests(this.#isFlowControlled);
    void this.#drain();
  }

  async #drain(): Promise<void> {
    while (this.#backlog.length > 0 && !this.#closed) {
      await this.#runtime.whenWritable();
      while (this.#backlog.length > 0 && this.#trySend(this.#backlog[0])) {
        this.#backlog.shift();
      }
      if (this.#backlog.length > 0) await new Promise((r) => setTimeout(r, 1));
    }
    this.server.holdRequests(null);
    if (!this.#closed) this.#step({ type: "congestion", congested: false });
  }

  #isFlowControlled = (service: string, fn: number): boolean =>
    this.exec.isFlowControlled(service, fn);

  #step(event: ExecEvent): void {
    if (this.#closed) return;
    let actions: ExecAction[];
    this.#inStep = true;
    try {
      actions = this.exec.step(event, this.#runtime.now());
    } finally {
      this.#inStep = false;
    }
    for (const a of actions) this.#perform(a);
    this.#armTick();
  }

  /** Schedules one `tick` in TICK_MS when a sync step answered "again". */
  #armTick(): void {
    if (this.#ticker !== undefined || this.#closed || !this.exec.needsTick) {
      return;
    }
    this.#ticker = setTimeout(() => {
      this.#ticker = undefined;
      if (this.exec.needsTick) this.#step({ type: "tick" });
    }, TICK_MS);
  }

  /**
   * Performs one node control request and steps its answer back in; the
   * answer always comes in a later turn, never inside the step that asked.
   */
  async #nodeControl(
    a: Extract<ExecAction, { type: "control" }>,
  ): Promise<void> {
    let result: NodeControlResult;
    const request = a.request;
    if (request.op === "timer") {
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          this.#timers.delete(t);
          resolve();
        }, request.afterMs);
        this.#timers.add(t);
      });
      result = { ok: true };
    } else if (this.#control === undefined) {
      await Promise.resolve();
      result = {
        ok: false,
        error: `this node cannot perform "${request.op}" (no node control)`,
      };
    } else {
      result = await this.#control.perform(request);
    }
    this.#step({
      type: "control_done",
      serviceId: a.serviceId,
      tag: a.tag,
      result,
    });
  }

  #perform(a: ExecAction): void {
    switch (a.type) {
      case "mcast":
        // Order is everything: once one multicast waits, later ones queue
        // behind it instead of overtaking it.
        if (this.#backlog.length > 0 || !this.#trySend(a)) this.#hold(a);
        break;
      case "sync_done":
        if (sameRing(a.ringId, this.#runtime.srp.ringId)) {
          this.#runtime.syncDone();
        }
        break;
      case "sync_activated":
        this.#logger.log(
          "debug",
          "SYNC",
          `service ${
            a.name ?? a.serviceId
          } activated in ring ${a.ringId.rep}.${a.ringId.seq}`,
        );
        break;
      case "reply": {
        const key = `${a.conn}:${a.requestId}`;
        const resolve = this.#pending.get(key);
        if (resolve !== undefined) {
          this.#pending.delete(key);
          resolve({ status: a.status, payload: a.payload });
        }
        break;
      }
      case "event":
        // False only says the client is slow; the server keeps the event and
        // cuts the client off if it stays stuck.
        this.server.sendEvent(a.conn, a.payload);
        break;
      case "disconnect":
        this.server.disconnect(a.conn, a.status);
        break;
      case "log":
        this.#logger.log(a.level, a.subsys, a.text);
        break;
      case "control":
        void this.#nodeControl(a);
        break;
      default:
        unreachable(a);
    }
  }
}
