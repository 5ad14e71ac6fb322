// A tiny reliable in-memory network for SRP unit tests (the full simulator
// with faults lives in src/sim).
import { Prng } from "../../../src/lib/prng.ts";
import {
  resolveTotemConfig,
  type TotemOptions,
} from "../../../src/totem/config.ts";
import { Srp } from "../../../src/totem/srp.ts";
import { TotemPg } from "../../../src/totem/pg/totem_pg.ts";
import type {
  ConfChange,
  NodeId,
  SrpAction,
  SrpEvent,
  TimerName,
} from "../../../src/totem/types.ts";

interface Ev {
  at: number;
  order: number;
  node: NodeId;
  event: SrpEvent;
  timerGen?: number;
}

export interface MiniNode {
  srp: Srp;
  pg: TotemPg;
  delivered: { from: NodeId; seq: number; payload: Uint8Array; ring: string }[];
  confchgs: ConfChange[];
  timers: Map<TimerName, number>;
  up: boolean;
  storedRingSeq: number | null;
}

export class MiniNet {
  now = 0;
  #order = 0;
  #queue: Ev[] = [];
  #gen = 0;
  nodes = new Map<NodeId, MiniNode>();
  drop: (from: NodeId, to: NodeId, bytes: Uint8Array) => boolean = () => false;
  rng: Prng;
  delayMs = 1;
  /** Route events through the packing layer (deliveries are messages). */
  usePg = false;

  constructor(
    readonly ids: NodeId[],
    readonly options: TotemOptions = {},
    seed = 1,
    readonly syncBarrier = false,
  ) {
    this.rng = new Prng(seed);
    for (const id of ids) this.boot(id);
  }

  boot(id: NodeId): void {
    const prev = this.nodes.get(id);
    const srp = new Srp({
      nodeId: id,
      nodes: this.ids,
      config: resolveTotemConfig(this.options, this.ids.length),
      rng: this.rng.fork(),
      storedRingSeq: prev?.storedRingSeq ?? null,
      syncBarrier: this.syncBarrier,
    });
    this.nodes.set(id, {
      srp,
      pg: new TotemPg(srp, { transportOverheadBytes: 0 }),
      delivered: [],
      confchgs: [],
      timers: new Map(),
      up: true,
      storedRingSeq: prev?.storedRingSeq ?? null,
    });
    this.#push({ at: this.now, order: 0, node: id, event: { type: "start" } });
  }

  crash(id: NodeId): void {
    const n = this.nodes.get(id)!;
    n.up = false;
    n.timers.clear();
  }

  shutdown(id: NodeId): void {
    this.#apply(id, { type: "shutdown" });
    this.crash(id);
  }

  send(
    id: NodeId,
    payload: Uint8Array,
    guarantee: "agreed" | "safe" = "agreed",
    sync = false,
  ): SrpAction[] {
    return this.#apply(id, { type: "send", payload, guarantee, sync });
  }

  /** Tells node `id`'s core what its link layer thinks of `peer`. */
  reachability(id: NodeId, peer: NodeId, reachable: boolean): void {
    this.#apply(id, { type: "reachability", node: peer, reachable });
  }

  /** Tells a node's core that service sync is complete. */
  syncDone(id: NodeId): void {
    this.#apply(id, { type: "sync_done" });
  }

  #push(ev: Ev): void {
    ev.order = this.#order++;
    this.#queue.push(ev);
  }

  /** Sends an application message through the packing layer. */
  sendMessage(id: NodeId, message: Uint8Array): boolean {
    const n = this.nodes.get(id)!;
    const r = n.pg.mcast(message, "agreed", this.now);
    this.#perform(id, r.actions);
    return r.accepted;
  }

  /** Sends the packing layer's partly filled frame. */
  flush(id: NodeId): void {
    const n = this.nodes.get(id)!;
    this.#perform(id, n.pg.flush(this.now));
  }

  #apply(id: NodeId, event: SrpEvent): SrpAction[] {
    const n = this.nodes.get(id)!;
    if (!n.up) return [];
    const actions = this.usePg && event.type !== "send"
      ? n.pg.step(event, this.now)
      : n.srp.step(event, this.now);
    this.#perform(id, actions);
    return actions;
  }

  #perform(id: NodeId, actions: SrpAction[]): void {
    const n = this.nodes.get(id)!;
    for (const a of actions) {
      switch (a.type) {
        case "transmit": {
          const targets = a.to === "all"
            ? this.ids.filter((x) => x !== id)
            : [a.to];
          for (const t of targets) {
            if (this.drop(id, t, a.bytes)) continue;
            this.#push({
              at: this.now + this.delayMs,
              order: 0,
              node: t,
              event: { type: "frame", bytes: a.bytes },
            });
          }
          break;
        }
        case "arm": {
          const gen = ++this.#gen;
          n.timers.set(a.timer, gen);
          this.#push({
            at: this.now + a.afterMs,
            order: 0,
            node: id,
            event: { type: "timer", timer: a.timer },
            timerGen: gen,
          });
          break;
        }
        case "cancel":
          n.timers.delete(a.timer);
          break;
        case "deliver":
          n.delivered.push({
            from: a.from,
            seq: a.seq,
            payload: a.payload,
            ring: `${a.ringId.rep}.${a.ringId.seq}`,
          });
          break;
        case "confchg":
          n.confchgs.push(a.change);
          break;
        case "persist_ring_seq":
          n.storedRingSeq = a.ringSeq;
          break;
        default:
          break;
      }
    }
  }

  run(untilMs: number): void {
    while (true) {
      let best = -1;
      for (let i = 0; i < this.#queue.length; i++) {
        const e = this.#queue[i];
        if (
          best < 0 || e.at < this.#queue[best].at ||
          (e.at === this.#queue[best].at && e.order < this.#queue[best].order)
        ) best = i;
      }
      if (best < 0 || this.#queue[best].at > untilMs) break;
      const ev = this.#queue.splice(best, 1)[0];
      this.now = ev.at;
      const n = this.nodes.get(ev.node)!;
      if (ev.event.type === "timer") {
        if (n.timers.get(ev.event.timer) !== ev.timerGen) continue;
        n.timers.delete(ev.event.timer);
      }
      this.#apply(ev.node, ev.event);
    }
    this.now = untilMs;
  }
}
