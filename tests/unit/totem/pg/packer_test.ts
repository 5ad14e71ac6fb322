import assert from "node:assert/strict";
import { AssertionError } from "../../../../src/lib/assert.ts";
import { Prng } from "../../../../src/lib/prng.ts";
import { MESSAGE_BYTES_MAX } from "../../../../src/totem/config.ts";
import {
  Assembler,
  Packer,
  PG_HEADER_BYTES,
  PG_VERSION,
} from "../../../../src/totem/pg/mod.ts";

// 1500-byte MTU - IP/UDP (28) - Totem mcast header (40) - crypto (34).
const FRAME = 1398;

function bytes(rng: Prng, size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = rng.nextU32() & 0xff;
  return out;
}

/** Splits a message into 1..4 parts at random points (some empty). */
function split(rng: Prng, message: Uint8Array): Uint8Array[] {
  const cuts = Array.from(
    { length: rng.int(4) },
    () => rng.int(message.length + 1),
  ).sort((a, b) => a - b);
  const parts: Uint8Array[] = [];
  let from = 0;
  for (const cut of [...cuts, message.length]) {
    parts.push(message.subarray(from, cut));
    from = cut;
  }
  return parts;
}

function header(frame: Uint8Array) {
  return {
    version: frame[0],
    fragmented: frame[1],
    continuation: frame[2],
    count: frame[4] | (frame[5] << 8),
  };
}

Deno.test("Packer packs many small messages per frame", () => {
  const packer = new Packer({ frameBytesMax: FRAME });
  const assembler = new Assembler();
  const sent: Uint8Array[] = [];
  const frames: Uint8Array[] = [];
  for (let i = 0; i < 1_000; i++) {
    const m = new Uint8Array(20).fill(i & 0xff);
    sent.push(m);
    frames.push(...packer.add(m));
  }
  const last = packer.flush();
  assert.ok(last !== null);
  frames.push(last);
  assert.equal(packer.flush(), null);
  // 22 bytes per message (length + data): 63 per 1398-byte frame.
  assert.equal(frames.length, Math.ceil(1_000 / 63));
  for (const f of frames) {
    assert.ok(f.length <= FRAME);
    assert.equal(header(f).version, PG_VERSION);
    assert.equal(header(f).fragmented, 0);
    assert.equal(header(f).continuation, 0);
  }
  assert.equal(header(frames[0]).count, 63);
  const got: Uint8Array[] = [];
  for (const f of frames) {
    const r = assembler.push(1, f);
    assert.ok(r.ok);
    got.push(...r.messages);
  }
  assert.deepEqual(got, sent);
});

Deno.test("Packer round trips random sizes 0..1 MiB with gathered parts", () => {
  for (const seed of [1, 2, 3]) {
    const rng = new Prng(seed);
    const packer = new Packer({ frameBytesMax: FRAME });
    const assembler = new Assembler();
    const sent: Uint8Array[] = [];
    const got: Uint8Array[] = [];
    const take = (frames: Uint8Array[]) => {
      for (const f of frames) {
        assert.ok(f.length <= FRAME, `seed ${seed}: frame of ${f.length}`);
        const r = assembler.push(7, f);
        assert.ok(r.ok, `seed ${seed}: ${!r.ok && r.reason}`);
        assert.equal(r.dropped, 0);
        got.push(...r.messages);
      }
    };
    for (let i = 0; i < 60; i++) {
      const size = rng.chance(0.1)
        ? rng.int(MESSAGE_BYTES_MAX + 1)
        : rng.chance(0.5)
        ? rng.int(4 * FRAME)
        : rng.int(200);
      const m = bytes(rng, size);
      sent.push(m);
      // Flow-control bound: the frames this message adds never exceed it.
      const owed = (packer.hasPending ? 1 : 0) + packer.frameCount(size);
      const frames = packer.add(rng.chance(0.5) ? m : split(rng, m));
      assert.ok(
        frames.length + (packer.hasPending ? 1 : 0) <= owed,
        `seed ${seed}: ${frames.length} frames for ${size} bytes, owed ${owed}`,
      );
      take(frames);
      if (rng.chance(0.2)) take([packer.flush()].filter((f) => f !== null));
    }
    take([packer.flush()].filter((f) => f !== null));
    assert.equal(got.length, sent.length, `seed ${seed}`);
    for (let i = 0; i < sent.length; i++) {
      assert.deepEqual(got[i], sent[i], `seed ${seed} message ${i}`);
    }
    assert.equal(assembler.partialSenders, 0);
  }
});

Deno.test("Packer fills the current frame, then continues the message", () => {
  const packer = new Packer({ frameBytesMax: 100 }); // chunks of up to 92 bytes
  assert.equal(packer.chunkBytesMax, 92);
  assert.deepEqual(packer.add(new Uint8Array(40)), []);
  assert.equal(packer.pendingBytes, PG_HEADER_BYTES + 2 + 40);
  const frames = packer.add(new Uint8Array(200));
  // Frame 1: 40 + 50 (fragment 1); frame 2: 92 (fragment 2); tail of 58 pending.
  assert.equal(frames.length, 2);
  assert.deepEqual(header(frames[0]), {
    version: PG_VERSION,
    fragmented: 1,
    continuation: 0,
    count: 2,
  });
  assert.equal(frames[0].length, 100);
  assert.deepEqual(header(frames[1]), {
    version: PG_VERSION,
    fragmented: 2,
    continuation: 1,
    count: 1,
  });
  const tail = packer.flush();
  assert.ok(tail !== null);
  assert.deepEqual(header(tail), {
    version: PG_VERSION,
    fragmented: 0,
    continuation: 2,
    count: 1,
  });
  assert.equal(tail.length, PG_HEADER_BYTES + 2 + 58);
});

Deno.test("Packer closes a frame rather than start a tiny fragment", () => {
  const packer = new Packer({ frameBytesMax: 100, fragmentBytesMin: 32 });
  assert.deepEqual(packer.add(new Uint8Array(70)), []); // 22 bytes left
  const frames = packer.add(new Uint8Array(30)); // 20 bytes of room: no
  assert.equal(frames.length, 1);
  assert.equal(header(frames[0]).count, 1);
  assert.equal(header(frames[0]).fragmented, 0);
  assert.equal(packer.pendingBytes, PG_HEADER_BYTES + 2 + 30);
});

Deno.test("Packer emits a frame as soon as it is exactly full", () => {
  const packer = new Packer({ frameBytesMax: 100 });
  const frames = packer.add(new Uint8Array(92));
  assert.equal(frames.length, 1);
  assert.equal(frames[0].length, 100);
  assert.equal(packer.hasPending, false);
  assert.equal(packer.flush(), null);
  // One byte short of full: no room for another length entry either.
  const p2 = new Packer({ frameBytesMax: 100 });
  assert.equal(p2.add(new Uint8Array(91)).length, 1);
  // Empty messages are messages too.
  const p3 = new Packer({ frameBytesMax: 100 });
  assert.deepEqual(p3.add(new Uint8Array(0)), []);
  const f = p3.flush();
  assert.ok(f !== null);
  const r = new Assembler().push(1, f);
  assert.ok(r.ok);
  assert.deepEqual(r.messages, [new Uint8Array(0)]);
});

Deno.test("Packer fragment ids roll over 1..255 and skip 0", () => {
  const packer = new Packer({ frameBytesMax: 64 });
  const assembler = new Assembler();
  const seen: number[] = [];
  const m = new Uint8Array(56 * 600 + 5).map((_, i) => i * 31);
  const frames = packer.add(m);
  const tail = packer.flush();
  assert.ok(tail !== null);
  frames.push(tail);
  for (const f of frames) {
    const h = header(f);
    if (h.fragmented !== 0) seen.push(h.fragmented);
  }
  assert.equal(seen.length, 600);
  assert.equal(seen[0], 1);
  assert.equal(seen[254], 255);
  assert.equal(seen[255], 1);
  assert.ok(!seen.includes(0));
  const out: Uint8Array[] = [];
  for (const f of frames) {
    const r = assembler.push(1, f);
    assert.ok(r.ok);
    out.push(...r.messages);
  }
  assert.deepEqual(out, [m]);
});

Deno.test("Packer.frameCount is the Corosync-style bound", () => {
  const packer = new Packer({ frameBytesMax: FRAME });
  const chunk = FRAME - 8;
  const cases: [number, number][] = [
    [0, 1],
    [1, 1],
    [chunk, 1],
    [chunk + 1, 2],
    [10 * chunk, 10],
    [MESSAGE_BYTES_MAX, Math.ceil(MESSAGE_BYTES_MAX / chunk)],
  ];
  for (const [size, frames] of cases) {
    assert.equal(packer.frameCount(size), frames, `size ${size}`);
  }
  assert.throws(() => packer.frameCount(MESSAGE_BYTES_MAX + 1), AssertionError);
});

Deno.test("Packer rejects our own bugs with assertions", () => {
  assert.throws(() => new Packer({ frameBytesMax: 10 }), AssertionError);
  assert.throws(() => new Packer({ frameBytesMax: 70_000 }), AssertionError);
  assert.throws(
    () => new Packer({ frameBytesMax: 100, fragmentBytesMin: 0 }),
    AssertionError,
  );
  const packer = new Packer({ frameBytesMax: FRAME });
  assert.throws(
    () => packer.add(new Uint8Array(MESSAGE_BYTES_MAX + 1)),
    AssertionError,
  );
  assert.throws(
    () =>
      packer.add([
        new Uint8Array(MESSAGE_BYTES_MAX),
        new Uint8Array(1),
      ]),
    AssertionError,
  );
  assert.equal(packer.hasPending, false, "a refused add changes nothing");
});
