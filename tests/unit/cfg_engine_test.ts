// The cfg engine under a fake EngineApi: kill, shutdown with vetoes and
// timeouts, and the cluster-wide reload vote over a hand-driven total order.
import {
  deepStrictEqual as assertEquals,
  ok as assert,
} from "node:assert/strict";
import { CFG_KEYS, CfgEngine } from "../../engines/cfg/cfg.ts";
import {
  CFG_REQUEST_FN,
  CFG_SHUTDOWN_FLAG,
  type CfgReloadReport,
  type CfgRequest,
  decodeCfgCallback,
  decodeCfgStatus,
  decodeErrorText,
  decodeReloadReport,
  encodeCfgRequest,
} from "../../engines/cfg/ipc.ts";
import type { CmapValue } from "../../engines/cmap/values.ts";
import { CsError } from "../../src/exec/cs_error.ts";
import type {
  ConnId,
  EngineApi,
  NodeControlRequest,
  NodeControlResult,
} from "../../src/exec/engine.ts";
import type { LogLevel } from "../../src/log/logger.ts";
import type { ConfChange, NodeId } from "../../src/totem/types.ts";

interface Reply {
  conn: ConnId;
  requestId: number;
  status: number;
  payload: Uint8Array;
}

class FakeCmap {
  map = new Map<string, CmapValue>();
  getValue(key: string): CmapValue | null {
    return this.map.get(key) ?? null;
  }
  setInternal(key: string, value: CmapValue): void {
    this.map.set(key, value);
  }
  num(key: string): number | undefined {
    const v = this.map.get(key);
    return v === undefined ? undefined : Number(v.value);
  }
}

class FakeApi implements EngineApi {
  readonly nodeId: NodeId;
  outbox: { message: string; payload: Uint8Array }[] = [];
  replies: Reply[] = [];
  events: { conn: ConnId; payload: Uint8Array }[] = [];
  logs: string[] = [];
  controls: { tag: number; request: NodeControlRequest; done: boolean }[] = [];
  #tag = 100;
  constructor(nodeId: NodeId) {
    this.nodeId = nodeId;
  }
  mcast(message: string, payload: Uint8Array): void {
    this.outbox.push({ message, payload });
  }
  reply(
    conn: ConnId,
    requestId: number,
    status: number,
    payload = new Uint8Array(0),
  ): void {
    this.replies.push({ conn, requestId, status, payload });
  }
  event(conn: ConnId, payload: Uint8Array): boolean {
    this.events.push({ conn, payload });
    return true;
  }
  disconnect(): void {}
  log(level: LogLevel, text: string): void {
    this.logs.push(`${level} ${text}`);
  }
  control(request: NodeControlRequest): number {
    const tag = this.#tag++;
    this.controls.push({ tag, request, done: false });
    return tag;
  }
  /** Ops asked and not yet answered, in order. */
  open(): string[] {
    return this.controls.filter((c) => !c.done).map((c) => c.request.op);
  }
}

class Node {
  readonly engine = new CfgEngine();
  readonly api: FakeApi;
  readonly cmap = new FakeCmap();
  #requestId = 1;
  constructor(readonly id: NodeId) {
    this.api = new FakeApi(id);
    this.engine.init(this.api);
    this.engine.useCmap(this.cmap);
  }
  request(
    conn: ConnId,
    req: CfgRequest,
  ): { requestId: number; result: unknown } {
    const requestId = this.#requestId++;
    const name =
      Object.entries(CFG_REQUEST_FN).find(([, fn]) =>
        fn === CFG_REQUEST_FN[req.fn]
      )![0];
    const result = this.engine.requests[name].handle({
      conn,
      requestId,
      payload: encodeCfgRequest(req),
    });
    return { requestId, result };
  }
  /** Answers the oldest open control request `op`. */
  answer(op: NodeControlRequest["op"], result: NodeControlResult): void {
    const c = this.api.controls.find((x) => !x.done && x.request.op === op);
    assert(c !== undefined, `node ${this.id}: no open ${op} request`);
    c.done = true;
    this.engine.controlDone(c.tag, result);
  }
  replyTo(requestId: number): Reply {
    const r = this.api.replies.find((x) => x.requestId === requestId);
    assert(r !== undefined, `node ${this.id}: no reply to ${requestId}`);
    return r;
  }
}

/** Nodes sharing a total order: `flush` delivers every queued mcast to all. */
class Cluster {
  readonly nodes: Node[];
  constructor(ids: NodeId[]) {
    this.nodes = ids.map((id) => new Node(id));
    this.confchg(ids);
  }
  node(id: NodeId): Node {
    return this.nodes.find((n) => n.id === id)!;
  }
  confchg(members: NodeId[], kind: "transitional" | "regular" = "regular") {
    const change: ConfChange = {
      kind,
      ringId: { rep: members[0], seq: 4 },
      members,
      left: [],
      joined: [],
    };
    for (const n of this.nodes) {
      if (members.includes(n.id)) n.engine.confChange(change);
    }
  }
  /** Delivers queued messages, sender by sender, until none are left. */
  flush(to: NodeId[] = this.nodes.map((n) => n.id)): number {
    let delivered = 0;
    for (;;) {
      const sender = this.nodes.find((n) => n.api.outbox.length > 0);
      if (sender === undefined) return delivered;
      const m = sender.api.outbox.shift()!;
      for (const id of to) {
        this.node(id).engine.messages[
          m.message as "kill_node" | "reload_request" | "reload_verdict"
        ].handle(sender.id, m.payload);
      }
      delivered++;
    }
  }
}

function report(r: Reply): CfgReloadReport {
  const d = decodeReloadReport(r.payload);
  assert(d.ok, `reload report does not decode: ${JSON.stringify(d)}`);
  return d.value;
}

Deno.test("CfgEngine kill_node orders the kill and shuts the named node down with its reason", () => {
  const c = new Cluster([1, 2, 3]);
  const n1 = c.node(1);
  const { requestId, result } = n1.request(7, {
    fn: "kill_node",
    nodeId: 3,
    reason: "disk on fire",
  });
  assertEquals(result, "deferred");
  assertEquals(n1.api.replies, []);
  assertEquals(c.flush(), 1);
  assertEquals(n1.replyTo(requestId).status, CsError.OK);
  const n3 = c.node(3);
  assert(n3.engine.stopping);
  assert(
    n3.api.logs.some((l) =>
      l.startsWith("error") && l.includes("disk on fire")
    ),
    n3.api.logs.join("\n"),
  );
  const shutdown = n3.api.controls.find((x) => x.request.op === "shutdown");
  assert(
    shutdown !== undefined && shutdown.request.op === "shutdown" &&
      shutdown.request.reason === "killed by node 1: disk on fire",
    JSON.stringify(n3.api.controls),
  );
  for (const id of [1, 2]) assert(!c.node(id).engine.stopping);
});

Deno.test("CfgEngine kill_node of a non-member answers NOT_EXIST and sends nothing", () => {
  const c = new Cluster([1, 2]);
  const n1 = c.node(1);
  const { result } = n1.request(7, { fn: "kill_node", nodeId: 9, reason: "" });
  const r = result as { status: number; payload: Uint8Array };
  assertEquals(r.status, CsError.NOT_EXIST);
  assert(decodeErrorText(r.payload).includes("node 9"));
  assertEquals(n1.api.outbox.length, 0);
});

Deno.test("CfgEngine try_shutdown without tracking clients shuts down at once", () => {
  const n = new Cluster([1]).node(1);
  const { result } = n.request(3, {
    fn: "try_shutdown",
    flags: CFG_SHUTDOWN_FLAG.REQUEST,
  });
  assertEquals((result as { status: number }).status, CsError.OK);
  assertEquals(n.api.open(), ["shutdown"]);
});

Deno.test("CfgEngine try_shutdown REQUEST is refused when a tracking client vetoes", () => {
  const n = new Cluster([1]).node(1);
  n.cmap.setInternal(CFG_KEYS.shutdownTimeout, {
    type: "string",
    value: "250",
  });
  n.engine.connOpen(2, 222);
  n.request(2, { fn: "track_start" });
  const ask = n.request(3, {
    fn: "try_shutdown",
    flags: CFG_SHUTDOWN_FLAG.REQUEST,
  });
  assertEquals(ask.result, "deferred");
  assertEquals(n.api.events.map((e) => e.conn), [2]);
  const cb = decodeCfgCallback(n.api.events[0].payload);
  assert(cb.ok && cb.value.flags === CFG_SHUTDOWN_FLAG.REQUEST);
  const timer = n.api.controls.find((x) => x.request.op === "timer")!;
  assertEquals(timer.request, { op: "timer", afterMs: 250 });
  const veto = n.request(2, { fn: "reply_to_shutdown", allow: false });
  assertEquals((veto.result as { status: number }).status, CsError.OK);
  const r = n.replyTo(ask.requestId);
  assertEquals(r.status, CsError.BUSY);
  assert(decodeErrorText(r.payload).includes("vetoed"));
  assert(!n.engine.stopping);
  // The timer firing later changes nothing.
  n.answer("timer", { ok: true });
  assert(!n.engine.stopping);
  assertEquals(n.api.open(), []);
});

Deno.test("CfgEngine try_shutdown REGARDLESS goes down after a veto once all answered", () => {
  const n = new Cluster([1]).node(1);
  for (const conn of [2, 4]) n.request(conn, { fn: "track_start" });
  const ask = n.request(3, {
    fn: "try_shutdown",
    flags: CFG_SHUTDOWN_FLAG.REGARDLESS,
  });
  n.request(2, { fn: "reply_to_shutdown", allow: false });
  assert(!n.engine.stopping);
  n.request(4, { fn: "reply_to_shutdown", allow: true });
  assertEquals(n.replyTo(ask.requestId).status, CsError.OK);
  assert(n.engine.stopping);
});

Deno.test("CfgEngine try_shutdown counts silence until cfg.shutdown_timeout as yes", () => {
  const n = new Cluster([1]).node(1);
  n.request(2, { fn: "track_start" });
  const ask = n.request(3, {
    fn: "try_shutdown",
    flags: CFG_SHUTDOWN_FLAG.REQUEST,
  });
  assertEquals(
    n.api.controls.find((x) => x.request.op === "timer")!.request,
    { op: "timer", afterMs: 5000 },
  );
  assert(!n.engine.stopping);
  n.answer("timer", { ok: true });
  assertEquals(n.replyTo(ask.requestId).status, CsError.OK);
  assert(n.engine.stopping);
  // Too late to answer now.
  const late = n.request(2, { fn: "reply_to_shutdown", allow: false });
  assertEquals((late.result as { status: number }).status, CsError.NOT_EXIST);
});

Deno.test("CfgEngine try_shutdown is cancelled when the requester disconnects", () => {
  const n = new Cluster([1]).node(1);
  n.request(2, { fn: "track_start" });
  n.request(3, { fn: "try_shutdown", flags: CFG_SHUTDOWN_FLAG.REQUEST });
  n.engine.connClose(3);
  n.answer("timer", { ok: true });
  assert(!n.engine.stopping);
  assertEquals(n.api.replies, []);
});

Deno.test("CfgEngine node_status_get merges the transport's links with ring membership", () => {
  const c = new Cluster([1, 2]);
  const n = c.node(1);
  const { requestId, result } = n.request(3, { fn: "node_status_get" });
  assertEquals(result, "deferred");
  const link = (dst: string, connected: boolean) => ({
    link: 0,
    enabled: true,
    connected,
    mtu: 1500,
    src: "127.0.0.1:5405",
    dst,
  });
  n.answer("status", {
    ok: true,
    status: {
      transport: "udpu",
      localLinks: [{ link: 0, addr: "127.0.0.1:5405" }],
      nodes: [
        { nodeId: 2, links: [link("127.0.0.2:5405", true)] },
        { nodeId: 3, links: [link("127.0.0.3:5405", false)] },
      ],
    },
  });
  const d = decodeCfgStatus(n.replyTo(requestId).payload);
  assert(d.ok);
  assertEquals(d.value.localNodeId, 1);
  assertEquals(d.value.members, [1, 2]);
  assertEquals(
    d.value.nodes.map((x) => [x.nodeId, x.reachable, x.links[0].connected]),
    [[2, true, true], [3, false, false]],
  );
});

Deno.test("CfgEngine reload with every member ok applies everywhere", () => {
  const c = new Cluster([1, 2, 3]);
  const n1 = c.node(1);
  const ask = n1.request(5, { fn: "reload_config" });
  assertEquals(ask.result, "deferred");
  c.flush();
  for (const n of c.nodes) {
    assertEquals(n.cmap.num(CFG_KEYS.reloadInProgress), 1);
    assertEquals(n.api.open(), ["reload_prepare"]);
    n.answer("reload_prepare", {
      ok: true,
      changes: ["totem.token 1000 -> 2000"],
    });
  }
  c.flush();
  for (const n of c.nodes) {
    assertEquals(n.api.open(), ["reload_commit"]);
    n.answer("reload_commit", {
      ok: true,
      changes: ["totem.token 1000 -> 2000"],
    });
    assertEquals(n.cmap.num(CFG_KEYS.reloadStatus), CsError.OK);
    assertEquals(n.cmap.num(CFG_KEYS.reloadInProgress), 0);
    assertEquals(n.api.open(), []);
  }
  const r = n1.replyTo(ask.requestId);
  assertEquals(r.status, CsError.OK);
  const rep = report(r);
  assertEquals(rep.outcome, "applied");
  assertEquals(rep.verdicts.map((v) => [v.nodeId, v.ok]), [[1, true], [
    2,
    true,
  ], [3, true]]);
  assertEquals(rep.changes, ["totem.token 1000 -> 2000"]);
  for (const id of [2, 3]) assertEquals(c.node(id).api.replies, []);
});

Deno.test("CfgEngine reload refused by one member applies nowhere and names it", () => {
  const c = new Cluster([1, 2, 3]);
  const n1 = c.node(1);
  const ask = n1.request(5, { fn: "reload_config" });
  c.flush();
  const error =
    "/etc/corosync/corosync.conf:12: totem.cluster_name cannot change at runtime";
  for (const n of c.nodes) {
    n.answer(
      "reload_prepare",
      n.id === 2 ? { ok: false, error } : { ok: true, changes: [] },
    );
  }
  c.flush();
  for (const n of c.nodes) {
    // Nobody commits; those holding a plan drop it.
    assertEquals(n.api.open(), n.id === 2 ? [] : ["reload_abort"]);
    assertEquals(n.cmap.num(CFG_KEYS.reloadStatus), CsError.INVALID_PARAM);
    assertEquals(n.cmap.num(CFG_KEYS.reloadInProgress), 0);
  }
  const r = n1.replyTo(ask.requestId);
  assertEquals(r.status, CsError.INVALID_PARAM);
  const rep = report(r);
  assertEquals(rep.outcome, "refused");
  assertEquals(rep.verdicts.find((v) => !v.ok), {
    nodeId: 2,
    ok: false,
    error,
  });
  assert(
    rep.message.includes("node 2") && rep.message.includes("cluster_name"),
  );
});

Deno.test("CfgEngine reload is aborted everywhere when a member leaves mid-vote", () => {
  const c = new Cluster([1, 2, 3]);
  const n1 = c.node(1);
  const ask = n1.request(5, { fn: "reload_config" });
  c.flush();
  // Nodes 1 and 2 vote; node 3 vanishes before its verdict.
  for (const id of [1, 2]) c.node(id).answer("reload_prepare", { ok: true });
  c.flush([1, 2]);
  c.confchg([1, 2], "transitional");
  for (const id of [1, 2]) {
    const n = c.node(id);
    assert(!n.engine.voting);
    assertEquals(n.api.open(), ["reload_abort"]);
    assertEquals(n.cmap.num(CFG_KEYS.reloadStatus), CsError.TRY_AGAIN);
    assertEquals(n.cmap.num(CFG_KEYS.reloadInProgress), 0);
  }
  const r = n1.replyTo(ask.requestId);
  assertEquals(r.status, CsError.TRY_AGAIN);
  const rep = report(r);
  assertEquals(rep.outcome, "interrupted");
  assert(rep.message.includes("node 3 left"), rep.message);
  // Node 3's late verdict, were it delivered, is stale.
  c.node(3).answer("reload_prepare", { ok: true });
  c.flush([1, 2]);
  for (const id of [1, 2]) {
    assertEquals(c.node(id).api.open(), ["reload_abort"]);
    assertEquals(c.node(id).engine.stats.staleVerdicts, 1);
  }
});

Deno.test("CfgEngine a reload requested during an open vote is refused as busy", () => {
  const c = new Cluster([1, 2]);
  const first = c.node(1).request(5, { fn: "reload_config" });
  const second = c.node(2).request(6, { fn: "reload_config" });
  c.flush();
  const busy = c.node(2).replyTo(second.requestId);
  assertEquals(busy.status, CsError.BUSY);
  assertEquals(report(busy).outcome, "busy");
  // Only one vote runs: one prepare per node.
  for (const n of c.nodes) assertEquals(n.api.open(), ["reload_prepare"]);
  for (const n of c.nodes) n.answer("reload_prepare", { ok: true });
  c.flush();
  for (const n of c.nodes) n.answer("reload_commit", { ok: true });
  assertEquals(c.node(1).replyTo(first.requestId).status, CsError.OK);
});

Deno.test("CfgEngine a prepare answered after its vote was aborted is dropped", () => {
  const c = new Cluster([1, 2]);
  c.node(1).request(5, { fn: "reload_config" });
  c.flush();
  c.confchg([1, 3]);
  const n1 = c.node(1);
  assert(!n1.engine.voting);
  assertEquals(n1.api.open(), ["reload_prepare"]);
  n1.answer("reload_prepare", { ok: true });
  assertEquals(n1.api.open(), ["reload_abort"]);
  assertEquals(n1.api.outbox, []);
});
