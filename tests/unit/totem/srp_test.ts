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
  const seqs = [...net.nodes.values()].map((n) => n.delivered.map((d) => d.payload[0]));
  eq(seqs[0].length, 100, "count");
  eq(seqs[1], seqs[0], "node 2");
  eq(seqs[2], seqs[0], "node 3");
});
