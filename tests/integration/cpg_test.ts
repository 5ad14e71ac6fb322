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
      await c.startRing([1, 2, 3]);
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

async function cpgtool(
  args: string[],
  stdin?: string,
): Promise<{ code: number; out: string; err: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("../../main.ts", import.meta.url).href,
      "cpgtool",
      ...args,
    ],
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const o = await child.output();
  const d = new TextDecoder();
  return { code: o.code, out: d.decode(o.stdout), err: d.decode(o.stderr) };
}

Deno.test({
  ...OPTS,
  name:
    "cpgtool lists groups (text and --json), sends to a group, and says when no daemon runs",
  fn: async () => {
    const c = await TestCluster.create({ nodes: 2 });
    let listener: Member | null = null;
    try {
      c.start(1);
      c.start(2);
      await c.waitRing([1, 2]);
      listener = await waitFor(() => connect(c, 2, 7).catch(() => undefined), {
        timeoutMs: 5000,
        what: "client on node 2",
      });
      await listener.client.join("tools");
      const dir1 = c.node(1).dir;
      const text = await cpgtool(["--run-dir", dir1]);
      assertEquals(text.code, 0, text.err);
      assert(
        /^tools$/m.test(text.out) && /1007\s+2$/m.test(text.out),
        text.out,
      );
      const json = await cpgtool(["--run-dir", dir1, "--json"]);
      assertEquals(JSON.parse(json.out), {
        groups: [{ name: "tools", members: [{ nodeId: 2, pid: 1007 }] }],
      });
      const sent = await cpgtool(
        ["--run-dir", dir1, "send", "tools", "--json"],
        "one\ntwo\n",
      );
      assertEquals(sent.code, 0, sent.err);
      assertEquals(JSON.parse(sent.out), { sent: 2 });
      await waitFor(() => deliveries(listener!).length >= 2, {
        timeoutMs: 5000,
        what: "deliveries",
      });
      assertEquals(deliveries(listener), ["one", "two"]);
      const none = await cpgtool(["--socket", `${c.root}/nothing.sock`]);
      assertEquals(none.code, 3, none.err);
      assert(none.err.includes("nothing.sock"), none.err);
    } finally {
      await listener?.client.finalize().catch(() => {});
      await c.stop();
    }
  },
});

Deno.test({
  ...OPTS,
  name:
    "the daemon survives garbage, truncated, oversized and malformed IPC input and keeps serving",
  fn: async () => {
    const c = await TestCluster.create({ nodes: 2 });
    let good: Member | null = null;
    try {
      c.start(1);
      c.start(2);
      const before = await c.waitRing([1, 2]);
      const path = `${c.node(1).dir}/denosync.sock`;
      await waitFor(() => Deno.stat(path).then(() => true, () => false), {
        timeoutMs: 5000,
        what: "socket",
      });
      const rawSend = async (bytes: Uint8Array, keepOpen = false) => {
        const conn = await Deno.connect({ transport: "unix", path });
        try {
          await conn.write(bytes).catch(() => 0);
          if (keepOpen) await new Promise((r) => setTimeout(r, 50));
          const buf = new Uint8Array(256);
          await Promise.race([
            conn.read(buf).catch(() => null),
            new Promise((r) => setTimeout(r, 500)),
          ]);
        } finally {
          conn.close();
        }
      };
      // Garbage before any handshake, a frame cut in half, a huge length.
      await rawSend(new Uint8Array(300).map((_, i) => (i * 37) & 255));
      await rawSend(new Uint8Array([64, 0, 0, 0, 1, 0]), true);
      await rawSend(
        new Uint8Array([
          0xff,
          0xff,
          0xff,
          0x7f,
          4,
          0,
          0,
          0,
          1,
          0,
          0,
          0,
          0,
          0,
          0,
          0,
        ]),
      );
      // A real client sending a malformed CPG request (a join with no group
      // name) gets an error reply, not a crash.
      good = await connect(c, 1, 3);
      await good.client.join("").then(
        () => assert(false, "an empty group name must be refused"),
        (e) => assert(String(e).includes("CS_ERR"), String(e)),
      );
      // And the daemon still works for everyone.
      await good.client.join("after-garbage");
      await good.client.mcastRetry(new TextEncoder().encode("still here"));
      await waitFor(() => deliveries(good!).includes("still here"), {
        timeoutMs: 5000,
        what: "delivery",
      });
      const after = await c.waitRing([1, 2], 2000);
      assertEquals(after[0].ringId, before[0].ringId);
      assertEquals(after[0].pid, before[0].pid);
    } finally {
      await good?.client.finalize().catch(() => {});
      await c.stop();
    }
  },
});
