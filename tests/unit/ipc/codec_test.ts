import assert from "node:assert/strict";
import { Prng } from "../../../src/lib/prng.ts";
import { CsError, csErrorName } from "../../../src/ipc/cs_error.ts";
import {
  decodeErrorMessage,
  decodeEventAck,
  decodeHello,
  decodeHelloOk,
  encodeErrorMessage,
  encodeEventAck,
  encodeFrame,
  encodeHeader,
  encodeHello,
  encodeHelloOk,
  ERROR_MESSAGE_BYTES_MAX,
  type Frame,
  FRAME_HEADER_BYTES,
  FrameDecoder,
  FrameType,
  type FrameTypeCode,
  HELLO_OK_BYTES,
  IPC_MAGIC,
  readHeader,
  writeU16,
  writeU32,
} from "../../../src/ipc/codec.ts";

const LIMIT = 64 * 1024;

function frame(
  type: FrameTypeCode,
  requestId: number,
  code: number,
  payload: number[] | Uint8Array,
): Frame {
  return { type, requestId, code, payload: Uint8Array.from(payload) };
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function plain(f: Frame) {
  return { ...f, payload: Array.from(f.payload) };
}

function header(length: number, type: number, flags = 0, requestId = 9) {
  const bytes = new Uint8Array(FRAME_HEADER_BYTES);
  writeU32(bytes, 0, length);
  writeU16(bytes, 4, type);
  writeU16(bytes, 6, flags);
  writeU32(bytes, 8, requestId);
  return bytes;
}

const SAMPLE: Frame[] = [
  frame(FrameType.REQUEST, 1, 7, [1, 2, 3]),
  frame(FrameType.RESPONSE, 0xffff_ffff, CsError.TRY_AGAIN, []),
  frame(FrameType.EVENT, 0, 0, new Uint8Array(300).fill(0xab)),
  frame(FrameType.GOODBYE, 0, 0, []),
  frame(FrameType.EVENT_ACK, 0, 0, encodeEventAck({ events: 2, bytes: 40 })),
];
const STREAM = concat(SAMPLE.map(encodeFrame));

Deno.test("encodeFrame() writes the little-endian header of PROTOCOL.md", () => {
  const bytes = encodeFrame(frame(FrameType.REQUEST, 0x0102_0304, 5, [0xee]));
  assert.deepEqual(
    Array.from(bytes),
    [17, 0, 0, 0, 4, 0, 0, 0, 4, 3, 2, 1, 5, 0, 0, 0, 0xee],
  );
  assert.deepEqual(readHeader(bytes, 0), {
    length: 17,
    type: 4,
    flags: 0,
    requestId: 0x0102_0304,
    code: 5,
  });
  assert.deepEqual(
    encodeHeader(frame(FrameType.REQUEST, 0x0102_0304, 5, [0xee])),
    bytes.subarray(0, 16),
  );
});

Deno.test("FrameDecoder.push() round-trips a stream cut at every offset", () => {
  for (let cut = 0; cut <= STREAM.length; cut++) {
    const decoder = new FrameDecoder(LIMIT);
    const a = decoder.push(STREAM.subarray(0, cut));
    const b = decoder.push(STREAM.subarray(cut));
    assert.equal(a.error, null);
    assert.equal(b.error, null);
    assert.deepEqual(
      [...a.frames, ...b.frames].map(plain),
      SAMPLE.map(plain),
      `cut at ${cut}`,
    );
    assert.equal(decoder.bufferedBytes, 0);
  }
});

Deno.test("FrameDecoder.push() round-trips a stream fed one byte at a time", () => {
  const decoder = new FrameDecoder(LIMIT);
  const frames: Frame[] = [];
  for (let i = 0; i < STREAM.length; i++) {
    const r = decoder.push(STREAM.subarray(i, i + 1));
    assert.equal(r.error, null);
    frames.push(...r.frames);
  }
  assert.deepEqual(frames.map(plain), SAMPLE.map(plain));
});

Deno.test("FrameDecoder.push() returns whole frames as views without copying", () => {
  const decoder = new FrameDecoder(LIMIT);
  const { frames } = decoder.push(STREAM);
  assert.equal(frames[2].payload.buffer, STREAM.buffer);
});

Deno.test("FrameDecoder.push() refuses an oversized length before allocating", () => {
  const decoder = new FrameDecoder(1024);
  const r = decoder.push(header(0xffff_fff0, FrameType.REQUEST, 0, 77));
  assert.equal(r.frames.length, 0);
  assert.equal(r.error?.code, CsError.TOO_BIG);
  assert.equal(r.error?.requestId, 77);
  assert.equal(decoder.bufferedBytes, 0);
  assert.equal(decoder.pendingFrameBytes, 0);
});

Deno.test("FrameDecoder.push() refuses short lengths, unknown types and flags", () => {
  const cases: [Uint8Array, number][] = [
    [header(15, FrameType.REQUEST), CsError.MESSAGE_ERROR],
    [header(16, 0), CsError.MESSAGE_ERROR],
    [header(16, 9), CsError.MESSAGE_ERROR],
    [header(16, FrameType.EVENT, 1), CsError.BAD_FLAGS],
  ];
  for (const [bytes, code] of cases) {
    // Whole header in one chunk (fast path) and split (slow path).
    for (const split of [16, 5]) {
      const decoder = new FrameDecoder(LIMIT);
      decoder.push(bytes.subarray(0, split));
      const r = split === 16
        ? decoder.error
        : decoder.push(bytes.subarray(split)).error;
      assert.equal(r?.code, code, `${Array.from(bytes)} split ${split}`);
    }
  }
});

Deno.test("FrameDecoder.push() returns the frames before an error, then stays failed", () => {
  const decoder = new FrameDecoder(LIMIT);
  const good = encodeFrame(SAMPLE[0]);
  const r = decoder.push(concat([good, header(3, FrameType.EVENT), good]));
  assert.equal(r.frames.length, 1);
  assert.equal(r.error?.code, CsError.MESSAGE_ERROR);
  const again = decoder.push(good);
  assert.equal(again.frames.length, 0);
  assert.equal(again.error, r.error);
});

Deno.test("FrameDecoder.directTarget() takes large bodies without a second copy", () => {
  const payload = new Uint8Array(100_000);
  for (let i = 0; i < payload.length; i++) payload[i] = i * 7;
  const bytes = encodeFrame(frame(FrameType.EVENT, 0, 0, payload));
  const decoder = new FrameDecoder(200_000);
  assert.equal(decoder.directTarget(1), null);
  assert.deepEqual(decoder.push(bytes.subarray(0, 1000)).frames, []);
  const target = decoder.directTarget(32 * 1024);
  assert.ok(target !== null);
  assert.equal(target.length, bytes.length - 1000);
  target.set(bytes.subarray(1000, 50_000));
  assert.deepEqual(decoder.commitDirect(49_000).frames, []);
  assert.equal(decoder.bufferedBytes, 50_000);
  const rest = decoder.directTarget(32 * 1024)!;
  rest.set(bytes.subarray(50_000));
  const done = decoder.commitDirect(bytes.length - 50_000);
  assert.equal(done.frames.length, 1);
  assert.deepEqual(done.frames[0].payload, payload);
  assert.equal(decoder.bufferedBytes, 0);
});

Deno.test("encodeHello() and decodeHello() round-trip", () => {
  const hello = { version: 1, features: 1, pid: 4242, service: "votequorum" };
  const bytes = encodeHello(hello);
  assert.equal(bytes.length, 12 + 10);
  const decoded = decodeHello(bytes);
  assert.deepEqual(decoded, { ok: true, value: hello });
});

Deno.test("decodeHello() refuses short bodies, bad magic and bad names", () => {
  const good = encodeHello({ version: 1, features: 0, pid: 1, service: "cpg" });
  const badMagic = good.slice();
  badMagic[0] ^= 1;
  const badUtf8 = concat([good.subarray(0, 12), Uint8Array.from([0xff, 0xfe])]);
  const upper = concat([good.subarray(0, 12), new TextEncoder().encode("CPG")]);
  const long = concat([good.subarray(0, 12), new Uint8Array(33).fill(0x61)]);
  const cases: [Uint8Array, number][] = [
    [good.subarray(0, 12), CsError.MESSAGE_ERROR],
    [badMagic, CsError.MESSAGE_ERROR],
    [badUtf8, CsError.INVALID_PARAM],
    [upper, CsError.INVALID_PARAM],
    [long, CsError.INVALID_PARAM],
  ];
  for (const [bytes, code] of cases) {
    const d = decodeHello(bytes);
    assert.equal(d.ok, false);
    assert.equal(!d.ok && d.code, code);
  }
  assert.equal(IPC_MAGIC, 0x4e59_5344);
  assert.deepEqual(Array.from(good.subarray(0, 4)), [0x44, 0x53, 0x59, 0x4e]);
});

Deno.test("encodeHelloOk() and decodeHelloOk() round-trip and ignore extensions", () => {
  const ok = {
    connectionId: 12,
    nodeId: 0xdead_beef,
    messageBytesMax: 1_114_112,
    version: 1,
    features: 1,
    eventWindowBytes: 8 << 20,
  };
  const bytes = encodeHelloOk(ok);
  assert.equal(bytes.length, HELLO_OK_BYTES);
  assert.deepEqual(decodeHelloOk(bytes), { ok: true, value: ok });
  assert.deepEqual(
    decodeHelloOk(concat([bytes, new Uint8Array(8)])),
    { ok: true, value: ok },
  );
  assert.equal(decodeHelloOk(bytes.subarray(0, 19)).ok, false);
  const tiny = encodeHelloOk({ ...ok, messageBytesMax: 3 });
  assert.equal(decodeHelloOk(tiny).ok, false);
});

Deno.test("encodeErrorMessage() cuts long messages on a character boundary", () => {
  const msg = "é".repeat(400); // 800 bytes
  const bytes = encodeErrorMessage(msg);
  assert.ok(bytes.length <= ERROR_MESSAGE_BYTES_MAX);
  assert.equal(decodeErrorMessage(bytes), "é".repeat(bytes.length / 2));
  assert.equal(
    decodeErrorMessage(encodeErrorMessage("no such service")),
    "no such service",
  );
  assert.equal(decodeErrorMessage(Uint8Array.from([0xff, 0x41])), "\ufffdA");
});

Deno.test("decodeEventAck() round-trips and refuses impossible acks", () => {
  assert.deepEqual(decodeEventAck(encodeEventAck({ events: 3, bytes: 48 })), {
    ok: true,
    value: { events: 3, bytes: 48 },
  });
  assert.equal(decodeEventAck(new Uint8Array(7)).ok, false);
  assert.equal(decodeEventAck(new Uint8Array(9)).ok, false);
  const small = encodeEventAck({ events: 4, bytes: 63 });
  assert.equal(decodeEventAck(small).ok, false);
});

Deno.test("csErrorName() names cs_error_t values", () => {
  assert.equal(csErrorName(6), "CS_ERR_TRY_AGAIN");
  assert.equal(csErrorName(26), "CS_ERR_TOO_BIG");
  assert.equal(csErrorName(77), "cs_error_t 77");
});

Deno.test("FrameDecoder and body decoders never throw on random bytes", () => {
  for (let seed = 1; seed <= 300; seed++) {
    const rng = new Prng(seed);
    const bytes = Uint8Array.from(
      { length: rng.int(400) },
      () => rng.int(256),
    );
    // Small lengths are likelier to look valid: bias some headers.
    if (bytes.length >= 4 && rng.chance(0.5)) writeU32(bytes, 0, rng.int(64));
    if (bytes.length >= 6 && rng.chance(0.5)) {
      writeU16(bytes, 4, 1 + rng.int(8));
    }
    if (bytes.length >= 8 && rng.chance(0.5)) writeU16(bytes, 6, 0);
    const decoder = new FrameDecoder(rng.chance(0.5) ? 1024 : 64);
    let at = 0;
    while (at < bytes.length) {
      const take = 1 + rng.int(40);
      const r = decoder.push(bytes.subarray(at, at + take));
      for (const f of r.frames) {
        assert.ok(f.type >= 1 && f.type <= 8, `seed ${seed}`);
        decodeHello(f.payload);
        decodeHelloOk(f.payload);
        decodeEventAck(f.payload);
        decodeErrorMessage(f.payload);
      }
      at += take;
    }
    decodeHello(bytes);
    decodeHelloOk(bytes);
    decodeEventAck(bytes);
  }
});

Deno.test("FrameDecoder never throws on mutated valid streams", () => {
  const hello = encodeFrame(
    frame(
      FrameType.HELLO,
      0,
      0,
      encodeHello({ version: 1, features: 1, pid: 9, service: "cmap" }),
    ),
  );
  const base = concat([hello, STREAM]);
  for (let seed = 1; seed <= 300; seed++) {
    const rng = new Prng(seed * 7919);
    const bytes = base.slice();
    for (let m = 1 + rng.int(4); m > 0; m--) {
      const at = rng.int(bytes.length);
      if (rng.chance(0.5)) bytes[at] ^= 1 << rng.int(8);
      else bytes[at] = rng.int(256);
    }
    const decoder = new FrameDecoder(LIMIT);
    const cut = rng.int(bytes.length);
    const frames = [
      ...decoder.push(bytes.subarray(0, cut)).frames,
      ...decoder.push(bytes.subarray(cut)).frames,
    ];
    for (const f of frames) {
      if (f.type === FrameType.HELLO) decodeHello(f.payload);
      if (f.type === FrameType.EVENT_ACK) decodeEventAck(f.payload);
    }
  }
});
