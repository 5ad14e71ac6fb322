import { AssertionError } from "../../../src/lib/assert.ts";
import { Prng } from "../../../src/lib/prng.ts";
import {
  decodeFrame,
  encodeFrame,
  encodeMcast,
  FRAME_MAGIC,
  FRAME_VERSION,
  HEADER_BYTES,
  MCAST_HEADER_BYTES,
  peekType,
} from "../../../src/totem/codec.ts";
import {
  PROCESSOR_COUNT_MAX,
  RTR_ENTRIES_MAX,
} from "../../../src/totem/config.ts";
import type {
  CommitTokenMsg,
  JoinMsg,
  McastMsg,
  RejectReason,
  RingId,
  TokenMsg,
  TotemMsg,
} from "../../../src/totem/types.ts";

// Local assertions: node:assert needs @types/node, which the manual
// node_modules layout does not install, and JSR's @std/assert is unreachable.
const assert: {
  ok(condition: unknown, message?: string): asserts condition;
  equal(actual: unknown, expected: unknown, message?: string): void;
  deepEqual(actual: unknown, expected: unknown, message?: string): void;
  throws(
    fn: () => unknown,
    type: new (...args: never[]) => Error,
    message?: string,
  ): void;
} = {
  ok(
    condition: unknown,
    message = "expected a truthy value",
  ): asserts condition {
    if (!condition) throw new Error(message);
  },
  equal(actual: unknown, expected: unknown, message = ""): void {
    if (!Object.is(actual, expected)) {
      throw new Error(
        `${message} expected ${String(expected)}, got ${String(actual)}`,
      );
    }
  },
  deepEqual(actual: unknown, expected: unknown, message = ""): void {
    const where = diff(actual, expected, "$");
    if (where !== null) throw new Error(`${message} values differ at ${where}`);
  },
  throws(
    fn: () => unknown,
    type: new (...args: never[]) => Error,
    message = "",
  ): void {
    try {
      fn();
    } catch (e) {
      if (e instanceof type) return;
      throw new Error(`${message}: threw ${e}, expected ${type.name}`);
    }
    throw new Error(`${message}: did not throw`);
  },
};

/** Path of the first difference between two values, or null if equal. */
function diff(a: unknown, b: unknown, path: string): string | null {
  if (Object.is(a, b)) return null;
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    if (!(a instanceof Uint8Array && b instanceof Uint8Array)) return path;
    if (a.length !== b.length) return `${path}.length`;
    for (let i = 0; i < a.length; i++) {
      if (a[i] !== b[i]) return `${path}[${i}]`;
    }
    return null;
  }
  if (
    typeof a !== "object" || typeof b !== "object" || a === null || b === null
  ) {
    return path;
  }
  if (Array.isArray(a) !== Array.isArray(b)) return path;
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  if (ka.join() !== kb.join()) return `${path} keys [${ka}] vs [${kb}]`;
  for (const k of ka) {
    const d = diff(
      (a as Record<string, unknown>)[k],
      (b as Record<string, unknown>)[k],
      `${path}.${k}`,
    );
    if (d !== null) return d;
  }
  return null;
}

const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const U32_MAX = 0xffff_ffff;
const RING: RingId = { rep: 1, seq: 4 };

function token(overrides: Partial<TokenMsg> = {}): TokenMsg {
  return {
    type: "token",
    sender: 2,
    ringId: RING,
    tokenSeq: 7,
    seq: 100,
    aru: 99,
    aruAddr: 3,
    fcc: 5,
    backlog: 12,
    retransFlg: false,
    rtr: [],
    ...overrides,
  };
}

function mcast(overrides: Partial<McastMsg> = {}): McastMsg {
  return {
    type: "mcast",
    sender: 2,
    ringId: RING,
    seq: 1,
    encapsulated: false,
    guarantee: "agreed",
    payload: new Uint8Array([1, 2, 3]),
    ...overrides,
  };
}

function join(overrides: Partial<JoinMsg> = {}): JoinMsg {
  return {
    type: "join",
    sender: 2,
    ringId: RING,
    leave: false,
    procSet: [1, 2, 3],
    failSet: [3],
    ...overrides,
  };
}

function commit(overrides: Partial<CommitTokenMsg> = {}): CommitTokenMsg {
  const members = overrides.members ?? [1, 2, 5];
  return {
    type: "commit",
    sender: 1,
    ringId: { rep: 1, seq: 8 },
    tokenSeq: 0,
    retransFlg: false,
    membIndex: 1,
    members,
    entries: members.map((_, i) => ({
      oldRingId: { rep: i === 0 ? 1 : 0, seq: i === 0 ? 4 : 0 },
      aru: i === 0 ? 40 : 0,
      highDelivered: i === 0 ? 38 : 0,
      receivedFlg: i === 0,
    })),
    ...overrides,
  };
}

function range(from: number, count: number, step = 1): number[] {
  return Array.from({ length: count }, (_, i) => from + i * step);
}

function roundTrip(msg: TotemMsg): void {
  const bytes = encodeFrame(msg);
  const decoded = decodeFrame(bytes);
  assert.ok(decoded.ok, `rejected: ${JSON.stringify(decoded)}`);
  assert.deepEqual(decoded.value, msg);
  assert.deepEqual(encodeFrame(decoded.value), bytes);
}

function expectReject(bytes: Uint8Array, reason: RejectReason): void {
  const decoded = decodeFrame(bytes);
  assert.equal(decoded.ok, false, `accepted ${decoded.ok && decoded.value}`);
  if (!decoded.ok) assert.equal(decoded.reason, reason, decoded.detail);
}

/** Copy of `bytes` with `patch` applied (offset -> byte). */
function patched(
  bytes: Uint8Array,
  patch: Record<number, number>,
): Uint8Array {
  const out = bytes.slice();
  for (const [offset, value] of Object.entries(patch)) out[+offset] = value;
  return out;
}

function withU32(bytes: Uint8Array, offset: number, v: number): Uint8Array {
  const out = bytes.slice();
  new DataView(out.buffer).setUint32(offset, v, true);
  return out;
}

function withU16(bytes: Uint8Array, offset: number, v: number): Uint8Array {
  const out = bytes.slice();
  new DataView(out.buffer).setUint16(offset, v, true);
  return out;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// ---------------------------------------------------------------------------
// Round trips

Deno.test("encodeFrame() pins the header and mcast layout", () => {
  const bytes = encodeMcast(
    0x0403_0201,
    { rep: 7, seq: 0x1_0000_0002 },
    0xffff_fffe,
    "safe",
    true,
    new Uint8Array([0xaa, 0xbb]),
  );
  assert.equal(
    hex(bytes),
    "c75d" + "01" + "01" + "03" + "000000" + "01020304" + "07000000" +
      "0200000001000000" + "feffffff" + "02000000" + "aabb",
  );
  assert.equal(HEADER_BYTES, 24);
  assert.equal(MCAST_HEADER_BYTES, 32);
  assert.equal(bytes[0] | (bytes[1] << 8), FRAME_MAGIC);
  assert.equal(bytes[2], FRAME_VERSION);
});

Deno.test("encodeFrame() round-trips tokens with edge values", () => {
  roundTrip(token());
  roundTrip(token({ retransFlg: true }));
  roundTrip(
    token({
      sender: U32_MAX,
      ringId: { rep: U32_MAX, seq: MAX_SAFE },
      tokenSeq: U32_MAX,
      seq: U32_MAX,
      aru: U32_MAX,
      aruAddr: 0,
      fcc: U32_MAX,
      backlog: U32_MAX,
      rtr: range(0, RTR_ENTRIES_MAX).map((i) => ({
        ringId: { rep: i === 0 ? 0 : U32_MAX - i, seq: MAX_SAFE - i },
        seq: U32_MAX - i,
      })),
    }),
  );
  roundTrip(token({ ringId: { rep: 0, seq: 0 }, seq: 0, aru: 0 }));
});

Deno.test("encodeFrame() round-trips mcasts of every flag combination", () => {
  for (const encapsulated of [false, true]) {
    for (const guarantee of ["agreed", "safe"] as const) {
      roundTrip(mcast({ encapsulated, guarantee }));
    }
  }
  roundTrip(mcast({ payload: new Uint8Array(0), seq: 0 }));
  roundTrip(
    mcast({
      seq: U32_MAX,
      ringId: { rep: U32_MAX, seq: MAX_SAFE },
      payload: new Uint8Array(65_000).fill(0x5a),
    }),
  );
});

Deno.test("encodeFrame() round-trips joins including full and empty sets", () => {
  roundTrip(join());
  roundTrip(join({ leave: true, procSet: [], failSet: [] }));
  roundTrip(
    join({
      ringId: { rep: 1, seq: MAX_SAFE },
      procSet: range(1, PROCESSOR_COUNT_MAX),
      failSet: range(U32_MAX - PROCESSOR_COUNT_MAX + 1, PROCESSOR_COUNT_MAX),
    }),
  );
});

Deno.test("encodeFrame() round-trips commit tokens with 1 and 384 members", () => {
  roundTrip(commit());
  roundTrip(commit({ retransFlg: true, membIndex: 3 }));
  roundTrip(commit({ members: [9], membIndex: 0 }));
  const members = range(1, PROCESSOR_COUNT_MAX, 11);
  roundTrip({
    ...commit({ members }),
    tokenSeq: U32_MAX,
    membIndex: PROCESSOR_COUNT_MAX,
    entries: members.map((m) => ({
      oldRingId: { rep: m, seq: MAX_SAFE },
      aru: U32_MAX,
      highDelivered: U32_MAX - 1,
      receivedFlg: m % 2 === 0,
    })),
  });
});

Deno.test("encodeFrame() round-trips merge_detect and token_hold_cancel", () => {
  for (const type of ["merge_detect", "token_hold_cancel"] as const) {
    const msg: TotemMsg = { type, sender: 3, ringId: { rep: 3, seq: 12 } };
    roundTrip(msg);
    assert.equal(encodeFrame(msg).length, HEADER_BYTES);
  }
});

Deno.test("encodeMcast() writes the same bytes as encodeFrame()", () => {
  const msg = mcast({ guarantee: "safe", encapsulated: true, seq: 77 });
  assert.deepEqual(
    encodeMcast(msg.sender, msg.ringId, 77, "safe", true, msg.payload),
    encodeFrame(msg),
  );
});

Deno.test("decodeFrame() returns the mcast payload without copying", () => {
  const bytes = encodeFrame(mcast({ payload: new Uint8Array([9, 8, 7]) }));
  const decoded = decodeFrame(bytes);
  assert.ok(decoded.ok && decoded.value.type === "mcast");
  assert.equal(decoded.value.payload.buffer, bytes.buffer);
  assert.equal(decoded.value.payload.byteOffset, MCAST_HEADER_BYTES);
});

Deno.test("decodeFrame() reads frames that sit at an offset in a larger buffer", () => {
  const frames = [token({ rtr: [{ ringId: RING, seq: 5 }] }), join(), commit()];
  for (const msg of frames) {
    const inner = encodeFrame(msg);
    const outer = new Uint8Array(inner.length + 13).fill(0xee);
    outer.set(inner, 5);
    const decoded = decodeFrame(outer.subarray(5, 5 + inner.length));
    assert.ok(decoded.ok);
    assert.deepEqual(decoded.value, msg);
  }
});

Deno.test("decodeFrame() opens an encapsulated mcast whose payload is a frame", () => {
  const old = mcast({ ringId: { rep: 1, seq: 4 }, seq: 17 });
  const outer = mcast({
    ringId: { rep: 1, seq: 8 },
    encapsulated: true,
    payload: encodeFrame(old),
  });
  const decoded = decodeFrame(encodeFrame(outer));
  assert.ok(decoded.ok && decoded.value.type === "mcast");
  const inner = decodeFrame(decoded.value.payload);
  assert.ok(inner.ok);
  assert.deepEqual(inner.value, old);
});

Deno.test("peekType() names well-formed headers and refuses the rest", () => {
  assert.equal(peekType(encodeFrame(token())), "token");
  assert.equal(peekType(encodeFrame(mcast())), "mcast");
  assert.equal(peekType(encodeFrame(join())), "join");
  assert.equal(peekType(encodeFrame(commit())), "commit");
  assert.equal(peekType(new Uint8Array(3)), null);
  const bytes = encodeFrame(join());
  assert.equal(peekType(patched(bytes, { 0: 0 })), null);
  assert.equal(peekType(patched(bytes, { 2: 2 })), null);
  assert.equal(peekType(patched(bytes, { 3: 6 })), null);
  assert.equal(peekType(bytes.subarray(0, HEADER_BYTES - 1)), null);
});

// ---------------------------------------------------------------------------
// Encoder assertions (our own bugs)

Deno.test("encodeFrame() asserts message invariants", () => {
  const bad: [string, TotemMsg][] = [
    ["sender 0", join({ sender: 0 })],
    ["sender over u32", mcast({ sender: 2 ** 32 })],
    ["ring seq over 2^53", mcast({ ringId: { rep: 1, seq: MAX_SAFE + 1 } })],
    ["negative ring seq", mcast({ ringId: { rep: 1, seq: -4 } })],
    ["fractional seq", mcast({ seq: 1.5 })],
    ["seq over u32", token({ seq: 2 ** 32 })],
    ["negative aru", token({ aru: -1 })],
    [
      "31 rtr entries",
      token({ rtr: range(1, 31).map((seq) => ({ ringId: RING, seq })) }),
    ],
    ["unsorted procSet", join({ procSet: [2, 1] })],
    ["duplicate failSet", join({ failSet: [3, 3] })],
    ["nodeid 0 in procSet", join({ procSet: [0, 1] })],
    ["385 procSet", join({ procSet: range(1, 385) })],
    ["no members", commit({ members: [], entries: [], membIndex: 0 })],
    ["membIndex > n", commit({ membIndex: 4 })],
    ["entries mismatch", { ...commit(), entries: [] }],
    ["unsorted members", { ...commit(), members: [5, 2, 1] }],
  ];
  for (const [name, msg] of bad) {
    assert.throws(() => encodeFrame(msg), AssertionError, name);
  }
});

// ---------------------------------------------------------------------------
// Rejections

Deno.test("decodeFrame() rejects malformed frames with the right reason", () => {
  const tok = encodeFrame(token({ rtr: [{ ringId: RING, seq: 9 }] }));
  const mc = encodeFrame(mcast());
  const jn = encodeFrame(join());
  const cm = encodeFrame(commit());
  const md = encodeFrame({ type: "merge_detect", sender: 1, ringId: RING });
  const tooManyRtr = withU16(tok, HEADER_BYTES + 24, RTR_ENTRIES_MAX + 1);
  const cases: [string, Uint8Array, RejectReason][] = [
    ["empty", new Uint8Array(0), "truncated"],
    ["3 bytes", mc.subarray(0, 3), "truncated"],
    ["bad magic", patched(mc, { 0: 0x70, 1: 0xc0 }), "bad_magic"],
    ["version 0", patched(mc, { 2: 0 }), "bad_version"],
    ["version 2", patched(mc, { 2: 2 }), "bad_version"],
    ["type 6", patched(mc, { 3: 6 }), "bad_type"],
    ["type 255", patched(mc, { 3: 255 }), "bad_type"],
    ["header cut", mc.subarray(0, HEADER_BYTES - 1), "truncated"],
    ["reserved byte", patched(mc, { 6: 1 }), "bad_field"],
    ["sender 0", withU32(mc, 8, 0), "bad_field"],
    ["ring seq 2^53", withU32(mc, 20, 0x20_0000), "bad_field"],
    ["mcast flag bit2", patched(mc, { 4: 4 }), "bad_field"],
    ["mcast fields cut", mc.subarray(0, MCAST_HEADER_BYTES - 1), "truncated"],
    ["mcast payload cut", mc.subarray(0, mc.length - 1), "truncated"],
    ["mcast length huge", withU32(mc, 28, U32_MAX), "truncated"],
    ["mcast trailing", concat(mc, new Uint8Array(1)), "trailing_bytes"],
    ["mcast length short", withU32(mc, 28, 2), "trailing_bytes"],
    ["token flag bit1", patched(tok, { 4: 2 }), "bad_field"],
    ["token fields cut", tok.subarray(0, HEADER_BYTES + 25), "truncated"],
    ["token rtr cut", tok.subarray(0, tok.length - 1), "truncated"],
    ["token trailing", concat(tok, new Uint8Array(16)), "trailing_bytes"],
    ["token rtr count 31", tooManyRtr, "too_many_entries"],
    ["token rtr count 65535", withU16(tok, 48, 0xffff), "too_many_entries"],
    ["token rtr count low", withU16(tok, 48, 0), "trailing_bytes"],
    ["rtr ring seq 2^53", withU32(tok, 58, 0x20_0000), "bad_field"],
    ["join flag bit1", patched(jn, { 4: 2 }), "bad_field"],
    ["join counts cut", jn.subarray(0, HEADER_BYTES + 3), "truncated"],
    ["join sets cut", jn.subarray(0, jn.length - 4), "truncated"],
    ["join trailing", concat(jn, new Uint8Array(4)), "trailing_bytes"],
    ["join 385 procs", withU16(jn, 24, 385), "too_many_entries"],
    ["join 385 fails", withU16(jn, 26, 385), "too_many_entries"],
    ["join proc 0", withU32(jn, 28, 0), "bad_field"],
    ["join proc unsorted", withU32(jn, 28, 5), "bad_field"],
    ["join proc duplicate", withU32(jn, 32, 1), "bad_field"],
    ["join fail 0", withU32(jn, 40, 0), "bad_field"],
    ["commit flag bit7", patched(cm, { 4: 0x80 }), "bad_field"],
    ["commit fields cut", cm.subarray(0, HEADER_BYTES + 9), "truncated"],
    ["commit entries cut", cm.subarray(0, cm.length - 1), "truncated"],
    ["commit trailing", concat(cm, new Uint8Array(1)), "trailing_bytes"],
    ["commit 385 members", withU16(cm, 32, 385), "too_many_entries"],
    [
      "commit 0 members",
      withU16(cm.subarray(0, HEADER_BYTES + 10), 32, 0),
      "bad_field",
    ],
    ["commit membIndex > n", withU32(cm, 28, 4), "bad_field"],
    ["commit membIndex huge", withU32(cm, 28, U32_MAX), "bad_field"],
    ["commit member 0", withU32(cm, 34, 0), "bad_field"],
    ["commit members unsorted", withU32(cm, 38, 9), "bad_field"],
    ["commit receivedFlg 2", patched(cm, { [46 + 20]: 2 }), "bad_field"],
    ["commit old seq 2^53", withU32(cm, 46 + 8, 0x20_0000), "bad_field"],
    ["merge_detect flags", patched(md, { 4: 1 }), "bad_field"],
    ["merge_detect trailing", concat(md, new Uint8Array(1)), "trailing_bytes"],
  ];
  for (const [name, bytes, reason] of cases) {
    const decoded = decodeFrame(bytes);
    assert.equal(decoded.ok, false, `${name}: accepted`);
    if (!decoded.ok) {
      assert.equal(decoded.reason, reason, `${name}: ${decoded.detail}`);
      assert.ok(decoded.detail, `${name}: no detail`);
    }
  }
});

Deno.test("decodeFrame() rejects truncated tokens at every length", () => {
  const bytes = encodeFrame(
    token({ rtr: range(1, 3).map((seq) => ({ ringId: RING, seq })) }),
  );
  for (let n = 0; n < bytes.length; n++) {
    expectReject(bytes.subarray(0, n), "truncated");
  }
});

Deno.test("decodeFrame() rejects truncated joins and commits at every length", () => {
  for (const msg of [join(), commit()]) {
    const bytes = encodeFrame(msg);
    for (let n = 0; n < bytes.length; n++) {
      expectReject(bytes.subarray(0, n), "truncated");
    }
  }
});

// ---------------------------------------------------------------------------
// Fuzzing: never throw; accept only what re-encodes to the same bytes

function randomIds(rng: Prng, max: number): number[] {
  const count = rng.chance(0.1) ? max : rng.int(Math.min(max, 8) + 1);
  const ids = new Set<number>();
  while (ids.size < count) {
    ids.add(rng.chance(0.5) ? 1 + rng.int(16) : 1 + rng.int(U32_MAX));
  }
  return [...ids].sort((a, b) => a - b);
}

function randomRing(rng: Prng): RingId {
  const seq = rng.pick([0, 4, MAX_SAFE, rng.nextU32() * 2 ** 21 + rng.int(8)]);
  return { rep: rng.pick([0, 1, rng.nextU32()]), seq: Math.min(seq, MAX_SAFE) };
}

function randomU32(rng: Prng): number {
  return rng.pick([0, 1, U32_MAX, 0x8000_0000, rng.nextU32()]);
}

function randomMsg(rng: Prng): TotemMsg {
  const sender = 1 + rng.int(U32_MAX);
  const ringId = randomRing(rng);
  switch (rng.int(6)) {
    case 0:
      return {
        type: "token",
        sender,
        ringId,
        tokenSeq: randomU32(rng),
        seq: randomU32(rng),
        aru: randomU32(rng),
        aruAddr: randomU32(rng),
        fcc: randomU32(rng),
        backlog: randomU32(rng),
        retransFlg: rng.chance(0.5),
        rtr: range(0, rng.int(RTR_ENTRIES_MAX + 1)).map(() => ({
          ringId: randomRing(rng),
          seq: randomU32(rng),
        })),
      };
    case 1: {
      const payload = new Uint8Array(rng.int(64));
      for (let i = 0; i < payload.length; i++) payload[i] = rng.int(256);
      return {
        type: "mcast",
        sender,
        ringId,
        seq: randomU32(rng),
        encapsulated: rng.chance(0.5),
        guarantee: rng.chance(0.5) ? "safe" : "agreed",
        payload,
      };
    }
    case 2:
      return { type: "merge_detect", sender, ringId };
    case 3:
      return {
        type: "join",
        sender,
        ringId,
        leave: rng.chance(0.5),
        procSet: randomIds(rng, PROCESSOR_COUNT_MAX),
        failSet: randomIds(rng, 4),
      };
    case 4: {
      const members = randomIds(rng, 12);
      if (members.length === 0) members.push(1);
      return {
        type: "commit",
        sender,
        ringId,
        tokenSeq: randomU32(rng),
        retransFlg: rng.chance(0.5),
        membIndex: rng.int(members.length + 1),
        members,
        entries: members.map(() => ({
          oldRingId: randomRing(rng),
          aru: randomU32(rng),
          highDelivered: randomU32(rng),
          receivedFlg: rng.chance(0.5),
        })),
      };
    }
    default:
      return { type: "token_hold_cancel", sender, ringId };
  }
}

function mutate(rng: Prng, frame: Uint8Array): Uint8Array {
  switch (rng.int(5)) {
    case 0: { // flip 1 to 3 bits
      const out = frame.slice();
      for (let k = 1 + rng.int(3); k > 0; k--) {
        out[rng.int(out.length)] ^= 1 << rng.int(8);
      }
      return out;
    }
    case 1: // truncate
      return frame.slice(0, rng.int(frame.length));
    case 2: { // extend with random bytes
      const out = new Uint8Array(frame.length + 1 + rng.int(32));
      out.set(frame);
      for (let i = frame.length; i < out.length; i++) out[i] = rng.int(256);
      return out;
    }
    case 3: { // overwrite one byte
      const out = frame.slice();
      out[rng.int(out.length)] = rng.int(256);
      return out;
    }
    default: { // set a count-sized field to an extreme value
      const out = frame.slice();
      const at = HEADER_BYTES + rng.int(Math.max(1, out.length - HEADER_BYTES));
      const view = new DataView(out.buffer);
      if (at + 2 <= out.length) {
        view.setUint16(at, rng.pick([0, 1, 30, 31, 384, 385, 0xffff]), true);
      }
      return out;
    }
  }
}

/** Decodes without throwing; accepted frames must re-encode identically. */
function checkDecode(bytes: Uint8Array, context: string): RejectReason | "ok" {
  const decoded = decodeFrame(bytes);
  if (!decoded.ok) return decoded.reason;
  const again = encodeFrame(decoded.value);
  assert.equal(hex(again), hex(bytes), `${context}: not canonical`);
  return "ok";
}

Deno.test("decodeFrame() never throws on 20k random byte strings", () => {
  const rng = new Prng(0xc0de_0001);
  const seen = new Map<string, number>();
  for (let i = 0; i < 20_000; i++) {
    const bytes = new Uint8Array(rng.int(rng.chance(0.8) ? 64 : 600));
    for (let j = 0; j < bytes.length; j++) bytes[j] = rng.int(256);
    // Give most strings a plausible header so fuzzing reaches the bodies.
    if (bytes.length >= 8 && rng.chance(0.7)) {
      bytes[0] = FRAME_MAGIC & 0xff;
      bytes[1] = FRAME_MAGIC >> 8;
      bytes[2] = FRAME_VERSION;
      bytes[3] = rng.int(7);
      bytes[4] = rng.int(4);
      bytes[5] = bytes[6] = bytes[7] = 0;
      if (bytes.length >= 24) bytes[23] = bytes[22] = 0;
    }
    const result = checkDecode(bytes, `random string ${i}`);
    seen.set(result, (seen.get(result) ?? 0) + 1);
  }
  for (const reason of ["ok", "truncated", "bad_magic", "bad_type"]) {
    assert.ok(seen.has(reason), `never saw ${reason}: ${[...seen]}`);
  }
});

Deno.test("decodeFrame() never throws on 20k mutations of valid frames", () => {
  const rng = new Prng(0xc0de_0002);
  const frames = range(0, 200).map(() => {
    const msg = randomMsg(rng);
    const bytes = encodeFrame(msg);
    const decoded = decodeFrame(bytes);
    assert.ok(
      decoded.ok,
      `valid ${msg.type} rejected: ${JSON.stringify(decoded)}`,
    );
    assert.deepEqual(decoded.value, msg);
    return bytes;
  });
  const seen = new Map<string, number>();
  for (let i = 0; i < 20_000; i++) {
    const frame = rng.pick(frames);
    const result = checkDecode(mutate(rng, frame), `mutation ${i}`);
    seen.set(result, (seen.get(result) ?? 0) + 1);
  }
  const expected: (RejectReason | "ok")[] = [
    "ok",
    "truncated",
    "bad_magic",
    "bad_version",
    "bad_type",
    "bad_field",
    "too_many_entries",
    "trailing_bytes",
  ];
  for (const reason of expected) {
    assert.ok(seen.has(reason), `never saw ${reason}: ${[...seen]}`);
  }
});
