import assert from "node:assert/strict";
import {
  utf8DecodeStrict,
  utf8Encode,
  utf8Length,
} from "../../../src/lib/utf8.ts";

const reference = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

Deno.test("utf8DecodeStrict() decodes as a fatal TextDecoder does, ASCII or not", () => {
  const cases = [
    "",
    "group-1",
    "\0ctl\x7f",
    "grüße",
    "\uFEFFbom kept",
    "日本",
    "x".repeat(300),
  ];
  for (const s of cases) {
    const bytes = new TextEncoder().encode(s);
    assert.equal(utf8DecodeStrict(bytes), reference.decode(bytes), s);
    assert.equal(utf8DecodeStrict(bytes), s);
  }
  for (const bad of [[0xff], [0x61, 0xc3], [0xed, 0xa0, 0x80]]) {
    assert.throws(() => utf8DecodeStrict(new Uint8Array(bad)), TypeError);
  }
});

Deno.test("utf8Encode() gives the same bytes cached or not, and utf8Length() their count", () => {
  for (const s of ["a", "grüße", "日本", "y".repeat(500)]) {
    const want = new TextEncoder().encode(s);
    assert.deepEqual(utf8Encode(s), want);
    assert.deepEqual(utf8Encode(s), want);
    assert.equal(utf8Length(s), want.length);
  }
});

Deno.test("utf8DecodeStrict() answers from its cache of recent names without keeping the caller's buffer", () => {
  // A reused receive buffer: the cache must hold a copy, never this view.
  const buffer = new Uint8Array(16);
  buffer.set(new TextEncoder().encode("group-a"));
  const view = buffer.subarray(0, 7);
  assert.equal(utf8DecodeStrict(view), "group-a");
  buffer.set(new TextEncoder().encode("group-b"));
  assert.equal(utf8DecodeStrict(view), "group-b");
  assert.equal(
    utf8DecodeStrict(new TextEncoder().encode("group-a")),
    "group-a",
  );
  // More names than the cache keeps, visited twice in turn.
  const names = Array.from({ length: 20 }, (_, i) => `name-${i}-ü`);
  for (let round = 0; round < 2; round++) {
    for (const s of names) {
      assert.equal(utf8DecodeStrict(new TextEncoder().encode(s)), s);
    }
  }
  // A malformed name is never cached as if it were good.
  assert.throws(
    () => utf8DecodeStrict(new Uint8Array([0x61, 0xc3])),
    TypeError,
  );
  assert.throws(
    () => utf8DecodeStrict(new Uint8Array([0x61, 0xc3])),
    TypeError,
  );
});
