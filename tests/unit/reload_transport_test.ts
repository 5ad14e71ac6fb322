import assert from "node:assert/strict";
import { LinkTable } from "../../src/net/links.ts";
import {
  Transport,
  TransportError,
  type TransportNode,
} from "../../src/net/transport.ts";

// Node n sits on 127.0.0.n, which Linux routes to lo without configuration.

const PING_INTERVAL_MS = 25;
const PING_TIMEOUT_MS = 250;
const WAIT_MS = 5000;
const UTF8 = new TextEncoder();
const TEXT = new TextDecoder();

function table(peers: number[]): LinkTable {
  return new LinkTable({
    nodeId: 1,
    peers: peers.map((nodeId) => ({ nodeId, links: [0, 1] })),
    linkMode: "passive",
    pingIntervalMs: 10,
    pingTimeoutMs: 100,
  });
}

/** Brings every configured link up with one ping/pong round. */
function bringUp(t: LinkTable, nowMs: number): void {
  for (const p of t.tick(nowMs).pings) t.pong(p.nodeId, p.link, p.seq, nowMs);
}

Deno.test("LinkTable.setPeers() keeps surviving links and adds new ones down", () => {
  const t = table([2, 3]);
  bringUp(t, 0);
  const changes = t.setPeers([
    { nodeId: 2, links: [0, 1] },
    { nodeId: 4, links: [0, 1] },
  ]);
  assert.deepEqual(changes, [
    { nodeId: 3, link: 0, up: false, reason: "removed" },
    { nodeId: 3, link: 1, up: false, reason: "removed" },
  ]);
  assert.deepEqual(t.peerIds, [2, 4]);
  assert.equal(t.isUp(2, 0), true);
  assert.equal(t.snapshot().find((s) => s.nodeId === 2)!.upCount, 1);
  assert.equal(t.isUp(4, 0), false);
  assert.equal(t.hasPeer(3), false);
  // The new peer is pinged on the next heartbeat and can come up.
  const pings = t.tick(5).pings.filter((p) => p.nodeId === 4);
  assert.equal(pings.length, 2);
  for (const p of pings) t.pong(4, p.link, p.seq, 5);
  assert.equal(t.isUp(4, 1), true);
  assert.deepEqual(t.route(3), []);
});

Deno.test("LinkTable.setPeers() restarts a reset link from down", () => {
  const t = table([2]);
  bringUp(t, 0);
  const changes = t.setPeers([{ nodeId: 2, links: [0, 1] }], [
    { nodeId: 2, link: 1 },
  ]);
  assert.deepEqual(changes, [
    { nodeId: 2, link: 1, up: false, reason: "removed" },
  ]);
  assert.equal(t.isUp(2, 0), true);
  assert.equal(t.isUp(2, 1), false);
  assert.equal(t.snapshot().find((s) => s.link === 1)!.pingsSent, 0);
});

interface Member {
  nodeId: number;
  transport: Transport;
  frames: { from: number; text: string }[];
  rejects: string[];
}

function nodes(ids: number[]): TransportNode[] {
  return ids.map((nodeId) => ({ nodeId, addrs: [`127.0.0.${nodeId}`] }));
}

/** Opens node `id` with its own view of the nodelist, on `port`. */
async function open(
  id: number,
  view: number[],
  port: number,
): Promise<Member> {
  const m: Member = {
    nodeId: id,
    transport: null as unknown as Transport,
    frames: [],
    rejects: [],
  };
  m.transport = await Transport.open({
    nodeId: id,
    nodes: nodes(view),
    port,
    mode: "udpu",
    linkMode: "passive",
    pingIntervalMs: PING_INTERVAL_MS,
    pingTimeoutMs: PING_TIMEOUT_MS,
    onFrame: (bytes, from) =>
      void m.frames.push({ from, text: TEXT.decode(bytes) }),
    onReject: (reason) => void m.rejects.push(reason),
  });
  return m;
}

/** Opens every node on one free port (each node has its own address). */
async function openAll(views: Record<number, number[]>): Promise<Member[]> {
  for (let attempt = 0;; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const opened: Member[] = [];
    try {
      for (const [id, view] of Object.entries(views)) {
        opened.push(await open(Number(id), view, port));
      }
      return opened;
    } catch (e) {
      for (const m of opened) await m.transport.close();
      const inUse = e instanceof TransportError &&
        e.cause instanceof Deno.errors.AddrInUse;
      if (!inUse || attempt >= 10) throw e;
    }
  }
}

async function waitFor(check: () => boolean, what: string): Promise<void> {
  const end = performance.now() + WAIT_MS;
  while (!check()) {
    if (performance.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function up(m: Member, peer: number): boolean {
  return m.transport.linkStatus().some((l) => l.nodeId === peer && l.connected);
}

Deno.test("Transport.setPeers() adds and removes a peer at runtime", async () => {
  // Nodes 1 and 2 start without node 3; node 3 already lists them.
  const [a, b, c] = await openAll({ 1: [1, 2], 2: [1, 2], 3: [1, 2, 3] });
  try {
    await waitFor(() => up(a, 2) && up(b, 1), "1 <-> 2 up");
    c.transport.send("all", UTF8.encode("before"));
    await waitFor(
      () => a.rejects.includes("net_unlisted_source"),
      "node 3 refused by node 1",
    );
    assert.equal(a.frames.length, 0);

    const upBefore = a.transport.linkStatus().find((l) => l.nodeId === 2)!;
    assert.deepEqual(a.transport.setPeers(nodes([1, 2, 3])), []);
    b.transport.setPeers(nodes([1, 2, 3]));
    assert.deepEqual(a.transport.peerIds, [2, 3]);
    await waitFor(() => up(a, 3) && up(c, 1), "1 <-> 3 up");
    // The link to node 2 was kept as it was: never down, same up count.
    const kept = a.transport.linkStatus().find((l) => l.nodeId === 2)!;
    assert.equal(kept.connected, true);
    assert.equal(kept.upCount, upBefore.upCount);
    assert.equal(kept.downCount, 0);

    c.transport.send("all", UTF8.encode("after"));
    a.transport.send("all", UTF8.encode("to all"));
    await waitFor(
      () =>
        a.frames.some((f) => f.from === 3 && f.text === "after") &&
        c.frames.some((f) => f.from === 1 && f.text === "to all"),
      "frames between 1 and 3",
    );

    // Remove node 3 again: it is reported down and no longer sent to.
    const removed = a.transport.setPeers(nodes([1, 2]));
    assert.deepEqual(removed, [
      { nodeId: 3, link: 0, up: false, reason: "removed" },
    ]);
    assert.deepEqual(a.transport.peerIds, [2]);
    assert.ok(a.transport.linkStatus().every((l) => l.nodeId === 2));
    const heardBy3 = c.frames.length;
    a.transport.send("all", UTF8.encode("without 3"));
    a.transport.send(3, UTF8.encode("direct"));
    await waitFor(
      () => b.frames.some((f) => f.text === "without 3"),
      "frame to node 2",
    );
    assert.equal(a.transport.stats.txDropped.no_route, 1);
    const rejectsBefore = a.rejects.length;
    c.transport.send("all", UTF8.encode("ignored"));
    await waitFor(
      () => a.rejects.length > rejectsBefore,
      "node 3 refused again",
    );
    assert.equal(c.frames.length, heardBy3);
    assert.ok(!a.frames.some((f) => f.text === "ignored"));
  } finally {
    for (const m of [a, b, c]) await m.transport.close();
  }
});

Deno.test("Transport.setPeers() refuses a change of its own address and changes nothing", async () => {
  const [a, b] = await openAll({ 1: [1, 2], 2: [1, 2] });
  try {
    await waitFor(() => up(a, 2), "1 -> 2 up");
    assert.throws(
      () =>
        a.transport.setPeers([
          { nodeId: 1, addrs: ["127.0.0.9"] },
          { nodeId: 2, addrs: ["127.0.0.2"] },
          { nodeId: 3, addrs: ["127.0.0.3"] },
        ]),
      (e: unknown) =>
        e instanceof TransportError &&
        /own link addresses cannot change at runtime/.test(e.message),
    );
    assert.throws(
      () => a.transport.setPeers(nodes([2, 3])),
      /this node \(nodeid 1\) is not in it/,
    );
    assert.deepEqual(a.transport.peerIds, [2]);
    assert.equal(up(a, 2), true);
  } finally {
    for (const m of [a, b]) await m.transport.close();
  }
});

Deno.test("Transport.setPeers() restarts the link of a peer that moved", async () => {
  const [a, b] = await openAll({ 1: [1, 2], 2: [1, 2] });
  try {
    await waitFor(() => up(a, 2), "1 -> 2 up");
    const changes = a.transport.setPeers([
      { nodeId: 1, addrs: ["127.0.0.1"] },
      { nodeId: 2, addrs: ["127.0.0.22"] },
    ]);
    assert.deepEqual(changes, [
      { nodeId: 2, link: 0, up: false, reason: "removed" },
    ]);
    const l = a.transport.linkStatus()[0];
    assert.equal(l.connected, false);
    assert.match(l.dst, /^127\.0\.0\.22:/);
    // Node 2 still sends from its old address, which is no longer its own.
    const before = a.rejects.length;
    b.transport.send(1, UTF8.encode("from the old address"));
    await waitFor(() => a.rejects.length > before, "old address refused");
    assert.ok(a.rejects.slice(before).includes("net_unlisted_source"));
    assert.ok(!a.frames.some((f) => f.text === "from the old address"));
  } finally {
    for (const m of [a, b]) await m.transport.close();
  }
});
