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

Deno.test("orf_token_tx counts every token sent, a held token's release included (sim)", () => {
  // No application traffic: the ring goes idle and the representative
  // (node 1) holds the token, releasing it from its hold timer.
  const s = new Simulation({
    seed: 78,
    nodes: 3,
    durationMs: 20_000,
    app: { intervalMs: 0 },
  });
  s.runUntil(5000);
  const before = [1, 2, 3].map((id) => ({ ...stats(s, id) }));
  s.runUntil(15_000);
  for (const id of [1, 2, 3]) {
    const b = before[id - 1];
    const st = stats(s, id);
    const rx = st.tokensRx - b.tokensRx;
    const tx = st.tokensTx - b.tokensTx;
    const retx = st.tokenRetransmits - b.tokenRetransmits;
    assert(rx > 0, `node ${id}: no tokens on an idle ring`);
    // Every token a node gets it sends on once (for the rep: on its hold
    // timer), plus the resends its retransmit timer made.
    assert(
      tx >= rx - 1 && tx <= rx + 1 + retx,
      `node ${id}: rx ${rx} tx ${tx}`,
    );
    assert(retx <= tx, `node ${id}: retransmits are part of tx`);
  }
  // The ring was idle enough to hold: the rep's releases are retransmits.
  assert(
    stats(s, 1).tokenRetransmits - before[0].tokenRetransmits > 0,
    "the representative never held the token",
  );
});
