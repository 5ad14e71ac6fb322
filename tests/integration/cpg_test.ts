// CPG through real daemons: clients on every node in one group see the same
// messages in the same order, and the same membership changes with reasons.
import { assert, assertEquals } from "./_assert.ts";
import { TestCluster, waitFor } from "./_cluster.ts";
import { CpgClient, type CpgEvent } from "../../src/client/cpg.ts";

const OPTS = { sanitizeResources: false, sanitizeOps: false };

interface Member {
  node: number;
  index: number;
  client: CpgClient;
  events: CpgEvent[];
}

async function connect(
  c: TestCluster,
  node: number,
  index: number,
): Promise<Member> {
  const events: CpgEvent[] = [];
  const client = await CpgClient.initialize({
    socketPath: `${c.node(node).dir}/denosync.sock`,
    pid: 1000 + index,
    onEvent: (e) => events.push(e),
  });
  return { node, index, client, events };
}

function deliveries(m: Member): string[] {
  return m.events.filter((e) => e.type === "deliver").map((e) =>
    e.type === "deliver" ? new TextDecoder().decode(e.message) : ""
  );
}

function confchgs(m: Member): string[] {
  return m.events.filter((e) => e.type === "confchg").map((e) =>
    e.type === "confchg"
      ? `members ${e.members.map((p) => p.nodeId).join(",")} left ${
        e.left.map((p) => `${p.nodeId}:${p.reason}`).join(",")
      } joined ${e.joined.map((p) => `${p.nodeId}:${p.reason}`).join(",")}`
      : ""
  );
}

function lastMembers(m: Member): number {
  const last = m.events.filter((e) => e.type === "confchg").at(-1);
  return last?.type === "confchg" ? last.members.length : 0;
}

Deno.test({
  ...OPTS,
  name:
    "cpg: 3 daemons x 2 clients x 1000 messages, one order everywhere; PROCDOWN and NODEDOWN",
  fn: async () => {
    const c = await TestCluster.create({ nodes: 3 });
    const members: Member[] = [];
    try {
      for (const id of [1, 2, 3]) c.start(id);
      await c.waitRing([1, 2, 3]);
      for (const node of [1, 2, 3]) {
        for (const index of [0, 1]) {
          const m = await waitFor(
            () => connect(c, node, index).catch(() => undefined),
            { timeoutMs: 5000, what: `client on node ${node}` },
          );
          members.push(m);
        }
      }
      for (const m of members) await m.client.join("itest");
      await waitFor(() => members.every((m) => lastMembers(m) === 6), {
        timeoutMs: 10_000,
        what: "every client sees 6 members",
      });

      const perClient = 1000;
      await Promise.all(members.map(async (m) => {
        for (let i = 0; i < perClient; i++) {
          await m.client.mcastRetry(
            new TextEncoder().encode(`${m.node}.${m.index}.${i}`),
          );
        }
      }));
      const total = perClient * members.length;
      await waitFor(() => members.every((m) => deliveries(m).length >= total), {
        timeoutMs: 60_000,
        what: `${total} deliveries at every client`,
      });
      const reference = deliveries(members[0]);
      assertEquals(reference.length, total);
      assertEquals(new Set(reference).size, total, "no duplicates");
      for (const m of members) {
        assertEquals(deliveries(m), reference, `client ${m.node}.${m.index}`);
      }
      // FIFO per sender and own messages included.
      for (const m of members) {
        const mine = reference.filter((s) =>
          s.startsWith(`${m.node}.${m.index}.`)
        );
        assertEquals(
          mine,
          Array.from(
            { length: perClient },
            (_, i) => `${m.node}.${m.index}.${i}`,
          ),
        );
      }

      // A client goes away: the others see PROCDOWN for it.
      const gone = members.splice(1, 1)[0];
      await gone.client.finalize();
      await waitFor(() => members.every((m) => lastMembers(m) === 5), {
        timeoutMs: 10_000,
        what: "PROCDOWN seen by every client",
      });
      for (const m of members) {
        assert(
          confchgs(m).at(-1)!.includes(`left 1:procdown`),
          confchgs(m).at(-1),
        );
      }

      // A node dies: the others see NODEDOWN for its two clients.
      await c.kill(3, "SIGKILL");
      const alive = members.filter((m) => m.node !== 3);
      await waitFor(() => alive.every((m) => lastMembers(m) === 3), {
        timeoutMs: 15_000,
        what: "NODEDOWN seen by every client",
      });
      for (const m of alive) {
        const last = confchgs(m).at(-1)!;
        assert(last.includes("3:nodedown,3:nodedown"), last);
      }
      const seq = confchgs(alive[0]);
      for (const m of alive) {
        assertEquals(
          confchgs(m).slice(-2),
          seq.slice(-2),
          `confchg sequence at ${m.node}.${m.index}`,
        );
      }
    } finally {
      for (const m of members) await m.client.finalize().catch(() => {});
      await c.stop();
    }
  },
});
