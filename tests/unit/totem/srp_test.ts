import { MiniNet } from "./_mini_net.ts";

function eq(a: unknown, b: unknown, msg = ""): void {
  const x = JSON.stringify(a), y = JSON.stringify(b);
  if (x !== y) throw new Error(`${msg}: ${x} !== ${y}`);
}

const FAST = { tokenMs: 1000, consensusMs: 1200 };

Deno.test("Srp forms one ring of three nodes", () => {
  const net = new MiniNet([1, 2, 3], FAST);
  net.run(5000);
  for (const [id, n] of net.nodes) {
    eq(n.srp.state, "operational", `node ${id}`);
    eq(n.srp.members, [1, 2, 3], `node ${id}`);
  }
});

Deno.test("Srp delivers the same sequence everywhere", () => {
  const net = new MiniNet([1, 2, 3], FAST);
  net.run(5000);
  for (let i = 0; i < 100; i++) {
    net.send(1 + (i % 3), new Uint8Array([i]));
  }
  net.run(10000);
  const seqs = [...net.nodes.values()].map((n) =>
    n.delivered.map((d) => d.payload[0])
  );
  eq(seqs[0].length, 100, "count");
  eq(seqs[1], seqs[0], "node 2");
  eq(seqs[2], seqs[0], "node 3");
});

Deno.test("Srp re-forms without a crashed node and takes it back after restart", () => {
  const net = new MiniNet([1, 2, 3], FAST);
  net.run(5000);
  net.crash(1);
  net.run(10000);
  for (const id of [2, 3]) {
    const n = net.nodes.get(id)!;
    eq(n.srp.state, "operational", `node ${id}`);
    eq(n.srp.members, [2, 3], `node ${id}`);
    const last = n.confchgs.at(-1)!;
    eq(last.kind, "regular");
    const trans = n.confchgs.at(-2)!;
    eq(trans.left, [1], "left");
  }
  net.boot(1);
  net.run(20000);
  for (const [id, n] of net.nodes) {
    eq(n.srp.state, "operational", `node ${id}`);
    eq(n.srp.members, [1, 2, 3], `node ${id}`);
  }
  const r1 = net.nodes.get(1)!.srp.ringId, r2 = net.nodes.get(2)!.srp.ringId;
  eq(r1, r2, "same ring");
});

Deno.test("Srp fails a crashed node its links report unreachable without waiting for consensus", () => {
  for (const failFast of [true, false]) {
    const net = new MiniNet([1, 2, 3], {
      ...FAST,
      unreachableFailsFast: failFast,
    });
    net.run(5000);
    // The effective timers (token grows with token_coefficient).
    const { tokenMs, consensusMs } = net.nodes.get(1)!.srp.config;
    const crashAt = net.now;
    net.crash(3);
    // Heartbeats time out before the token does (ping timeout < token).
    net.run(crashAt + 500);
    net.reachability(1, 3, false);
    net.reachability(2, 3, false);
    // Token lost at most tokenMs after the crash; consensus would take
    // another consensusMs to give up on node 3.
    net.run(crashAt + tokenMs + 300);
    for (const id of [1, 2]) {
      const n = net.nodes.get(id)!;
      if (failFast) {
        eq(n.srp.state, "operational", `node ${id}`);
        eq(n.srp.members, [1, 2], `node ${id}`);
      } else {
        eq(n.srp.state, "gather", `node ${id} (Corosync's timing)`);
      }
    }
    net.run(crashAt + tokenMs + consensusMs + 500);
    for (const id of [1, 2]) eq(net.nodes.get(id)!.srp.members, [1, 2]);
  }
});

Deno.test("Srp fails a node that becomes unreachable during GATHER, and takes it back when it returns", () => {
  const net = new MiniNet([1, 2, 3], FAST);
  net.run(5000);
  const crashAt = net.now;
  net.crash(3);
  net.run(crashAt + net.nodes.get(1)!.srp.config.tokenMs + 50);
  eq(net.nodes.get(1)!.srp.state, "gather", "token lost");
  net.reachability(1, 3, false);
  net.run(net.now + 100);
  for (const id of [1, 2]) {
    eq(net.nodes.get(id)!.srp.state, "operational", `node ${id}`);
    eq(net.nodes.get(id)!.srp.members, [1, 2], `node ${id}`);
  }
  // Restarted: its join is evidence enough, before any link comes back up.
  net.boot(3);
  net.run(net.now + 3000);
  for (const [id, n] of net.nodes) {
    eq(n.srp.state, "operational", `node ${id}`);
    eq(n.srp.members, [1, 2, 3], `node ${id}`);
  }
});

Deno.test("Srp ignores unreachability while OPERATIONAL: the token stays the failure detector", () => {
  const net = new MiniNet([1, 2, 3], FAST);
  net.run(5000);
  const ring = net.nodes.get(1)!.srp.ringId;
  net.reachability(1, 3, false);
  net.reachability(2, 3, false);
  net.run(net.now + 5000);
  for (const [id, n] of net.nodes) {
    eq(n.srp.state, "operational", `node ${id}`);
    eq(n.srp.ringId, ring, `node ${id}: same ring`);
  }
});

Deno.test("Srp shutdown lets the others re-form well before the token timeout", () => {
  const net = new MiniNet([1, 2, 3], FAST);
  net.run(5000);
  net.shutdown(2);
  net.run(net.now + 300);
  for (const id of [1, 3]) {
    const n = net.nodes.get(id)!;
    eq(n.srp.state, "operational", `node ${id}`);
    eq(n.srp.members, [1, 3], `node ${id}`);
  }
});

Deno.test("Srp retransmits lost multicasts and keeps order", () => {
  const net = new MiniNet([1, 2, 3], FAST, 7);
  net.run(5000);
  let k = 0;
  net.drop = (_f, _t, bytes) => bytes[3] === 1 && (k++ % 5 === 0);
  for (let i = 0; i < 300; i++) {
    net.send(1 + (i % 3), new Uint8Array([i & 255, i >> 8]));
  }
  net.run(30000);
  const seqs = [...net.nodes.values()].map((n) =>
    n.delivered.map((d) => d.payload[0] | (d.payload[1] << 8))
  );
  eq(seqs[0].length, 300, "count");
  eq(seqs[1], seqs[0], "node 2");
  eq(seqs[2], seqs[0], "node 3");
  const retx = [...net.nodes.values()].reduce(
    (sum, n) => sum + n.srp.stats.mcastRetx,
    0,
  );
  eq(retx > 0, true, "retransmissions happened");
});

Deno.test("Srp delivers safe messages only once every member holds them", () => {
  const net = new MiniNet([1, 2, 3], FAST);
  net.run(5000);
  net.send(1, new Uint8Array([42]), "safe");
  // One token hop later node 1 has sent it, but it is not yet stable.
  net.run(net.now + 3);
  const delivered1 = net.nodes.get(1)!.delivered.length;
  net.run(net.now + 1000);
  for (const n of net.nodes.values()) {
    eq(n.delivered.map((d) => d.payload[0]), [42]);
  }
  eq(delivered1, 0, "not delivered before a full rotation");
});

Deno.test("Srp with a sync barrier holds application frames until sync_done", () => {
  const net = new MiniNet([1, 2, 3], FAST, 3, true);
  net.run(5000);
  net.send(1, new Uint8Array([1]));
  net.send(1, new Uint8Array([2]), "agreed", true);
  net.run(net.now + 500);
  for (const n of net.nodes.values()) {
    eq(n.delivered.map((d) => d.payload[0]), [2], "only the sync frame");
  }
  for (const id of [1, 2, 3]) net.syncDone(id);
  net.run(net.now + 500);
  for (const n of net.nodes.values()) {
    eq(
      n.delivered.map((d) => d.payload[0]),
      [2, 1],
      "then the application frame",
    );
  }
});
