import assert from "node:assert/strict";
import { Prng } from "../../src/lib/prng.ts";
import { resolveTotemConfig } from "../../src/totem/config.ts";
import { Srp } from "../../src/totem/srp.ts";
import { MiniNet } from "./totem/_mini_net.ts";

const FAST = { tokenMs: 1000, consensusMs: 1200 };

function srp(): Srp {
  return new Srp({
    nodeId: 1,
    nodes: [1, 2],
    config: resolveTotemConfig(FAST, 2),
    rng: new Prng(1),
    storedRingSeq: null,
  });
}

Deno.test("Srp.reconfigure() arms the next timers with the new values", () => {
  const s = srp();
  s.reconfigure(resolveTotemConfig({ ...FAST, consensusMs: 4321 }, 2));
  assert.equal(s.config.consensusMs, 4321);
  const arms = s.step({ type: "start" }, 0).filter((a) => a.type === "arm");
  assert.ok(
    arms.some((a) => a.timer === "consensus" && a.afterMs === 4321),
    JSON.stringify(arms),
  );
});

Deno.test("Srp.reconfigure() refuses a netmtu change", () => {
  const s = srp();
  assert.throws(
    () => s.reconfigure(resolveTotemConfig({ ...FAST, netmtu: 9000 }, 2)),
    /netmtu cannot change at runtime/,
  );
  assert.equal(s.config.netmtu, 1500);
});

Deno.test("Srp.reconfigure() refuses an invalid configuration", () => {
  const s = srp();
  assert.throws(
    () => s.reconfigure({ ...s.config, consensusMs: 10, joinMs: 50 }),
    /totem\.consensus \(10 ms\) must be at least totem\.join/,
  );
  assert.equal(s.config.consensusMs, 1200);
});

Deno.test("Srp.setNodes() lets a node added at runtime join, and a removed one leave", () => {
  const net = new MiniNet([1, 2, 3], FAST);
  net.run(5000);
  // Node 4 runs with the new nodelist; the others are reloaded to it.
  net.ids.push(4);
  for (const id of [1, 2, 3]) net.nodes.get(id)!.srp.setNodes(net.ids);
  net.boot(4);
  net.run(20_000);
  for (const [id, n] of net.nodes) {
    assert.equal(n.srp.state, "operational", `node ${id}`);
    assert.deepEqual(n.srp.members, [1, 2, 3, 4], `node ${id}`);
  }
  // Node 4 stops; the nodelist is reloaded without it.
  net.crash(4);
  net.ids.pop();
  for (const id of [1, 2, 3]) net.nodes.get(id)!.srp.setNodes(net.ids);
  net.run(40_000);
  for (const id of [1, 2, 3]) {
    const n = net.nodes.get(id)!;
    assert.equal(n.srp.state, "operational", `node ${id}`);
    assert.deepEqual(n.srp.members, [1, 2, 3], `node ${id}`);
  }
});

Deno.test("Srp without setNodes() keeps a node outside the nodelist out", () => {
  // Without the reload, nodes 1..3 refuse node 4's frames.
  const net = new MiniNet([1, 2, 3], FAST);
  net.run(5000);
  net.ids.push(4);
  net.boot(4);
  net.run(20_000);
  for (const id of [1, 2, 3]) {
    assert.deepEqual(net.nodes.get(id)!.srp.members, [1, 2, 3]);
  }
});
