/**
 * Loss, failover and idle probe (issue 6). Needs root: it runs a 3-node
 * cluster inside its own network namespace (`dsloss-<pid>`, loopback only,
 * one link on 127.0.0.1-3) and removes it afterwards.
 *
 *   deno run -A scripts/loss_probe.ts loss [--loss 5] [--duration 5] [--latency 500]
 *   deno run -A scripts/loss_probe.ts failover [--token 3650 --consensus 4380]
 *   deno run -A scripts/loss_probe.ts idle [--seconds 30]
 *
 * `loss` runs `denosync bench` (one sender, 1 KiB) with and without an
 * nftables rule that drops a random N % of the UDP datagrams from and to
 * 127.0.0.3 (input hook for "to", output hook for "from", so loopback
 * traffic is dropped once per direction). Prints one JSON line per run.
 */
import { parseArgs } from "node:util";
import { main as bench } from "../src/bench/cli.ts";
import { readStatus } from "../src/daemon/status.ts";
import { daemonCommand } from "../src/demo/cli.ts";

const args = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: {
    loss: { type: "string", default: "5" },
    duration: { type: "string", default: "5" },
    latency: { type: "string", default: "500" },
    token: { type: "string", default: "1000" },
    consensus: { type: "string", default: "1200" },
    seconds: { type: "string", default: "30" },
    label: { type: "string", default: "" },
    // Extra `key: value` lines for the totem section (repeatable), e.g.
    // --totem "fast_token_retransmit_min: 0" for Corosync's timing.
    totem: { type: "string", multiple: true, default: [] },
  },
});
const mode = args.positionals[0] ?? "loss";
const NODES = 3;
const ns = `dsloss-${Deno.pid}`;
const root = await Deno.makeTempDir({ prefix: "dsloss-" });
const port = 20000 + Math.floor(Math.random() * 15000) * 2;
const conf = `${root}/corosync.conf`;
const dirs: string[] = [];
const children: (Deno.ChildProcess | null)[] = [];

async function sh(cmd: string[], check = true): Promise<string> {
  const out = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (check && !out.success) {
    throw new Error(
      `${cmd.join(" ")}: ${new TextDecoder().decode(out.stderr)}`,
    );
  }
  return text;
}

function config(token: number, consensus: number): string {
  const nodes = [];
  for (let id = 1; id <= NODES; id++) {
    nodes.push(
      `    node {\n        nodeid: ${id}\n        name: n${id}\n        ring0_addr: 127.0.0.${id}\n    }`,
    );
  }
  return `totem {
    version: 2
    cluster_name: dsloss
    transport: udpu
    token: ${token}
    token_coefficient: 0
    consensus: ${consensus}
${(args.values.totem ?? []).map((l) => `    ${l}`).join("\n")}
    interface {
        linknumber: 0
        mcastport: ${port}
    }
}
nodelist {
${nodes.join("\n")}
}
quorum {
    provider: corosync_votequorum
}
logging {
    to_stderr: yes
    to_logfile: no
    timestamp: on
}
`;
}

function start(id: number): void {
  const dir = dirs[id - 1];
  const cmd = daemonCommand(
    ["run", "-c", conf, "--nodeid", String(id), "--run-dir", dir],
    [root],
    [root],
  );
  const log = Deno.openSync(`${dir}/daemon.log`, {
    append: true,
    create: true,
    write: true,
  });
  children[id - 1] = new Deno.Command("ip", {
    args: ["netns", "exec", ns, Deno.execPath(), ...cmd],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const child = children[id - 1]!;
  child.stderr.pipeTo(
    new WritableStream({
      write(chunk) {
        log.writeSync(chunk);
      },
      close() {
        log.close();
      },
    }),
  ).catch(() => {});
}

async function waitMembers(
  ids: number[],
  count: number,
  timeoutMs: number,
  pollMs = 100,
): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    const st = await Promise.all(ids.map((i) => readStatus(dirs[i - 1])));
    if (
      st.every((s) =>
        s !== null && s.state === "operational" && s.members.length === count
      )
    ) return performance.now() - t0;
    if (performance.now() - t0 > timeoutMs) {
      throw new Error(`no ring of ${count} at ${ids} within ${timeoutMs} ms`);
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

async function stopAll(): Promise<void> {
  for (const c of children) {
    try {
      c?.kill("SIGTERM");
    } catch { /* gone */ }
  }
  await Promise.all(children.map((c) => c?.status));
}

async function nftLoss(percent: number): Promise<void> {
  const rules = `table inet dsloss {
  chain in { type filter hook input priority 0; policy accept;
    ip daddr 127.0.0.3 meta l4proto udp numgen random mod 100 < ${percent} drop
  }
  chain out { type filter hook output priority 0; policy accept;
    ip saddr 127.0.0.3 meta l4proto udp numgen random mod 100 < ${percent} drop
  }
}
`;
  await Deno.writeTextFile(`${root}/nft.conf`, rules);
  await sh(["ip", "netns", "exec", ns, "nft", "-f", `${root}/nft.conf`]);
}

async function nftClear(): Promise<void> {
  await sh(
    ["ip", "netns", "exec", ns, "nft", "delete", "table", "inet", "dsloss"],
    false,
  );
}

function pidOf(dir: string): Promise<number> {
  return readStatus(dir).then((s) => s?.pid ?? 0);
}

async function procStat(
  pid: number,
): Promise<{ rssKb: number; ticks: number }> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { rssKb: rss, ticks: Number(f[11]) + Number(f[12]) };
}

let code = 0;
try {
  await sh(["ip", "netns", "add", ns]);
  await sh(["ip", "-n", ns, "link", "set", "lo", "up"]);
  await Deno.writeTextFile(
    conf,
    config(Number(args.values.token), Number(args.values.consensus)),
  );
  for (let id = 1; id <= NODES; id++) {
    const dir = `${root}/node${id}`;
    await Deno.mkdir(dir);
    dirs.push(dir);
    children.push(null);
  }
  for (let id = 1; id <= NODES; id++) start(id);
  await waitMembers([1, 2, 3], 3, 30_000);
  const label = args.values.label;
  if (mode === "loss") {
    const runBench = async (loss: number) => {
      if (loss > 0) await nftLoss(loss);
      const lines: string[] = [];
      const orig = console.log;
      console.log = (...a: unknown[]) => lines.push(a.join(" "));
      let rc;
      try {
        rc = await bench([
          ...dirs.flatMap((d) => ["--run-dir", d]),
          "--senders",
          "one",
          "--size",
          "1024",
          "--duration",
          args.values.duration!,
          "--latency",
          args.values.latency!,
          "--json",
          "--quiet",
        ]);
      } finally {
        console.log = orig;
        if (loss > 0) await nftClear();
      }
      const j = JSON.parse(lines.join("\n"));
      const t = j.throughput[0];
      console.log(JSON.stringify({
        label,
        loss,
        rc,
        msgsPerSec: Math.round(t.msgsPerSec),
        receivers: t.receivers.map((r: { msgsPerSec: number }) =>
          Math.round(r.msgsPerSec)
        ),
        gaps: t.gaps,
        dup: t.duplicates,
        p50: j.latency?.p50Ms,
        p99: j.latency?.p99Ms,
        max: j.latency?.maxMs,
      }));
      if (rc !== 0) code = rc;
    };
    await runBench(0);
    await runBench(Number(args.values.loss));
  } else if (mode === "failover") {
    // Let the ring settle to rest (token held), then kill at a random
    // point of the idle rotation, as a measurement of Corosync would.
    await new Promise((r) => setTimeout(r, 3000 + Math.random() * 1000));
    const pid3 = await pidOf(dirs[2]);
    // kill -9 node 3: time to a 2-member ring at 1 and 2.
    let t0 = performance.now();
    Deno.kill(pid3, "SIGKILL");
    await children[2]!.status;
    const killMs = await waitMembers([1, 2], 2, 60_000, 10) +
      (performance.now() - t0) * 0;
    // restart: time to 3 members everywhere.
    t0 = performance.now();
    start(3);
    await waitMembers([1, 2, 3], 3, 60_000, 10);
    const returnMs = performance.now() - t0;
    await new Promise((r) => setTimeout(r, 1500));
    // SIGTERM node 3.
    const pid3b = await pidOf(dirs[2]);
    t0 = performance.now();
    Deno.kill(pid3b, "SIGTERM");
    await waitMembers([1, 2], 2, 60_000, 5);
    const termMs = performance.now() - t0;
    console.log(JSON.stringify({
      label,
      killMs: Math.round(killMs),
      returnMs: Math.round(returnMs),
      termMs: Math.round(termMs),
    }));
  } else if (mode === "idle") {
    await new Promise((r) => setTimeout(r, 3000));
    const pids = await Promise.all(dirs.map(pidOf));
    const srpStats = () =>
      sh([
        Deno.execPath(),
        "run",
        "-A",
        new URL("../main.ts", import.meta.url).pathname,
        "cmapctl",
        "--socket",
        `${dirs[0]}/denosync.sock`,
        "stats.srp",
      ], false);
    const verbose = Deno.env.get("SRP_STATS") !== undefined;
    if (verbose) console.log(await srpStats());
    const a = await Promise.all(pids.map(procStat));
    const secs = Number(args.values.seconds);
    await new Promise((r) => setTimeout(r, secs * 1000));
    const b = await Promise.all(pids.map(procStat));
    const hz = 100;
    if (verbose) console.log(await srpStats());
    console.log(JSON.stringify({
      label,
      rssMb: b.map((x) => Math.round(x.rssKb / 1024)),
      cpuPercent: b.map((x, i) =>
        Number(((x.ticks - a[i].ticks) / hz / secs * 100).toFixed(2))
      ),
    }));
  }
} catch (e) {
  console.error(`loss_probe: ${(e as Error).stack}`);
  code = 1;
} finally {
  await stopAll();
  await sh(["ip", "netns", "del", ns], false);
  if (Deno.env.get("KEEP") === undefined) {
    await Deno.remove(root, { recursive: true }).catch(() => {});
  } else console.error(`kept ${root}`);
}
Deno.exit(code);
