import assert from "node:assert/strict";
import {
  CMAP_REQUEST_FN,
  CMAP_TRACK,
  type CmapRequest,
  decodeCmapRequest,
  decodeCmapU32,
  decodeIterPage,
  decodeRawValue,
  decodeTrackCallback,
  encodeCmapRequest,
  encodeIterPage,
  encodeTrackCallback,
} from "../../../../engines/cmap/ipc.ts";
import {
  formatValue,
  parseCmapType,
  parseValue,
  valueFromBytes,
} from "../../../../engines/cmap/values.ts";

/** Deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SAMPLES: CmapRequest[] = [
  { fn: "set", key: "a.b", value: { typeCode: 2, bytes: new Uint8Array([5]) } },
  { fn: "get", key: "totem.token" },
  { fn: "delete", key: "a.b" },
  { fn: "inc", key: "a.b" },
  { fn: "dec", key: "a.b" },
  { fn: "iter", prefix: "", after: "" },
  { fn: "iter", prefix: "runtime.", after: "runtime.x" },
  { fn: "track_add", flags: CMAP_TRACK.ADD | CMAP_TRACK.PREFIX, key: "a." },
  { fn: "track_delete", handle: 77 },
];

Deno.test("cmap ipc: requests round-trip", () => {
  for (const r of SAMPLES) {
    const d = decodeCmapRequest(CMAP_REQUEST_FN[r.fn], encodeCmapRequest(r));
    assert.ok(d.ok, r.fn);
    assert.deepEqual(d.value, r);
  }
  assert.equal(decodeCmapRequest(6, new Uint8Array()).ok, false);
});

Deno.test("cmap ipc: callbacks and pages round-trip", () => {
  const cb = {
    handle: 3,
    event: CMAP_TRACK.MODIFY,
    key: "a.b",
    oldValue: { typeCode: 11, bytes: new Uint8Array([104]) },
    newValue: null,
  };
  const d = decodeTrackCallback(encodeTrackCallback(cb));
  assert.ok(d.ok);
  assert.deepEqual(d.value, cb);
  const page = {
    more: true,
    entries: [{
      key: "a.b",
      value: { typeCode: 12, bytes: new Uint8Array(3) },
    }],
  };
  const p = decodeIterPage(encodeIterPage(page));
  assert.ok(p.ok);
  assert.deepEqual(p.value, page);
});

Deno.test("cmap ipc: decoders never throw on random or mutated bytes", () => {
  const next = rng(42);
  const seeds = [
    ...SAMPLES.map(encodeCmapRequest),
    encodeTrackCallback({
      handle: 1,
      event: 4,
      key: "abc",
      oldValue: null,
      newValue: { typeCode: 1, bytes: new Uint8Array(1) },
    }),
    encodeIterPage({
      more: false,
      entries: [{
        key: "abc",
        value: { typeCode: 1, bytes: new Uint8Array(1) },
      }],
    }),
  ];
  for (let i = 0; i < 20_000; i++) {
    let bytes: Uint8Array;
    if (i % 2 === 0) {
      bytes = seeds[Math.floor(next() * seeds.length)].slice();
      const flips = 1 + Math.floor(next() * 3);
      for (let f = 0; f < flips && bytes.length > 0; f++) {
        bytes[Math.floor(next() * bytes.length)] = Math.floor(next() * 256);
      }
      if (next() < 0.3) {
        bytes = bytes.subarray(0, Math.floor(next() * bytes.length));
      }
    } else {
      bytes = new Uint8Array(Math.floor(next() * 40));
      for (let j = 0; j < bytes.length; j++) {
        bytes[j] = Math.floor(next() * 256);
      }
    }
    decodeCmapRequest(Math.floor(next() * 10), bytes);
    decodeTrackCallback(bytes);
    decodeIterPage(bytes);
    decodeRawValue(bytes);
    decodeCmapU32(bytes);
    for (let t = 1; t <= 12; t++) {
      const type = ([
        "int8",
        "uint8",
        "int16",
        "uint16",
        "int32",
        "uint32",
        "int64",
        "uint64",
        "float",
        "double",
        "string",
        "binary",
      ] as const)[t - 1];
      valueFromBytes(type, bytes);
    }
  }
});

Deno.test("cmap values: parse and format text", () => {
  assert.equal(parseCmapType("u8"), "uint8");
  assert.equal(parseCmapType("string"), "string");
  assert.equal(parseCmapType("nope"), null);
  const ok = (t: Parameters<typeof parseValue>[0], s: string) => {
    const r = parseValue(t, s);
    assert.ok(r.ok, s);
    return formatValue(r.value);
  };
  assert.equal(ok("uint8", "255"), "255");
  assert.equal(ok("int64", "-9223372036854775808"), "-9223372036854775808");
  assert.equal(ok("double", "2.5"), "2.5");
  assert.equal(ok("binary", "00ff10"), "00ff10");
  assert.equal(parseValue("uint8", "256").ok, false);
  assert.equal(parseValue("uint8", "1.5").ok, false);
  assert.equal(parseValue("uint64", "-1").ok, false);
  assert.equal(parseValue("binary", "0g").ok, false);
  assert.equal(parseValue("double", "abc").ok, false);
});
