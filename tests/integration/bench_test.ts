// `denosync bench` against a real 3-node cluster: every node sends and
// receives, the JSON report is complete and shows no gaps, duplicates or
// reordering; a missing daemon is a clear not-connected error.
import { assert, assertEquals } from "./_assert.ts";
import { captured } from "./_capture.ts";
import { TestCluster } from "./_cluster.ts";
import { type BenchReport, main as bench } from "../../src/bench/cli.ts";

const OPTS = { sanitizeResources: false, sanitizeOps: false };

function run(args: string[]) {
  return captured(() => bench(args));
}

Deno.test({
  name: "denosync bench: 3 nodes, one and all senders, latency, --json",
  ...OPTS,
  fn: async () => {
    const c = await TestCluster.create({ nodes: 3 });
    try {
      await c.startRing([1, 2, 3]);
      const dirs = [1, 2, 3].flatMap((id) => ["--run-dir", c.node(id).dir]);
      const r = await run([
        ...dirs,
        "--duration",
        "1",
        "--size",
        "64,4000",
        "--latency",
        "50",
        "--json",
      ]);
      assertEquals(r.code, 0, r.err.join("\n"));
      const report = JSON.parse(r.out.join("\n")) as BenchReport;
      assertEquals(report.engine, "denosync");
      assertEquals(report.nodes, [1, 2, 3]);
      assertEquals(
        report.throughput.map((t) => `${t.senders} ${t.size}`),
        ["one 64", "one 4000", "all 64", "all 4000"],
      );
      for (const t of report.throughput) {
        assertEquals(t.receivers.length, 3);
        assertEquals(t.gaps + t.duplicates + t.outOfOrder, 0);
        const accepted = t.sendersResults.reduce((a, s) => a + s.accepted, 0);
        assert(accepted > 0, `${t.senders} ${t.size}: nothing accepted`);
        for (const rx of t.receivers) {
          assertEquals(rx.delivered, accepted);
          assertEquals(rx.bytes, accepted * t.size);
          assert(rx.msgsPerSec > 0);
        }
        assertEquals(t.sendersResults.length, t.senders === "one" ? 1 : 3);
      }
      assertEquals(report.latency?.count, 50);
      assert(report.latency!.p50Ms > 0);
      assert(report.latency!.p50Ms <= report.latency!.p99Ms);
      // Progress went to stderr while it ran.
      assert(r.err.some((l) => l.startsWith("bench: all senders, 4000 B")));

      const gone = await run(["--run-dir", `${c.root}/nowhere`, "--quiet"]);
      assertEquals(gone.code, 3);
      assert(gone.err[0].includes("cannot connect"), gone.err[0]);
      const bad = await run(["--size", "8"]);
      assertEquals(bad.code, 2);
      assert(bad.err[0].includes("got 8"), bad.err[0]);
    } finally {
      await c.stop();
    }
  },
});
