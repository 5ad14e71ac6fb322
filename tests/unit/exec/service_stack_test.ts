import { gather } from "../../../src/lib/gather.ts";
import assert from "node:assert/strict";
import { CpgEngine } from "../../../engines/cpg/cpg.ts";
import {
  CPG_REQUEST_FN,
  type CpgCallback,
  type CpgRequest,
  decodeCpgCallback,
  encodeCpgRequest,
} from "../../../engines/cpg/ipc.ts";
import { CsError } from "../../../src/exec/cs_error.ts";
import { SERVICE_ID } from "../../../src/exec/engine.ts";
import { Executive } from "../../../src/exec/executive.ts";
import {
  ServiceStack,
  type StackAction,
  type StackEvent,
} from "../../../src/exec/service_stack.ts";
import { Prng } from "../../../src/lib/prng.ts";
import { EventQueue } from "../../../src/sim/event_queue.ts";
import {
  resolveTotemConfig,
  type TotemOptions,
} from "../../../src/totem/config.ts";
import { TotemPg } from "../../../src/totem/pg/totem_pg.ts";
import { Srp } from "../../../src/totem/srp.ts";
import type { NodeId, TimerName } from "../../../src/totem/types.ts";

interface Node {
  stack: ServiceStack;
  timers: Map<TimerName, number>;
  actions: StackAction[];
}

type Ev =
  | { kind: "frame"; to: NodeId; bytes: Uint8Array }
  | { kind: "timer"; node: NodeId; timer: TimerName; gen: number }
  | { kind: "tick"; node: NodeId };

/** A reliable 1 ms network of whole stacks (Totem + packing + executive + CPG). */
class StackNet {
  now = 0;
  readonly nodes = new Map<NodeId, Node>();
  #queue = new EventQueue<Ev>();
  #gen = 0;
  #req = 0;

  constructor(ids: NodeId[], totem: TotemOptions = {}) {
    const rng = new Prng(1);
    const config = resolveTotemConfig({
      tokenMs: 1000,
      tokenCoefficientMs: 0,
      ...totem,
    }, ids.length);
    for (const id of ids) {
      const srp = new Srp({
        nodeId: id,
        nodes: ids,
        config,
        rng: rng.fork(),
        storedRingSeq: null,
        syncBarrier: true,
      });
      const stack = new ServiceStack({
        pg: new TotemPg(srp, { transportOverheadBytes: 0 }),
        executive: new Executive({ nodeId: id, engines: [new CpgEngine()] }),
      });
      this.nodes.set(id, { stack, timers: new Map(), actions: [] });
    }
    for (const id of ids) this.step(id, { type: "start" });
  }

  step(id: NodeId, event: StackEvent): StackAction[] {
    const n = this.nodes.get(id)!;
    const out = n.stack.step(event, this.now);
    for (const a of out) {
      n.actions.push(a);
      switch (a.type) {
        case "transmit":
          for (
            const to of a.to === "all"
              ? [...this.nodes.keys()].filter((x) => x !== id)
              : [a.to]
          ) {
            this.#queue.push(this.now + 1, {
              kind: "frame",
              to,
              bytes: a.bytes,
            });
          }
          break;
        case "arm": {
          const gen = ++this.#gen;
          n.timers.set(a.timer, gen);
          this.#queue.push(this.now + a.afterMs, {
            kind: "timer",
            node: id,
            timer: a.timer,
            gen,
          });
          break;
        }
        case "cancel":
          n.timers.delete(a.timer);
          break;
      }
    }
    if (n.stack.needsTick) {
      this.#queue.push(this.now + 1, { kind: "tick", node: id });
    }
    return out;
  }

  run(untilMs: number): void {
    while (this.#queue.peekTime() <= untilMs) {
      const { atMs, item } = this.#queue.pop()!;
      this.now = atMs;
      if (item.kind === "frame") {
        this.step(item.to, { type: "frame", bytes: item.bytes });
      } else if (item.kind === "tick") this.step(item.node, { type: "tick" });
      else if (this.nodes.get(item.node)!.timers.get(item.timer) === item.gen) {
        this.nodes.get(item.node)!.timers.delete(item.timer);
        this.step(item.node, { type: "timer", timer: item.timer });
      }
    }
    this.now = untilMs;
  }

  request(id: NodeId, conn: number, req: CpgRequest): number {
    const requestId = ++this.#req;
    const out = this.step(id, {
      type: "ipc_request",
      conn,
      requestId,
      fn: CPG_REQUEST_FN[req.fn],
      payload: encodeCpgRequest(req),
    });
    const reply = out.find((a) =>
      a.type === "reply" && a.requestId === requestId
    );
    assert.ok(reply !== undefined && reply.type === "reply");
    return reply.status;
  }

  callbacks(id: NodeId, conn: number): CpgCallback[] {
    return this.nodes.get(id)!.actions.flatMap((a) => {
      if (a.type !== "event" || a.conn !== conn) return [];
      const d = decodeCpgCallback(gather(a.payload));
      assert.ok(d.ok);
      return [d.value];
    });
  }
}

function delivered(net: StackNet, id: NodeId, conn: number): string[] {
  return net.callbacks(id, conn).flatMap((c) =>
    c.kind === "deliver"
      ? [`${c.nodeId}:${c.pid}:${new TextDecoder().decode(c.message)}`]
      : []
  );
}

Deno.test("ServiceStack forms a ring, syncs CPG and carries joins and messages end to end", () => {
  const net = new StackNet([1, 2, 3]);
  net.step(1, { type: "ipc_open", conn: 1, service: SERVICE_ID.CPG, pid: 10 });
  net.step(3, { type: "ipc_open", conn: 1, service: "cpg", pid: 30 });
  // Before the first sync: TRY_AGAIN.
  assert.equal(
    net.request(1, 1, { fn: "join", flags: 0, group: "g" }),
    CsError.TRY_AGAIN,
  );
  net.run(5000);
  for (const id of [1, 2, 3]) {
    const ex = net.nodes.get(id)!.stack.executive;
    assert.equal(ex.syncing, false);
    assert.deepEqual([...ex.members], [1, 2, 3]);
  }
  assert.equal(
    net.request(1, 1, { fn: "join", flags: 0, group: "g" }),
    CsError.OK,
  );
  assert.equal(
    net.request(3, 1, { fn: "join", flags: 0, group: "g" }),
    CsError.OK,
  );
  net.run(5100);
  for (let i = 0; i < 5; i++) {
    const msg = new TextEncoder().encode(`m${i}`);
    assert.equal(
      net.request(1 + 2 * (i % 2), 1, {
        fn: "mcast",
        guarantee: "agreed",
        message: msg,
      }),
      CsError.OK,
    );
  }
  net.run(5200);
  const at1 = delivered(net, 1, 1);
  // Total order is the ring's, FIFO per sender, the same at every member.
  assert.deepEqual(at1.filter((m) => m.startsWith("1:")), [
    "1:10:m0",
    "1:10:m2",
    "1:10:m4",
  ]);
  assert.deepEqual(at1.filter((m) => m.startsWith("3:")), [
    "3:30:m1",
    "3:30:m3",
  ]);
  assert.deepEqual(delivered(net, 3, 1), at1);
  const views = net.callbacks(3, 1).filter((c) => c.kind === "confchg");
  const last = views[views.length - 1];
  assert.ok(last.kind === "confchg");
  assert.deepEqual(last.members, [{ nodeId: 1, pid: 10 }, {
    nodeId: 3,
    pid: 30,
  }]);
  for (const id of [1, 2, 3]) {
    assert.equal(net.nodes.get(id)!.stack.backlogLength, 0);
  }
});

Deno.test("ServiceStack keeps refused multicasts in a backlog and delivers them in order", () => {
  const net = new StackNet([1, 2], {
    sendQueueFramesMax: 2,
    maxMessages: 1,
    windowSize: 1,
  });
  net.step(1, { type: "ipc_open", conn: 1, service: "cpg", pid: 10 });
  net.run(5000);
  assert.equal(
    net.request(1, 1, { fn: "join", flags: 0, group: "g" }),
    CsError.OK,
  );
  net.run(5100);
  const big = new Uint8Array(1300); // one frame each: the queue fills fast
  const sent: string[] = [];
  let refused = 0;
  for (let i = 0; i < 40; i++) {
    const message = new Uint8Array(big.length);
    message.set(new TextEncoder().encode(`m${i}`));
    const status = net.request(1, 1, {
      fn: "mcast",
      guarantee: "agreed",
      message,
    });
    if (status === CsError.OK) sent.push(`m${i}`);
    else {
      assert.equal(status, CsError.TRY_AGAIN);
      refused++;
    }
  }
  assert.ok(refused > 0, "the tiny queue must push back");
  net.run(8000);
  const got = net.callbacks(1, 1).flatMap((c) =>
    c.kind === "deliver"
      ? [new TextDecoder().decode(c.message.subarray(0, 3)).replace(/\0/g, "")]
      : []
  );
  assert.deepEqual(got, sent);
  assert.equal(net.nodes.get(1)!.stack.backlogLength, 0);
});
