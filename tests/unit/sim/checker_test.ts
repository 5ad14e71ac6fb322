// EVS checker over hand-made histories: each property E1–E12 and L1 must be
// detected when broken, and correct histories must pass.
import {
  deepStrictEqual as assertEquals,
  ok as assert,
} from "node:assert/strict";
import { checkHistory, type Property } from "../../../src/sim/checker.ts";
import {
  type History,
  HistoryRecorder,
  type StorageFate,
} from "../../../src/sim/history.ts";
import type { NodeId } from "../../../src/totem/types.ts";

type Ring = [rep: number, seq: number];

/** Small DSL over HistoryRecorder: time advances by 1 ms per entry. */
class Builder {
  rec: HistoryRecorder;
  t = 0;
  quietStartMs: number | null = null;
  l1DeadlineMs: number | null = null;

  constructor(readonly nodes: NodeId[]) {
    this.rec = new HistoryRecorder(nodes);
  }

  start(n: NodeId, inc = 1, storage: StorageFate = "fresh"): this {
    this.rec.record(n, ++this.t, {
      kind: "start",
      inc,
      storage,
      storedRingSeq: null,
    });
    return this;
  }
  crash(n: NodeId): this {
    this.rec.record(n, ++this.t, { kind: "crash" });
    return this;
  }
  submit(
    n: NodeId,
    msg: string,
    guarantee: "agreed" | "safe" = "agreed",
  ): this {
    this.rec.record(n, ++this.t, { kind: "submit", msg, guarantee });
    return this;
  }
  trans(n: NodeId, ring: Ring, members: NodeId[], left: NodeId[] = []): this {
    this.rec.record(n, ++this.t, {
      kind: "confchg",
      type: "TRANS",
      ringId: { rep: ring[0], seq: ring[1] },
      members,
      left,
      joined: [],
    });
    return this;
  }
  reg(n: NodeId, ring: Ring, members: NodeId[], joined: NodeId[] = []): this {
    this.rec.record(n, ++this.t, {
      kind: "confchg",
      type: "REG",
      ringId: { rep: ring[0], seq: ring[1] },
      members,
      left: [],
      joined,
    });
    return this;
  }
  /** First ring after start: empty TRANS then REG with everybody joined. */
  form(n: NodeId, ring: Ring, members: NodeId[]): this {
    return this.trans(n, ring, []).reg(n, ring, members, members);
  }
  deliver(n: NodeId, msg: string, ring: Ring, seq: number, safe = false): this {
    this.rec.record(n, ++this.t, {
      kind: "deliver",
      msg,
      sender: Number(msg.split("/")[0]),
      ringId: { rep: ring[0], seq: ring[1] },
      seq,
      safe,
    });
    return this;
  }
  /** Delivers `msgs` (seq from `firstSeq`) at every node in `at`. */
  deliverAll(
    at: NodeId[],
    msgs: string[],
    ring: Ring,
    firstSeq = 1,
    safe = false,
  ): this {
    for (const n of at) {
      msgs.forEach((m, k) => this.deliver(n, m, ring, firstSeq + k, safe));
    }
    return this;
  }
  state(n: NodeId, to: "gather" | "operational"): this {
    this.rec.record(n, ++this.t, {
      kind: "state",
      from: to === "gather" ? "operational" : "recovery",
      to,
      reason: to === "gather" ? "token_lost" : "recovery_done",
    });
    return this;
  }
  history(): History {
    return this.rec.toHistory({
      seqnoStart: 0,
      quietStartMs: this.quietStartMs,
      l1DeadlineMs: this.l1DeadlineMs,
      endMs: this.t + 1,
    });
  }
}

const R1: Ring = [1, 4];
const R2: Ring = [1, 8];

/** Three nodes form ring 1.4 and deliver 1/1/1, 2/1/1, 3/1/1 in order. */
function healthy(): Builder {
  const b = new Builder([1, 2, 3]);
  for (const n of [1, 2, 3]) {
    b.start(n).form(n, R1, [1, 2, 3]).state(n, "operational");
  }
  b.submit(1, "1/1/1").submit(2, "2/1/1").submit(3, "3/1/1");
  b.deliverAll([1, 2, 3], ["1/1/1", "2/1/1", "3/1/1"], R1);
  return b;
}

function props(h: History, eventual = true): Property[] {
  return [...new Set(checkHistory(h, { eventual }).map((v) => v.property))];
}

function assertDetects(h: History, p: Property, eventual = true): void {
  const found = checkHistory(h, { eventual });
  assert(
    found.some((v) => v.property === p),
    `expected ${p}, got ${
      JSON.stringify(found.map((v) => `${v.property}: ${v.message}`))
    }`,
  );
}

Deno.test("checkHistory() accepts a healthy three-node run", () => {
  assertEquals(checkHistory(healthy().history()), []);
});

Deno.test("checkHistory() accepts a partition with transitional filtering and a merge", () => {
  const b = healthy();
  // Node 3 is cut off: 1 and 2 lost 3's message 3/1/2 (seq 4); 3 delivered
  // it in its own TRANS; 1 and 2 skip the gap and deliver 1/1/2 (seq 5, a
  // sender in T) in TRANS, but not 3/1/3 (seq 6, sender not in T).
  b.submit(3, "3/1/2").submit(1, "1/1/2").submit(3, "3/1/3");
  b.deliver(3, "3/1/2", R1, 4);
  for (const n of [1, 2]) {
    b.state(n, "gather").trans(n, R2, [1, 2], [3]).deliver(n, "1/1/2", R1, 5);
    b.reg(n, R2, [1, 2]).state(n, "operational");
  }
  const R3: Ring = [3, 8];
  b.state(3, "gather").trans(3, R3, [3], [1, 2]).deliver(3, "3/1/3", R1, 6).reg(
    3,
    R3,
    [3],
  ).state(3, "operational");
  // 3 never got 1/1/2 (it is gone with the partition), so no E9 trouble for 1.
  // Merge into ring 1.12 with everybody.
  const R4: Ring = [1, 12];
  for (const n of [1, 2]) {
    b.state(n, "gather").trans(n, R4, [1, 2], []).reg(n, R4, [1, 2, 3], [3])
      .state(n, "operational");
  }
  b.state(3, "gather").trans(3, R4, [3], []).reg(3, R4, [1, 2, 3], [1, 2])
    .state(3, "operational");
  b.submit(2, "2/1/2").deliverAll([1, 2, 3], ["2/1/2"], R4);
  b.quietStartMs = b.t - 10;
  b.l1DeadlineMs = b.t + 10;
  assertEquals(checkHistory(b.history()), []);
});

Deno.test("checkHistory() accepts a crash and restart that appears as left then joined", () => {
  const b = healthy();
  b.crash(3);
  for (const n of [1, 2]) {
    b.state(n, "gather").trans(n, R2, [1, 2], [3]).reg(n, R2, [1, 2]).state(
      n,
      "operational",
    );
  }
  b.start(3, 2, "kept");
  const R3: Ring = [1, 12];
  for (const n of [1, 2]) {
    b.state(n, "gather").trans(n, R3, [1, 2]).reg(n, R3, [1, 2, 3], [3]).state(
      n,
      "operational",
    );
  }
  b.form(3, R3, [1, 2, 3]).state(3, "operational");
  b.submit(3, "3/2/1").deliverAll([1, 2, 3], ["3/2/1"], R3);
  assertEquals(checkHistory(b.history()), []);
});

Deno.test("checkHistory() excuses a ring id reused after stable storage was lost", () => {
  const b = healthy();
  b.crash(1).start(1, 2, "lost");
  // The amnesiac node 1 re-forms ring 1.4, now alone.
  b.form(1, R1, [1]).state(1, "operational");
  b.submit(1, "1/2/1").deliver(1, "1/2/1", R1, 1);
  assertEquals(checkHistory(b.history(), { eventual: false }), []);
});

Deno.test("checkHistory() detects E1: one ring id with two member sets", () => {
  const b = new Builder([1, 2, 3]);
  b.start(1).form(1, R1, [1, 2, 3]).start(2).form(2, R1, [1, 2]);
  assertDetects(b.history(), "E1", false);
});

Deno.test("checkHistory() detects E1: ring seq going back in one incarnation", () => {
  const b = new Builder([1]);
  b.start(1).form(1, R2, [1]).trans(1, R1, [1]).reg(1, R1, [1]);
  assertDetects(b.history(), "E1", false);
});

Deno.test("checkHistory() detects E2: REG without the node itself", () => {
  const b = new Builder([1, 2]);
  b.start(1).trans(1, R1, []).reg(1, R1, [2], [2]);
  assertDetects(b.history(), "E2", false);
});

Deno.test("checkHistory() detects E2: later TRANS without the node itself", () => {
  const b = new Builder([1, 2]);
  b.start(1).form(1, R1, [1, 2]).trans(1, R2, [2], [1]).reg(1, R2, [1, 2]);
  assertDetects(b.history(), "E2", false);
});

Deno.test("checkHistory() detects E3: REG without TRANS, wrong left, TRANS ring id", () => {
  const noTrans = new Builder([1]);
  noTrans.start(1).reg(1, R1, [1], [1]);
  assertDetects(noTrans.history(), "E3", false);

  const wrongLeft = new Builder([1, 2]);
  wrongLeft.start(1).form(1, R1, [1, 2]).trans(1, R2, [1], []).reg(1, R2, [1]);
  assertDetects(wrongLeft.history(), "E3", false);

  const wrongRing = new Builder([1]);
  wrongRing.start(1).trans(1, R2, []).reg(1, R1, [1], [1]);
  assertDetects(wrongRing.history(), "E3", false);

  const wrongJoined = new Builder([1, 2]);
  wrongJoined.start(1).trans(1, R1, []).reg(1, R1, [1, 2], [1]);
  assertDetects(wrongJoined.history(), "E3", false);
});

Deno.test("checkHistory() detects E4: a message delivered twice, or never submitted", () => {
  const twice = healthy();
  twice.deliver(2, "1/1/1", R1, 4);
  assertDetects(twice.history(), "E4");

  const invented = healthy();
  invented.deliverAll([1, 2, 3], ["2/1/9"], R1, 4);
  assertDetects(invented.history(), "E4");
});

Deno.test("checkHistory() detects E5: one message in two configurations", () => {
  const b = new Builder([1, 2]);
  b.start(1).form(1, R1, [1]).start(2).form(2, [2, 4], [2]);
  b.submit(1, "1/1/1");
  b.deliver(1, "1/1/1", R1, 1).deliver(2, "1/1/1", [2, 4], 1);
  assertDetects(b.history(), "E5", false);
});

Deno.test("checkHistory() detects E5: delivery in a segment of another ring", () => {
  const b = healthy();
  b.submit(1, "1/1/2").deliver(1, "1/1/2", R2, 4);
  assertDetects(b.history(), "E5", false);
});

Deno.test("checkHistory() detects E6: opposite orders and conflicting seqs", () => {
  const b = new Builder([1, 2]);
  for (const n of [1, 2]) b.start(n).form(n, R1, [1, 2]);
  b.submit(1, "1/1/1").submit(2, "2/1/1");
  b.deliver(1, "1/1/1", R1, 1).deliver(1, "2/1/1", R1, 2);
  b.deliver(2, "2/1/1", R1, 1).deliver(2, "1/1/1", R1, 2);
  assertDetects(b.history(), "E6", false);
});

Deno.test("checkHistory() detects E6: descending seqs at one node", () => {
  const b = new Builder([1]);
  b.start(1).form(1, R1, [1]).submit(1, "1/1/1").submit(1, "1/1/2");
  b.deliver(1, "1/1/2", R1, 2).deliver(1, "1/1/1", R1, 1);
  assertDetects(b.history(), "E6", false);
});

Deno.test("checkHistory() detects E7: REG sequences that are not prefixes", () => {
  const b = new Builder([1, 2]);
  for (const n of [1, 2]) b.start(n).form(n, R1, [1, 2]);
  b.submit(1, "1/1/1").submit(1, "1/1/2").submit(2, "2/1/1");
  b.deliver(1, "1/1/1", R1, 1).deliver(1, "1/1/2", R1, 2);
  b.deliver(2, "1/1/1", R1, 1).deliver(2, "2/1/1", R1, 3);
  assertDetects(b.history(), "E7", false);
});

Deno.test("checkHistory() detects E8: same transition, different transitional deliveries", () => {
  const b = new Builder([1, 2, 3]);
  for (const n of [1, 2, 3]) b.start(n).form(n, R1, [1, 2, 3]);
  b.submit(2, "2/1/1").submit(1, "1/1/1");
  b.deliverAll([1, 2, 3], ["2/1/1"], R1);
  b.crash(3);
  // Both move from 1.4 to 1.8 with T = {1, 2}, but only node 1 delivers 1/1/1.
  b.trans(1, R2, [1, 2], [3]).deliver(1, "1/1/1", R1, 2).reg(1, R2, [1, 2]);
  b.trans(2, R2, [1, 2], [3]).reg(2, R2, [1, 2]);
  assertDetects(b.history(), "E8", false);
});

Deno.test("checkHistory() detects E9: an accepted message never delivered to its live sender", () => {
  const b = healthy();
  b.submit(2, "2/1/2");
  assertDetects(b.history(), "E9");
  // A crashed sender is excused.
  b.crash(2);
  assertEquals(props(b.history()), []);
});

Deno.test("checkHistory() detects E10: FIFO broken", () => {
  const b = new Builder([1, 2]);
  for (const n of [1, 2]) b.start(n).form(n, R1, [1, 2]);
  b.submit(1, "1/1/1").submit(1, "1/1/2");
  b.deliver(1, "1/1/2", R1, 1).deliver(1, "1/1/1", R1, 2);
  b.deliver(2, "1/1/2", R1, 1).deliver(2, "1/1/1", R1, 2);
  assertDetects(b.history(), "E10", false);
});

Deno.test("checkHistory() detects E10: causal order broken", () => {
  const b = new Builder([1, 2, 3]);
  for (const n of [1, 2, 3]) b.start(n).form(n, R1, [1, 2, 3]);
  b.submit(1, "1/1/1");
  b.deliver(2, "1/1/1", R1, 1);
  b.submit(2, "2/1/1"); // 2 sends after delivering 1/1/1
  b.deliver(3, "2/1/1", R1, 2).deliver(3, "1/1/1", R1, 1);
  assertDetects(b.history(), "E10", false);
});

Deno.test("checkHistory() detects E11: safe message missing at a live member", () => {
  const b = healthy();
  b.submit(1, "1/1/2", "safe");
  b.deliver(1, "1/1/2", R1, 4, true).deliver(2, "1/1/2", R1, 4, true);
  assertDetects(b.history(), "E11");
  // If the member that missed it crashed, it is excused.
  b.crash(3);
  assertEquals(props(b.history()), []);
});

Deno.test("checkHistory() detects E11: safe message of a TRANS missing at a member of T", () => {
  const b = healthy();
  b.submit(1, "1/1/2", "safe");
  b.crash(3);
  b.trans(1, R2, [1, 2], [3]).deliver(1, "1/1/2", R1, 4, true).reg(1, R2, [
    1,
    2,
  ]);
  b.trans(2, R2, [1, 2], [3]).reg(2, R2, [1, 2]);
  const found = props(b.history());
  assert(found.includes("E11"), JSON.stringify(found));
});

Deno.test("checkHistory() detects E12: a departed sender's message after a gap", () => {
  const b = healthy();
  b.submit(3, "3/1/2").submit(3, "3/1/3");
  b.crash(3);
  // Seq 4 (3/1/2) is missing at 1 and 2; delivering seq 5 from 3 ∉ T breaks E12.
  for (const n of [1, 2]) {
    b.trans(n, R2, [1, 2], [3]).deliver(n, "3/1/3", R1, 5).reg(n, R2, [1, 2]);
  }
  assertDetects(b.history(), "E12", false);
});

Deno.test("checkHistory() detects L1: live nodes in different rings at the end", () => {
  const b = healthy();
  for (const n of [1, 2]) {
    b.state(n, "gather").trans(n, R2, [1, 2], [3]).reg(n, R2, [1, 2]).state(
      n,
      "operational",
    );
  }
  b.quietStartMs = 0;
  b.l1DeadlineMs = b.t + 100;
  assertDetects(b.history(), "L1");
});

Deno.test("checkHistory() detects L1: final ring installed after the deadline, or not operational", () => {
  const late = healthy();
  late.quietStartMs = 0;
  late.l1DeadlineMs = 1;
  assertDetects(late.history(), "L1");

  const stuck = healthy();
  stuck.state(2, "gather");
  stuck.quietStartMs = 0;
  stuck.l1DeadlineMs = stuck.t + 100;
  assertDetects(stuck.history(), "L1");
});

Deno.test("checkHistory() caps the report per property", () => {
  const b = healthy();
  for (let k = 2; k < 20; k++) b.submit(2, `2/1/${k}`);
  const e9 = checkHistory(b.history(), { maxPerProperty: 3, eventual: true })
    .filter((v) => v.property === "E9");
  assertEquals(e9.length, 3);
  assert(e9[2].message.includes("and 15 more"));
});
