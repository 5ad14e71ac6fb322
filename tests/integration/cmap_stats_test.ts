// cmap's live keys in real daemons: statistics that move (tokens, links,
// IPC connections), runtime.config.totem.*, typed configuration keys,
// stats.clear.* through `cmapctl -C`, read-only refusals, and
// `logging.debug` written through cmap changing a daemon's log.
import { assert, assertEquals } from "./_assert.ts";
import { captured } from "./_capture.ts";
import { TestCluster, waitFor } from "./_cluster.ts";
import { CmapClient, type CmapValue } from "../../src/client/cmap.ts";
import { main as cmapctl } from "../../src/admin/cmapctl.ts";

const OPTS = { sanitizeResources: false, sanitizeOps: false };
const TIMEOUT_MS = 15_000;

async function ctl(args: string[]): Promise<{ code: number; out: string[] }> {
  const r = await captured(() => cmapctl(args));
  return { code: r.code, out: r.all };
}

/** The value of `key`, or null when it does not exist (yet). */
async function value(c: CmapClient, key: string): Promise<CmapValue | null> {
  try {
    return await c.get(key);
  } catch {
    return null;
  }
}

async function num(c: CmapClient, key: string): Promise<number | null> {
  const v = await value(c, key);
  return v === null ? null : Number(v.value);
}

Deno.test({
  name:
    "cmap stats: srp, knet and ipcs keys move; clear, refusals, logging.debug",
  ...OPTS,
  fn: async () => {
    const c = await TestCluster.create({
      nodes: 3,
      links: 2,
      tokenMs: 2000,
      consensusMs: 2400,
    });
    const clients: CmapClient[] = [];
    try {
      const blockFile = `${c.root}/block3.json`;
      await Deno.writeTextFile(blockFile, "[]");
      c.start(1);
      c.start(2);
      c.start(3, c.conf, { DENOSYNC_TEST_BLOCK_LINKS_FILE: blockFile });
      await c.waitRing([1, 2, 3]);
      const dir1 = c.node(1).dir;
      const one = await CmapClient.initialize({
        socketPath: `${dir1}/denosync.sock`,
      });
      clients.push(one);

      // Effective totem values, and configuration keys typed as Corosync's.
      assertEquals(
        await ctl(["--run-dir", dir1, "-g", "runtime.config.totem.token"]),
        { code: 0, out: ["runtime.config.totem.token (u32) = 2000"] },
      );
      assertEquals(await one.get("runtime.config.totem.consensus"), {
        type: "uint32",
        value: 2400,
      });
      assertEquals(await one.get("totem.token"), {
        type: "uint32",
        value: 2000,
      });
      assertEquals(await one.get("nodelist.node.0.nodeid"), {
        type: "uint32",
        value: 1,
      });
      assertEquals(await one.get("nodelist.local_node_pos"), {
        type: "uint32",
        value: 0,
      });

      // Tokens keep coming: orf_token_rx grows.
      const tokens0: number = await waitFor(
        async () => (await num(one, "stats.srp.orf_token_rx")) ?? undefined,
        { timeoutMs: TIMEOUT_MS, what: "stats.srp.orf_token_rx" },
      );
      await waitFor(async () => {
        const n = await num(one, "stats.srp.orf_token_rx");
        return n !== null && n > tokens0 + 2;
      }, { timeoutMs: TIMEOUT_MS, what: "orf_token_rx to grow" });
      assertEquals((await one.get("stats.srp.mcast_retx")).type, "uint64");

      // -m picks Corosync's stats map or the icmap one.
      for (const map of ["stats", "icmap"]) {
        const r = await ctl(["--run-dir", dir1, "--json", "-m", map]);
        assertEquals(r.code, 0, r.out.join("\n"));
        const keys: string[] = JSON.parse(r.out[0]).entries.map((
          e: { key: string },
        ) => e.key);
        assert(keys.length > 0, `-m ${map} listed nothing`);
        assert(
          keys.every((k) => k.startsWith("stats.") === (map === "stats")),
          `-m ${map}: ${keys.join(" ")}`,
        );
        assert(
          keys.includes(
            map === "stats" ? "stats.srp.orf_token_rx" : "totem.token",
          ),
        );
      }
      assertEquals((await ctl(["--run-dir", dir1, "-m", "disk"])).code, 2);

      // Read-only keys refuse writes with a clear error; clear keys are
      // write-only.
      for (
        const args of [
          ["-s", "stats.srp.orf_token_rx", "u64", "0"],
          ["-s", "runtime.config.totem.token", "u32", "1"],
          ["-d", "runtime.config.totem.token"],
        ]
      ) {
        const r = await ctl(["--run-dir", dir1, ...args]);
        assertEquals(r.code, 1, `${args.join(" ")}: ${r.out}`);
        assert(
          r.out.join("\n").includes("CS_ERR_ACCESS") &&
            r.out.join("\n").includes("read-only"),
          r.out.join("\n"),
        );
      }
      assertEquals(
        (await ctl(["--run-dir", dir1, "-g", "stats.clear.all"])).code,
        1,
      );
      assertEquals(await num(one, "runtime.config.totem.token"), 2000);

      // -C srp zeroes the core's counters at once.
      const beforeClear = (await num(one, "stats.srp.orf_token_rx"))!;
      assertEquals((await ctl(["--run-dir", dir1, "-C", "srp"])).code, 0);
      const afterClear = (await num(one, "stats.srp.orf_token_rx"))!;
      assert(
        afterClear < beforeClear,
        `orf_token_rx ${beforeClear} -> ${afterClear} after -C srp`,
      );
      assertEquals(await num(one, "stats.srp.memb_join_tx"), 0);
      assertEquals(
        (await ctl(["--run-dir", dir1, "-C", "nonsense"])).code,
        2,
      );

      // IPC: our own connection's keys, and another one's that go when it
      // closes.
      const ipcPrefix = `stats.ipcs.service0.${Deno.pid}.`;
      const connsNow = async () =>
        new Set(
          (await one.iter(ipcPrefix)).map((e) =>
            e.key.slice(ipcPrefix.length).split(".")[0]
          ),
        );
      const mine = await waitFor(async () => {
        const s = await connsNow();
        return s.size === 1 ? [...s][0] : undefined;
      }, { timeoutMs: TIMEOUT_MS, what: "our IPC connection's stats" });
      assert(
        (await num(one, `${ipcPrefix}${mine}.requests`))! > 0,
        "requests not counted",
      );
      const other = await CmapClient.initialize({
        socketPath: `${dir1}/denosync.sock`,
      });
      clients.push(other);
      const theirs = await waitFor(async () => {
        const s = await connsNow();
        s.delete(mine);
        return s.size === 1 ? [...s][0] : undefined;
      }, { timeoutMs: TIMEOUT_MS, what: "a second IPC connection's stats" });
      const active = (await num(one, "stats.ipcs.global.active"))!;
      assert(active >= 2, `global.active ${active}`);
      await other.finalize();
      clients.pop();
      await waitFor(
        async () => !(await connsNow()).has(theirs),
        { timeoutMs: TIMEOUT_MS, what: "closed connection's keys to go" },
      );
      assert((await num(one, "stats.ipcs.global.closed"))! >= 1);

      // Blocking node 3's link 0 shows in node 1's link counters.
      const link = "stats.knet.node3.link0.";
      await waitFor(
        async () => (await num(one, link + "connected")) === 1,
        { timeoutMs: TIMEOUT_MS, what: "link 0 to node 3 connected" },
      );
      const downBefore = (await num(one, link + "down_count"))!;
      assert((await num(one, link + "rx_data_packets"))! > 0);
      assert((await num(one, link + "latency_samples"))! > 0);
      await Deno.writeTextFile(blockFile, "[0]");
      await waitFor(async () =>
        (await num(one, link + "connected")) === 0 &&
        (await num(one, link + "down_count"))! > downBefore, {
        timeoutMs: TIMEOUT_MS,
        what: "link 0 to node 3 down in stats.knet",
      });
      assertEquals(await num(one, "stats.knet.node3.link1.connected"), 1);
      const three = await CmapClient.initialize({
        socketPath: `${c.node(3).dir}/denosync.sock`,
      });
      clients.push(three);
      await waitFor(
        async () => (await num(three, "stats.knet.node1.link0.enabled")) === 0,
        { timeoutMs: TIMEOUT_MS, what: "node 3 sees its link 0 disabled" },
      );
      assertEquals((await ctl(["--run-dir", dir1, "-C", "knet"])).code, 0);
      assertEquals(await num(one, link + "down_count"), 0);

      // logging.debug through cmap: node 1 starts logging debug lines
      // (the IPC server's "opened by pid" line for every connection).
      const log1 = () => c.node(1).log.join("");
      assert(!log1().includes("opened by pid"), "debug on before the write");
      assertEquals(
        (await ctl(["--run-dir", dir1, "-s", "logging.debug", "str", "loud"]))
          .code,
        1,
      );
      assertEquals(
        (await ctl(["--run-dir", dir1, "-s", "logging.debug", "str", "on"]))
          .code,
        0,
      );
      assertEquals(
        (await ctl(["--run-dir", dir1, "-g", "logging.debug"])).out,
        ["logging.debug (str) = on"],
      );
      await waitFor(() => log1().includes("opened by pid"), {
        timeoutMs: TIMEOUT_MS,
        what: "a debug line in node 1's log",
      });
      assert(
        !c.node(2).log.join("").includes("opened by pid"),
        "node 2 logs debug too",
      );
    } finally {
      for (const client of clients) await client.finalize().catch(() => {});
      await c.stop();
    }
  },
});
