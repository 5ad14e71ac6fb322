// The cmap engine's hooks for the daemon's live keys: write-only
// stats.clear.*, write hooks with effect, typed configuration keys.
import assert from "node:assert/strict";
import {
  CMAP_REQUEST_FN,
  CMAP_TYPE_CODE,
  CmapEngine,
  type CmapRequest,
  type CmapValue,
  configKeyType,
  configValue,
  decodeIterPage,
  encodeCmapRequest,
  valueToBytes,
} from "../../../../engines/cmap/mod.ts";
import { CsError } from "../../../../src/exec/cs_error.ts";
import type { EngineApi } from "../../../../src/exec/engine.ts";

const API: EngineApi = {
  nodeId: 1,
  mcast: () => {
    throw new Error("cmap must not multicast");
  },
  reply: () => {},
  event: () => true,
  disconnect: () => {},
  log: () => {},
};

function setup(): CmapEngine {
  const cmap = new CmapEngine();
  cmap.init(API);
  return cmap;
}

function req(cmap: CmapEngine, r: CmapRequest): number {
  const h = Object.values(cmap.requests).find((x) =>
    x.fn === CMAP_REQUEST_FN[r.fn]
  )!;
  const res = h.handle({
    conn: 1,
    requestId: 1,
    payload: encodeCmapRequest(r),
  });
  assert.notEqual(res, "deferred");
  return (res as { status: number }).status;
}

function set(cmap: CmapEngine, key: string, v: CmapValue): number {
  return req(cmap, {
    fn: "set",
    key,
    value: { typeCode: CMAP_TYPE_CODE[v.type], bytes: valueToBytes(v) },
  });
}

Deno.test("cmap stats.clear.* calls the clear handler and stores nothing", () => {
  const cmap = setup();
  const cleared: string[] = [];
  cmap.setStatsClearHandler((what) => {
    cleared.push(what);
    return what === "all" || what === "knet";
  });
  const one: CmapValue = { type: "uint32", value: 1 };
  assert.equal(set(cmap, "stats.clear.all", one), CsError.OK);
  assert.equal(set(cmap, "stats.clear.knet", one), CsError.OK);
  assert.equal(set(cmap, "stats.clear.schedmiss", one), CsError.NOT_SUPPORTED);
  assert.deepEqual(cleared, ["all", "knet", "schedmiss"]);
  // Write-only: not readable, not listed, not deletable.
  assert.equal(
    req(cmap, { fn: "get", key: "stats.clear.all" }),
    CsError.NOT_EXIST,
  );
  assert.equal(
    req(cmap, { fn: "delete", key: "stats.clear.all" }),
    CsError.NOT_EXIST,
  );
  const h = Object.values(cmap.requests).find((x) =>
    x.fn === CMAP_REQUEST_FN.iter
  )!;
  const page = h.handle({
    conn: 1,
    requestId: 2,
    payload: encodeCmapRequest({ fn: "iter", prefix: "stats.", after: "" }),
  }) as { payload: Uint8Array };
  const d = decodeIterPage(page.payload);
  assert.ok(d.ok);
  assert.deepEqual(d.value.entries, []);
  cmap.setStatsClearHandler(null);
  assert.equal(set(cmap, "stats.clear.all", one), CsError.NOT_SUPPORTED);
});

Deno.test("cmap write hooks see sets, inc and deletes under their prefix and may refuse", () => {
  const cmap = setup();
  const seen: string[] = [];
  cmap.addWriteHook("logging.", (key, v) => {
    seen.push(`${key}=${v === null ? "deleted" : String(v.value)}`);
    return v !== null && v.type === "string" && v.value === "bad"
      ? CsError.INVALID_PARAM
      : CsError.OK;
  });
  const str = (value: string): CmapValue => ({ type: "string", value });
  assert.equal(set(cmap, "logging.debug", str("on")), CsError.OK);
  assert.equal(set(cmap, "logging.debug", str("bad")), CsError.INVALID_PARAM);
  assert.deepEqual(cmap.getValue("logging.debug"), str("on"));
  assert.equal(
    set(cmap, "logging.count", { type: "uint8", value: 1 }),
    CsError.OK,
  );
  assert.equal(req(cmap, { fn: "inc", key: "logging.count" }), CsError.OK);
  assert.equal(req(cmap, { fn: "delete", key: "logging.debug" }), CsError.OK);
  assert.equal(set(cmap, "other.key", str("bad")), CsError.OK);
  // Read-only keys are refused before any hook runs.
  cmap.addWriteHook("runtime.", () => {
    throw new Error("hook called for a read-only key");
  });
  assert.equal(set(cmap, "runtime.x", str("1")), CsError.ACCESS);
  assert.deepEqual(seen, [
    "logging.debug=on",
    "logging.debug=bad",
    "logging.count=1",
    "logging.count=2",
    "logging.debug=deleted",
  ]);
});

Deno.test("configValue() types configuration keys as Corosync does", () => {
  const cases: [string, string, CmapValue][] = [
    ["totem.token", "3000", { type: "uint32", value: 3000 }],
    ["totem.consensus", "3600", { type: "uint32", value: 3600 }],
    ["totem.config_version", "7", { type: "uint64", value: 7n }],
    ["totem.interface.0.mcastport", "5405", { type: "uint16", value: 5405 }],
    ["nodelist.node.2.nodeid", "3", { type: "uint32", value: 3 }],
    ["nodelist.node.0.ring0_addr", "10.0.0.1", {
      type: "string",
      value: "10.0.0.1",
    }],
    ["quorum.two_node", "1", { type: "uint8", value: 1 }],
    ["quorum.two_node", "yes", { type: "string", value: "yes" }],
    ["totem.cluster_name", "itest", { type: "string", value: "itest" }],
    ["logging.debug", "on", { type: "string", value: "on" }],
  ];
  for (const [key, text, want] of cases) {
    assert.deepEqual(configValue(key, text), want, `${key}: ${text}`);
  }
  assert.equal(configKeyType("totem.transport"), "string");
});

Deno.test("CmapEngine.load() stores configuration keys typed", () => {
  const cmap = setup();
  assert.deepEqual(
    cmap.load({ "totem.token": "1000", "nodelist.node.0.nodeid": "1" }),
    [],
  );
  assert.deepEqual(cmap.getValue("totem.token"), {
    type: "uint32",
    value: 1000,
  });
  assert.deepEqual(cmap.getValue("nodelist.node.0.nodeid"), {
    type: "uint32",
    value: 1,
  });
});
