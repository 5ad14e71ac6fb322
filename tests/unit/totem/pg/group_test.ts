import assert from "node:assert/strict";
import { AssertionError } from "../../../../src/lib/assert.ts";
import { Prng } from "../../../../src/lib/prng.ts";
import {
  Assembler,
  decodeGroupMessage,
  encodeGroupHeader,
  encodeGroupMessage,
  GROUP_COUNT_MAX,
  GROUP_NAME_BYTES_MAX,
  Packer,
} from "../../../../src/totem/pg/mod.ts";

const PAYLOAD = new Uint8Array([0xde, 0xad, 0xbe, 0xef]);

Deno.test("encodeGroupMessage() round trips groups and payload", () => {
  const cases: string[][] = [
    ["a"],
    ["sync"],
    ["a", "sync", "cpg:grüße", "\u{1f600}"],
    ["x".repeat(GROUP_NAME_BYTES_MAX)],
    Array.from({ length: GROUP_COUNT_MAX }, (_, i) => `g${i}`),
  ];
  for (const groups of cases) {
    for (const payload of [new Uint8Array(0), PAYLOAD]) {
      const bytes = encodeGroupMessage(groups, payload);
      const r = decodeGroupMessage(bytes);
      assert.ok(r.ok);
      assert.deepEqual(r.value.groups, groups);
      assert.deepEqual(new Uint8Array(r.value.payload), payload);
    }
  }
});

Deno.test("encodeGroupMessage() has the TOTEM.md 5.3 layout", () => {
  assert.deepEqual(
    [...encodeGroupMessage(["a", "sync"], PAYLOAD)],
    [2, 0, 1, 0, 4, 0, 0x61, 0x73, 0x79, 0x6e, 0x63, 0xde, 0xad, 0xbe, 0xef],
  );
});

Deno.test("encodeGroupHeader() gathers with Packer without copying the payload first", () => {
  const packer = new Packer({ frameBytesMax: 200 });
  const payload = new Uint8Array(1_000).map((_, i) => i);
  const frames = packer.add([encodeGroupHeader(["a"]), payload]);
  const tail = packer.flush();
  assert.ok(tail !== null);
  frames.push(tail);
  const a = new Assembler();
  const got = frames.flatMap((f) => {
    const r = a.push(1, f);
    assert.ok(r.ok);
    return r.messages;
  });
  assert.equal(got.length, 1);
  assert.deepEqual(got[0], encodeGroupMessage(["a"], payload));
});

Deno.test("encodeGroupMessage() asserts on impossible groups", () => {
  assert.throws(() => encodeGroupMessage([], PAYLOAD), AssertionError);
  assert.throws(() => encodeGroupMessage([""], PAYLOAD), AssertionError);
  assert.throws(
    () => encodeGroupMessage(["x".repeat(GROUP_NAME_BYTES_MAX + 1)], PAYLOAD),
    AssertionError,
  );
  assert.throws(
    () =>
      encodeGroupMessage(
        Array.from({ length: GROUP_COUNT_MAX + 1 }, () => "a"),
        PAYLOAD,
      ),
    AssertionError,
  );
});

Deno.test("decodeGroupMessage() rejects malformed prefixes", () => {
  const cases: [number[], string][] = [
    [[], "truncated"],
    [[1], "truncated"],
    [[0, 0, 9], "bad_field"],
    [[GROUP_COUNT_MAX + 1, 0], "too_many_entries"],
    [[2, 0, 1, 0], "truncated"],
    [[1, 0, 0, 0], "bad_field"],
    [[1, 0, 0, 1, 0x61], "bad_field"], // 256-byte name
    [[1, 0, 3, 0, 0x61], "truncated"],
    [[1, 0, 1, 0, 0xff], "bad_field"], // not UTF-8
    [[1, 0, 2, 0, 0xc3, 0x28], "bad_field"],
  ];
  for (const [bytes, reason] of cases) {
    const r = decodeGroupMessage(new Uint8Array(bytes));
    assert.equal(r.ok ? "ok" : r.reason, reason, `[${bytes}]`);
  }
  // A leading BOM is part of the name, so decoding stays canonical.
  const bom = decodeGroupMessage(
    new Uint8Array([1, 0, 3, 0, 0xef, 0xbb, 0xbf]),
  );
  assert.ok(bom.ok);
  assert.deepEqual(bom.value.groups, ["\ufeff"]);
});

Deno.test("decodeGroupMessage() never throws on random bytes", () => {
  const rng = new Prng(5);
  for (let i = 0; i < 20_000; i++) {
    const bytes = Uint8Array.from({ length: rng.int(40) }, () => rng.int(256));
    if (bytes.length > 1 && rng.chance(0.5)) bytes[1] = 0;
    if (bytes.length > 0 && rng.chance(0.5)) bytes[0] = 1 + rng.int(3);
    const r = decodeGroupMessage(bytes);
    if (r.ok) {
      assert.deepEqual(
        encodeGroupMessage(r.value.groups, r.value.payload),
        bytes,
      );
    }
  }
});
