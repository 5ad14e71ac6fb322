/**
 * Side-by-side benchmark: denosync and Corosync 3 on the same machine, in
 * the same run, with the same workload code (src/bench/workloads.ts through
 * one agent per node, scripts/bench/bench_agent.ts).
 *
 *   sudo deno run -A scripts/bench/side_by_side.ts [--runs 3] [--duration 10]
 *        [--quick] [--only denosync|corosync] [--json FILE] [--cleanup]
 *        [--keep-logs] [--sizes 1024,65536] [--workloads latency,loss]
 *        [--latency 2000] [--sched-rr yes|no]
 *
 * Needs root: it creates network namespaces dsb-n1..3 (one per node) and
 * dsb-br (a bridge between them) with private addresses 10.213.0.1-3/24
 * that exist only inside them, and removes them at exit, on error and on
 * SIGINT/SIGTERM (`--cleanup` removes leftovers of an aborted run).
 * Corosync comes from Debian (`apt-get install corosync libcpg-dev`); without
 * it only the denosync column is filled. Each Corosync runs under its own
 * mount namespace with private /run and /var/lib/corosync (it locks a
 * global pid file). Both engines: 3 nodes, `transport: knet` (UDP unicast),
 * token 3650 ms, consensus 4380 ms, veth MTU 1500; each engine picks its own
 * frame size for knet (src/net/netmtu.ts for denosync).
 *
 * Workloads: one sender and all senders at 64 B, 1 KiB, 8 KiB, 64 KiB;
 * latency at 1 KiB; 1 KiB with 5 % random loss of node 3's datagrams
 * (nftables in its namespace); 1 KiB with encryption; kill -9 and SIGTERM
 * of node 3 to the new membership at node 1, and restart to its return;
 * idle CPU and RSS per daemon. Medians over --runs runs.
 */
import { parseArgs } from "node:util";
import { median } from "../../src/bench/workloads.ts";
import { totemLinesFromEnv } from "./totem_env.ts";
import type {
  LatencyResult,
  ReceiverResult,
} from "../../src/bench/workloads.ts";

const NODES = 3;
const PREFIX = "dsb";
const NS = (i: number) => `${PREFIX}-n${i}`;
const BR_NS = `${PREFIX}-br`;
const ADDR = (i: number) => `10.213.0.${i}`;
const TOKEN = 3650;
const CONSENSUS = 4380;
const ROOT = new URL("../../", import.meta.url).pathname;

type Engine = "denosync" | "corosync";

/** One row of the final table: a value per engine, and which is better. */
export interface Row {
  name: string;
  unit: string;
  /** "higher" when more is better. */
  better: "higher" | "lower";
  denosync: number[];
  corosync: number[];
}

// ---------------------------------------------------------------- shell

async function sh(cmd: string[], allowFail = false): Promise<string> {
  const out = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success && !allowFail) {
    throw new Error(
      `${cmd.join(" ")} failed: ${new TextDecoder().decode(out.stderr).trim()}`,
    );
  }
  return text;
}

async function cleanupNetwork(): Promise<void> {
  const list = await sh(["ip", "netns", "list"], true);
  for (const line of list.split("\n")) {
    const name = line.split(" ")[0];
    if (name.startsWith(`${PREFIX}-`)) {
      // Kill what still runs inside (ours: nothing else lives there).
      const pids = (await sh(["ip", "netns", "pids", name], true)).split("\n")
        .filter((p) => p.trim() !== "");
      for (const pid of pids) {
        try {
          Deno.kill(Number(pid), "SIGKILL");
        } catch {
          // gone
        }
      }
      await sh(["ip", "netns", "del", name], true);
    }
  }
}

async function setupNetwork(): Promise<void> {
  await cleanupNetwork();
  await sh(["ip", "netns", "add", BR_NS]);
  await sh(["ip", "-n", BR_NS, "link", "add", "br0", "type", "bridge"]);
  await sh(["ip", "-n", BR_NS, "link", "set", "br0", "up"]);
  for (let i = 1; i <= NODES; i++) {
    await sh(["ip", "netns", "add", NS(i)]);
    await sh(["ip", "-n", NS(i), "link", "set", "lo", "up"]);
    // Create the pair inside the bridge namespace, then move one end.
    await sh([
      "ip",
      "-n",
      BR_NS,
      "link",
      "add",
      `v${i}`,
      "type",
      "veth",
      "peer",
      "name",
      "eth0",
      "netns",
      NS(i),
    ]);
    await sh(["ip", "-n", BR_NS, "link", "set", `v${i}`, "master", "br0"]);
    await sh(["ip", "-n", BR_NS, "link", "set", `v${i}`, "up"]);
    await sh([
      "ip",
      "-n",
      NS(i),
      "addr",
      "add",
      `${ADDR(i)}/24`,
      "dev",
      "eth0",
    ]);
    await sh(["ip", "-n", NS(i), "link", "set", "eth0", "up"]);
  }
  // Ready when every node's interface has carrier (the bridge forwards).
  for (let i = 1; i <= NODES; i++) {
    for (let k = 0;; k++) {
      const link = await sh(["ip", "-n", NS(i), "link", "show", "eth0"]);
      if (link.includes("LOWER_UP")) break;
      if (k > 50) throw new Error(`${NS(i)}: eth0 has no carrier`);
      await sleep(100);
    }
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- daemons

interface Cluster {
  engine: Engine;
  dir: string;
  start(i: number): Promise<void>;
  pid(i: number): number;
  kill(i: number, signal: Deno.Signal): Promise<void>;
  stopAll(): Promise<void>;
  socket(i: number): string | undefined;
}

/** pid, kill and stopAll over the daemons a cluster started. */
function processes(children: Map<number, Deno.ChildProcess>) {
  const kill = async (i: number, signal: Deno.Signal) => {
    const c = children.get(i);
    if (c === undefined) return;
    try {
      c.kill(signal);
    } catch {
      // gone
    }
    await c.status;
    children.delete(i);
  };
  return {
    pid: (i: number) => children.get(i)!.pid,
    kill,
    async stopAll() {
      for (const i of [...children.keys()]) await kill(i, "SIGTERM");
    },
  };
}

function nodelist(): string {
  const nodes = [];
  for (let i = 1; i <= NODES; i++) {
    nodes.push(
      `    node {\n        nodeid: ${i}\n        name: n${i}\n        ring0_addr: ${
        ADDR(i)
      }\n    }`,
    );
  }
  return `nodelist {\n${nodes.join("\n")}\n}\n`;
}

function cryptoLines(key: string | null): string {
  return key === null
    ? "    crypto_cipher: none\n    crypto_hash: none\n"
    : `    crypto_cipher: aes256\n    crypto_hash: sha256\n    keyfile: ${key}\n`;
}

/**
 * `--sched-rr yes|no` for both engines; unset, each runs with its default:
 * Corosync's is SCHED_RR at the highest priority, denosync ignores yes
 * (src/daemon/scheduling.ts says why). `no` compares both at normal
 * priority.
 */
let schedRr: "yes" | "no" | undefined;

function systemSection(): string {
  return schedRr === undefined ? "" : `system {\n    sched_rr: ${schedRr}\n}\n`;
}

async function denosyncCluster(
  root: string,
  key: string | null,
): Promise<Cluster> {
  const dir = await Deno.makeTempDir({ dir: root, prefix: "denosync-" });
  const conf = `${dir}/corosync.conf`;
  await Deno.writeTextFile(
    conf,
    `totem {\n    version: 2\n    cluster_name: bench\n    transport: knet\n    token: ${TOKEN}\n    consensus: ${CONSENSUS}\n${
      cryptoLines(key)
    }${totemLinesFromEnv()}}\n${nodelist()}${systemSection()}logging {\n    to_stderr: yes\n}\n`,
  );
  const children = new Map<number, Deno.ChildProcess>();
  return {
    engine: "denosync",
    dir,
    async start(i) {
      const run = `${dir}/node${i}`;
      await Deno.mkdir(run, { recursive: true });
      const log = await Deno.open(`${run}/daemon.log`, {
        write: true,
        create: true,
        append: true,
      });
      const child = new Deno.Command("ip", {
        args: [
          "netns",
          "exec",
          NS(i),
          Deno.execPath(),
          "run",
          "-A",
          ...profileFlags(),
          `${ROOT}main.ts`,
          "run",
          "-c",
          conf,
          "--nodeid",
          String(i),
          "--run-dir",
          run,
        ],
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).spawn();
      child.stderr.pipeTo(log.writable).catch(() => {});
      children.set(i, child);
    },
    ...processes(children),
    socket: (i) => `${dir}/node${i}/denosync.sock`,
  };
}

async function corosyncCluster(
  root: string,
  key: string | null,
): Promise<Cluster> {
  const dir = await Deno.makeTempDir({ dir: root, prefix: "corosync-" });
  const conf = `${dir}/corosync.conf`;
  await Deno.writeTextFile(
    conf,
    `totem {\n    version: 2\n    cluster_name: bench\n    transport: knet\n    token: ${TOKEN}\n    consensus: ${CONSENSUS}\n${
      cryptoLines(key)
    }}\n${nodelist()}${systemSection()}quorum {\n    provider: corosync_votequorum\n}\nlogging {\n    to_stderr: yes\n    to_logfile: no\n    to_syslog: no\n}\n`,
  );
  const children = new Map<number, Deno.ChildProcess>();
  return {
    engine: "corosync",
    dir,
    async start(i) {
      const state = `${dir}/node${i}`;
      await Deno.mkdir(`${state}/run`, { recursive: true });
      await Deno.mkdir(`${state}/lib`, { recursive: true });
      const log = await Deno.open(`${state}/daemon.log`, {
        write: true,
        create: true,
        append: true,
      });
      // Private /run and /var/lib/corosync: corosync locks a global pid
      // file and keeps ring ids there. `exec` keeps the daemon's pid.
      const child = new Deno.Command("ip", {
        args: [
          "netns",
          "exec",
          NS(i),
          "unshare",
          "-m",
          "--propagation",
          "private",
          "sh",
          "-c",
          `mount --bind ${state}/run /run && mount --bind ${state}/lib /var/lib/corosync && exec corosync -f -c ${conf}`,
        ],
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).spawn();
      child.stderr.pipeTo(log.writable).catch(() => {});
      children.set(i, child);
    },
    ...processes(children),
    socket: () => undefined,
  };
}

// ---------------------------------------------------------------- agents

class Agent {
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #lines: AsyncIterator<string>;
  nodeId = 0;

  constructor(engine: Engine, ns: string, socket: string | undefined) {
    this.#child = new Deno.Command("ip", {
      args: [
        "netns",
        "exec",
        ns,
        Deno.execPath(),
        "run",
        "-A",
        // libcpg's dispatch buffer lives on the stack (corosync_port.ts).
        "--v8-flags=--stack-size=4096",
        ...profileFlags(),
        `${ROOT}scripts/bench/bench_agent.ts`,
        "--engine",
        engine,
        ...(socket === undefined ? [] : ["--socket", socket]),
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#writer = this.#child.stdin.getWriter();
    this.#lines = lineReader(this.#child.stdout);
  }

  // deno-lint-ignore no-explicit-any
  async call(cmd: Record<string, unknown>): Promise<any> {
    await this.#writer.write(
      new TextEncoder().encode(JSON.stringify(cmd) + "\n"),
    );
    const next = await this.#lines.next();
    if (next.done) throw new Error(`agent exited during ${cmd.cmd}`);
    const v = JSON.parse(next.value);
    if (v.error !== undefined) throw new Error(`agent ${cmd.cmd}: ${v.error}`);
    return v;
  }

  async close(): Promise<void> {
    await this.call({ cmd: "close" }).catch(() => {});
    await this.#writer.close().catch(() => {});
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // gone
    }
    await this.#child.status;
  }
}

async function* lineReader(
  stream: ReadableStream<Uint8Array>,
): AsyncGenerator<string> {
  let buf = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buf += chunk;
    for (;;) {
      const nl = buf.indexOf("\n");
      if (nl < 0) break;
      yield buf.slice(0, nl);
      buf = buf.slice(nl + 1);
    }
  }
}

async function openAgent(
  c: Cluster,
  i: number,
  timeoutMs = 30_000,
): Promise<Agent> {
  const end = performance.now() + timeoutMs;
  for (;;) {
    const a = new Agent(c.engine, NS(i), c.socket(i));
    try {
      const r = await a.call({ cmd: "open", group: "bench" });
      a.nodeId = r.nodeId;
      return a;
    } catch (e) {
      await a.close();
      if (performance.now() > end) throw e;
      await sleep(250);
    }
  }
}

async function waitMembers(
  a: Agent,
  count: number,
  timeoutMs: number,
): Promise<number> {
  return (await a.call({ cmd: "waitMembers", count, timeoutMs })).at;
}

let runCounter = 1;

async function throughput(
  agents: Agent[],
  size: number,
  senders: "one" | "all",
  durationMs: number,
): Promise<
  { msgsPerSec: number; mbPerSec: number; bad: number; rcvbufDrops: number }
> {
  const dropsBefore = await rcvbufErrors();
  const runId = (Date.now() & 0xfff) * 4096 + runCounter++;
  await Promise.all(
    agents.map((a) => a.call({ cmd: "listen", runId, senders: agents.length })),
  );
  const sent = await Promise.all(agents.map((a, i) =>
    a.call({
      cmd: "run",
      runId,
      size,
      durationMs,
      window: 32,
      index: i,
      send: senders === "all" || i === 0,
    })
  ));
  const accepted = sent.map((s) => s.accepted as number);
  const rx: ReceiverResult[] = await Promise.all(
    agents.map((a) =>
      a.call({ cmd: "drain", accepted, drainMs: 20_000, quietMs: 3000 })
    ),
  );
  if (rx.some((r) => r.gaps + r.duplicates + r.outOfOrder > 0)) {
    console.error(
      `  receivers saw gaps/duplicates/reordering: accepted ${
        JSON.stringify(accepted)
      } received ${JSON.stringify(rx)}`,
    );
  }
  return {
    msgsPerSec: median(rx.map((r) => r.msgsPerSec)),
    mbPerSec: median(rx.map((r) => r.mbPerSec)),
    bad: rx.reduce((n, r) => n + r.gaps + r.duplicates + r.outOfOrder, 0),
    rcvbufDrops: (await rcvbufErrors()) - dropsBefore,
  };
}

/**
 * Datagrams the kernels of all node namespaces dropped because a UDP
 * socket's receive buffer was full (`Udp: RcvbufErrors`, /proc/net/snmp):
 * what a run cost in loss that the protocol then had to repair.
 */
async function rcvbufErrors(): Promise<number> {
  let sum = 0;
  for (let i = 1; i <= NODES; i++) {
    const snmp = await sh([
      "ip",
      "netns",
      "exec",
      NS(i),
      "cat",
      "/proc/net/snmp",
    ]);
    sum += snmpCounter(snmp, "Udp", "RcvbufErrors");
  }
  return sum;
}

/** One counter of /proc/net/snmp's "Proto: names" / "Proto: values" pairs. */
export function snmpCounter(snmp: string, proto: string, name: string): number {
  const lines = snmp.split("\n").filter((l) => l.startsWith(`${proto}: `));
  if (lines.length < 2) return 0;
  const names = lines[0].split(/\s+/).slice(1);
  const values = lines[1].split(/\s+/).slice(1);
  const i = names.indexOf(name);
  return i < 0 ? 0 : Number(values[i]);
}

// ---------------------------------------------------------------- /proc

function cpuTicks(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(f[11]) + Number(f[12]); // utime + stime
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(
    Deno.readTextFileSync(`/proc/${pid}/status`),
  );
  return m === null ? NaN : Number(m[1]) / 1024;
}

// ---------------------------------------------------------------- nft loss

async function setLoss(i: number, percent: number | null): Promise<void> {
  await sh([
    "ip",
    "netns",
    "exec",
    NS(i),
    "nft",
    "delete",
    "table",
    "inet",
    "dsbloss",
  ], true);
  if (percent === null) return;
  const rules = `table inet dsbloss {
  chain in { type filter hook input priority 0; meta l4proto udp numgen random mod 100 < ${percent} drop; }
  chain out { type filter hook output priority 0; meta l4proto udp numgen random mod 100 < ${percent} drop; }
}`;
  const p = new Deno.Command("ip", {
    args: ["netns", "exec", NS(i), "nft", "-f", "-"],
    stdin: "piped",
    stderr: "piped",
  }).spawn();
  const w = p.stdin.getWriter();
  await w.write(new TextEncoder().encode(rules));
  await w.close();
  const out = await p.output();
  if (!out.success) {
    throw new Error(`nft: ${new TextDecoder().decode(out.stderr)}`);
  }
}

// ---------------------------------------------------------------- one engine

/**
 * `DENOSYNC_BENCH_CPU_PROF=DIR`: every denosync daemon and every agent
 * writes a V8 CPU profile into DIR when it exits (`deno run --cpu-prof`).
 */
function profileFlags(): string[] {
  const dir = Deno.env.get("DENOSYNC_BENCH_CPU_PROF");
  return dir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${dir}`];
}

/** The workload groups `--workloads` picks from, in the order they run. */
export const WORKLOADS = [
  "idle",
  "throughput",
  "latency",
  "loss",
  "failure",
  "crypto",
] as const;
export type Workload = typeof WORKLOADS[number];

interface Plan {
  durationMs: number;
  sizes: number[];
  latency: number;
  idleMs: number;
  workloads: ReadonlySet<Workload>;
}

/**
 * The `--workloads` list as a set; throws a message naming the bad entry.
 */
export function parseWorkloads(text: string): Set<Workload> {
  const out = new Set<Workload>();
  for (const raw of text.split(",")) {
    const name = raw.trim();
    if (!(WORKLOADS as readonly string[]).includes(name)) {
      throw new Error(
        `--workloads: unknown workload "${name}"; choose from ${
          WORKLOADS.join(", ")
        }`,
      );
    }
    out.add(name as Workload);
  }
  return out;
}

/** Records one measurement of the engine being measured. */
type Recorder = (
  name: string,
  unit: string,
  better: Row["better"],
  v: number,
) => void;

/** 1 KiB with 5 % of node 3's datagrams dropped: throughput, then latency. */
async function measureLoss(
  engine: Engine,
  agents: Agent[],
  plan: Plan,
  record: Recorder,
  say: (s: string) => void,
): Promise<void> {
  await setLoss(3, 5);
  try {
    const r = await throughput(agents, 1024, "one", plan.durationMs);
    record(
      "5% loss at node 3: 1 sender 1 KiB",
      "msgs/s",
      "higher",
      r.msgsPerSec,
    );
    say(`${engine}: 5% loss: ${r.msgsPerSec.toFixed(0)} msgs/s`);
    try {
      const l: LatencyResult = await agents[0].call({
        cmd: "latency",
        size: 1024,
        count: Math.max(100, plan.latency / 5),
        timeoutMs: 30_000,
      });
      record("5% loss at node 3: latency p99", "ms", "lower", l.p99Ms);
      say(`${engine}: 5% loss: latency p99 ${l.p99Ms.toFixed(1)} ms`);
    } catch (e) {
      // One message not back within 30 s: no percentile to report.
      record("5% loss at node 3: latency p99", "ms", "lower", NaN);
      say(`${engine}: 5% loss: latency run failed: ${(e as Error).message}`);
    }
  } finally {
    await setLoss(3, null);
  }
}

/**
 * kill -9 of node 3 to the new membership at node 1, its restart to its
 * return, and SIGTERM to the new membership. Replaces agents[2].
 */
async function measureFailure(
  engine: Engine,
  c: Cluster,
  agents: Agent[],
  record: Recorder,
  say: (s: string) => void,
): Promise<void> {
  // Failure detection: node 1's group loses node 3's member.
  await waitMembers(agents[0], NODES, 30_000);
  const watch = waitMembers(agents[0], NODES - 1, 60_000);
  const killedAt = performance.timeOrigin + performance.now();
  await c.kill(3, "SIGKILL");
  const gone = (await watch) - killedAt;
  record("kill -9 -> new membership", "ms", "lower", gone);
  await agents[2].close().catch(() => {});
  const restartAt = performance.timeOrigin + performance.now();
  const back = waitMembers(agents[0], NODES, 60_000);
  await c.start(3);
  agents[2] = await openAgent(c, 3);
  const returned = (await back) - restartAt;
  record("restart -> back in the group", "ms", "lower", returned);
  const watch2 = waitMembers(agents[0], NODES - 1, 60_000);
  const termAt = performance.timeOrigin + performance.now();
  await agents[2].close();
  await c.kill(3, "SIGTERM");
  const left = (await watch2) - termAt;
  record("SIGTERM -> new membership", "ms", "lower", left);
  say(
    `${engine}: kill -9 ${gone.toFixed(0)} ms, restart ${
      returned.toFixed(0)
    } ms, SIGTERM ${left.toFixed(0)} ms`,
  );
}

async function measureEngine(
  engine: Engine,
  root: string,
  plan: Plan,
  record: Recorder,
  say: (s: string) => void,
): Promise<void> {
  const make = engine === "denosync" ? denosyncCluster : corosyncCluster;
  let c = await make(root, null);
  let agents: Agent[] = [];
  const closeAll = async () => {
    for (const a of agents) await a.close();
    agents = [];
    await c.stopAll();
  };
  try {
    for (let i = 1; i <= NODES; i++) await c.start(i);
    for (let i = 1; i <= NODES; i++) agents.push(await openAgent(c, i));
    await waitMembers(agents[0], NODES, 60_000);
    say(`${engine}: ${NODES} nodes up`);

    const has = (w: Workload) => plan.workloads.has(w);

    // Idle first, with the group joined and nothing sent.
    if (has("idle")) {
      const t0 = [1, 2, 3].map((i) => cpuTicks(c.pid(i)));
      await sleep(plan.idleMs);
      const ticks = [1, 2, 3].map((i, k) => cpuTicks(c.pid(i)) - t0[k]);
      record(
        "idle CPU per daemon",
        "% of a core",
        "lower",
        median(ticks) / (plan.idleMs / 1000),
      );
      record(
        "idle RSS per daemon",
        "MB",
        "lower",
        median([1, 2, 3].map((i) => rssMb(c.pid(i)))),
      );
    }

    for (const senders of has("throughput") ? ["one", "all"] as const : []) {
      for (const size of plan.sizes) {
        const r = await throughput(agents, size, senders, plan.durationMs);
        const label = `${
          senders === "one" ? "1 sender" : "3 senders"
        } ${size} B`;
        say(
          `${engine}: ${label}: ${r.msgsPerSec.toFixed(0)} msgs/s, ${
            r.mbPerSec.toFixed(1)
          } MB/s${r.bad ? `, ${r.bad} gaps/dups/reorders!` : ""}${
            r.rcvbufDrops > 0
              ? `, ${r.rcvbufDrops} datagrams dropped by full receive buffers`
              : ""
          }`,
        );
        record(`${label}`, "msgs/s", "higher", r.msgsPerSec);
      }
    }
    if (has("latency")) {
      const lat: LatencyResult = await agents[0].call({
        cmd: "latency",
        size: 1024,
        count: plan.latency,
      });
      say(
        `${engine}: latency 1 KiB p50 ${lat.p50Ms.toFixed(3)} p99 ${
          lat.p99Ms.toFixed(3)
        } ms`,
      );
      record("latency 1 KiB p50", "ms", "lower", lat.p50Ms);
      record("latency 1 KiB p99", "ms", "lower", lat.p99Ms);
    }

    if (has("loss")) await measureLoss(engine, agents, plan, record, say);
    if (has("failure")) {
      await measureFailure(engine, c, agents, record, say);
    }
    await closeAll();
    if (!has("crypto")) return;

    // Encryption on.
    const key = await Deno.makeTempFile({
      dir: root,
      suffix: `.${engine}.key`,
    });
    await Deno.remove(key); // both keygens refuse to overwrite
    if (engine === "denosync") {
      await sh([
        Deno.execPath(),
        "run",
        "-A",
        `${ROOT}main.ts`,
        "keygen",
        "-k",
        key,
      ]);
    } else {
      await sh(["corosync-keygen", "-k", key]);
    }
    c = await make(root, key);
    for (let i = 1; i <= NODES; i++) await c.start(i);
    for (let i = 1; i <= NODES; i++) agents.push(await openAgent(c, i));
    await waitMembers(agents[0], NODES, 60_000);
    const enc = await throughput(agents, 1024, "one", plan.durationMs);
    record("encrypted: 1 sender 1 KiB", "msgs/s", "higher", enc.msgsPerSec);
    say(`${engine}: encrypted 1 KiB ${enc.msgsPerSec.toFixed(0)} msgs/s`);
  } finally {
    await closeAll();
  }
}

// ---------------------------------------------------------------- report

/** The table: medians per engine and the ratio (>1 means denosync better). */
export function formatTable(rows: Row[], runs: number): string {
  const fmt = (v: number) =>
    Number.isNaN(v)
      ? "-"
      : v >= 100
      ? v.toFixed(0)
      : v >= 10
      ? v.toFixed(1)
      : v.toFixed(3);
  const lines = [
    `| workload | unit | denosync | Corosync | denosync advantage |`,
    `| --- | --- | ---: | ---: | ---: |`,
  ];
  let anyFailed = false;
  for (const r of rows) {
    // A run that could not measure (NaN: a latency message not back within
    // its timeout) is left out of the median but shown: the median of the
    // runs that worked alone would flatter that engine, so no ratio then.
    const cell = (values: number[]) => {
      const ok = values.filter((x) => !Number.isNaN(x));
      const failed = values.length - ok.length;
      const m = median(ok);
      if (failed > 0) anyFailed = true;
      return {
        m,
        failed,
        text: failed === 0
          ? fmt(m)
          : ok.length === 0
          ? `failed ${failed}/${values.length}`
          : `${fmt(m)} (failed ${failed}/${values.length})`,
      };
    };
    const d = cell(r.denosync);
    const c = cell(r.corosync);
    const ratio = d.failed > 0 || c.failed > 0 || Number.isNaN(d.m) ||
        Number.isNaN(c.m) || d.m === 0 || c.m === 0
      ? "-"
      : `${(r.better === "higher" ? d.m / c.m : c.m / d.m).toFixed(2)}x`;
    lines.push(`| ${r.name} | ${r.unit} | ${d.text} | ${c.text} | ${ratio} |`);
  }
  lines.push(
    "",
    `medians of ${runs} run(s); advantage > 1 means denosync is better (faster, smaller or sooner)`,
  );
  if (anyFailed) {
    lines.push(
      "failed k/n: k of n runs could not measure (a latency message not delivered back within 30 s); the median is of the others",
    );
  }
  return lines.join("\n");
}

if (import.meta.main) {
  const v = parseArgs({
    args: Deno.args,
    options: {
      runs: { type: "string", default: "3" },
      duration: { type: "string", default: "10" },
      quick: { type: "boolean", default: false },
      only: { type: "string" },
      json: { type: "string" },
      cleanup: { type: "boolean", default: false },
      "keep-logs": { type: "boolean", default: false },
      sizes: { type: "string" },
      "sched-rr": { type: "string" },
      workloads: { type: "string" },
      latency: { type: "string" },
    },
  }).values;
  if (Deno.uid() !== 0) {
    console.error(
      "side_by_side: must run as root (network namespaces, nftables)",
    );
    Deno.exit(2);
  }
  if (v.cleanup) {
    await cleanupNetwork();
    Deno.exit(0);
  }
  // Check the tools before building anything: the loss workload needs nft
  // half-way through a run, and failing there wastes the minutes before it.
  const missing: string[] = [];
  for (const tool of ["ip", "nft"]) {
    if (await sh(["sh", "-c", `command -v ${tool}`], true) === "") {
      missing.push(tool);
    }
  }
  if (missing.length > 0) {
    console.error(
      `side_by_side: ${
        missing.join(" and ")
      } not found: install iproute2 and nftables (apt-get install iproute2 nftables)`,
    );
    Deno.exit(2);
  }
  if (v["sched-rr"] !== undefined) {
    if (v["sched-rr"] !== "yes" && v["sched-rr"] !== "no") {
      console.error(
        `side_by_side: --sched-rr takes yes or no, got "${v["sched-rr"]}"`,
      );
      Deno.exit(2);
    }
    schedRr = v["sched-rr"];
  }
  const runs = v.quick ? 1 : Number(v.runs);
  const all = new Set(WORKLOADS);
  const plan: Plan = v.quick
    ? {
      durationMs: 2000,
      sizes: [1024, 65536],
      latency: 300,
      idleMs: 3000,
      workloads: all,
    }
    : {
      durationMs: Number(v.duration) * 1000,
      sizes: [64, 1024, 8192, 65536],
      latency: 2000,
      idleMs: 30_000,
      workloads: all,
    };
  if (v.workloads !== undefined) {
    try {
      plan.workloads = parseWorkloads(v.workloads);
    } catch (e) {
      console.error(`side_by_side: ${(e as Error).message}`);
      Deno.exit(2);
    }
  }
  if (v.latency !== undefined) {
    const n = Number(v.latency);
    if (!Number.isInteger(n) || n < 1) {
      console.error(
        `side_by_side: --latency takes a number of round trips, got "${v.latency}"`,
      );
      Deno.exit(2);
    }
    plan.latency = n;
  }
  if (v.sizes !== undefined) {
    const sizes = v.sizes.split(",").map(Number);
    if (sizes.some((n) => !Number.isInteger(n) || n < 24 || n > 1_048_576)) {
      console.error(
        `side_by_side: --sizes takes sizes in bytes, 24..1048576, got "${v.sizes}"`,
      );
      Deno.exit(2);
    }
    plan.sizes = sizes;
  }
  const haveCorosync =
    await sh(["sh", "-c", "command -v corosync"], true) !== "";
  let engines: Engine[] = haveCorosync
    ? ["denosync", "corosync"]
    : ["denosync"];
  if (!haveCorosync) {
    console.error(
      "side_by_side: corosync is not installed; measuring denosync only",
    );
  }
  if (v.only === "denosync" || v.only === "corosync") engines = [v.only];
  const root = await Deno.makeTempDir({ prefix: "dsb-" });
  const rows: Row[] = [];
  const record =
    (engine: Engine) =>
    (name: string, unit: string, better: Row["better"], value: number) => {
      let row = rows.find((r) => r.name === name);
      if (row === undefined) {
        row = { name, unit, better, denosync: [], corosync: [] };
        rows.push(row);
      }
      row[engine].push(value);
    };
  const interrupted = async () => {
    console.error("side_by_side: interrupted, cleaning up");
    await cleanupNetwork();
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", interrupted);
  Deno.addSignalListener("SIGTERM", interrupted);
  const started = new Date();
  // The first start from a new checkout transpiles every module, and the
  // daemon keeps much of that memory: 72-77 MB idle against 57-60 MB for
  // every later start (one node from 5 fresh checkouts). Corosync is a
  // built binary and so is a compiled denosync, so run 1 measures a warm
  // cache as well. `deno cache` follows main.ts's dynamic imports.
  await sh([Deno.execPath(), "cache", `${ROOT}main.ts`]);
  try {
    await setupNetwork();
    for (let run = 1; run <= runs; run++) {
      // Alternate the order so neither engine always runs on a warmer machine.
      const order = run % 2 === 1 ? engines : [...engines].reverse();
      for (const e of order) {
        console.error(`--- run ${run}/${runs}: ${e}`);
        await measureEngine(e, root, plan, record(e), (s) => console.error(s));
      }
    }
  } finally {
    await cleanupNetwork();
    Deno.removeSignalListener("SIGINT", interrupted);
    Deno.removeSignalListener("SIGTERM", interrupted);
  }
  const corosyncVersion = haveCorosync
    ? (await sh(["corosync", "-v"], true)).split("\n")[0]
    : "absent";
  console.log(
    `Side by side, ${
      started.toISOString().slice(0, 10)
    }, ${Deno.build.os} ${Deno.build.arch}, ${navigator.hardwareConcurrency} cores; ${corosyncVersion}; denosync on Deno ${Deno.version.deno}`,
  );
  console.log(formatTable(rows, runs));
  if (v.json !== undefined) {
    await Deno.writeTextFile(
      v.json,
      JSON.stringify({ date: started.toISOString(), runs, rows }, null, 2),
    );
  }
  if (v["keep-logs"]) {
    console.error(`side_by_side: daemon logs kept under ${root}`);
  } else {
    await Deno.remove(root, { recursive: true }).catch(() => {});
  }
}
