import assert from "node:assert/strict";
import { claimHeadroom, withHeadroom } from "../../../src/lib/headroom.ts";
import { decodePacket, encodePacket } from "../../../src/net/wire.ts";
import { decodeFrame, encodeMcast } from "../../../src/totem/codec.ts";
import { Packer } from "../../../src/totem/pg/packer.ts";
import { MCAST_HEADER_BYTES } from "../../../src/totem/codec.ts";
import { WIRE_HEADER_BYTES } from "../../../src/net/wire.ts";

Deno.test("claimHeadroom() hands out each reserved slot once, in order, before the data", () => {
  const view = withHeadroom(4, [3, 2]);
  view.set([1, 2, 3, 4]);
  assert.equal(claimHeadroom(view, 2), null, "the inner slot comes first");
  const inner = claimHeadroom(view, 3)!;
  assert.equal(inner.length, 7);
  assert.equal(inner.buffer, view.buffer);
  assert.deepEqual([...inner.subarray(3)], [1, 2, 3, 4]);
  assert.equal(claimHeadroom(view, 3), null, "one claim per view");
  const outer = claimHeadroom(inner, 2)!;
  assert.equal(outer.length, 9);
  assert.equal(claimHeadroom(outer, 1), null, "no room left");
  assert.equal(claimHeadroom(new Uint8Array(8).subarray(4), 4), null);
  assert.equal(withHeadroom(5, []).length, 5);
});

/** True when the two views share no byte of memory. */
function disjoint(a: Uint8Array, b: Uint8Array): boolean {
  return a.buffer !== b.buffer || a.byteOffset + a.length <= b.byteOffset ||
    b.byteOffset + b.length <= a.byteOffset;
}

Deno.test("A packed frame takes the mcast and wire headers in place; a second send copies", () => {
  const packer = new Packer({
    frameBytesMax: 1000,
    headroom: [MCAST_HEADER_BYTES, WIRE_HEADER_BYTES],
  });
  const message = new Uint8Array(900).map((_, i) => i & 0xff);
  const [frame] = [...packer.add([message]), packer.flush()!];
  const ring = { rep: 1, seq: 8 };
  const mcast = encodeMcast(1, ring, 5, "agreed", false, frame);
  assert.equal(mcast.buffer, frame.buffer, "mcast header written in place");
  assert.equal(mcast.byteOffset + MCAST_HEADER_BYTES, frame.byteOffset);
  const decoded = decodeFrame(mcast);
  assert.ok(decoded.ok && decoded.value.type === "mcast");
  assert.deepEqual(decoded.value.payload, frame);

  const first = encodePacket(
    { kind: "data", link: 0, sender: 1, dst: 0 },
    mcast,
  );
  assert.equal(first.buffer, frame.buffer, "wire header written in place");
  assert.equal(first.byteOffset + WIRE_HEADER_BYTES, mcast.byteOffset);
  // The same frame again (another link, a retransmission): a copy in other
  // memory (small ones share a chunk), and the first datagram is untouched.
  const second = encodePacket(
    { kind: "data", link: 1, sender: 1, dst: 0 },
    mcast,
  );
  assert.ok(disjoint(second, first), "second datagram copied");
  const a = decodePacket(first);
  const b = decodePacket(second);
  assert.ok(a.ok && b.ok);
  assert.equal(a.value.header.link, 0);
  assert.equal(b.value.header.link, 1);
  assert.deepEqual(a.value.body, mcast);
  assert.deepEqual(b.value.body, mcast);
  // Re-encoding the frame (a RECOVERY re-broadcast) copies too.
  const again = encodeMcast(1, { rep: 1, seq: 12 }, 6, "agreed", false, frame);
  assert.ok(disjoint(again, first), "re-encoded frame copied");
  assert.equal(decodeFrame(mcast).ok, true);
});
