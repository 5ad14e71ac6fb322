// `denosync cfgtool` and CfgClient against real daemons: status and link
// status (also with a blocked link), log reopen, the cluster-wide reload
// vote, kill, shutdown with and without a veto, and a daemon that is gone.
// The tool runs in-process with its output captured.
import { assert, assertEquals } from "./_assert.ts";
import { TestCluster, waitFor } from "./_cluster.ts";
import { main as cfgtool } from "../../src/admin/cfgtool.ts";
import { CfgClient } from "../../src/client/cfg.ts";
import { CmapClient } from "../../src/client/cmap.ts";

const OPTS = { sanitizeResources: false, sanitizeOps: false };

interface Run {
  code: number;
  out: string[];
  err: string[];
}

async function tool(args: string[]): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const log = console.log;
  const error = console.error;
  console.log = (...a: unknown[]) => out.push(a.join(" "));
  console.error = (...a: unknown[]) => err.push(a.join(" "));
  try {
    return { code: await cfgtool(args), out, err };
  } finally {
    console.log = log;
    console.error = error;
  }
}

function show(r: Run): string {
  return `exit ${r.code}\n--- out\n${r.out.join("\n")}\n--- err\n${
    r.err.join("\n")
  }`;
}

/** The JSON object a --json run printed (one line on stdout). */
function json(r: Run): Record<string, unknown> {
  assertEquals(r.out.length, 1, show(r));
  return JSON.parse(r.out[0]);
}

/** Waits for node `id`'s daemon to exit by itself; its exit code. */
async function exited(
  c: TestCluster,
  id: number,
  timeoutMs: number,
): Promise<number> {
  const n = c.node(id);
  const child = n.child!;
  let code: number | null = null;
  void child.status.then((s) => code = s.code);
  await waitFor(() => code !== null, {
    timeoutMs,
    what: `node ${id} to exit\n${c.logs([id])}`,
  });
  n.child = null;
  return code!;
}

async function reloadStatus(dir: string): Promise<unknown> {
  const cmap = await CmapClient.initialize({
    socketPath: `${dir}/denosync.sock`,
  });
  try {
    return await cmap.get("config.reload_status");
  } finally {
    await cmap.finalize();
  }
}

Deno.test({
  name:
    "cfgtool -s/-n/-i/-a/-r/-R on a 3-node, 2-link cluster; a blocked link shows; one bad file refuses the reload everywhere",
  ...OPTS,
  fn: async () => {
    const c = await TestCluster.create({
      nodes: 3,
      links: 2,
      tokenMs: 2000,
      consensusMs: 2400,
    });
    try {
      // Node 2 reads its own copy of the file, so it alone can break it.
      const conf2 = `${c.root}/node2.conf`;
      const text = await Deno.readTextFile(c.conf);
      await Deno.writeTextFile(conf2, text);
      const blockFile = `${c.root}/block3.json`;
      await Deno.writeTextFile(blockFile, "[]");
      c.start(1);
      c.start(2, conf2);
      c.start(3, c.conf, { DENOSYNC_TEST_BLOCK_LINKS_FILE: blockFile });
      await c.waitRing([1, 2, 3]);
      const d1 = c.node(1).dir;
      const at1 = ["--run-dir", d1];

      // -s --json once every link is up.
      const sJson = await waitFor(async () => {
        const r = await tool([...at1, "-s", "--json"]);
        const j = json(r);
        const links = j.links as { nodes: { status: string }[] }[];
        return links.length === 2 &&
            links.every((l) =>
              l.nodes.filter((n) => n.status === "connected").length === 2
            )
          ? j
          : undefined;
      }, { timeoutMs: 10_000, what: "all links connected in cfgtool -s" });
      assertEquals(sJson.localNodeId, 1);
      assertEquals(sJson.transport, "udpu");
      assertEquals(
        (sJson.links as { link: number; addr: string }[]).map((l) => [
          l.link,
          l.addr,
        ]),
        [[0, `127.0.0.1:${c.port}`], [1, `127.0.1.1:${c.port + 1}`]],
      );

      const s = await tool([...at1, "-s"]);
      assertEquals(s.code, 0, show(s));
      assertEquals(s.out.join("\n").split("\n"), [
        "Local node ID 1, transport udpu",
        "LINK ID 0 udp",
        "\taddr\t= 127.0.0.1",
        "\tstatus:",
        "\t\tnodeid:   1:\tlocalhost",
        "\t\tnodeid:   2:\tconnected",
        "\t\tnodeid:   3:\tconnected",
        "LINK ID 1 udp",
        "\taddr\t= 127.0.1.1",
        "\tstatus:",
        "\t\tnodeid:   1:\tlocalhost",
        "\t\tnodeid:   2:\tconnected",
        "\t\tnodeid:   3:\tconnected",
      ]);

      const n = await tool([...at1, "-n"]);
      assertEquals(n.code, 0, show(n));
      const nText = n.out.join("\n");
      assert(nText.includes("nodeid: 2 reachable"), show(n));
      // The MTU is whatever the node's packing uses (netmtu), never 0.
      assert(
        new RegExp(
          `^   LINK: 0 udp \\(127\\.0\\.0\\.1:${c.port}->127\\.0\\.0\\.3:${c.port}\\) enabled connected mtu: [1-9][0-9]*$`,
          "m",
        ).test(nText),
        show(n),
      );
      const nJson = json(await tool([...at1, "-n", "--json"]));
      assertEquals(nJson.members, [1, 2, 3]);
      const nodes = nJson.nodes as {
        nodeId: number;
        reachable: boolean;
        links: { link: number; enabled: boolean; connected: boolean }[];
      }[];
      assertEquals(nodes.map((x) => [x.nodeId, x.reachable]), [[2, true], [
        3,
        true,
      ]]);
      assert(nodes.every((x) => x.links.length === 2));

      const i = await tool([...at1, "-i"]);
      assertEquals(i.code, 0, show(i));
      assertEquals(i.out, [
        "Local node ID 1, transport udpu",
        `LINK ID 0 udp: 127.0.0.1:${c.port}`,
        `LINK ID 1 udp: 127.0.1.1:${c.port + 1}`,
      ]);
      assertEquals(json(await tool([...at1, "-i", "--json"])), {
        localNodeId: 1,
        links: [
          { link: 0, addr: `127.0.0.1:${c.port}` },
          { link: 1, addr: `127.0.1.1:${c.port + 1}` },
        ],
      });
      const a = await tool([...at1, "-a", "3"]);
      assertEquals(a.out, ["127.0.0.3 127.0.1.3"], show(a));
      assertEquals((await tool([...at1, "-a", "9"])).code, 1);

      // -r: the log reopens.
      const r = await tool([...at1, "-r"]);
      assertEquals(r.code, 0, show(r));
      assertEquals(json(await tool([...at1, "-r", "--json"])), {
        reopened: true,
      });

      // -R with every file valid: applied on every member.
      const reload = await tool([...at1, "-R", "--json"]);
      assertEquals(reload.code, 0, show(reload));
      const rep = json(reload);
      assertEquals(rep.outcome, "applied");
      assertEquals(
        (rep.verdicts as { nodeId: number; ok: boolean }[]).map((v) => [
          v.nodeId,
          v.ok,
        ]),
        [[1, true], [2, true], [3, true]],
      );
      for (const id of [1, 2, 3]) {
        assertEquals(await reloadStatus(c.node(id).dir), {
          type: "int32",
          value: 1,
        });
      }

      // Node 2's file stops parsing: nobody applies, the error names node 2
      // and the place.
      await Deno.writeTextFile(
        conf2,
        text.replace("token_coefficient: 0", "token_coefficient: soon"),
      );
      const bad = await tool(["--run-dir", c.node(3).dir, "-R", "--json"]);
      assertEquals(bad.code, 1, show(bad));
      const badRep = json(bad);
      assertEquals(badRep.outcome, "refused");
      const refusals = (badRep.verdicts as {
        nodeId: number;
        ok: boolean;
        error: string;
      }[]).filter((v) => !v.ok);
      assertEquals(refusals.map((v) => v.nodeId), [2]);
      assert(refusals[0].error.includes(`${conf2}:`), refusals[0].error);
      assert(
        refusals[0].error.includes("token_coefficient"),
        refusals[0].error,
      );
      assert(bad.err.join("\n").includes("node 2"), show(bad));
      for (const id of [1, 2, 3]) {
        assertEquals(await reloadStatus(c.node(id).dir), {
          type: "int32",
          value: 7,
        });
      }
      const badText = await tool([...at1, "-R"]);
      assertEquals(badText.code, 1, show(badText));
      assert(
        badText.err.some((l) => l.includes("node 2:") && l.includes(conf2)),
        show(badText),
      );

      // A key that needs a restart, changed in node 2's file only: refused,
      // and the refusal names node 2 and the key.
      await Deno.writeTextFile(
        conf2,
        text.replace("cluster_name: itest", "cluster_name: other"),
      );
      const ro = json(await tool([...at1, "-R", "--json"]));
      assertEquals(ro.outcome, "refused");
      const roRefusals = (ro.verdicts as {
        nodeId: number;
        ok: boolean;
        error: string;
      }[]).filter((v) => !v.ok);
      assertEquals(roRefusals.map((v) => v.nodeId), [2]);
      assert(
        roRefusals[0].error.includes("totem.cluster_name"),
        roRefusals[0].error,
      );

      // A reloadable change in every file: applied on every member.
      const shorter = text.replace("token: 2000", "token: 1800");
      assert(shorter !== text);
      await Deno.writeTextFile(c.conf, shorter);
      await Deno.writeTextFile(conf2, shorter);
      const applied = await tool([...at1, "-R"]);
      assertEquals(applied.code, 0, show(applied));
      assert(applied.out.at(-1) === "Done", show(applied));
      assert(
        applied.out.some((l) => l.includes("totem.token")),
        show(applied),
      );
      for (const id of [1, 2, 3]) {
        assertEquals(await reloadStatus(c.node(id).dir), {
          type: "int32",
          value: 1,
        });
      }

      // Block link 0 on node 3: node 1 sees it disconnected, node 3 sees
      // its own link disabled, and the ring stays whole on link 1.
      await Deno.writeTextFile(blockFile, "[0]");
      await waitFor(async () => {
        const out = (await tool([...at1, "-s"])).out.join("\n");
        return out.includes(
          "LINK ID 0 udp\n\taddr\t= 127.0.0.1\n\tstatus:\n\t\tnodeid:   1:\tlocalhost\n\t\tnodeid:   2:\tconnected\n\t\tnodeid:   3:\tdisconnected\n",
        );
      }, { timeoutMs: 10_000, what: "node 1 shows link 0 to node 3 down" });
      const s3 = json(
        await tool(["--run-dir", c.node(3).dir, "-n", "--json"]),
      );
      const to1 = (s3.nodes as {
        nodeId: number;
        links: { link: number; enabled: boolean; connected: boolean }[];
      }[]).find((x) => x.nodeId === 1)!;
      assertEquals(
        to1.links.map((l) => [l.link, l.enabled]),
        [[0, false], [1, true]],
      );
      assertEquals(
        json(await tool([...at1, "-n", "--json"])).members,
        [1, 2, 3],
      );
    } finally {
      await c.stop();
    }
  },
});

Deno.test({
  name:
    "cfgtool -k ends another node with its reason; -H is vetoed, forced, and clean without a veto; a stopped daemon is not connected",
  ...OPTS,
  fn: async () => {
    const c = await TestCluster.create({ nodes: 3 });
    try {
      await c.startRing([1, 2, 3]);
      const at = (id: number) => ["--run-dir", c.node(id).dir];

      // -k 3: node 3 logs the reason and exits; 1 and 2 form a ring.
      const kill = await tool([
        ...at(1),
        "-k",
        "3",
        "--reason",
        "disk maintenance",
        "--json",
      ]);
      assertEquals(kill.code, 0, show(kill));
      assertEquals(json(kill), { killed: 3 });
      assertEquals(await exited(c, 3, 15_000), 0);
      const log3 = c.node(3).log.join("");
      assert(
        log3.includes("killed by node 1: disk maintenance"),
        c.logs([3]),
      );
      await c.waitRing([1, 2]);
      const gone = await tool([...at(1), "-k", "3"]);
      assertEquals(gone.code, 1, show(gone));
      assert(gone.err.join("\n").includes("not a member"), show(gone));

      // A client on node 2 vetoes: -H is refused and node 2 stays.
      const vetoer = await CfgClient.initialize({
        socketPath: `${c.node(2).dir}/denosync.sock`,
      });
      await vetoer.trackShutdown();
      let asked = 0;
      const loop = (async () => {
        try {
          for await (const ev of vetoer.events()) {
            if (ev.type !== "shutdown_request") continue;
            asked++;
            await vetoer.replyToShutdown(false).catch(() => {});
          }
        } catch {
          // The daemon went away (the forced shutdown below).
        }
      })();
      const refused = await tool([...at(2), "-H"]);
      assertEquals(refused.code, 1, show(refused));
      assert(refused.err.join("\n").includes("vetoed"), show(refused));
      assertEquals(asked, 1);
      const refusedJson = json(await tool([...at(2), "-H", "--json"]));
      assertEquals(refusedJson.code, "CS_ERR_BUSY");
      assert(c.node(2).child !== null);
      await c.waitRing([1, 2], 3000);

      // --force: down regardless of the veto, cleanly.
      const forced = await tool([...at(2), "-H", "--force"]);
      assertEquals(forced.code, 0, show(forced));
      assertEquals(await exited(c, 2, 15_000), 0);
      assertEquals(asked, 3);
      await loop;
      await vetoer.finalize();
      await c.waitRing([1]);

      // No client tracks shutdown on node 1: it goes down at once.
      const clean = await tool([...at(1), "-H", "--json"]);
      assertEquals(json(clean), { shutdown: "accepted" });
      assertEquals(await exited(c, 1, 15_000), 0);
      assert(c.node(1).log.join("").includes("stopped"), c.logs([1]));

      // Nobody listens any more.
      const none = await tool([...at(1), "-s"]);
      assertEquals(none.code, 3, show(none));
      assert(none.err.join("\n").includes("denosync cfgtool:"), show(none));
      assertEquals((await tool([...at(1)])).code, 2);
    } finally {
      await c.stop();
    }
  },
});
