import assert from "node:assert/strict";
import { gather } from "../../../src/lib/gather.ts";
import { CsError } from "../../../src/exec/cs_error.ts";
import type {
  ConnId,
  Engine,
  EngineApi,
  SyncProgress,
} from "../../../src/exec/engine.ts";
import { type ExecAction, Executive } from "../../../src/exec/executive.ts";
import {
  decodeSyncMessage,
  encodeEngineMessage,
  encodeSyncMessage,
  ENGINE_GROUP,
  SYNC_GROUP,
} from "../../../src/exec/wire.ts";
import { OrderedBus } from "../../../src/sim/cpg_bus.ts";
import {
  decodeGroupMessage,
  encodeGroupMessage,
} from "../../../src/totem/pg/mod.ts";
import type { ConfChange, NodeId, RingId } from "../../../src/totem/types.ts";

/** A test engine that records every hook call. */
class RecEngine implements Engine {
  readonly name: string;
  readonly serviceId: number;
  readonly priority: number;
  readonly calls: string[] = [];
  readonly notes: string[] = [];
  /** `process` answers "again" this many times per round. */
  again = 0;
  #againLeft = 0;
  #ring = "";
  api: EngineApi | null = null;
  readonly requests;
  readonly messages;
  readonly sync;

  constructor(name: string, serviceId: number, priority = 0) {
    this.name = name;
    this.serviceId = serviceId;
    this.priority = priority;
    this.requests = {
      send: {
        fn: 0,
        flowControl: true,
        handle: (r: { payload: Uint8Array }) => {
          this.api!.mcast("note", r.payload);
          return { status: CsError.OK };
        },
      },
      ping: {
        fn: 1,
        flowControl: false,
        handle: () => ({ status: CsError.OK, payload: new Uint8Array([42]) }),
      },
    };
    this.messages = {
      note: {
        fn: 3,
        handle: (from: NodeId, payload: Uint8Array) => {
          this.notes.push(`${from}:${new TextDecoder().decode(payload)}`);
        },
      },
    };
    this.sync = {
      init: (
        trans: readonly NodeId[],
        members: readonly NodeId[],
        ringId: RingId,
      ) => {
        this.#ring = `${ringId.rep}.${ringId.seq}`;
        this.#againLeft = this.again;
        this.calls.push(
          `init ${this.#ring} trans [${trans}] members [${members}]`,
        );
      },
      process: (): SyncProgress => {
        if (this.#againLeft > 0) {
          this.#againLeft--;
          this.calls.push(`process ${this.#ring} again`);
          return "again";
        }
        this.calls.push(`process ${this.#ring}`);
        return "done";
      },
      activate: () => this.calls.push(`activate ${this.#ring}`),
      abort: () => this.calls.push(`abort ${this.#ring}`),
    };
  }

  init(api: EngineApi): void {
    this.api = api;
    this.calls.push("init");
  }

  confChange(change: ConfChange): void {
    this.calls.push(
      `confchg ${change.kind} ${change.ringId.rep}.${change.ringId.seq}`,
    );
  }

  connOpen(conn: ConnId, pid: number): void {
    this.calls.push(`open ${conn} ${pid}`);
  }

  connClose(conn: ConnId): void {
    this.calls.push(`close ${conn}`);
    // Like CPG's PROCLEAVE: a message sent outside any request.
    this.api!.mcast("note", new TextEncoder().encode(`bye ${conn}`));
  }
}

function text(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

function activations(bus: OrderedBus, id: NodeId): string[] {
  return bus.actionsOf(id, "sync_activated").map((a) =>
    `${a.ringId.rep}.${a.ringId.seq}:${a.name ?? a.serviceId}`
  );
}

function syncDone(bus: OrderedBus, id: NodeId): string[] {
  return bus.actionsOf(id, "sync_done").map((a) =>
    `${a.ringId.rep}.${a.ringId.seq}`
  );
}

Deno.test("Executive starts engines in priority order and runs sync in service id order", () => {
  const order: string[] = [];
  const mk = (name: string, id: number, prio: number) => {
    const e = new RecEngine(name, id, prio);
    const init = e.init.bind(e);
    e.init = (api) => {
      order.push(name);
      init(api);
    };
    return e;
  };
  const bus = new OrderedBus([1, 2], () => [mk("b", 5, 0), mk("a", 2, 10)]);
  assert.deepEqual(order, ["b", "a", "b", "a"]);
  const [ring] = bus.configure([[1, 2]]);
  bus.settle();
  for (const id of [1, 2]) {
    assert.deepEqual(activations(bus, id), [
      `1.${ring.seq}:a`,
      `1.${ring.seq}:b`,
    ]);
    assert.deepEqual(syncDone(bus, id), [`1.${ring.seq}`]);
    assert.ok(!bus.node(id).executive.syncing);
  }
});

Deno.test("Executive waits for SERVICE_BUILD and BARRIER from every member", () => {
  const bus = new OrderedBus([1, 2, 3], () => [new RecEngine("a", 2)]);
  bus.configure([[1, 2, 3]]);
  // Deliver the three SERVICE_BUILDs one by one: nothing may run before the last.
  bus.deliver(2);
  for (const id of [1, 2, 3]) {
    const e = bus.node(id).engines[0] as RecEngine;
    assert.deepEqual(e.calls.filter((c) => c.startsWith("process")), []);
  }
  bus.deliver(1);
  for (const id of [1, 2, 3]) {
    const e = bus.node(id).engines[0] as RecEngine;
    assert.deepEqual(e.calls.filter((c) => c.startsWith("process")).length, 1);
    assert.deepEqual(e.calls.filter((c) => c.startsWith("activate")), []);
  }
  // Three barriers: activation only with the last.
  bus.deliver(2);
  assert.deepEqual(activations(bus, 1), []);
  bus.deliver(1);
  for (const id of [1, 2, 3]) assert.deepEqual(activations(bus, id).length, 1);
  assert.deepEqual(bus.pending, 0);
});

Deno.test("Executive aborts a round on a second confchg and ignores its stale barriers", () => {
  const bus = new OrderedBus([1, 2, 3], () => [new RecEngine("a", 2)]);
  const [r0] = bus.configure([[1, 2, 3]]);
  bus.settle();
  const [r1] = bus.configure([[1, 2, 3]]);
  bus.deliver(3); // the SERVICE_BUILDs; barriers now queued
  assert.deepEqual(bus.pending, 3);
  // Node 3 fails; the old barriers stay queued and go out in the new ring.
  const [r2] = bus.configure([[1, 2], [3]], { carryOver: true });
  for (const id of [1, 2]) {
    const e = bus.node(id).engines[0] as RecEngine;
    assert.ok(e.calls.includes(`abort 1.${r1.seq}`), e.calls.join("; "));
    assert.ok(
      e.calls.includes(`init 1.${r2.seq} trans [1,2] members [1,2]`),
      e.calls.join("; "),
    );
  }
  bus.settle();
  for (const id of [1, 2]) {
    // Never activated for the aborted ring, once for the new one.
    assert.deepEqual(activations(bus, id), [`1.${r0.seq}:a`, `1.${r2.seq}:a`]);
    assert.deepEqual(syncDone(bus, id), [`1.${r0.seq}`, `1.${r2.seq}`]);
    // The barriers of 1 and 2 from the aborted round reach both of them.
    assert.equal(bus.node(id).executive.stats.staleSync, 2);
  }
  assert.deepEqual(activations(bus, 3), [`1.${r0.seq}:a`, `3.${r2.seq + 4}:a`]);
});

Deno.test("Executive ignores a barrier of the right ring for the wrong service or from a non-member", () => {
  const a = new RecEngine("a", 2);
  const exec = new Executive({ nodeId: 1, engines: [a] });
  const ringId = { rep: 1, seq: 8 };
  const change = (
    kind: "transitional" | "regular",
    members: NodeId[],
  ): ConfChange => ({
    kind,
    ringId,
    members,
    left: [],
    joined: [],
  });
  exec.step({
    type: "confchg",
    change: change("transitional", [1]),
    reason: "join",
  }, 0);
  exec.step({
    type: "confchg",
    change: change("regular", [1, 2]),
    reason: "join",
  }, 0);
  const sync = (m: Parameters<typeof encodeSyncMessage>[0]) =>
    encodeGroupMessage([SYNC_GROUP], encodeSyncMessage(m));
  const deliver = (from: NodeId, payload: Uint8Array): ExecAction[] =>
    exec.step({ type: "deliver", from, payload }, 0);
  for (const from of [1, 2]) {
    deliver(from, sync({ type: "service_build", ringId, serviceIds: [2] }));
  }
  assert.deepEqual(a.calls.filter((c) => c.startsWith("process")).length, 1);
  deliver(1, sync({ type: "barrier", ringId, serviceId: 2 }));
  // Wrong service, non-member, other ring: none counts.
  deliver(2, sync({ type: "barrier", ringId, serviceId: 5 }));
  deliver(3, sync({ type: "barrier", ringId, serviceId: 2 }));
  deliver(
    2,
    sync({ type: "barrier", ringId: { rep: 1, seq: 4 }, serviceId: 2 }),
  );
  assert.deepEqual(a.calls.filter((c) => c.startsWith("activate")), []);
  assert.deepEqual(exec.stats.staleSync, 3);
  const out = deliver(2, sync({ type: "barrier", ringId, serviceId: 2 }));
  assert.deepEqual(out.filter((x) => x.type === "sync_done").length, 1);
});

Deno.test("Executive runs a service only others have as a no-op with a barrier", () => {
  const bus = new OrderedBus(
    [1, 2],
    (id) =>
      id === 1
        ? [new RecEngine("a", 2), new RecEngine("z", 9)]
        : [new RecEngine("a", 2)],
  );
  const [r] = bus.configure([[1, 2]]);
  bus.settle();
  assert.deepEqual(activations(bus, 1), [`1.${r.seq}:a`, `1.${r.seq}:z`]);
  assert.deepEqual(activations(bus, 2), [`1.${r.seq}:a`, `1.${r.seq}:9`]);
});

Deno.test("Executive retries a process() that answers again on ticks", () => {
  const bus = new OrderedBus([1, 2], () => {
    const e = new RecEngine("a", 2);
    e.again = 3;
    return [e];
  });
  bus.configure([[1, 2]]);
  bus.deliver(2);
  assert.ok(bus.node(1).executive.needsTick);
  bus.settle();
  const e = bus.node(1).engines[0] as RecEngine;
  assert.deepEqual(e.calls.filter((c) => c.endsWith(" again")).length, 3);
  assert.deepEqual(syncDone(bus, 1).length, 1);
  assert.ok(!bus.node(1).executive.needsTick);
});

Deno.test("Executive answers flow-controlled requests TRY_AGAIN while syncing and serves queries", () => {
  const bus = new OrderedBus([1, 2], () => [new RecEngine("a", 2)]);
  bus.step(1, { type: "ipc_open", conn: 7, service: 2, pid: 100 });
  // No ring yet: syncing.
  assert.deepEqual(bus.request(1, 7, 0, text("x"))?.status, CsError.TRY_AGAIN);
  assert.deepEqual(
    bus.request(1, 7, 1, new Uint8Array())?.payload,
    new Uint8Array([42]),
  );
  bus.configure([[1, 2]]);
  assert.deepEqual(bus.request(1, 7, 0, text("x"))?.status, CsError.TRY_AGAIN);
  bus.settle();
  assert.deepEqual(bus.request(1, 7, 0, text("hello"))?.status, CsError.OK);
  bus.settle();
  assert.deepEqual((bus.node(2).engines[0] as RecEngine).notes, ["1:hello"]);
  // A client over its event limit gets TRY_AGAIN until it drains.
  bus.step(1, { type: "ipc_flow", conn: 7, blocked: true });
  assert.deepEqual(bus.request(1, 7, 0, text("x"))?.status, CsError.TRY_AGAIN);
  bus.step(1, { type: "ipc_flow", conn: 7, blocked: false });
  assert.deepEqual(bus.request(1, 7, 0, text("y"))?.status, CsError.OK);
  assert.deepEqual(bus.node(1).executive.stats.tryAgain, 3);
});

Deno.test("Executive holds engine messages sent during sync and releases them after sync_done, in order", () => {
  const bus = new OrderedBus([1, 2], () => [new RecEngine("a", 2)]);
  bus.configure([[1, 2]]);
  bus.settle();
  for (const conn of [1, 2, 3]) {
    bus.step(1, { type: "ipc_open", conn, service: "a", pid: conn });
  }
  bus.configure([[1, 2]]);
  // Disconnects during sync: never refused, held.
  bus.step(1, { type: "ipc_close", conn: 2 });
  bus.step(1, { type: "ipc_close", conn: 1 });
  assert.deepEqual(bus.node(1).executive.outboxLength, 2);
  const mcastsBefore = bus.actionsOf(1, "mcast").filter((m) => !m.sync).length;
  assert.deepEqual(mcastsBefore, 0);
  bus.settle();
  const actions = bus.node(1).actions;
  const done = actions.findIndex((a) =>
    a.type === "sync_done" && a.ringId.seq === 8
  );
  const released = actions.findIndex((a) => a.type === "mcast" && !a.sync);
  assert.ok(
    done >= 0 && released > done,
    "held messages go out after sync_done",
  );
  assert.deepEqual((bus.node(2).engines[0] as RecEngine).notes, [
    "1:bye 2",
    "1:bye 1",
  ]);
});

Deno.test("Executive refuses unknown services and functions and cuts off overflowing clients", () => {
  const a = new RecEngine("a", 2);
  const exec = new Executive({ nodeId: 1, engines: [a] });
  assert.deepEqual(
    exec.step({ type: "ipc_open", conn: 1, service: 77, pid: 5 }, 0),
    [
      { type: "disconnect", conn: 1, status: CsError.NOT_EXIST },
    ],
  );
  assert.deepEqual(
    exec.step({ type: "ipc_open", conn: 2, service: "nope", pid: 5 }, 0)[0]
      .type,
    "disconnect",
  );
  exec.step({ type: "ipc_open", conn: 3, service: 2, pid: 5 }, 0);
  const unknownFn = exec.step({
    type: "ipc_request",
    conn: 3,
    requestId: 9,
    fn: 55,
    payload: new Uint8Array(),
  }, 0);
  assert.deepEqual(unknownFn[0], {
    type: "reply",
    conn: 3,
    requestId: 9,
    status: CsError.INVALID_PARAM,
    payload: new Uint8Array(),
  });
  const noConn = exec.step({
    type: "ipc_request",
    conn: 4,
    requestId: 10,
    fn: 1,
    payload: new Uint8Array(),
  }, 0);
  assert.deepEqual(
    noConn[0].type === "reply" && noConn[0].status,
    CsError.BAD_HANDLE,
  );
  const out = exec.step({ type: "ipc_overflow", conn: 3 }, 0);
  assert.ok(
    out.some((x) =>
      x.type === "disconnect" && x.conn === 3 &&
      x.status === CsError.NO_RESOURCES
    ),
  );
  assert.ok(a.calls.includes("close 3"));
  assert.deepEqual(a.api!.event(3, new Uint8Array([1])), false);
  assert.deepEqual(exec.connCount, 0);
});

Deno.test("Executive drops undecodable and unknown deliveries without throwing", () => {
  const a = new RecEngine("a", 2);
  const exec = new Executive({ nodeId: 1, engines: [a] });
  const deliver = (payload: Uint8Array) =>
    exec.step({ type: "deliver", from: 2, payload }, 0);
  deliver(new Uint8Array([]));
  deliver(new Uint8Array([1, 0, 1, 0]));
  deliver(encodeGroupMessage([ENGINE_GROUP], new Uint8Array([1, 2, 3])));
  deliver(
    encodeGroupMessage([ENGINE_GROUP], encodeEngineMessage(9, 3, text("x"))),
  );
  deliver(
    encodeGroupMessage([ENGINE_GROUP], encodeEngineMessage(2, 99, text("x"))),
  );
  deliver(encodeGroupMessage([SYNC_GROUP], new Uint8Array([7, 0, 1])));
  deliver(encodeGroupMessage(["other"], text("not ours")));
  assert.deepEqual(exec.stats.rejected, 4);
  assert.deepEqual(exec.stats.unknownMessages, 2);
  deliver(
    encodeGroupMessage([ENGINE_GROUP], encodeEngineMessage(2, 3, text("ok"))),
  );
  assert.deepEqual(a.notes, ["2:ok"]);
});

Deno.test("Executive SERVICE_BUILD lists our services and travels on the sync lane", () => {
  const exec = new Executive({
    nodeId: 4,
    engines: [new RecEngine("b", 5), new RecEngine("a", 2)],
  });
  const ringId = { rep: 4, seq: 12 };
  exec.step({
    type: "confchg",
    change: { kind: "transitional", ringId, members: [], left: [], joined: [] },
    reason: "start",
  }, 0);
  const out = exec.step({
    type: "confchg",
    change: { kind: "regular", ringId, members: [4], left: [], joined: [4] },
    reason: "start",
  }, 0);
  const m = out.find((a) => a.type === "mcast");
  assert.ok(m !== undefined && m.type === "mcast" && m.sync);
  const g = decodeGroupMessage(gather(m.payload));
  assert.ok(g.ok);
  assert.deepEqual(g.value.groups, [SYNC_GROUP]);
  const d = decodeSyncMessage(g.value.payload);
  assert.deepEqual(d, {
    ok: true,
    value: { type: "service_build", ringId, serviceIds: [2, 5] },
  });
});

Deno.test("Executive trans keeps only members that stayed through aborted rounds", () => {
  const bus = new OrderedBus([1, 2, 3], () => [new RecEngine("a", 2)]);
  bus.configure([[1, 2, 3]]);
  bus.settle();
  // Node 1 splits off, then all merge twice before any round completes:
  // the last TRANS says [1,2,3], but 2 and 3 were not with 1 throughout.
  bus.configure([[1], [2, 3]]);
  bus.configure([[1, 2, 3]]);
  const [last] = bus.configure([[1, 2, 3]]);
  const inits = (id: NodeId) =>
    (bus.node(id).engines[0] as RecEngine).calls.filter((c) =>
      c.startsWith(`init 1.${last.seq}`)
    );
  assert.deepEqual(inits(1), [
    `init 1.${last.seq} trans [1] members [1,2,3]`,
  ]);
  assert.deepEqual(inits(2), [
    `init 1.${last.seq} trans [2,3] members [1,2,3]`,
  ]);
  // Once a round completes, the next one starts afresh.
  bus.settle();
  const [next] = bus.configure([[1, 2, 3]]);
  assert.ok(
    (bus.node(1).engines[0] as RecEngine).calls.includes(
      `init 1.${next.seq} trans [1,2,3] members [1,2,3]`,
    ),
  );
});

Deno.test("Executive hands an engine's message to TotemPg as parts: the request's bytes, not a copy", () => {
  const bus = new OrderedBus([1, 2], () => [new RecEngine("a", 2)]);
  bus.configure([[1, 2]]);
  bus.settle();
  bus.step(1, { type: "ipc_open", conn: 7, service: "a", pid: 70 });
  const body = text("the application's bytes");
  const before = bus.actionsOf(1, "mcast").length;
  assert.deepEqual(bus.request(1, 7, 0, body)?.status, CsError.OK);
  const sent = bus.actionsOf(1, "mcast").slice(before);
  assert.equal(sent.length, 1);
  // Group and engine headers first; the request payload itself is the last.
  assert.equal(sent[0].payload.length, 3);
  assert.equal(sent[0].payload[2], body);
  bus.settle();
  assert.deepEqual((bus.node(2).engines[0] as RecEngine).notes, [
    "1:the application's bytes",
  ]);
});
