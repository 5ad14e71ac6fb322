// cmap through a real daemon: the client's typed calls and tracking, and
// `denosync cmapctl` (run in-process, its output captured).
import { assert, assertEquals } from "./_assert.ts";
import { captured } from "./_capture.ts";
import { TestCluster, waitFor } from "./_cluster.ts";
import { type CmapChange, CmapClient } from "../../src/client/cmap.ts";
import { main as cmapctl } from "../../src/admin/cmapctl.ts";

const OPTS = { sanitizeResources: false, sanitizeOps: false };

async function ctl(args: string[]): Promise<{ code: number; out: string[] }> {
  const r = await captured(() => cmapctl(args));
  return { code: r.code, out: r.all };
}

Deno.test({
  name: "cmap: client and cmapctl against one daemon",
  ...OPTS,
  fn: async () => {
    const c = await TestCluster.create({ nodes: 1 });
    try {
      c.start(1);
      await c.waitRing([1]);
      const dir = c.node(1).dir;
      const socketPath = `${dir}/denosync.sock`;
      const client = await CmapClient.initialize({ socketPath });
      const changes: CmapChange[] = [];
      const tracker = await client.track("app.", {
        prefix: true,
        onChange: (ch) => changes.push(ch),
      });
      await client.set("app.count", { type: "uint8", value: 255 });
      assertEquals(await client.inc("app.count"), { type: "uint8", value: 0 });
      assertEquals(
        (await ctl(["--run-dir", dir, "-s", "app.name", "str", "hello"])).code,
        0,
      );
      const got = await ctl(["--run-dir", dir, "-g", "app.name"]);
      assertEquals(got, { code: 0, out: ["app.name (str) = hello"] });
      const list = await ctl(["--socket", socketPath, "--json", "app."]);
      assertEquals(list.code, 0);
      assertEquals(JSON.parse(list.out[0]), {
        entries: [
          { key: "app.count", type: "uint8", value: 0 },
          { key: "app.name", type: "string", value: "hello" },
        ],
      });
      assertEquals((await ctl(["--run-dir", dir, "-D", "app."])).code, 0);
      assertEquals((await ctl(["--run-dir", dir, "-g", "app.name"])).code, 1);
      assertEquals(
        (await ctl(["--run-dir", dir, "-s", "runtime.x.y", "u8", "1"])).code,
        1,
      );
      assertEquals(
        (await ctl(["--run-dir", dir, "-s", "a.b", "u8", "300"])).code,
        2,
      );
      // -p applies a whole file, or nothing when one line is bad.
      const file = `${dir}/changes.txt`;
      await Deno.writeTextFile(
        file,
        "# set two, delete one\napp.p1 u32 42\napp.p2 str two words\n",
      );
      assertEquals((await ctl(["--run-dir", dir, "-p", file])).code, 0);
      assertEquals(await ctl(["--run-dir", dir, "-q", "-g", "app.p2"]), {
        code: 0,
        out: ["two words"],
      });
      await Deno.writeTextFile(file, "^app.p1\napp.p3 u8 256\n");
      const bad = await ctl(["--run-dir", dir, "-p", file]);
      assertEquals(bad.code, 1);
      assert(bad.out[0].includes(`${file}:2`), bad.out[0]);
      assertEquals((await ctl(["--run-dir", dir, "-g", "app.p1"])).code, 0);
      await Deno.writeTextFile(file, "^app.p1\n^app.p2\n");
      assertEquals((await ctl(["--run-dir", dir, "-p", file])).code, 0);
      // Bad input gets a clear error and the daemon keeps serving.
      for (
        const [args, text] of [
          [["-s", "bad name!", "u8", "1"], 'character " " at 3'],
          [["-s", "x", "u8", "1"], "3..255 characters, got 1"],
          [["-s", `a.${"k".repeat(300)}`, "u8", "1"], "got 302"],
          [["-s", "app.big", "str", "v".repeat(20_000)], "CS_ERR_TOO_BIG"],
          [["-s", "app.huge", "str", "v".repeat(2_000_000)], "limit"],
          [["-g", "app.nosuch"], "CS_ERR_NOT_EXIST"],
          [["-d", "app.nosuch"], "CS_ERR_NOT_EXIST"],
        ] as const
      ) {
        const r = await ctl(["--run-dir", dir, ...args]);
        assertEquals(r.code, 1, `${args[0]} ${args[1]}`);
        assert(r.out.join(" ").includes(text), `${text}: ${r.out.join(" ")}`);
      }
      await client.set("app.typed", { type: "uint8", value: 1 });
      assertEquals(await client.inc("app.typed"), { type: "uint8", value: 2 });
      await client.delete("app.typed");
      const runtime = await client.get("runtime.members.1.status");
      assertEquals(runtime, { type: "string", value: "joined" });
      await waitFor(() => changes.length >= 12, {
        timeoutMs: 5000,
        what: "twelve track changes",
      });
      assertEquals(
        changes.map((ch) => `${ch.event} ${ch.key}`),
        [
          "add app.count",
          "modify app.count",
          "add app.name",
          "delete app.count",
          "delete app.name",
          // -p: the file with a bad line applied nothing.
          "add app.p1",
          "add app.p2",
          "delete app.p1",
          "delete app.p2",
          "add app.typed",
          "modify app.typed",
          "delete app.typed",
        ],
      );
      await tracker.stop();
      await client.finalize();
      const gone = await ctl(["--run-dir", `${dir}/nowhere`]);
      assertEquals(gone.code, 3);
      assert(gone.out.join("\n").length > 0);
    } finally {
      await c.stop();
    }
  },
});

Deno.test({
  name: "cmapctl -T prints changes as they happen, until SIGINT",
  ...OPTS,
  fn: async () => {
    const c = await TestCluster.create({ nodes: 1 });
    let tracker: Deno.ChildProcess | null = null;
    try {
      c.start(1);
      await c.waitRing([1]);
      const dir = c.node(1).dir;
      tracker = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          new URL("../../main.ts", import.meta.url).href,
          "cmapctl",
          "--run-dir",
          dir,
          "--json",
          "-T",
          "app.",
        ],
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const lines: string[] = [];
      const reading = (async () => {
        const dec = new TextDecoderStream();
        let buf = "";
        for await (const chunk of tracker!.stdout.pipeThrough(dec)) {
          buf += chunk;
          const parts = buf.split("\n");
          buf = parts.pop()!;
          lines.push(...parts);
        }
      })();
      const client = await CmapClient.initialize({
        socketPath: `${dir}/denosync.sock`,
      });
      try {
        // The tracker is ready once it sees a change: keep poking one key
        // until a line shows up, then make the changes under test.
        let poke = 0;
        await waitFor(async () => {
          // A new value each time: an unchanged value notifies nobody.
          await client.set("app.ready", { type: "uint32", value: poke++ });
          return lines.length > 0;
        }, { timeoutMs: 15_000, what: "the tracker's first line" });
        await client.set("app.t", { type: "string", value: "a" });
        await client.set("app.t", { type: "string", value: "b" });
        await client.delete("app.t");
        // Late lines of the pokes may still come: look at app.t's only.
        const ofT = () =>
          lines.map((l) => JSON.parse(l)).filter((j) => j.key === "app.t");
        await waitFor(() => ofT().length >= 3, {
          timeoutMs: 5000,
          what: "three tracked changes",
        });
        const seen = ofT();
        assertEquals(seen, [
          {
            event: "add",
            key: "app.t",
            type: "string",
            oldValue: null,
            newValue: "a",
          },
          {
            event: "modify",
            key: "app.t",
            type: "string",
            oldValue: "a",
            newValue: "b",
          },
          {
            event: "delete",
            key: "app.t",
            type: "string",
            oldValue: "b",
            newValue: null,
          },
        ]);
      } finally {
        await client.finalize();
      }
      tracker.kill("SIGINT");
      assertEquals((await tracker.status).code, 0);
      await reading;
      tracker = null;
    } finally {
      if (tracker !== null) {
        try {
          tracker.kill("SIGKILL");
        } catch {
          // gone
        }
        await tracker.status;
      }
      await c.stop();
    }
  },
});
