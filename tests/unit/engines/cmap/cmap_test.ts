import assert from "node:assert/strict";
import {
  CMAP_ITER_PAGE_BYTES,
  CMAP_REQUEST_FN,
  CMAP_TRACK,
  CMAP_TYPE_CODE,
  CMAP_VALUE_BYTES_MAX,
  CmapEngine,
  cmapOf,
  type CmapRequest,
  type CmapTrackCallback,
  cmapTypeOf,
  type CmapValue,
  decodeCmapU32,
  decodeIterPage,
  decodeRawValue,
  decodeTrackCallback,
  encodeCmapRequest,
  type RawValue,
  seedCmap,
  valueFromBytes,
  valueToBytes,
} from "../../../../engines/cmap/mod.ts";
import { createEngines } from "../../../../engines/mod.ts";
import { CsError } from "../../../../src/exec/cs_error.ts";
import type { ConnId, EngineApi } from "../../../../src/exec/engine.ts";

class FakeApi implements EngineApi {
  readonly nodeId = 7;
  readonly events: { conn: ConnId; cb: CmapTrackCallback }[] = [];
  mcast(): void {
    throw new Error("cmap must not multicast");
  }
  reply(): void {}
  event(conn: ConnId, payload: Uint8Array): boolean {
    const d = decodeTrackCallback(payload);
    assert.ok(d.ok);
    this.events.push({ conn, cb: d.value });
    return true;
  }
  disconnect(): void {}
  log(): void {}
}

function setup(): { cmap: CmapEngine; api: FakeApi } {
  const cmap = new CmapEngine();
  const api = new FakeApi();
  cmap.init(api);
  return { cmap, api };
}

function req(
  cmap: CmapEngine,
  r: CmapRequest,
  conn: ConnId = 1,
): { status: number; payload?: Uint8Array } {
  const h = Object.values(cmap.requests).find((x) =>
    x.fn === CMAP_REQUEST_FN[r.fn]
  );
  assert.ok(h !== undefined);
  const res = h.handle({ conn, requestId: 1, payload: encodeCmapRequest(r) });
  assert.notEqual(res, "deferred");
  return res as { status: number; payload?: Uint8Array };
}

function raw(v: CmapValue): RawValue {
  return { typeCode: CMAP_TYPE_CODE[v.type], bytes: valueToBytes(v) };
}

function value(r: RawValue | null): CmapValue | null {
  if (r === null) return null;
  const d = valueFromBytes(cmapTypeOf(r.typeCode)!, r.bytes);
  assert.ok(d.ok);
  return d.value;
}

function set(cmap: CmapEngine, key: string, v: CmapValue, conn = 1): number {
  return req(cmap, { fn: "set", key, value: raw(v) }, conn).status;
}

function get(cmap: CmapEngine, key: string): CmapValue | number {
  const r = req(cmap, { fn: "get", key });
  if (r.status !== CsError.OK) return r.status;
  const d = decodeRawValue(r.payload!);
  assert.ok(d.ok);
  return value(d.value)!;
}

const ALL_TYPES: CmapValue[] = [
  { type: "int8", value: -128 },
  { type: "uint8", value: 255 },
  { type: "int16", value: -32768 },
  { type: "uint16", value: 65535 },
  { type: "int32", value: -2147483648 },
  { type: "uint32", value: 4294967295 },
  { type: "int64", value: -(1n << 63n) },
  { type: "uint64", value: (1n << 64n) - 1n },
  { type: "float", value: 1.5 },
  { type: "double", value: Math.PI },
  { type: "string", value: "héllo" },
  { type: "binary", value: new Uint8Array([0, 1, 255]) },
];

Deno.test("cmap: every type round-trips through set and get", () => {
  const { cmap } = setup();
  for (const v of ALL_TYPES) {
    assert.equal(set(cmap, `test.${v.type}`, v), CsError.OK);
    assert.deepEqual(get(cmap, `test.${v.type}`), v);
  }
});

Deno.test("cmap: key names follow Corosync's rules", () => {
  const { cmap } = setup();
  const v: CmapValue = { type: "uint8", value: 1 };
  for (const bad of ["ab", "a b.c", "key*", "ké.y"]) {
    assert.equal(set(cmap, bad, v), CsError.INVALID_PARAM, bad);
  }
  // 256 characters: the client refuses to encode it; crafted bytes get
  // INVALID_PARAM.
  const long = new Uint8Array(2 + 256 + 6);
  new DataView(long.buffer).setUint16(0, 256, true);
  long.fill(0x61, 2, 258);
  long.set([2, 1, 0, 0, 0, 1], 258);
  assert.equal(
    (cmap.requests.set.handle({ conn: 1, requestId: 1, payload: long }) as {
      status: number;
    }).status,
    CsError.INVALID_PARAM,
  );
  for (const good of ["abc", "x".repeat(255), "a._/-:Z9"]) {
    assert.equal(set(cmap, good, v), CsError.OK, good);
  }
});

Deno.test("cmap: bad types and sizes, unknown keys", () => {
  const { cmap } = setup();
  const s = (value: RawValue) =>
    req(cmap, { fn: "set", key: "a.b", value }).status;
  assert.equal(
    s({ typeCode: 99, bytes: new Uint8Array(1) }),
    CsError.INVALID_PARAM,
  );
  assert.equal(
    s({ typeCode: 6, bytes: new Uint8Array(3) }),
    CsError.INVALID_PARAM,
  );
  assert.equal(
    s({ typeCode: 11, bytes: new Uint8Array([0xff]) }),
    CsError.INVALID_PARAM,
  );
  assert.equal(
    s({ typeCode: 12, bytes: new Uint8Array(CMAP_VALUE_BYTES_MAX + 1) }),
    CsError.TOO_BIG,
  );
  assert.equal(
    s({ typeCode: 12, bytes: new Uint8Array(CMAP_VALUE_BYTES_MAX) }),
    CsError.OK,
  );
  assert.equal(get(cmap, "no.such"), CsError.NOT_EXIST);
  assert.equal(
    req(cmap, { fn: "delete", key: "no.such" }).status,
    CsError.NOT_EXIST,
  );
  assert.equal(
    req(cmap, { fn: "inc", key: "no.such" }).status,
    CsError.NOT_EXIST,
  );
  assert.equal(req(cmap, { fn: "delete", key: "a.b" }).status, CsError.OK);
  assert.equal(get(cmap, "a.b"), CsError.NOT_EXIST);
  // Garbage payload: an error reply, never a throw.
  const h = cmap.requests.get;
  assert.equal(
    (h.handle({ conn: 1, requestId: 1, payload: new Uint8Array([9]) }) as {
      status: number;
    }).status,
    CsError.INVALID_PARAM,
  );
});

Deno.test("cmap: runtime.* and stats.* are read-only to clients", () => {
  const { cmap } = setup();
  cmap.setInternal("stats.srp.tx", { type: "uint64", value: 5n });
  const v: CmapValue = { type: "uint8", value: 1 };
  assert.equal(set(cmap, "runtime.x.y", v), CsError.ACCESS);
  assert.equal(set(cmap, "stats.srp.tx", v), CsError.ACCESS);
  assert.equal(
    req(cmap, { fn: "delete", key: "stats.srp.tx" }).status,
    CsError.ACCESS,
  );
  assert.equal(
    req(cmap, { fn: "inc", key: "stats.srp.tx" }).status,
    CsError.ACCESS,
  );
  // stats.clear.* is writable but does nothing without the daemon's handler.
  assert.equal(set(cmap, "stats.clear.all", v), CsError.NOT_SUPPORTED);
  assert.deepEqual(get(cmap, "stats.srp.tx"), { type: "uint64", value: 5n });
  assert.deepEqual(get(cmap, "runtime.local_node_id"), {
    type: "uint32",
    value: 7,
  });
});

Deno.test("cmap: inc/dec wrap around in two's complement", () => {
  const { cmap } = setup();
  const step = (key: string, fn: "inc" | "dec") => {
    const r = req(cmap, { fn, key });
    assert.equal(r.status, CsError.OK);
    const d = decodeRawValue(r.payload!);
    assert.ok(d.ok);
    return value(d.value);
  };
  const cases: [CmapValue, "inc" | "dec", CmapValue][] = [
    [{ type: "uint8", value: 255 }, "inc", { type: "uint8", value: 0 }],
    [{ type: "uint8", value: 0 }, "dec", { type: "uint8", value: 255 }],
    [{ type: "int8", value: 127 }, "inc", { type: "int8", value: -128 }],
    [{ type: "int16", value: -32768 }, "dec", { type: "int16", value: 32767 }],
    [{ type: "uint32", value: 0 }, "dec", {
      type: "uint32",
      value: 4294967295,
    }],
    [{ type: "int32", value: 41 }, "inc", { type: "int32", value: 42 }],
    [{ type: "uint64", value: (1n << 64n) - 1n }, "inc", {
      type: "uint64",
      value: 0n,
    }],
    [{ type: "int64", value: -(1n << 63n) }, "dec", {
      type: "int64",
      value: (1n << 63n) - 1n,
    }],
  ];
  for (const [from, fn, to] of cases) {
    assert.equal(set(cmap, "n.k", from), CsError.OK);
    assert.deepEqual(step("n.k", fn), to, `${from.type} ${fn}`);
    assert.deepEqual(get(cmap, "n.k"), to);
  }
  for (const v of ALL_TYPES.slice(8)) {
    set(cmap, "n.x", v);
    assert.equal(
      req(cmap, { fn: "inc", key: "n.x" }).status,
      CsError.INVALID_PARAM,
    );
  }
});

Deno.test("cmap: iter by prefix, sorted, paginated", () => {
  const { cmap } = setup();
  for (let i = 0; i < 10; i++) {
    set(cmap, `a.k${i}`, { type: "uint32", value: i });
  }
  set(cmap, "b.k", { type: "string", value: "x" });
  set(cmap, "a", { type: "string", value: "x" }); // too short: rejected
  const page = (prefix: string, after = "") => {
    const r = req(cmap, { fn: "iter", prefix, after });
    assert.equal(r.status, CsError.OK);
    const d = decodeIterPage(r.payload!);
    assert.ok(d.ok);
    return d.value;
  };
  const p = page("a.");
  assert.equal(p.more, false);
  assert.deepEqual(p.entries.map((e) => e.key), [
    ...Array.from({ length: 10 }, (_, i) => `a.k${i}`),
  ]);
  assert.deepEqual(page("a.", "a.k4").entries.map((e) => e.key).length, 5);
  assert.ok(page("").entries.some((e) => e.key === "runtime.local_node_id"));
  assert.equal(page("zzz").entries.length, 0);
  // Big values span several pages.
  for (let i = 0; i < 10; i++) {
    cmap.setInternal(`big.k${i}`, {
      type: "binary",
      value: new Uint8Array(CMAP_VALUE_BYTES_MAX),
    });
  }
  const keys: string[] = [];
  let after = "";
  let pages = 0;
  for (;;) {
    const pg = page("big.", after);
    pages++;
    keys.push(...pg.entries.map((e) => e.key));
    if (!pg.more) break;
    after = pg.entries.at(-1)!.key;
  }
  assert.equal(keys.length, 10);
  assert.ok(
    pages >= Math.ceil(10 * CMAP_VALUE_BYTES_MAX / CMAP_ITER_PAGE_BYTES),
  );
});

Deno.test("cmap: track a key for add, modify and delete", () => {
  const { cmap, api } = setup();
  const r = req(cmap, {
    fn: "track_add",
    flags: CMAP_TRACK.ADD | CMAP_TRACK.MODIFY | CMAP_TRACK.DELETE,
    key: "t.key",
  }, 3);
  assert.equal(r.status, CsError.OK);
  const handle = decodeCmapU32(r.payload!);
  assert.ok(handle.ok);
  set(cmap, "t.key", { type: "uint8", value: 1 });
  set(cmap, "t.key", { type: "uint8", value: 1 }); // unchanged: no event
  set(cmap, "t.key", { type: "uint16", value: 2 });
  set(cmap, "t.other", { type: "uint8", value: 1 }); // not tracked
  req(cmap, { fn: "delete", key: "t.key" });
  const seen = api.events.map((e) => ({
    conn: e.conn,
    handle: e.cb.handle,
    event: e.cb.event,
    key: e.cb.key,
    old: value(e.cb.oldValue),
    new: value(e.cb.newValue),
  }));
  assert.deepEqual(seen, [
    {
      conn: 3,
      handle: handle.value,
      event: CMAP_TRACK.ADD,
      key: "t.key",
      old: null,
      new: { type: "uint8", value: 1 },
    },
    {
      conn: 3,
      handle: handle.value,
      event: CMAP_TRACK.MODIFY,
      key: "t.key",
      old: { type: "uint8", value: 1 },
      new: { type: "uint16", value: 2 },
    },
    {
      conn: 3,
      handle: handle.value,
      event: CMAP_TRACK.DELETE,
      key: "t.key",
      old: { type: "uint16", value: 2 },
      new: null,
    },
  ]);
  // track_delete: only by its owner; then silence.
  assert.equal(
    req(cmap, { fn: "track_delete", handle: handle.value }, 4).status,
    CsError.NOT_EXIST,
  );
  assert.equal(
    req(cmap, { fn: "track_delete", handle: handle.value }, 3).status,
    CsError.OK,
  );
  set(cmap, "t.key", { type: "uint8", value: 1 });
  assert.equal(api.events.length, 3);
});

Deno.test("cmap: prefix tracking, event filter, and connClose", () => {
  const { cmap, api } = setup();
  assert.equal(
    req(cmap, {
      fn: "track_add",
      flags: CMAP_TRACK.PREFIX | CMAP_TRACK.DELETE,
      key: "p.",
    }, 1).status,
    CsError.OK,
  );
  assert.equal(
    req(cmap, {
      fn: "track_add",
      flags: CMAP_TRACK.PREFIX | CMAP_TRACK.ADD,
      key: "",
    }, 2).status,
    CsError.OK,
  );
  // Bad flags or names.
  assert.equal(
    req(cmap, { fn: "track_add", flags: 0, key: "p.x" }).status,
    CsError.INVALID_PARAM,
  );
  assert.equal(
    req(cmap, { fn: "track_add", flags: 64 | 4, key: "p.x" }).status,
    CsError.INVALID_PARAM,
  );
  assert.equal(
    req(cmap, { fn: "track_add", flags: CMAP_TRACK.ADD, key: "p" }).status,
    CsError.INVALID_PARAM,
  );
  set(cmap, "p.a", { type: "uint8", value: 1 });
  set(cmap, "q.a", { type: "uint8", value: 1 });
  req(cmap, { fn: "delete", key: "p.a" });
  req(cmap, { fn: "delete", key: "q.a" });
  assert.deepEqual(api.events.map((e) => [e.conn, e.cb.event, e.cb.key]), [
    [2, CMAP_TRACK.ADD, "p.a"],
    [2, CMAP_TRACK.ADD, "q.a"],
    [1, CMAP_TRACK.DELETE, "p.a"],
  ]);
  // Daemon-side writes notify too.
  cmap.setInternal("stats.x.y", { type: "uint8", value: 1 });
  assert.deepEqual(api.events.at(-1)!.cb.key, "stats.x.y");
  cmap.connClose(1);
  cmap.connClose(2);
  assert.equal(cmap.trackCount, 0);
});

Deno.test("cmap: confChange keeps runtime.members and totem keys", () => {
  const { cmap } = setup();
  const ringId = { rep: 1, seq: 4 };
  cmap.confChange({
    kind: "transitional",
    ringId,
    members: [1],
    left: [2],
    joined: [],
  });
  assert.equal(cmap.getValue("runtime.members.2.status"), null);
  cmap.confChange({
    kind: "regular",
    ringId,
    members: [1, 2],
    left: [],
    joined: [1, 2],
  });
  assert.deepEqual(cmap.getValue("runtime.members.2.status"), {
    type: "string",
    value: "joined",
  });
  assert.deepEqual(cmap.getValue("runtime.members.2.join_count"), {
    type: "uint32",
    value: 1,
  });
  assert.deepEqual(cmap.getValue("runtime.totem.ring_id"), {
    type: "string",
    value: "1.4",
  });
  cmap.confChange({
    kind: "regular",
    ringId: { rep: 1, seq: 8 },
    members: [1],
    left: [2],
    joined: [],
  });
  assert.deepEqual(cmap.getValue("runtime.members.2.status"), {
    type: "string",
    value: "left",
  });
  assert.deepEqual(cmap.getValue("runtime.totem.member_count"), {
    type: "uint32",
    value: 1,
  });
  cmap.confChange({
    kind: "regular",
    ringId: { rep: 1, seq: 12 },
    members: [1, 2],
    left: [],
    joined: [2],
  });
  assert.deepEqual(cmap.getValue("runtime.members.2.join_count"), {
    type: "uint32",
    value: 2,
  });
  assert.deepEqual(cmap.getValue("runtime.members.1.join_count"), {
    type: "uint32",
    value: 1,
  });
});

Deno.test("cmap: seedCmap loads the config into the registry's engine", () => {
  const engines = createEngines();
  const skipped = seedCmap(engines, { "totem.token": "3000", "x": "bad" });
  assert.deepEqual(skipped, ["x"]);
  assert.deepEqual(cmapOf(engines)!.getValue("totem.token"), {
    type: "uint32",
    value: 3000,
  });
});

Deno.test("read hooks run before reads that can see their prefix, and only those", () => {
  const { cmap } = setup();
  let refreshed = 0;
  cmap.addReadHook("stats.", () => {
    refreshed++;
    // What the hook writes is what the read returns.
    cmap.setInternal("stats.srp.orf_token_rx", {
      type: "uint64",
      value: BigInt(refreshed),
    });
  });
  assert.deepEqual(get(cmap, "stats.srp.orf_token_rx"), {
    type: "uint64",
    value: 1n,
  });
  req(cmap, { fn: "iter", prefix: "stats.srp.", after: "" });
  req(cmap, { fn: "iter", prefix: "", after: "" }); // everything
  req(cmap, { fn: "iter", prefix: "st", after: "" });
  assert.equal(refreshed, 4);
  // Reads that cannot see stats.* leave the hook alone.
  get(cmap, "runtime.local_node_id");
  req(cmap, { fn: "iter", prefix: "totem.", after: "" });
  set(cmap, "stats_like.key", { type: "uint8", value: 1 });
  assert.equal(refreshed, 4);
  // A tracker's baseline is fresh too, and tracks are visible to the daemon.
  assert.equal(cmap.hasTracksOverlapping("stats."), false);
  req(cmap, {
    fn: "track_add",
    flags: CMAP_TRACK.MODIFY | CMAP_TRACK.PREFIX,
    key: "stats.knet.",
  });
  assert.equal(refreshed, 5);
  assert.equal(cmap.hasTracksOverlapping("stats."), true);
  assert.equal(cmap.hasTracksOverlapping("totem."), false);
});
