/**
 * One node's pure protocol stack: the Totem core with its packing layer
 * (`TotemPg`, built on an `Srp` created with `syncBarrier: true`) under the
 * executive and its engines. It routes deliveries and configuration
 * changes up, performs the executive's multicasts and `sync_done` on the
 * core, and returns what is left for a driver: network and timer actions,
 * IPC replies and callbacks, logs. The daemon and the simulator both drive
 * this class, so the glue between the layers is tested with the layers.
 *
 * Nothing is lost: a multicast TotemPg refuses (send queue full) waits in a
 * per-lane backlog and is retried, in order, before any newer one; while a
 * backlog exists the executive answers flow-controlled requests TRY_AGAIN.
 *
 * @module
 */
import { assert, unreachable } from "../lib/assert.ts";
import type { LogLevel } from "../log/logger.ts";
import type { TotemPg } from "../totem/pg/totem_pg.ts";
import {
  type Guarantee,
  type RingId,
  sameRing,
  type SrpAction,
  type SrpEvent,
} from "../totem/types.ts";
import type { ExecAction, ExecEvent, Executive } from "./executive.ts";

/** Inputs of the stack: core events, IPC events and node control answers. */
export type StackEvent =
  | Extract<
    SrpEvent,
    { type: "start" | "frame" | "timer" | "shutdown" | "reachability" }
  >
  | Extract<
    ExecEvent,
    {
      type:
        | "ipc_open"
        | "ipc_request"
        | "ipc_close"
        | "ipc_flow"
        | "ipc_overflow"
        | "tick"
        | "control_done";
    }
  >;

/**
 * Outputs of the stack, in order. Core actions other than `log` pass
 * through (the driver performs `transmit`, `arm`, `cancel` and
 * `persist_ring_seq`; `deliver`, `confchg` and `state` are for observers
 * and come before the executive actions they caused). Executive actions
 * other than `mcast` pass through; `sync_done` was already performed on the
 * core (`performed` false: the core had moved on to a newer ring).
 */
export type StackAction =
  | Exclude<SrpAction, { type: "log" }>
  | Exclude<ExecAction, { type: "mcast" | "sync_done" }>
  | { type: "sync_done"; ringId: RingId; performed: boolean };

interface Pending {
  payload: readonly Uint8Array[];
  guarantee: Guarantee;
}

/** Construction parameters. */
export interface ServiceStackOptions {
  /** The packing layer over an `Srp` built with `syncBarrier: true`. */
  pg: TotemPg;
  executive: Executive;
}

/** Totem core + packing layer + executive of one node. */
export class ServiceStack {
  readonly pg: TotemPg;
  readonly executive: Executive;
  #out: StackAction[] = [];
  #nowMs = 0;
  #backlog: { sync: Pending[]; app: Pending[] } = { sync: [], app: [] };
  #congested = false;
  #inExec = false;

  constructor(options: ServiceStackOptions) {
    this.pg = options.pg;
    this.executive = options.executive;
  }

  /** Multicasts waiting for room in the core's send queues. */
  get backlogLength(): number {
    return this.#backlog.sync.length + this.#backlog.app.length;
  }

  /** True when the driver should send a `tick` soon (sync work or backlog). */
  get needsTick(): boolean {
    return this.executive.needsTick || this.backlogLength > 0;
  }

  /** Applies one event at `nowMs` and returns what the driver must do. */
  step(event: StackEvent, nowMs: number): StackAction[] {
    this.#nowMs = nowMs;
    const out: StackAction[] = [];
    this.#out = out;
    switch (event.type) {
      case "start":
      case "frame":
      case "timer":
      case "shutdown":
      case "reachability":
        this.#core(this.pg.step(event, nowMs));
        break;
      case "ipc_open":
      case "ipc_request":
      case "ipc_close":
      case "ipc_flow":
      case "ipc_overflow":
      case "tick":
      case "control_done":
        this.#exec(event);
        break;
      default:
        unreachable(event);
    }
    this.#retryBacklog();
    // End of the turn: whatever was packed leaves now (TOTEM.md 5.1).
    this.#core(this.pg.flush(nowMs));
    return out;
  }

  #core(actions: SrpAction[]): void {
    for (const a of actions) {
      switch (a.type) {
        case "log":
          this.#out.push({
            type: "log",
            level: a.level as LogLevel,
            subsys: "TOTEM",
            text: a.message,
          });
          break;
        case "deliver":
          this.#out.push(a);
          this.#exec({ type: "deliver", from: a.from, payload: a.payload });
          break;
        case "confchg":
          this.#out.push(a);
          this.#exec({ type: "confchg", change: a.change, reason: a.reason });
          break;
        default:
          this.#out.push(a);
      }
    }
  }

  #exec(event: ExecEvent): void {
    // The core never delivers from a send, so the executive is never re-entered.
    assert(!this.#inExec, "executive re-entered");
    this.#inExec = true;
    let actions: ExecAction[];
    try {
      actions = this.executive.step(event, this.#nowMs);
    } finally {
      this.#inExec = false;
    }
    for (const a of actions) {
      switch (a.type) {
        case "mcast":
          this.#send(a.sync ? "sync" : "app", {
            payload: a.payload,
            guarantee: a.guarantee,
          });
          break;
        case "sync_done": {
          // The core may already hold frames for a newer ring (the barrier
          // was delivered in the same core step as that ring's confchg):
          // releasing then would let application frames overtake its sync.
          const current = sameRing(this.pg.srp.ringId, a.ringId);
          if (current) {
            this.#core(this.pg.step({ type: "sync_done" }, this.#nowMs));
          }
          this.#out.push({
            type: "sync_done",
            ringId: a.ringId,
            performed: current,
          });
          break;
        }
        default:
          this.#out.push(a);
      }
    }
    this.#updateCongestion();
  }

  #send(lane: "sync" | "app", m: Pending): void {
    const backlog = this.#backlog[lane];
    if (backlog.length > 0 || !this.#trySend(lane, m)) backlog.push(m);
  }

  #trySend(lane: "sync" | "app", m: Pending): boolean {
    const r = this.pg.mcast(m.payload, m.guarantee, this.#nowMs, {
      sync: lane === "sync",
    });
    this.#core(r.actions);
    return r.accepted;
  }

  #retryBacklog(): void {
    for (const lane of ["sync", "app"] as const) {
      const backlog = this.#backlog[lane];
      while (backlog.length > 0 && this.#trySend(lane, backlog[0])) {
        backlog.shift();
      }
    }
    this.#updateCongestion();
  }

  #updateCongestion(): void {
    const congested = this.backlogLength > 0;
    if (congested === this.#congested || this.#inExec) return;
    this.#congested = congested;
    this.#exec({ type: "congestion", congested });
  }
}
