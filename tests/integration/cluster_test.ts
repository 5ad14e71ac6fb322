// Real daemons on loopback: ring formation, kill -9, restart, clean leave.
import { assert, assertEquals } from "./_assert.ts";
import { TestCluster } from "./_cluster.ts";
import { CmapClient } from "../../src/client/cmap.ts";

Deno.test({
  name: "three daemons form one ring, survive kill -9 and take the node back",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const c = await TestCluster.create({
      nodes: 3,
      tokenMs: 1000,
      consensusMs: 1200,
    });
    try {
      await c.startRing([1, 2, 3]);
      const t0 = performance.now();
      await c.kill(3, "SIGKILL");
      await c.waitRing([1, 2], 10_000);
      const failoverMs = performance.now() - t0;
      // token + consensus + a margin for process scheduling
      assert(failoverMs < 1000 + 1200 + 2500, `failover took ${failoverMs} ms`);
      const log = c.node(1).log.join("");
      assert(
        /membership: ring \d+\.\d+ members \[1 2\] joined \[-\] left \[3\] reason: token lost/
          .test(log),
        log,
      );
      // With the product's permissions the socket buffer is raised (root:
      // 8 MiB; otherwise up to net.core.rmem_max), never left as it was.
      assert(
        /link 0 unicast 127\.0\.0\.1:\d+: receive buffer \d+\.\d MiB/.test(log),
        log,
      );
      // ...and datagrams leave with libc's sendto (src/net/direct_send.ts).
      assert(/link 0: datagrams sent with sendto/.test(log), log);
      c.start(3);
      const st = await c.waitRing([1, 2, 3]);
      assertEquals(st[0].members, [1, 2, 3]);
    } finally {
      await c.stop();
    }
  },
});

Deno.test({
  name:
    "SIGTERM leaves cleanly: the others re-form well under the token timeout",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const c = await TestCluster.create({
      nodes: 3,
      tokenMs: 3000,
      consensusMs: 3600,
    });
    try {
      await c.startRing([1, 2, 3]);
      const t0 = performance.now();
      const exit = await c.kill(2, "SIGTERM");
      assertEquals(exit.code, 0);
      await c.waitRing([1, 3], 10_000);
      const ms = performance.now() - t0;
      assert(
        ms < 3000,
        `re-formed after ${ms} ms, expected well under the 3000 ms token timeout`,
      );
      const log = c.node(1).log.join("");
      assert(/left \[2\] reason: node left cleanly/.test(log), log);
    } finally {
      await c.stop();
    }
  },
});

Deno.test({
  name:
    "kill -9: the survivors fail the unreachable node without waiting for consensus (and wait with unreachable_fails_fast: no)",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    // Heartbeats time out after token / 2 (1000 ms), before the token does;
    // a consensus timeout this long stands out against either.
    const tokenMs = 2000, consensusMs = 6000;
    for (const failFast of [true, false]) {
      const c = await TestCluster.create({
        nodes: 3,
        tokenMs,
        consensusMs,
        totemExtra: failFast ? "" : "    unreachable_fails_fast: no",
      });
      try {
        await c.startRing([1, 2, 3]);
        await c.waitLinksUp([[1, 3], [2, 3]]);
        const t0 = performance.now();
        await c.kill(3, "SIGKILL");
        await c.waitRing([1, 2], 20_000);
        const failoverMs = performance.now() - t0;
        const log = c.node(1).log.join("");
        const both = log + c.node(2).log.join("");
        if (failFast) {
          assert(
            failoverMs < tokenMs + consensusMs / 2,
            `failover took ${failoverMs} ms:\n${both}`,
          );
          assert(/failing unreachable node\(s\) 3 at once/.test(both), both);
        } else {
          assert(
            failoverMs > tokenMs / 2 + consensusMs,
            `failover took only ${failoverMs} ms:\n${log}`,
          );
          assert(!/failing unreachable/.test(both), both);
        }
        assert(/members \[1 2\] joined \[-\] left \[3\]/.test(log), log);
      } finally {
        await c.stop();
      }
    }
  },
});

Deno.test({
  name:
    "a stopped process (SIGSTOP past the token timeout) does not count its own stall against its links",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const c = await TestCluster.create({
      nodes: 3,
      tokenMs: 1000,
      consensusMs: 1200,
    });
    try {
      await c.startRing([1, 2, 3]);
      await c.waitLinksUp([[3, 1], [3, 2]]);
      const pid = c.node(3).child!.pid;
      Deno.kill(pid, "SIGSTOP");
      try {
        await c.waitRing([1, 2], 10_000);
      } finally {
        Deno.kill(pid, "SIGCONT");
      }
      await c.waitRing([1, 2, 3], 15_000);
      const log = c.node(3).log.join("");
      // Its own stall is no evidence against the others: its links stay up
      // (the others' joins, which fail it, still give it a ring of its own
      // for a moment before the merge, as in Corosync).
      assert(!/failing unreachable/.test(log), log);
      assert(!/link 0 to node [12] is down/.test(log), log);
      const cmap = await CmapClient.initialize({
        socketPath: `${c.node(3).dir}/denosync.sock`,
      });
      try {
        const stalls = await cmap.get("stats.knet.heartbeat_stalls");
        assert(Number(stalls.value) >= 1, `stalls: ${stalls.value}`);
      } finally {
        await cmap.finalize();
      }
    } finally {
      await c.stop();
    }
  },
});

Deno.test({
  name:
    "system.priority sets the daemon's nice value; sched_rr: yes is refused with a warning",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const c = await TestCluster.create({
      nodes: 1,
      systemExtra: "    sched_rr: yes\n    priority: 5",
    });
    try {
      await c.startRing([1]);
      const log = c.node(1).log.join("");
      assert(
        /system.sched_rr: yes is ignored: realtime scheduling/.test(log),
        log,
      );
      assert(/nice 5 \(system.priority\)/.test(log), log);
      // The main thread's stat line: nice is field 19, policy field 41.
      const pid = c.node(1).child!.pid;
      const stat = await Deno.readTextFile(`/proc/${pid}/task/${pid}/stat`);
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      assertEquals([Number(fields[16]), Number(fields[38])], [5, 0], stat);
    } finally {
      await c.stop();
    }
  },
});
