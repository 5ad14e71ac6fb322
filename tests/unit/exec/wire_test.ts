import assert from "node:assert/strict";
import {
  ByteReader,
  ByteWriter,
  finishDecode,
} from "../../../src/exec/bytes.ts";
import {
  decodeEngineMessage,
  decodeSyncMessage,
  encodeEngineHeader,
  encodeEngineMessage,
  encodeSyncMessage,
  type SyncMessage,
} from "../../../src/exec/wire.ts";
import { Prng } from "../../../src/lib/prng.ts";
import {
  decodeGroupMessage,
  encodeGroupMessage,
} from "../../../src/totem/pg/mod.ts";

function randomBytes(rng: Prng, max: number): Uint8Array {
  const out = new Uint8Array(rng.int(max + 1));
  for (let i = 0; i < out.length; i++) out[i] = rng.int(256);
  return out;
}

function mutate(rng: Prng, bytes: Uint8Array): Uint8Array {
  const out = bytes.slice();
  const r = rng.float();
  if (r < 0.3 && out.length > 0) out[rng.int(out.length)] ^= 1 << rng.int(8);
  else if (r < 0.6) return out.subarray(0, rng.int(out.length + 1));
  else {
    const longer = new Uint8Array(out.length + 1 + rng.int(8));
    longer.set(out);
    return longer;
  }
  return out;
}

Deno.test("encodeEngineMessage() round trips service, fn and payload", () => {
  for (const [service, fn] of [[0, 0], [2, 3], [0xffff, 0xffff]]) {
    for (const payload of [new Uint8Array(), new Uint8Array([1, 2, 3])]) {
      const d = decodeEngineMessage(encodeEngineMessage(service, fn, payload));
      assert.ok(d.ok);
      assert.equal(d.value.serviceId, service);
      assert.equal(d.value.fn, fn);
      assert.deepEqual(new Uint8Array(d.value.payload), payload);
    }
  }
});

Deno.test("encodeEngineHeader() gathered with the payload is the whole message", () => {
  const payload = new Uint8Array([9, 8, 7, 6]);
  const header = encodeEngineHeader(5, 6, payload.length);
  const gathered = new Uint8Array(header.length + payload.length);
  gathered.set(header);
  gathered.set(payload, header.length);
  assert.deepEqual(gathered, encodeEngineMessage(5, 6, payload));
  const group = encodeGroupMessage(["a"], header, payload);
  assert.deepEqual(group, encodeGroupMessage(["a"], gathered));
  const d = decodeGroupMessage(group);
  assert.ok(d.ok);
  assert.deepEqual(new Uint8Array(d.value.payload), gathered);
});

Deno.test("decodeEngineMessage() rejects a size that disagrees with the bytes", () => {
  const bytes = encodeEngineMessage(2, 1, new Uint8Array([9, 9]));
  assert.equal(decodeEngineMessage(bytes.subarray(0, 9)).ok, false);
  const longer = new Uint8Array(bytes.length + 1);
  longer.set(bytes);
  assert.equal(decodeEngineMessage(longer).ok, false);
  assert.deepEqual(decodeEngineMessage(new Uint8Array(3)), {
    ok: false,
    reason: "truncated",
    detail: "truncated message id",
  });
});

Deno.test("encodeSyncMessage() round trips barriers and service builds", () => {
  const cases: SyncMessage[] = [
    { type: "barrier", ringId: { rep: 1, seq: 4 }, serviceId: 2 },
    {
      type: "barrier",
      ringId: { rep: 0xffff_ffff, seq: 2 ** 53 - 1 },
      serviceId: 0xffff,
    },
    { type: "service_build", ringId: { rep: 3, seq: 8 }, serviceIds: [] },
    {
      type: "service_build",
      ringId: { rep: 3, seq: 2 ** 40 },
      serviceIds: [0, 2, 5, 200],
    },
  ];
  for (const m of cases) {
    assert.deepEqual(decodeSyncMessage(encodeSyncMessage(m)), {
      ok: true,
      value: m,
    });
  }
});

Deno.test("decodeSyncMessage() rejects bad types, rep 0, seq above 2^53, duplicates", () => {
  const w = (f: (w: ByteWriter) => void) => {
    const x = new ByteWriter();
    f(x);
    return x.finish();
  };
  assert.equal(decodeSyncMessage(w((x) => x.u16(7).u32(1).u64(4))).ok, false);
  assert.equal(
    decodeSyncMessage(w((x) => x.u16(0).u32(0).u64(4).u16(2))).ok,
    false,
  );
  assert.equal(
    decodeSyncMessage(w((x) => x.u16(0).u32(1).u32(0).u32(0x20_0000).u16(2)))
      .ok,
    false,
  );
  assert.equal(
    decodeSyncMessage(w((x) => x.u16(1).u32(1).u64(4).u16(2).u16(3).u16(3))).ok,
    false,
  );
  assert.equal(
    decodeSyncMessage(w((x) => x.u16(0).u32(1).u64(4).u16(2).u8(0))).ok,
    false,
  );
});

Deno.test("sync and engine decoders never throw on random or mutated bytes", () => {
  const rng = new Prng(7);
  const seeds = [
    encodeSyncMessage({
      type: "service_build",
      ringId: { rep: 1, seq: 4 },
      serviceIds: [0, 2, 5],
    }),
    encodeSyncMessage({
      type: "barrier",
      ringId: { rep: 1, seq: 4 },
      serviceId: 2,
    }),
    encodeEngineMessage(2, 3, new Uint8Array([1, 2, 3, 4])),
  ];
  for (let i = 0; i < 20_000; i++) {
    const bytes = i % 2 === 0
      ? randomBytes(rng, 40)
      : mutate(rng, rng.pick(seeds));
    const s = decodeSyncMessage(bytes);
    if (s.ok) {
      assert.deepEqual(decodeSyncMessage(encodeSyncMessage(s.value)), s);
    }
    decodeEngineMessage(bytes);
  }
});

Deno.test("ByteReader reports the first failure and never reads past the end", () => {
  const r = new ByteReader(new Uint8Array([1, 0, 0]));
  assert.equal(r.u16(), 1);
  assert.equal(r.u32("x"), 0);
  assert.equal(r.u8(), 0);
  assert.equal(r.failure, "truncated x");
  const d = finishDecode(r, 1);
  assert.deepEqual(d, {
    ok: false,
    reason: "truncated",
    detail: "truncated x",
  });
  const bad = new ByteReader(new Uint8Array([2, 0, 0xff, 0xfe]));
  assert.equal(bad.name(10), "");
  assert.equal(bad.failure, "name is not UTF-8");
  const big = new ByteReader(new ByteWriter().u32(1000).finish());
  assert.equal(big.count(10, 4), 0);
  assert.equal(finishDecode(big, 0).ok, false);
});

Deno.test("ByteWriter.finish() hands over an exactly sized buffer and copies otherwise", () => {
  const exact = new ByteWriter(6).u16(0x0102).u32(7);
  const a = exact.finish();
  assert.deepEqual([...a], [2, 1, 7, 0, 0, 0]);
  // Writing on after finish() never changes bytes already handed over.
  exact.u8(9);
  assert.deepEqual([...a], [2, 1, 7, 0, 0, 0]);
  assert.deepEqual([...exact.finish()], [2, 1, 7, 0, 0, 0, 9]);
  const loose = new ByteWriter(64).u8(5);
  const b = loose.finish();
  assert.equal(b.length, 1);
  assert.equal(b.buffer.byteLength, 1);
});
