import assert from "node:assert/strict";
import {
  CPG_REQUEST_FN,
  type CpgCallback,
  type CpgRequest,
  decodeCpgCallback,
  decodeCpgRequest,
  decodeIterationItem,
  decodeMembership,
  decodeU32,
  encodeCpgCallback,
  encodeCpgRequest,
  encodeIterationItem,
  encodeMembership,
  encodeU32,
  requestFn,
} from "../../../../engines/cpg/ipc.ts";
import {
  CPG_GROUP_NAME_BYTES_MAX,
  CPG_MESSAGE_FN,
  type CpgMessage,
  type CpgMessageName,
  CpgReason,
  decodeCpgMessage,
  encodeCpgMessage,
} from "../../../../engines/cpg/wire.ts";
import { Prng } from "../../../../src/lib/prng.ts";

const NAMES = Object.keys(CPG_MESSAGE_FN) as CpgMessageName[];
const LONG = "g".repeat(CPG_GROUP_NAME_BYTES_MAX);

const MESSAGES: CpgMessage[] = [
  { type: "procjoin", pid: 1, reason: CpgReason.JOIN, group: "a" },
  { type: "procjoin", pid: 0xffff_ffff, reason: CpgReason.JOIN, group: LONG },
  { type: "procleave", pid: 7, reason: CpgReason.PROCDOWN, group: "grüße" },
  {
    type: "mcast",
    pid: 9,
    guarantee: "agreed",
    group: "a",
    message: new Uint8Array(),
  },
  {
    type: "mcast",
    pid: 9,
    guarantee: "safe",
    group: "b",
    message: new Uint8Array([0, 1, 2, 255]),
  },
  { type: "joinlist", ringId: { rep: 1, seq: 4 }, entries: [] },
  {
    type: "joinlist",
    ringId: { rep: 2, seq: 2 ** 40 },
    entries: [{ pid: 1, group: "a" }, { pid: 2, group: LONG }],
  },
  { type: "downlist", ringId: { rep: 3, seq: 8 }, oldMembers: 5, left: [4, 5] },
  { type: "downlist", ringId: { rep: 3, seq: 8 }, oldMembers: 0, left: [] },
];

const REQUESTS: CpgRequest[] = [
  { fn: "join", flags: 1, group: "alpha" },
  { fn: "leave" },
  { fn: "mcast", guarantee: "safe", message: new Uint8Array([5, 6]) },
  { fn: "mcast", guarantee: "agreed", message: new Uint8Array() },
  { fn: "membership_get", group: LONG },
  { fn: "local_get" },
  { fn: "iteration_initialize", iterationType: 3, group: null },
  { fn: "iteration_initialize", iterationType: 2, group: "x" },
  { fn: "iteration_next", handle: 4 },
  { fn: "iteration_finalize", handle: 0xffff_ffff },
];

const CALLBACKS: CpgCallback[] = [
  {
    kind: "deliver",
    group: "a",
    nodeId: 1,
    pid: 2,
    message: new Uint8Array([1, 2, 3]),
  },
  {
    kind: "confchg",
    group: "a",
    members: [{ nodeId: 1, pid: 2 }, { nodeId: 3, pid: 4 }],
    left: [{ nodeId: 5, pid: 6, reason: CpgReason.NODEDOWN }],
    joined: [{ nodeId: 3, pid: 4, reason: CpgReason.JOIN }],
  },
  { kind: "confchg", group: LONG, members: [], left: [], joined: [] },
  { kind: "totem_confchg", ringId: { rep: 1, seq: 12 }, members: [1, 2, 3] },
];

function mutate(rng: Prng, bytes: Uint8Array): Uint8Array {
  const out = bytes.slice();
  const r = rng.float();
  if (r < 0.4 && out.length > 0) {
    out[rng.int(out.length)] = rng.int(256);
    return out;
  }
  if (r < 0.7) return out.subarray(0, rng.int(out.length + 1));
  const longer = new Uint8Array(out.length + 1 + rng.int(4));
  longer.set(out);
  return longer;
}

function random(rng: Prng, max: number): Uint8Array {
  const out = new Uint8Array(rng.int(max + 1));
  for (let i = 0; i < out.length; i++) out[i] = rng.int(256);
  return out;
}

Deno.test("encodeCpgMessage() round trips every ordered message", () => {
  for (const m of MESSAGES) {
    const d = decodeCpgMessage(m.type, encodeCpgMessage(m));
    assert.ok(d.ok, JSON.stringify(d));
    assert.deepEqual(JSON.stringify(d.value), JSON.stringify(m));
  }
});

Deno.test("decodeCpgMessage() rejects bad reasons, guarantees, names, node ids and trailing bytes", () => {
  const join = encodeCpgMessage(MESSAGES[0]);
  const badReason = join.slice();
  badReason[4] = 9;
  assert.equal(decodeCpgMessage("procjoin", badReason).ok, false);
  const mcast = encodeCpgMessage(MESSAGES[4]);
  const badGuarantee = mcast.slice();
  badGuarantee[4] = 2;
  assert.equal(decodeCpgMessage("mcast", badGuarantee).ok, false);
  const emptyName = new Uint8Array([1, 0, 0, 0, 1, 0, 0, 0, 0, 0]);
  assert.equal(decodeCpgMessage("procjoin", emptyName).ok, false);
  const down = encodeCpgMessage({
    type: "downlist",
    ringId: { rep: 1, seq: 4 },
    oldMembers: 1,
    left: [7],
  });
  down.fill(0, down.length - 4);
  assert.equal(decodeCpgMessage("downlist", down).ok, false);
  const trailing = new Uint8Array(join.length + 1);
  trailing.set(join);
  assert.deepEqual(decodeCpgMessage("procjoin", trailing).ok, false);
  // A joinlist claiming more entries than its bytes can hold.
  const jl = encodeCpgMessage(MESSAGES[5]);
  new DataView(jl.buffer).setUint32(12, 1000, true);
  const d = decodeCpgMessage("joinlist", jl);
  assert.ok(!d.ok && d.reason === "truncated");
});

Deno.test("CPG IPC codecs round trip requests, replies and callbacks", () => {
  for (const r of REQUESTS) {
    const d = decodeCpgRequest(requestFn(r), encodeCpgRequest(r));
    assert.ok(d.ok, JSON.stringify(r));
    assert.deepEqual(JSON.stringify(d.value), JSON.stringify(r));
  }
  for (const c of CALLBACKS) {
    const d = decodeCpgCallback(encodeCpgCallback(c));
    assert.ok(d.ok);
    assert.deepEqual(JSON.stringify(d.value), JSON.stringify(c));
  }
  const members = [{ nodeId: 1, pid: 2 }, { nodeId: 9, pid: 0 }];
  assert.deepEqual(decodeMembership(encodeMembership(members)), {
    ok: true,
    value: members,
  });
  const item = { group: "a", nodeId: 3, pid: 4 };
  assert.deepEqual(decodeIterationItem(encodeIterationItem(item)), {
    ok: true,
    value: item,
  });
  assert.deepEqual(decodeU32(encodeU32(77)), { ok: true, value: 77 });
  assert.equal(decodeCpgRequest(99, new Uint8Array()).ok, false);
  assert.equal(
    decodeCpgRequest(CPG_REQUEST_FN.iteration_initialize, new Uint8Array([4]))
      .ok,
    false,
  );
});

Deno.test("CPG decoders never throw on random or mutated bytes", () => {
  const rng = new Prng(11);
  const encodedMessages = MESSAGES.map((m) =>
    [m.type, encodeCpgMessage(m)] as const
  );
  const encodedRequests = REQUESTS.map((r) =>
    [requestFn(r), encodeCpgRequest(r)] as const
  );
  const encodedCallbacks = CALLBACKS.map(encodeCpgCallback);
  for (let i = 0; i < 30_000; i++) {
    const [type, base] = rng.pick(encodedMessages);
    const bytes = i % 3 === 0 ? random(rng, 64) : mutate(rng, base);
    const name = i % 2 === 0 ? type : rng.pick(NAMES);
    const d = decodeCpgMessage(name, bytes);
    // Whatever decodes re-encodes to a message that decodes the same.
    if (d.ok) {
      assert.deepEqual(decodeCpgMessage(name, encodeCpgMessage(d.value)), d);
    }
    const [fn, req] = rng.pick(encodedRequests);
    decodeCpgRequest(rng.chance(0.8) ? fn : rng.int(12), mutate(rng, req));
    decodeCpgCallback(
      i % 3 === 0 ? random(rng, 64) : mutate(rng, rng.pick(encodedCallbacks)),
    );
    decodeMembership(random(rng, 24));
    decodeIterationItem(random(rng, 24));
  }
});
