import assert from "node:assert/strict";
import { CpgEngine } from "../../../../engines/cpg/cpg.ts";
import {
  CPG_JOIN_FLAG_INITIAL_TOTEM_CONF,
  CPG_REQUEST_FN,
  type CpgCallback,
  type CpgRequest,
  decodeCpgCallback,
  decodeIterationItem,
  decodeMembership,
  decodeU32,
  encodeCpgRequest,
} from "../../../../engines/cpg/ipc.ts";
import {
  CPG_MESSAGE_BYTES_MAX,
  CPG_MESSAGE_FN,
  type CpgMessage,
  type CpgMessageName,
  CpgReason,
  decodeCpgMessage,
  encodeCpgMessage,
} from "../../../../engines/cpg/wire.ts";
import { CsError } from "../../../../src/exec/cs_error.ts";
import type { ConnId, EngineApi } from "../../../../src/exec/engine.ts";
import { gather } from "../../../../src/lib/gather.ts";
import { OrderedBus } from "../../../../src/sim/cpg_bus.ts";
import type { NodeId, RingId } from "../../../../src/totem/types.ts";

/** An EngineApi that records what the engine sends. */
class FakeApi implements EngineApi {
  readonly nodeId: NodeId;
  readonly sent: CpgMessage[] = [];
  readonly events: { conn: ConnId; cb: CpgCallback }[] = [];
  constructor(nodeId: NodeId) {
    this.nodeId = nodeId;
  }
  mcast(message: string, payload: Uint8Array | readonly Uint8Array[]): void {
    const d = decodeCpgMessage(message as CpgMessageName, gather(payload));
    assert.ok(d.ok);
    this.sent.push(d.value);
  }
  reply(): void {}
  event(conn: ConnId, payload: Uint8Array | readonly Uint8Array[]): boolean {
    const d = decodeCpgCallback(gather(payload));
    assert.ok(d.ok);
    this.events.push({ conn, cb: d.value });
    return true;
  }
  disconnect(): void {}
  log(): void {}
}

/** One CPG engine driven by hand. */
function engine(
  nodeId: NodeId,
): {
  cpg: CpgEngine;
  api: FakeApi;
  deliver: (from: NodeId, m: CpgMessage) => void;
} {
  const cpg = new CpgEngine();
  const api = new FakeApi(nodeId);
  cpg.init(api);
  return {
    cpg,
    api,
    deliver: (from, m) =>
      cpg.messages[m.type].handle(from, encodeCpgMessage(m)),
  };
}

function req(
  cpg: CpgEngine,
  conn: ConnId,
  r: CpgRequest,
): { status: number; payload?: Uint8Array } {
  const name = Object.entries(cpg.requests).find(([, h]) =>
    h.fn === CPG_REQUEST_FN[r.fn]
  );
  assert.ok(name !== undefined);
  const res = name[1].handle({
    conn,
    requestId: 1,
    payload: encodeCpgRequest(r),
  });
  assert.ok(res !== "deferred");
  return res;
}

const RING: RingId = { rep: 1, seq: 8 };
const join = (pid: number, group: string): CpgMessage => ({
  type: "procjoin",
  pid,
  reason: CpgReason.JOIN,
  group,
});

function confchgs(api: FakeApi, conn: ConnId): string[] {
  return api.events.filter((e) => e.conn === conn).flatMap((e) => {
    if (e.cb.kind !== "confchg") return [];
    const a = (l: readonly { nodeId: number; pid: number; reason: number }[]) =>
      l.map((x) => `${x.nodeId}:${x.pid}/${x.reason}`).join(",");
    return [
      `${e.cb.group} [${
        e.cb.members.map((m) => `${m.nodeId}:${m.pid}`).join(",")
      }] -[${a(e.cb.left)}] +[${a(e.cb.joined)}]`,
    ];
  });
}

Deno.test("CpgEngine join, mcast and leave follow Corosync's connection states", () => {
  const { cpg, api, deliver } = engine(1);
  cpg.connOpen(5, 100);
  cpg.connOpen(6, 100);
  assert.equal(req(cpg, 5, { fn: "leave" }).status, CsError.NOT_EXIST);
  assert.equal(
    req(cpg, 5, {
      fn: "mcast",
      guarantee: "agreed",
      message: new Uint8Array([1]),
    }).status,
    CsError.NOT_EXIST,
  );
  assert.equal(
    req(cpg, 5, { fn: "join", flags: 0, group: "g" }).status,
    CsError.OK,
  );
  assert.equal(cpg.connPhase(5), "join_started");
  assert.equal(
    req(cpg, 5, { fn: "join", flags: 0, group: "h" }).status,
    CsError.EXIST,
  );
  // Same process, same group, other handle.
  assert.equal(
    req(cpg, 6, { fn: "join", flags: 0, group: "g" }).status,
    CsError.EXIST,
  );
  assert.equal(req(cpg, 5, { fn: "leave" }).status, CsError.BUSY);
  // An MCAST while the join is in flight is fine: FIFO puts it after PROCJOIN.
  assert.equal(
    req(cpg, 5, {
      fn: "mcast",
      guarantee: "safe",
      message: new Uint8Array([7]),
    }).status,
    CsError.OK,
  );
  assert.deepEqual(api.sent.map((m) => m.type), ["procjoin", "mcast"]);
  for (const m of [...api.sent]) deliver(1, m);
  assert.equal(cpg.connPhase(5), "join_completed");
  assert.deepEqual(confchgs(api, 5), ["g [1:100] -[] +[1:100/1]"]);
  const delivered = api.events.filter((e) => e.cb.kind === "deliver");
  assert.equal(delivered.length, 1);
  assert.equal(req(cpg, 5, { fn: "leave" }).status, CsError.OK);
  assert.equal(req(cpg, 5, { fn: "leave" }).status, CsError.NOT_EXIST);
  // The process is still in the group until its PROCLEAVE is delivered
  // (Corosync checks that before the connection state).
  assert.equal(
    req(cpg, 5, { fn: "join", flags: 0, group: "g" }).status,
    CsError.EXIST,
  );
  deliver(1, api.sent[api.sent.length - 1]);
  assert.equal(cpg.connPhase(5), "unjoined");
  assert.deepEqual(confchgs(api, 5).slice(-1), ["g [] -[1:100/2] +[]"]);
  assert.deepEqual(cpg.processInfo(), []);
  assert.equal(
    req(cpg, 5, { fn: "join", flags: 0, group: "g" }).status,
    CsError.OK,
  );
  // u8 guarantee + one byte over the limit (the client library refuses to
  // encode it, a foreign client may not).
  const tooBig = new Uint8Array(1 + CPG_MESSAGE_BYTES_MAX + 1);
  const res = cpg.requests.mcast.handle({
    conn: 5,
    requestId: 2,
    payload: tooBig,
  });
  assert.deepEqual(res, { status: CsError.TOO_BIG });
  const garbage = cpg.requests.mcast.handle({
    conn: 5,
    requestId: 3,
    payload: new Uint8Array([9]),
  });
  assert.deepEqual(garbage, { status: CsError.INVALID_PARAM });
});

Deno.test("CpgEngine answers membership, local node and iterations", () => {
  const { cpg, deliver } = engine(3);
  cpg.connOpen(1, 30);
  deliver(2, join(20, "g"));
  deliver(1, join(10, "g"));
  deliver(1, join(11, "h"));
  const m = req(cpg, 1, { fn: "membership_get", group: "g" });
  assert.deepEqual(decodeMembership(m.payload!), {
    ok: true,
    value: [{ nodeId: 1, pid: 10 }, { nodeId: 2, pid: 20 }],
  });
  assert.deepEqual(decodeU32(req(cpg, 1, { fn: "local_get" }).payload!), {
    ok: true,
    value: 3,
  });
  const it = decodeU32(
    req(cpg, 1, { fn: "iteration_initialize", iterationType: 3, group: null })
      .payload!,
  );
  assert.ok(it.ok);
  const items: string[] = [];
  while (true) {
    const r = req(cpg, 1, { fn: "iteration_next", handle: it.value });
    if (r.status === CsError.NO_SECTIONS) break;
    const d = decodeIterationItem(r.payload!);
    assert.ok(d.ok);
    items.push(`${d.value.group}@${d.value.nodeId}:${d.value.pid}`);
  }
  assert.deepEqual(items, ["g@1:10", "g@2:20", "h@1:11"]);
  assert.equal(
    req(cpg, 1, { fn: "iteration_finalize", handle: it.value }).status,
    CsError.OK,
  );
  assert.equal(
    req(cpg, 1, { fn: "iteration_next", handle: it.value }).status,
    CsError.BAD_HANDLE,
  );
  const names = decodeU32(
    req(cpg, 1, { fn: "iteration_initialize", iterationType: 1, group: null })
      .payload!,
  );
  assert.ok(names.ok);
  const first = decodeIterationItem(
    req(cpg, 1, { fn: "iteration_next", handle: names.value }).payload!,
  );
  assert.deepEqual(first, {
    ok: true,
    value: { group: "g", nodeId: 0, pid: 0 },
  });
});

Deno.test("CpgEngine drops an MCAST from a process not known in the group", () => {
  const { cpg, api, deliver } = engine(1);
  cpg.connOpen(1, 10);
  req(cpg, 1, { fn: "join", flags: 0, group: "g" });
  deliver(1, api.sent[0]);
  const mcast = (pid: number, group: string): CpgMessage => ({
    type: "mcast",
    pid,
    guarantee: "agreed",
    group,
    message: new Uint8Array([pid]),
  });
  deliver(2, mcast(20, "g")); // node 2 has no process in g
  deliver(2, join(21, "g"));
  deliver(2, mcast(20, "g")); // node 2 has one, but not pid 20
  deliver(2, mcast(21, "h")); // pid 21 is in g, not h
  deliver(2, mcast(21, "g"));
  const got = api.events.flatMap((e) =>
    e.cb.kind === "deliver" ? [`${e.cb.nodeId}:${e.cb.pid}`] : []
  );
  assert.deepEqual(got, ["2:21"]);
  assert.equal(cpg.stats.unknownSender, 3);
});

Deno.test("CpgEngine activation removes downlist nodes (NODEDOWN), adds joinlists (NODEUP), drops unconfirmed (PROCDOWN)", () => {
  const { cpg, api, deliver } = engine(1);
  cpg.connOpen(1, 10);
  req(cpg, 1, { fn: "join", flags: 0, group: "g" });
  deliver(1, api.sent.pop()!);
  // First sync: ring [1,2,3], everybody's processes arrive by joinlists.
  cpg.sync.init([], [1, 2, 3], { rep: 1, seq: 4 });
  assert.equal(cpg.sync.process(), "done");
  const [down0, jl0] = api.sent.splice(0);
  assert.deepEqual(down0, {
    type: "downlist",
    ringId: { rep: 1, seq: 4 },
    oldMembers: 0,
    left: [],
  });
  assert.deepEqual(jl0, {
    type: "joinlist",
    ringId: { rep: 1, seq: 4 },
    entries: [{ pid: 10, group: "g" }],
  });
  deliver(1, jl0);
  deliver(2, {
    type: "joinlist",
    ringId: { rep: 1, seq: 4 },
    entries: [{ pid: 20, group: "g" }, { pid: 21, group: "g" }],
  });
  deliver(3, {
    type: "joinlist",
    ringId: { rep: 1, seq: 4 },
    entries: [{ pid: 30, group: "g" }],
  });
  cpg.sync.activate();
  assert.deepEqual(confchgs(api, 1).slice(-1), [
    "g [1:10,2:20,2:21,3:30] -[] +[2:20/4,2:21/4,3:30/4]",
  ]);
  assert.deepEqual(cpg.oldMembers, [1, 2, 3]);
  // Ring [1,2]: node 3 is gone (NODEDOWN); node 2 lost pid 21 on the way
  // without us seeing its PROCLEAVE (PROCDOWN); a stale joinlist of the
  // previous round must not confirm it.
  cpg.sync.init([1, 2], [1, 2], RING);
  cpg.sync.process();
  const [down1] = api.sent.splice(0);
  assert.deepEqual(down1, {
    type: "downlist",
    ringId: RING,
    oldMembers: 3,
    left: [3],
  });
  deliver(2, {
    type: "joinlist",
    ringId: { rep: 1, seq: 4 },
    entries: [{ pid: 20, group: "g" }, { pid: 21, group: "g" }],
  });
  deliver(3, {
    type: "joinlist",
    ringId: RING,
    entries: [{ pid: 30, group: "g" }],
  }); // not a member
  deliver(2, {
    type: "joinlist",
    ringId: RING,
    entries: [{ pid: 20, group: "g" }, { pid: 22, group: "k" }],
  });
  deliver(1, {
    type: "joinlist",
    ringId: RING,
    entries: [{ pid: 10, group: "g" }],
  });
  assert.equal(cpg.stats.staleSync, 2);
  api.events.splice(0);
  cpg.sync.activate();
  assert.deepEqual(confchgs(api, 1), [
    "g [1:10,2:20,2:21] -[3:30/3] +[]",
    "g [1:10,2:20] -[2:21/5] +[]",
  ]);
  const totem = api.events.filter((e) => e.cb.kind === "totem_confchg").map((
    e,
  ) => e.cb);
  assert.deepEqual(totem, [{
    kind: "totem_confchg",
    ringId: RING,
    members: [1, 2],
  }]);
  assert.deepEqual(
    cpg.processInfo().map((e) => `${e.group}@${e.nodeId}:${e.pid}`),
    ["g@1:10", "g@2:20", "k@2:22"],
  );
});

Deno.test("CpgEngine abort forgets the round's joinlists", () => {
  const { cpg, deliver } = engine(1);
  cpg.sync.init([1], [1, 2], RING);
  cpg.sync.process();
  deliver(2, {
    type: "joinlist",
    ringId: RING,
    entries: [{ pid: 20, group: "g" }],
  });
  cpg.sync.abort();
  const next = { rep: 1, seq: 12 };
  cpg.sync.init([1, 2], [1, 2], next);
  cpg.sync.process();
  cpg.sync.activate();
  assert.deepEqual(cpg.processInfo(), []);
});

Deno.test("CpgEngine tells others a disconnected member left with PROCDOWN", () => {
  const bus = new OrderedBus([1, 2], () => [new CpgEngine()]);
  bus.configure([[1, 2]]);
  bus.settle();
  bus.step(1, { type: "ipc_open", conn: 1, service: "cpg", pid: 10 });
  bus.step(2, { type: "ipc_open", conn: 1, service: "cpg", pid: 20 });
  const joinReq = encodeCpgRequest({
    fn: "join",
    flags: CPG_JOIN_FLAG_INITIAL_TOTEM_CONF,
    group: "g",
  });
  assert.equal(
    bus.request(1, 1, CPG_REQUEST_FN.join, joinReq)?.status,
    CsError.OK,
  );
  assert.equal(
    bus.request(2, 1, CPG_REQUEST_FN.join, joinReq)?.status,
    CsError.OK,
  );
  bus.settle();
  bus.step(1, { type: "ipc_close", conn: 1 });
  bus.settle();
  const cbs = bus.events(2, 1).map((p) => {
    const d = decodeCpgCallback(p);
    assert.ok(d.ok);
    return d.value;
  });
  assert.equal(
    cbs[1].kind,
    "totem_confchg",
    "the initial totem confchg follows the join",
  );
  const last = cbs[cbs.length - 1];
  assert.ok(last.kind === "confchg");
  assert.deepEqual(last.left, [{
    nodeId: 1,
    pid: 10,
    reason: CpgReason.PROCDOWN,
  }]);
  assert.deepEqual(last.members, [{ nodeId: 2, pid: 20 }]);
});

Deno.test("CpgEngine members agree on process lists after partition and merge", () => {
  const bus = new OrderedBus([1, 2, 3], () => [new CpgEngine()]);
  bus.configure([[1, 2, 3]]);
  bus.settle();
  let conn = 0;
  for (const id of [1, 2, 3]) {
    for (const group of ["a", "b"]) {
      bus.step(id, {
        type: "ipc_open",
        conn: ++conn,
        service: "cpg",
        pid: 100 * id + conn,
      });
      const r = bus.request(
        id,
        conn,
        CPG_REQUEST_FN.join,
        encodeCpgRequest({ fn: "join", flags: 0, group }),
      );
      assert.equal(r?.status, CsError.OK);
    }
  }
  bus.settle();
  const info = (id: NodeId) =>
    (bus.node(id).engines[0] as CpgEngine).processInfo().map((e) =>
      `${e.group}@${e.nodeId}:${e.pid}`
    ).join(" ");
  assert.equal(info(1), info(2));
  assert.equal(info(1), info(3));
  bus.configure([[1, 2], [3]]);
  bus.settle();
  assert.equal(info(1), info(2));
  assert.ok(!info(1).includes("@3:"));
  assert.equal(info(3).split(" ").length, 2);
  // While apart, a process on 3 leaves; then the partitions merge.
  bus.step(3, { type: "ipc_close", conn: 5 });
  bus.settle();
  bus.configure([[1, 2, 3]]);
  bus.settle();
  assert.equal(info(1), info(2));
  assert.equal(info(1), info(3));
  assert.equal(info(1).split(" ").length, 5);
  // Node 1's client in "b" saw 3's process go (NODEDOWN) and come back (NODEUP).
  const reasons = bus.events(1, 2).flatMap((p) => {
    const d = decodeCpgCallback(p);
    return d.ok && d.value.kind === "confchg"
      ? [...d.value.left, ...d.value.joined].map((a) =>
        `${a.nodeId}/${a.reason}`
      )
      : [];
  });
  assert.ok(reasons.includes(`3/${CpgReason.NODEDOWN}`));
  assert.ok(reasons.includes(`3/${CpgReason.NODEUP}`));
  assert.equal(CPG_MESSAGE_FN.mcast, 3);
});
