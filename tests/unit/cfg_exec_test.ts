// The cfg engine inside the real executive with the real engine registry:
// node control requests leave as `control` actions and their answers come
// back as `control_done` events, and cfg writes its results to cmap.
import {
  deepStrictEqual as assertEquals,
  ok as assert,
} from "node:assert/strict";
import { createEngines } from "../../engines/mod.ts";
import { cmapOf } from "../../engines/cmap/mod.ts";
import {
  CFG_KEYS,
  CFG_REQUEST_FN,
  CfgEngine,
  decodeCfgStatus,
  decodeCfgU32,
  decodeReloadReport,
} from "../../engines/cfg/mod.ts";
import { gather } from "../../src/lib/gather.ts";
import { CsError } from "../../src/exec/cs_error.ts";
import { SERVICE_ID } from "../../src/exec/engine.ts";
import { type ExecAction, Executive } from "../../src/exec/executive.ts";

type Control = Extract<ExecAction, { type: "control" }>;
type Reply = Extract<ExecAction, { type: "reply" }>;

function only<T extends ExecAction["type"]>(
  actions: ExecAction[],
  type: T,
): Extract<ExecAction, { type: T }>[] {
  return actions.filter((a): a is Extract<ExecAction, { type: T }> =>
    a.type === type
  );
}

/** A one-node executive past its first sync round, with a cfg client. */
function oneNode(): {
  exec: Executive;
  step: (e: Parameters<Executive["step"]>[0]) => ExecAction[];
} {
  const exec = new Executive({ nodeId: 1, engines: createEngines() });
  let now = 0;
  const step = (e: Parameters<Executive["step"]>[0]) => exec.step(e, now++);
  const ringId = { rep: 1, seq: 4 };
  let pending = step({
    type: "confchg",
    change: { kind: "regular", ringId, members: [1], left: [], joined: [1] },
    reason: "start",
  });
  // Loop the sync traffic back until the round completes.
  while (exec.syncing) {
    const mcasts = only(pending, "mcast");
    assert(mcasts.length > 0, "sync stalled");
    pending = mcasts.flatMap((m) =>
      step({ type: "deliver", from: 1, payload: gather(m.payload) })
    );
  }
  step({ type: "ipc_open", conn: 7, service: SERVICE_ID.CFG, pid: 4242 });
  return { exec, step };
}

Deno.test("createEngines() registers cfg and links it to cmap", () => {
  const engines = createEngines();
  const cfg = engines.find((e) => e instanceof CfgEngine);
  assert(cfg !== undefined);
  assertEquals([cfg.serviceId, cfg.priority], [SERVICE_ID.CFG, 5]);
  assert(cmapOf(engines) !== null);
});

Deno.test("Executive routes cfg's node control requests out and their answers back", () => {
  const { step } = oneNode();
  const local = only(
    step({
      type: "ipc_request",
      conn: 7,
      requestId: 1,
      fn: CFG_REQUEST_FN.local_get,
      payload: new Uint8Array(0),
    }),
    "reply",
  );
  assertEquals(decodeCfgU32(local[0].payload), { ok: true, value: 1 });

  const asked = step({
    type: "ipc_request",
    conn: 7,
    requestId: 2,
    fn: CFG_REQUEST_FN.node_status_get,
    payload: new Uint8Array(0),
  });
  assertEquals(only(asked, "reply"), []);
  const [control] = only(asked, "control") as Control[];
  assertEquals(control.request, { op: "status" });
  assertEquals(control.serviceId, SERVICE_ID.CFG);
  const answered = step({
    type: "control_done",
    serviceId: control.serviceId,
    tag: control.tag,
    result: {
      ok: true,
      status: { transport: "udpu", localLinks: [], nodes: [] },
    },
  });
  const [reply] = only(answered, "reply") as Reply[];
  assertEquals([reply.conn, reply.requestId, reply.status], [7, 2, CsError.OK]);
  const status = decodeCfgStatus(reply.payload);
  assert(status.ok);
  assertEquals(status.value.members, [1]);
  assertEquals(status.value.ringId, { rep: 1, seq: 4 });
});

Deno.test("Executive runs a one-node reload vote and cfg records it in cmap", () => {
  const { exec, step } = oneNode();
  const cmap = cmapOf(
    [exec.engine("cmap")!],
  )!;
  const sent = step({
    type: "ipc_request",
    conn: 7,
    requestId: 3,
    fn: CFG_REQUEST_FN.reload_config,
    payload: new Uint8Array(0),
  });
  // The request goes through the total order first.
  const [request] = only(sent, "mcast");
  assertEquals(only(sent, "control"), []);
  const delivered = step({
    type: "deliver",
    from: 1,
    payload: gather(request.payload),
  });
  const [prepare] = only(delivered, "control") as Control[];
  assertEquals(prepare.request, { op: "reload_prepare" });
  assertEquals(cmap.getValue(CFG_KEYS.reloadInProgress), {
    type: "uint8",
    value: 1,
  });
  const verdict = only(
    step({
      type: "control_done",
      serviceId: SERVICE_ID.CFG,
      tag: prepare.tag,
      result: { ok: true, changes: ["x"] },
    }),
    "mcast",
  );
  const [commit] = only(
    step({ type: "deliver", from: 1, payload: gather(verdict[0].payload) }),
    "control",
  ) as Control[];
  assertEquals(commit.request, { op: "reload_commit" });
  const done = step({
    type: "control_done",
    serviceId: SERVICE_ID.CFG,
    tag: commit.tag,
    result: { ok: true, changes: ["x"] },
  });
  const [reply] = only(done, "reply") as Reply[];
  assertEquals(reply.status, CsError.OK);
  const report = decodeReloadReport(reply.payload);
  assert(report.ok && report.value.outcome === "applied");
  assertEquals(cmap.getValue(CFG_KEYS.reloadStatus), {
    type: "int32",
    value: CsError.OK,
  });
  assertEquals(cmap.getValue(CFG_KEYS.reloadInProgress), {
    type: "uint8",
    value: 0,
  });
});
