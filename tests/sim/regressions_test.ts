// Seeds that once broke the core, kept as regression tests. Each comment
// names the bug the seed found; `deno task sim --seed S --nodes N` replays it.
import {
  deepStrictEqual as assertEquals,
  ok as assert,
} from "node:assert/strict";
import { FAULT_KINDS } from "../../src/sim/faults.ts";
import { simulate } from "../../src/sim/simulate.ts";

const CASES: { seed: number; nodes: number; bug: string }[] = [
  {
    seed: 1,
    nodes: 3,
    bug: "safe threshold taken from RECOVERY tokens of the new ring",
  },
  {
    seed: 17,
    nodes: 3,
    bug:
      "transitional delivery dropped a departed sender's message before any hole",
  },
  {
    seed: 64,
    nodes: 3,
    bug: "frames freed on a retransmitted token copy, before a member had them",
  },
  {
    seed: 187,
    nodes: 3,
    bug: "old-ring frames of a failed recovery discarded, then never delivered",
  },
  {
    seed: 8,
    nodes: 5,
    bug: "join echo storm between nodes whose sets could not change",
  },
  {
    seed: 353,
    nodes: 5,
    bug: "late second-rotation commit token accepted in GATHER",
  },
];

for (const c of CASES) {
  Deno.test(`simulation seed ${c.seed} on ${c.nodes} nodes keeps EVS (${c.bug})`, () => {
    const run = simulate({ seed: c.seed, nodes: c.nodes, faults: FAULT_KINDS });
    const replay =
      `replay: deno task sim --seed ${c.seed} --nodes ${c.nodes} --faults all`;
    assertEquals(
      run.violations.map((v) => `${v.property}: ${v.message}`),
      [],
      replay,
    );
    assert(run.live, `not live at the end; ${replay}`);
  });
}
