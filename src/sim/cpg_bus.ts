/**
 * An ideal totally ordered bus for executives, without a Totem core: unit
 * tests and scripted scenarios (tests/unit/exec, tests/unit/engines/cpg)
 * script configuration changes by hand and control exactly when queued
 * multicasts are delivered, so abort and stale-message cases are easy to
 * build. Messages still queued at a configuration change either vanish or
 * (with `carryOver`) are delivered in the sender's next ring, the way
 * frames left in the core's queues go out in the next ring.
 *
 * @module
 */
import { gather } from "../lib/gather.ts";
import type { ConnId, Engine } from "../exec/engine.ts";
import {
  type ExecAction,
  type ExecEvent,
  Executive,
} from "../exec/executive.ts";
import { assert } from "../lib/assert.ts";
import type { ConfChange, NodeId, RingId } from "../totem/types.ts";

/** One node on the bus. */
export interface BusNode {
  readonly id: NodeId;
  readonly executive: Executive;
  readonly engines: readonly Engine[];
  /** Every action the executive produced, in order. */
  readonly actions: ExecAction[];
  ring: RingId | null;
  members: readonly NodeId[];
}

interface Queued {
  readonly from: NodeId;
  readonly payload: Uint8Array;
  readonly sync: boolean;
}

/** Executives joined by a scripted, perfectly ordered network. */
export class OrderedBus {
  readonly nodes = new Map<NodeId, BusNode>();
  #queue: Queued[] = [];
  #ringSeq = 0;
  #nowMs = 0;
  #requestId = 0;

  /** `engines(id)` builds a node's engines. */
  constructor(ids: readonly NodeId[], engines: (id: NodeId) => Engine[]) {
    for (const id of ids) {
      const list = engines(id);
      this.nodes.set(id, {
        id,
        executive: new Executive({ nodeId: id, engines: list }),
        engines: list,
        actions: [],
        ring: null,
        members: [],
      });
    }
  }

  /** The node `id`. */
  node(id: NodeId): BusNode {
    const n = this.nodes.get(id);
    assert(n !== undefined, `no node ${id}`);
    return n;
  }

  /** Multicasts waiting for delivery. */
  get pending(): number {
    return this.#queue.length;
  }

  /** Feeds one event to a node and queues its multicasts. */
  step(id: NodeId, event: ExecEvent): ExecAction[] {
    const n = this.node(id);
    const out = n.executive.step(event, ++this.#nowMs);
    for (const a of out) {
      n.actions.push(a);
      if (a.type === "mcast") {
        this.#queue.push({
          from: id,
          payload: gather(a.payload),
          sync: a.sync,
        });
      }
    }
    return out;
  }

  /**
   * Installs one new ring per group: TRANS then REG at every member, with
   * Corosync's lists (TOTEM.md 1.2). Queued messages are dropped unless
   * `carryOver`, in which case they are delivered later in their sender's
   * new ring.
   */
  configure(
    groups: readonly (readonly NodeId[])[],
    options: { carryOver?: boolean } = {},
  ): RingId[] {
    if (!options.carryOver) this.#queue = [];
    const rings: RingId[] = [];
    const before = new Map(
      [...this.nodes.values()].map((
        n,
      ) => [n.id, { ring: n.ring, members: n.members }]),
    );
    for (const group of groups) {
      const members = [...group].sort((a, b) => a - b);
      this.#ringSeq += 4;
      const ringId: RingId = { rep: members[0], seq: this.#ringSeq };
      rings.push(ringId);
      for (const id of members) {
        const old = before.get(id)!;
        const trans = old.ring === null ? [] : members.filter((m) => {
          const o = before.get(m)!;
          return o.ring !== null && o.ring.rep === old.ring!.rep &&
            o.ring.seq === old.ring!.seq;
        });
        const transChange: ConfChange = {
          kind: "transitional",
          ringId,
          members: trans,
          left: old.members.filter((m) => !trans.includes(m)),
          joined: [],
        };
        const regChange: ConfChange = {
          kind: "regular",
          ringId,
          members,
          left: [],
          joined: members.filter((m) => !trans.includes(m)),
        };
        const n = this.node(id);
        n.ring = ringId;
        n.members = members;
        this.step(id, { type: "confchg", change: transChange, reason: "join" });
        this.step(id, { type: "confchg", change: regChange, reason: "join" });
      }
    }
    return rings;
  }

  /**
   * Delivers up to `max` queued messages in order, each to every member of
   * its sender's current ring; returns how many were delivered.
   */
  deliver(max = Infinity): number {
    let count = 0;
    while (count < max && this.#queue.length > 0) {
      const m = this.#queue.shift()!;
      count++;
      const sender = this.node(m.from);
      for (const id of sender.members) {
        this.step(id, { type: "deliver", from: m.from, payload: m.payload });
      }
    }
    return count;
  }

  /** Delivers until nothing is queued (sync rounds run to completion). */
  settle(limit = 10_000): void {
    for (let i = 0; i < limit; i++) {
      if (this.#queue.length === 0) {
        let ticked = false;
        for (const n of this.nodes.values()) {
          if (n.executive.needsTick) {
            this.step(n.id, { type: "tick" });
            ticked = true;
          }
        }
        if (!ticked) return;
      }
      this.deliver(1);
    }
    assert(false, "bus did not settle");
  }

  /** Sends an IPC request and returns the reply action (requests here reply at once or not at all). */
  request(
    id: NodeId,
    conn: ConnId,
    fn: number,
    payload: Uint8Array,
  ): Extract<ExecAction, { type: "reply" }> | undefined {
    const requestId = ++this.#requestId;
    const out = this.step(id, {
      type: "ipc_request",
      conn,
      requestId,
      fn,
      payload,
    });
    return out.find((a): a is Extract<ExecAction, { type: "reply" }> =>
      a.type === "reply" && a.requestId === requestId
    );
  }

  /** Payloads of the callbacks `conn` got at node `id`, oldest first. */
  events(id: NodeId, conn: ConnId): Uint8Array[] {
    return this.node(id).actions.flatMap((
      a,
    ) => (a.type === "event" && a.conn === conn ? [gather(a.payload)] : []));
  }

  /** Actions of node `id` of one type. */
  actionsOf<T extends ExecAction["type"]>(
    id: NodeId,
    type: T,
  ): Extract<ExecAction, { type: T }>[] {
    return this.node(id).actions.filter((
      a,
    ): a is Extract<ExecAction, { type: T }> => a.type === type);
  }
}
