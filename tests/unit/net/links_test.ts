import assert from "node:assert/strict";
import { AssertionError } from "../../../src/lib/assert.ts";
import {
  type LinkChange,
  type LinkMode,
  LinkTable,
  type LinkTableOptions,
  PINGS_PENDING_MAX,
} from "../../../src/net/links.ts";

const INTERVAL = 100;
const TIMEOUT = 300;

function table(options: Partial<LinkTableOptions> = {}): LinkTable {
  return new LinkTable({
    nodeId: 1,
    peers: [{ nodeId: 2, links: [0, 1] }, { nodeId: 3, links: [0, 1] }],
    linkMode: "passive",
    pingIntervalMs: INTERVAL,
    pingTimeoutMs: TIMEOUT,
    ...options,
  });
}

/** Pings at `nowMs` and answers every ping of the listed pairs at once. */
function beat(
  t: LinkTable,
  nowMs: number,
  answer: (nodeId: number, link: number) => boolean = () => true,
): LinkChange[] {
  const { pings, changes } = t.tick(nowMs);
  for (const p of pings) {
    if (!answer(p.nodeId, p.link)) continue;
    const { change } = t.pong(p.nodeId, p.link, p.seq, nowMs + 1);
    if (change !== null) changes.push(change);
  }
  return changes;
}

Deno.test("LinkTable.tick() pings every (peer, link) with growing seqs", () => {
  const t = table();
  const first = t.tick(0).pings;
  assert.deepEqual(first.map((p) => [p.nodeId, p.link, p.seq]), [
    [2, 0, 0],
    [2, 1, 0],
    [3, 0, 0],
    [3, 1, 0],
  ]);
  assert.deepEqual(t.tick(INTERVAL).pings.map((p) => p.seq), [1, 1, 1, 1]);
});

Deno.test("LinkTable.pong() brings a link up and records the RTT", () => {
  const t = table();
  const ping = t.tick(1000).pings.find((p) => p.nodeId === 2 && p.link === 1)!;
  assert.equal(t.isUp(2, 1), false);
  const result = t.pong(2, 1, ping.seq, 1007);
  assert.deepEqual(result, {
    accepted: true,
    change: { nodeId: 2, link: 1, up: true, reason: "pong" },
  });
  assert.equal(t.isUp(2, 1), true);
  assert.equal(t.isUp(2, 0), false);
  const s = t.snapshot().find((x) => x.nodeId === 2 && x.link === 1)!;
  assert.equal(s.rttMs, 7);
  assert.equal(s.upCount, 1);
  assert.equal(s.pongsReceived, 1);
  // A second pong on an up link changes nothing.
  const again = t.tick(1100).pings.find((p) => p.nodeId === 2 && p.link === 1)!;
  assert.deepEqual(t.pong(2, 1, again.seq, 1102), {
    accepted: true,
    change: null,
  });
});

Deno.test("LinkTable.pong() ignores unknown, late and duplicate seqs", () => {
  const t = table();
  const seqs = [0, 1, 2].map((i) => t.tick(i * INTERVAL).pings[0].seq);
  assert.equal(t.pong(2, 0, 99, 250).accepted, false); // never sent
  assert.equal(t.pong(2, 0, seqs[1], 250).accepted, true);
  assert.equal(t.pong(2, 0, seqs[1], 251).accepted, false); // duplicate
  assert.equal(t.pong(2, 0, seqs[0], 252).accepted, false); // older than one answered
  assert.equal(t.pong(9, 0, seqs[2], 252).accepted, false); // unknown peer
  assert.equal(t.pong(2, 5, seqs[2], 252).accepted, false); // unknown link
});

Deno.test("LinkTable remembers only the last PINGS_PENDING_MAX pings", () => {
  const t = table({ peers: [{ nodeId: 2, links: [0] }] });
  const seqs: number[] = [];
  for (let i = 0; i <= PINGS_PENDING_MAX; i++) {
    seqs.push(t.tick(i * 10).pings[0].seq);
  }
  assert.equal(t.pong(2, 0, seqs[0], 1000).accepted, false);
  assert.equal(t.pong(2, 0, seqs[1], 1000).accepted, true);
});

Deno.test("LinkTable.tick() takes a link down after pingTimeoutMs of silence", () => {
  const t = table();
  assert.equal(beat(t, 0).length, 4);
  // Pongs keep stopping on link 0 of node 2 only.
  const dead = (n: number, l: number) => !(n === 2 && l === 0);
  assert.deepEqual(beat(t, 100, dead), []);
  assert.deepEqual(beat(t, 200, dead), []);
  // Last heard at 1 ms: down once 300 ms have passed.
  assert.deepEqual(beat(t, 300, dead), []);
  assert.deepEqual(beat(t, 301, dead), [
    { nodeId: 2, link: 0, up: false, reason: "timeout" },
  ]);
  assert.equal(t.isUp(2, 0), false);
  assert.equal(t.isUp(2, 1), true);
  assert.equal(t.snapshot()[0].downCount, 1);
  // It comes back with the next pong.
  assert.deepEqual(beat(t, 400), [
    { nodeId: 2, link: 0, up: true, reason: "pong" },
  ]);
});

Deno.test("LinkTable.tick() does not count a stall of our own as the peers' silence", () => {
  const t = table();
  assert.equal(beat(t, 0).length, 4);
  const none = () => false;
  // The process did not run for 2 s: the step comes 1.9 s late.
  assert.deepEqual(beat(t, 2000, none), []);
  assert.equal(t.stalls, 1);
  assert.equal(t.isUp(2, 0), true);
  // From then on, real silence counts again: down a timeout later.
  assert.deepEqual(beat(t, 2100, none), []);
  assert.deepEqual(beat(t, 2200, none), []);
  const down = beat(t, 2300, none);
  assert.equal(down.length, 4);
  assert.ok(down.every((c) => !c.up && c.reason === "timeout"));
  assert.equal(t.stalls, 1, "on-time steps are no stall");
});

Deno.test("LinkTable.received() counts as liveness but never brings a link up", () => {
  const t = table({ peers: [{ nodeId: 2, links: [0] }] });
  assert.equal(t.received(2, 0, 100, 0), true);
  assert.equal(t.isUp(2, 0), false);
  beat(t, 0);
  assert.equal(t.isUp(2, 0), true);
  // No pongs after 0, but data keeps arriving.
  for (let now = 100; now <= 1000; now += 100) {
    t.received(2, 0, 100, now - 50);
    assert.deepEqual(t.tick(now).changes, []);
  }
  assert.equal(t.isUp(2, 0), true);
  // Last heard at 950: still up at 1200, down at 1300.
  assert.deepEqual(t.tick(1100).changes, []);
  assert.deepEqual(t.tick(1200).changes, []);
  assert.deepEqual(t.tick(1300).changes, [
    { nodeId: 2, link: 0, up: false, reason: "timeout" },
  ]);
  assert.equal(t.received(2, 1, 10, 0), false); // not configured
  assert.equal(t.received(7, 0, 10, 0), false);
  const s = t.snapshot()[0];
  assert.equal(s.rxPackets, 11);
  assert.equal(s.rxBytes, 1100);
});

Deno.test("LinkTable with pongCount needs consecutive pongs to come up", () => {
  const t = table({ peers: [{ nodeId: 2, links: [0] }], pongCount: 3 });
  assert.deepEqual(beat(t, 0), []);
  assert.deepEqual(beat(t, 100), []);
  // A gap longer than the timeout restarts the count.
  t.tick(200);
  t.tick(300);
  assert.deepEqual(beat(t, 450), []);
  assert.deepEqual(beat(t, 550), []);
  assert.deepEqual(beat(t, 650), [
    { nodeId: 2, link: 0, up: true, reason: "pong" },
  ]);
});

Deno.test("LinkTable.route() sends on every configured link while none is up", () => {
  for (const linkMode of ["passive", "active", "rr"] as LinkMode[]) {
    const t = table({ linkMode, peers: [{ nodeId: 2, links: [2, 0, 1] }] });
    assert.deepEqual(t.route(2), [0, 1, 2], linkMode);
    assert.deepEqual(t.route(2), [0, 1, 2], linkMode);
    assert.deepEqual(t.route(5), [], `${linkMode}: unknown peer`);
  }
});

Deno.test("LinkTable.route() in passive mode prefers the highest priority, ties to the lower link", () => {
  const t = table({
    peers: [{ nodeId: 2, links: [0, 1, 2] }],
    linkPriorities: [1, 5, 5],
  });
  beat(t, 0);
  assert.deepEqual(t.route(2), [1]);
  assert.deepEqual(t.route(2), [1]);
  // Link 1 dies: fail over to link 2 (same priority), then to link 0.
  const without = (dead: number[]) => (_n: number, l: number) =>
    !dead.includes(l);
  beat(t, 100, without([1]));
  beat(t, 200, without([1]));
  beat(t, 302, without([1]));
  assert.equal(t.isUp(2, 1), false);
  assert.deepEqual(t.route(2), [2]);
  for (const now of [400, 500, 604]) beat(t, now, without([1, 2]));
  assert.equal(t.isUp(2, 2), false);
  assert.deepEqual(t.route(2), [0]);
  // Link 1 recovers: traffic goes back to it.
  beat(t, 700);
  assert.deepEqual(t.route(2), [1]);
});

Deno.test("LinkTable.route() uses default priority 1 for unlisted links", () => {
  const t = table({
    peers: [{ nodeId: 2, links: [0, 1] }],
    linkPriorities: [0],
  });
  beat(t, 0);
  assert.deepEqual(t.route(2), [1]);
});

Deno.test("LinkTable.route() in active mode uses every up link", () => {
  const t = table({
    linkMode: "active",
    peers: [{ nodeId: 2, links: [0, 1] }],
  });
  beat(t, 0, (_n, l) => l === 1);
  assert.deepEqual(t.route(2), [1]);
  beat(t, 100);
  assert.deepEqual(t.route(2), [0, 1]);
});

Deno.test("LinkTable.route() in rr mode rotates over the up links", () => {
  const t = table({
    linkMode: "rr",
    peers: [{ nodeId: 2, links: [0, 1, 2] }, { nodeId: 3, links: [0, 1] }],
  });
  beat(t, 0, (_n, l) => l !== 2);
  assert.deepEqual([1, 2, 3, 4].map(() => t.route(2)), [[0], [1], [0], [1]]);
  // Each peer has its own position.
  assert.deepEqual(t.route(3), [0]);
});

Deno.test("LinkTable.routeAll() picks multicast links usable by some peer", () => {
  const peers = [{ nodeId: 2, links: [0, 1] }, { nodeId: 3, links: [0, 1] }];
  const passive = table({ peers, linkPriorities: [1, 2] });
  assert.deepEqual(passive.routeAll(), [0, 1]);
  beat(passive, 0, (n, l) => n === 3 && l === 0);
  assert.deepEqual(passive.routeAll(), [0]);
  beat(passive, 100);
  assert.deepEqual(passive.routeAll(), [1]);

  const active = table({ peers, linkMode: "active" });
  beat(active, 0, (n, l) => n === 2 && l === 1);
  assert.deepEqual(active.routeAll(), [1]);

  const rr = table({ peers, linkMode: "rr" });
  beat(rr, 0);
  assert.deepEqual([rr.routeAll(), rr.routeAll(), rr.routeAll()], [
    [0],
    [1],
    [0],
  ]);
  assert.deepEqual(table({ peers: [] }).routeAll(), []);
  assert.deepEqual(rr.peersOn(1), [2, 3]);
});

Deno.test("LinkTable.sent() and snapshot() count traffic per (peer, link)", () => {
  const t = table();
  t.sent(3, 1, 40);
  t.sent(3, 1, 60);
  t.sent(8, 1, 60); // unknown: ignored
  const s = t.snapshot();
  assert.deepEqual(s.map((x) => [x.nodeId, x.link]), [
    [2, 0],
    [2, 1],
    [3, 0],
    [3, 1],
  ]);
  assert.equal(s[3].txPackets, 2);
  assert.equal(s[3].txBytes, 100);
  assert.equal(s[0].rttMs, undefined);
  assert.equal(s[0].lastHeardMs, undefined);
});

Deno.test("new LinkTable() refuses bad options", () => {
  assert.throws(() => table({ pingTimeoutMs: INTERVAL }), AssertionError);
  assert.throws(() => table({ pingIntervalMs: 0 }), AssertionError);
  assert.throws(() => table({ pongCount: 0 }), AssertionError);
  assert.throws(
    () => table({ peers: [{ nodeId: 1, links: [0] }] }),
    AssertionError,
  );
  assert.throws(
    () =>
      table({ peers: [{ nodeId: 2, links: [0] }, { nodeId: 2, links: [1] }] }),
    AssertionError,
  );
});
