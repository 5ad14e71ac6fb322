import assert from "node:assert/strict";
import {
  SMALL_BYTES_CHUNK,
  SMALL_BYTES_MAX,
  smallBytes,
  smallCopy,
} from "../../../src/lib/small_bytes.ts";
import { ByteReader, ByteWriter } from "../../../src/exec/bytes.ts";

Deno.test("smallBytes hands out zeroed views that never overlap, across chunks", () => {
  const views: Uint8Array[] = [];
  let total = 0;
  // Enough to roll over to new chunks a few times.
  for (let i = 0; total < 3 * SMALL_BYTES_CHUNK; i++) {
    const n = 1 + (i * 37) % SMALL_BYTES_MAX;
    const v = smallBytes(n);
    assert.equal(v.length, n);
    assert.ok(v.every((b) => b === 0), "zeroed");
    v.fill(i & 0xff || 1);
    views.push(v);
    total += n;
  }
  // Every view still holds what was written to it: no two share a byte.
  views.forEach((v, i) => assert.ok(v.every((b) => b === (i & 0xff || 1))));
});

Deno.test("smallBytes gives larger requests a buffer of their own", () => {
  const v = smallBytes(SMALL_BYTES_MAX + 1);
  assert.equal(v.byteOffset, 0);
  assert.equal(v.buffer.byteLength, SMALL_BYTES_MAX + 1);
});

Deno.test("smallCopy copies into other memory, small or large", () => {
  for (const n of [0, 5, SMALL_BYTES_MAX, SMALL_BYTES_MAX + 1]) {
    const src = new Uint8Array(n).map((_, i) => (i * 7 + 1) & 0xff);
    const copy = smallCopy(src);
    assert.deepEqual(copy, src);
    src.fill(0);
    assert.ok(n === 0 || copy[0] === 1, "the copy is not a view of its source");
  }
});

Deno.test("ByteWriter.transient writes at its view's offset, beside other writers", () => {
  const a = ByteWriter.transient(10).u32(0xdeadbeef).u16(7).u32(1).finish();
  const b = ByteWriter.transient(8).u32(2).u32(3).finish();
  assert.equal(a.length, 10);
  const r = new ByteReader(a);
  assert.deepEqual([r.u32("x"), r.u16("y"), r.u32("z")], [0xdeadbeef, 7, 1]);
  const s = new ByteReader(b);
  assert.deepEqual([s.u32("x"), s.u32("y")], [2, 3]);
  // Growing past the size moves to a buffer of its own, contents kept.
  const c = ByteWriter.transient(4).u32(9).u32(10).finish();
  const t = new ByteReader(c);
  assert.deepEqual([t.u32("x"), t.u32("y")], [9, 10]);
});
