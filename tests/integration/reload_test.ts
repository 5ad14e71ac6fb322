// Live configuration reload (`denosync cfgtool -R`) on real daemons: a node
// added to and removed from the nodelist, and a refused change.
import {
  CmapClient,
  CmapError,
  type CmapValue,
} from "../../src/client/cmap.ts";
import { CsError } from "../../src/ipc/cs_error.ts";
import { assert, assertEquals } from "./_assert.ts";
import { TestCluster, waitFor } from "./_cluster.ts";

const MAIN = new URL("../../main.ts", import.meta.url).href;

interface ReloadJson {
  outcome: string;
  verdicts: { nodeId: number; ok: boolean; error: string }[];
  changes: string[];
  message: string;
}

/** Runs `denosync cfgtool -R --json` against node `id`'s daemon. */
async function cfgtoolReload(
  c: TestCluster,
  id: number,
): Promise<{ code: number; report: ReloadJson; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      MAIN,
      "cfgtool",
      "--run-dir",
      c.node(id).dir,
      "-R",
      "--json",
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  let report: ReloadJson;
  try {
    report = JSON.parse(stdout);
  } catch {
    throw new Error(`cfgtool -R printed no JSON:\n${stdout}\n${stderr}`);
  }
  return { code: out.code, report, stderr };
}

/** One cmap value of node `id`, or null when the key does not exist. */
async function cmapGet(
  c: TestCluster,
  id: number,
  key: string,
): Promise<CmapValue | null> {
  const client = await CmapClient.initialize({
    socketPath: `${c.node(id).dir}/denosync.sock`,
  });
  try {
    return await client.get(key);
  } catch (e) {
    if (e instanceof CmapError && e.code === CsError.NOT_EXIST) return null;
    throw e;
  } finally {
    await client.finalize();
  }
}

/** The file as `TestCluster` wrote it, without node `id`'s entry. */
function withoutNode(text: string, id: number): string {
  const block = new RegExp(
    `    node \\{\\n        nodeid: ${id}\\n[^}]*\\}\\n`,
  );
  assert(block.test(text), `no node ${id} entry in\n${text}`);
  return text.replace(block, "");
}

/** Datagrams arriving at `addr:port` until `until` resolves. */
async function listenAt(
  hostname: string,
  port: number,
  until: (count: () => number) => Promise<void>,
): Promise<number> {
  const sock = Deno.listenDatagram({ transport: "udp", hostname, port });
  let count = 0;
  const loop = (async () => {
    const buf = new Uint8Array(65_536);
    for (;;) {
      try {
        await sock.receive(buf);
        count++;
      } catch {
        return;
      }
    }
  })();
  try {
    await until(() => count);
  } finally {
    sock.close();
    await loop;
  }
  return count;
}

Deno.test({
  name: "cfgtool -R adds a fourth node to a live ring, then removes it",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const c = await TestCluster.create({ nodes: 3, extraNodes: 1 });
    try {
      const four = await Deno.readTextFile(c.conf);
      const three = withoutNode(four, 4);
      await Deno.writeTextFile(c.conf, three);
      await c.startRing([1, 2, 3]);

      // Every node reads the one file: edit it, then reload the cluster.
      await Deno.writeTextFile(c.conf, four);
      const added = await cfgtoolReload(c, 1);
      assertEquals(added.code, 0, added.stderr);
      assertEquals(added.report.outcome, "applied");
      assertEquals(added.report.verdicts.map((v) => v.ok), [true, true, true]);
      assert(
        added.report.changes.includes("node 4 added (ring0_addr 127.0.0.4)"),
        JSON.stringify(added.report),
      );
      c.start(4);
      const ring = await c.waitRing([1, 2, 3, 4]);
      assertEquals(ring[0].members, [1, 2, 3, 4]);
      for (const id of [1, 2, 3]) {
        await waitFor(
          async () =>
            Number((await cmapGet(c, id, "nodelist.node.3.nodeid"))?.value) ===
              4,
          { timeoutMs: 5000, what: `node ${id}'s cmap lists node 4` },
        );
      }

      // Node 4 stops; until the reload the others keep pinging its address.
      await c.kill(4, "SIGTERM");
      await c.waitRing([1, 2, 3]);
      await listenAt("127.0.0.4", c.port, async (count) => {
        await waitFor(() => count() > 0, {
          timeoutMs: 5000,
          what: "heartbeats to the stopped node 4",
        });
      });
      await Deno.writeTextFile(c.conf, three);
      const removed = await cfgtoolReload(c, 2);
      assertEquals(removed.code, 0, removed.stderr);
      assertEquals(removed.report.outcome, "applied");
      assert(
        removed.report.changes.includes("node 4 removed"),
        JSON.stringify(removed.report),
      );
      for (const id of [1, 2, 3]) {
        await waitFor(async () => {
          const s = await c.status(id);
          return s !== null && s.links.length > 0 &&
            s.links.every((l) => l.nodeId !== 4);
        }, { timeoutMs: 5000, what: `node ${id}'s status without node 4` });
        assertEquals(await cmapGet(c, id, "nodelist.node.3.nodeid"), null);
        assertEquals(await cmapGet(c, id, "nodelist.node.3.ring0_addr"), null);
      }
      // Nothing is sent to node 4's address any more: over five heartbeat
      // periods (200 ms each), not one datagram.
      const heard = await listenAt("127.0.0.4", c.port, async () => {
        const until = performance.now() + 1000;
        await waitFor(() => performance.now() >= until, {
          timeoutMs: 5000,
          what: "five heartbeat periods",
        });
      });
      assertEquals(heard, 0);
      await c.waitRing([1, 2, 3]);
    } finally {
      await c.stop();
    }
  },
});

Deno.test({
  name: "cfgtool -R refuses a cluster_name change and changes nothing",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const c = await TestCluster.create({ nodes: 3 });
    try {
      const before = await c.startRing([1, 2, 3]);
      const original = await Deno.readTextFile(c.conf);
      // A reloadable change rides along: it must not be applied either.
      await Deno.writeTextFile(
        c.conf,
        original.replace("cluster_name: itest", "cluster_name: other")
          .replace("token: 1000", "token: 1500"),
      );
      const r = await cfgtoolReload(c, 3);
      assertEquals(r.code, 1, r.stderr);
      assertEquals(r.report.outcome, "refused");
      assertEquals(r.report.changes, []);
      assert(
        r.report.verdicts.some((v) =>
          !v.ok && v.error.includes("totem.cluster_name cannot be changed")
        ),
        JSON.stringify(r.report),
      );
      for (const id of [1, 2, 3]) {
        assertEquals(
          (await cmapGet(c, id, "totem.cluster_name"))?.value,
          "itest",
        );
        assertEquals(
          (await cmapGet(c, id, "runtime.config.totem.token"))?.value,
          1000,
        );
      }
      // The ring is the one from before: no membership change.
      const after = await c.waitRing([1, 2, 3]);
      assertEquals(after[0].ringId, before[0].ringId);
      // With the file put back, a reload goes through with no changes.
      await Deno.writeTextFile(c.conf, original);
      const ok = await cfgtoolReload(c, 1);
      assertEquals(ok.report.outcome, "applied", JSON.stringify(ok.report));
      assertEquals(ok.report.changes, []);
    } finally {
      await c.stop();
    }
  },
});

Deno.test({
  name: "cfgtool -R on an encrypted ring admits a new node and new timers",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const c = await TestCluster.create({
      nodes: 3,
      extraNodes: 1,
      totemExtra:
        "    crypto_cipher: aes256\n    crypto_hash: sha256\n    keyfile: KEYFILE",
    });
    try {
      const key = crypto.getRandomValues(new Uint8Array(64));
      await Deno.writeFile(`${c.root}/authkey`, key, { mode: 0o400 });
      const four = (await Deno.readTextFile(c.conf)).replace(
        "KEYFILE",
        `${c.root}/authkey`,
      );
      await Deno.writeTextFile(c.conf, withoutNode(four, 4));
      await c.startRing([1, 2, 3]);

      // The frame opener must learn node 4 too, or its sealed frames fail.
      await Deno.writeTextFile(
        c.conf,
        four.replace("token: 1000", "token: 1300"),
      );
      const r = await cfgtoolReload(c, 1);
      assertEquals(r.report.outcome, "applied", JSON.stringify(r.report));
      assert(
        r.report.changes.includes(`totem.token: "1000" -> "1300"`),
        JSON.stringify(r.report),
      );
      for (const id of [1, 2, 3]) {
        await waitFor(
          async () =>
            (await cmapGet(c, id, "runtime.config.totem.token"))?.value ===
              1300,
          { timeoutMs: 5000, what: `node ${id} runs with token 1300` },
        );
      }
      c.start(4);
      await c.waitRing([1, 2, 3, 4]);
      const s = await c.status(1);
      assertEquals(s?.rejected["crypto_unknown_sender"] ?? 0, 0);
    } finally {
      await c.stop();
    }
  },
});
