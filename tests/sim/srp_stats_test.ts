// The core's counters (published as cmap stats.srp.*) on the simulator:
// retransmissions counted under injected loss, membership counters, the
// mean token rotation time from the virtual clock, and clearStats().
import {
  deepStrictEqual as assertEquals,
  ok as assert,
} from "node:assert/strict";
import { Simulation } from "../../src/sim/simulate.ts";
import type { SrpStats } from "../../src/totem/srp.ts";

function stats(s: Simulation, id: number): SrpStats {
  const srp = s.host(id).srp;
  assert(srp !== null, `node ${id} is down`);
  return srp.stats;
}

function sum(s: Simulation, field: keyof SrpStats): number {
  return [1, 2, 3].reduce((n, id) => n + stats(s, id)[field], 0);
}

Deno.test("Srp.stats count mcast retransmissions under injected loss (sim)", () => {
  const seed = 4242;
  const s = new Simulation({ seed, nodes: 3, durationMs: 9000 });
  s.runUntil(3000);
  const before = sum(s, "mcastRetx");
  const sentBefore = sum(s, "ordersTx");
  assert(sentBefore > 0, `no application traffic yet (seed ${seed})`);
  s.addRule("mcast-loss", {
    types: ["mcast"],
    lossP: 0.3,
    label: "lose 30% of multicasts",
  });
  s.runUntil(6000);
  s.removeRule("mcast-loss");
  const after = sum(s, "mcastRetx");
  assert(
    after > before,
    `mcastRetx did not grow under loss: ${before} -> ${after} (seed ${seed})`,
  );
  const r = s.run();
  assertEquals(r.violations, [], `replay: deno task sim --seed ${seed}`);
});

Deno.test("Srp.stats count membership frames and the token rotation time (sim)", () => {
  const seed = 77;
  const s = new Simulation({ seed, nodes: 3, durationMs: 4000 });
  s.runUntil(3000);
  for (const id of [1, 2, 3]) {
    const st = stats(s, id);
    assert(st.tokensRx > 0 && st.tokensTx > 0, `node ${id}: no tokens`);
    assert(st.membJoinTx > 0 && st.membJoinRx > 0, `node ${id}: no joins`);
    assert(st.membCommitTokenTx > 0, `node ${id}: no commit token sent`);
    assert(st.membCommitTokenRx > 0, `node ${id}: no commit token received`);
    assert(st.operationalEntered >= 1, `node ${id}: never operational`);
    assert(st.mttRxTokenMs > 0, `node ${id}: no token rotation time`);
    assert(st.lastTokenRxMs > 0 && st.lastTokenRxMs <= 3000);
  }
  const srp = s.host(1).srp!;
  srp.clearStats();
  assertEquals(srp.stats.tokensRx, 0);
  assertEquals(srp.stats.membJoinTx, 0);
  assertEquals(srp.stats.mttRxTokenMs, 0);
  assertEquals(srp.stats.lastTokenRxMs, -1);
  s.runUntil(3500);
  assert(srp.stats.tokensRx > 0, "counting stopped after clearStats()");
});
