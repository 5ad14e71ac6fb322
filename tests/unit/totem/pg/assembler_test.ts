import assert from "node:assert/strict";
import { Prng } from "../../../../src/lib/prng.ts";
import {
  Assembler,
  type AssembleResult,
  Packer,
  PG_VERSION,
} from "../../../../src/totem/pg/mod.ts";

/** A message that names itself: index in the first 4 bytes, then a pattern. */
function message(index: number, size: number): Uint8Array {
  const m = new Uint8Array(Math.max(4, size));
  new DataView(m.buffer).setUint32(0, index, true);
  for (let i = 4; i < m.length; i++) m[i] = (index * 7 + i) & 0xff;
  return m;
}

function indexOf(m: Uint8Array): number {
  return new DataView(m.buffer, m.byteOffset, m.length).getUint32(0, true);
}

/** Frames carrying each message: message i spans frames[first[i]..last[i]]. */
function packAll(
  packer: Packer,
  messages: Uint8Array[],
): { frames: Uint8Array[]; first: number[]; last: number[] } {
  const frames: Uint8Array[] = [];
  const first: number[] = [];
  const last: number[] = [];
  for (const m of messages) {
    first.push(frames.length);
    frames.push(...packer.add(m));
    last.push(packer.hasPending ? frames.length : frames.length - 1);
  }
  const tail = packer.flush();
  if (tail !== null) frames.push(tail);
  return { frames, first, last };
}

function ok(r: AssembleResult): Extract<AssembleResult, { ok: true }> {
  assert.ok(r.ok, `rejected: ${!r.ok && r.reason}`);
  return r;
}

/** Hand-made frame: [fragmented, continuation, chunks]. */
function frame(
  fragmented: number,
  continuation: number,
  chunks: number[][],
): Uint8Array {
  const data = chunks.flat();
  const out = new Uint8Array(6 + 2 * chunks.length + data.length);
  out.set([PG_VERSION, fragmented, continuation, 0, chunks.length, 0]);
  chunks.forEach((c, i) => out.set([c.length, 0], 6 + 2 * i));
  out.set(data, 6 + 2 * chunks.length);
  return out;
}

Deno.test("Assembler joins fragments and delivers whole messages in order", () => {
  const a = new Assembler();
  assert.deepEqual(ok(a.push(1, frame(5, 0, [[1], [2, 2]]))).messages, [
    new Uint8Array([1]),
  ]);
  assert.equal(a.partialBytes(1), 2);
  assert.deepEqual(ok(a.push(1, frame(6, 5, [[3]]))).messages, []);
  const r = ok(a.push(1, frame(0, 6, [[4], [5]])));
  assert.deepEqual(r.messages, [
    new Uint8Array([2, 2, 3, 4]),
    new Uint8Array([5]),
  ]);
  assert.equal(r.dropped, 0);
  assert.equal(a.partialSenders, 0);
});

Deno.test("Assembler never delivers a message whose middle frame was lost", () => {
  const a = new Assembler();
  ok(a.push(1, frame(1, 0, [[9], [1, 1]]))); // message A starts
  // frame(2, 1, [[1]]) is lost.
  const r1 = ok(a.push(1, frame(3, 2, [[1]]))); // A's middle, orphan now
  assert.deepEqual(r1.messages, []);
  assert.equal(r1.dropped, 2, "held partial and orphan chunk");
  const r2 = ok(a.push(1, frame(0, 3, [[1, 1], [7, 7]]))); // A's end, then B
  assert.deepEqual(r2.messages, [new Uint8Array([7, 7])]);
  assert.equal(r2.dropped, 1);
  assert.equal(a.partialSenders, 0);
});

Deno.test("Assembler throws away a message whose start was never seen", () => {
  const a = new Assembler(); // joined mid-message
  const r1 = ok(a.push(4, frame(8, 7, [[1, 2, 3]])));
  assert.deepEqual(r1.messages, []);
  const r2 = ok(a.push(4, frame(9, 8, [[4], [5, 5], [6]])));
  assert.deepEqual(r2.messages, [new Uint8Array([5, 5])], "B, not A's tail");
  assert.equal(a.partialBytes(4), 1, "C is held");
  const r3 = ok(a.push(4, frame(0, 9, [[6, 6]])));
  assert.deepEqual(r3.messages, [new Uint8Array([6, 6, 6])]);
});

Deno.test("Assembler drops a partial whose last frame was lost", () => {
  const a = new Assembler();
  ok(a.push(1, frame(1, 0, [[1, 1]])));
  // frame(0, 1, [[1]]) is lost; the sender's next frame starts afresh.
  const r = ok(a.push(1, frame(0, 0, [[2]])));
  assert.deepEqual(r.messages, [new Uint8Array([2])]);
  assert.equal(r.dropped, 1);
});

Deno.test("Assembler.reset and dropSender discard partials (ring change)", () => {
  const a = new Assembler();
  ok(a.push(1, frame(1, 0, [[1]])));
  ok(a.push(2, frame(1, 0, [[2]])));
  ok(a.push(3, frame(1, 0, [[3]])));
  assert.equal(a.partialSenders, 3);
  a.dropSender(2);
  assert.equal(a.partialSenders, 2);
  // The continuation from 2 no longer splices onto anything.
  assert.deepEqual(ok(a.push(2, frame(0, 1, [[2], [8]]))).messages, [
    new Uint8Array([8]),
  ]);
  a.reset();
  assert.equal(a.partialSenders, 0);
  assert.deepEqual(ok(a.push(1, frame(0, 1, [[1]]))).messages, []);
  assert.deepEqual(ok(a.push(3, frame(0, 0, [[3]]))).messages, [
    new Uint8Array([3]),
  ]);
});

Deno.test("Assembler keeps senders apart", () => {
  const a = new Assembler();
  ok(a.push(1, frame(1, 0, [[1]])));
  ok(a.push(2, frame(1, 0, [[2]])));
  assert.deepEqual(ok(a.push(2, frame(0, 1, [[2]]))).messages, [
    new Uint8Array([2, 2]),
  ]);
  assert.deepEqual(ok(a.push(1, frame(0, 1, [[1]]))).messages, [
    new Uint8Array([1, 1]),
  ]);
});

Deno.test("Assembler.push rejects malformed frames without state change", () => {
  const a = new Assembler();
  ok(a.push(1, frame(1, 0, [[1, 2]])));
  const cases: [Uint8Array, string][] = [
    [new Uint8Array(0), "truncated"],
    [new Uint8Array([PG_VERSION, 0, 0, 0, 1]), "truncated"],
    [frame(0, 1, [[3]]).subarray(0, 7), "truncated"], // length table cut
    [frame(0, 1, [[3, 3]]).subarray(0, 9), "truncated"], // data cut
    [Uint8Array.of(...frame(0, 1, [[3]]), 0), "trailing_bytes"],
    [Uint8Array.of(2, ...frame(0, 1, [[3]]).subarray(1)), "bad_version"],
    [new Uint8Array([PG_VERSION, 0, 0, 1, 1, 0, 0, 0]), "bad_field"],
    [new Uint8Array([PG_VERSION, 0, 0, 0, 0, 0]), "bad_field"],
    [frame(0, 1, [[], [3]]), "bad_field"], // empty continuation
    [frame(2, 0, [[3], []]), "bad_field"], // empty trailing fragment
  ];
  for (const [bytes, reason] of cases) {
    const r = a.push(1, bytes);
    assert.equal(r.ok ? "ok" : r.reason, reason, `frame [${bytes}]`);
  }
  assert.deepEqual(ok(a.push(1, frame(0, 1, [[3]]))).messages, [
    new Uint8Array([1, 2, 3]),
  ]);
});

Deno.test("Assembler under frame loss and ring resets: all or nothing", () => {
  for (const seed of [11, 12, 13, 14, 15, 16, 17, 18]) {
    const rng = new Prng(seed);
    const packer = new Packer({ frameBytesMax: 128, fragmentBytesMin: 1 });
    const sent = Array.from(
      { length: 800 },
      (_, i) => message(i, rng.chance(0.3) ? rng.int(1_000) : rng.int(60)),
    );
    const { frames, first, last } = packAll(packer, sent);
    const lost = frames.map(() => rng.chance(0.04));
    // resetBefore[f]: a ring change between frames f-1 and f.
    const resetBefore = frames.map(() => rng.chance(0.01));

    const a = new Assembler();
    const got: Uint8Array[] = [];
    frames.forEach((f, i) => {
      if (resetBefore[i]) a.reset();
      if (lost[i]) return;
      got.push(...ok(a.push(9, f)).messages);
    });

    const expected = sent.filter((_, i) => {
      for (let f = first[i]; f <= last[i]; f++) {
        if (lost[f] || (f > first[i] && resetBefore[f])) return false;
      }
      return true;
    });
    const ctx = `seed ${seed}`;
    assert.deepEqual(got.map(indexOf), expected.map(indexOf), ctx);
    got.forEach((m, i) => assert.deepEqual(m, expected[i], `${ctx} #${i}`));
    assert.ok(expected.length > 400, `${ctx}: the test lost too much`);
  }
});

Deno.test("Assembler.push never throws on random or mutated bytes", () => {
  const rng = new Prng(99);
  const packer = new Packer({ frameBytesMax: 200 });
  const { frames } = packAll(
    packer,
    Array.from({ length: 100 }, (_, i) => message(i, rng.int(500))),
  );
  const a = new Assembler();
  let rejected = 0;
  for (let i = 0; i < 30_000; i++) {
    let bytes: Uint8Array;
    if (rng.chance(0.3)) {
      bytes = Uint8Array.from({ length: rng.int(64) }, () => rng.int(256));
      if (bytes.length > 0 && rng.chance(0.7)) bytes[0] = PG_VERSION;
      if (bytes.length > 3 && rng.chance(0.7)) bytes[3] = 0;
    } else {
      bytes = rng.pick(frames).slice();
      for (let f = 1 + rng.int(3); f > 0; f--) {
        bytes[rng.int(bytes.length)] = rng.int(256);
      }
      if (rng.chance(0.2)) bytes = bytes.subarray(0, rng.int(bytes.length));
    }
    const r = a.push(1 + rng.int(3), bytes);
    if (!r.ok) rejected++;
    if (rng.chance(0.01)) a.reset();
  }
  assert.ok(rejected > 1_000);
});
