/**
 * `denosync demo`: a live 3-node cluster on loopback, no config and no root.
 * It starts real daemon processes (127.0.0.1-3, two links each), shows the
 * membership as the daemons report it, kills one node with SIGKILL and
 * restarts it, stops another cleanly with SIGTERM, and stops everything it
 * started on Ctrl-C or after `--duration`.
 */
import { parseArgs } from "node:util";
import { CpgClient, type CpgEvent } from "../client/cpg.ts";
import { type DaemonStatus, readStatus } from "../daemon/status.ts";
import { DAEMON_FFI_PATHS } from "../daemon/ffi_paths.ts";

const USAGE = `Usage: denosync demo [--duration SECONDS] [--nodes N] [--keep]
       denosync demo --sim [--duration SECONDS] [--seed X] [--nodes N] [--faults LIST]

Starts N (default 3) denosync daemons on 127.0.0.1..N as real processes with
two links each (127.0.0.x and 127.0.1.x), shows the ring live, kills one node
with SIGKILL and restarts it, stops one with SIGTERM and restarts it, then
keeps running until --duration (default 40 s) or Ctrl-C. Everything it started
is stopped before it exits.

With --sim it narrates a simulated cluster instead: the real Totem core on
the deterministic simulator's virtual network, with faults injected, ending
with the EVS check ("violations: 0"). No processes, no sockets.

Options:
  --sim               the simulated demo (see \`denosync demo --sim --help\`)
  --duration SECONDS  how long to run in total (default 40, 0 = until Ctrl-C)
  --nodes N           cluster size, 2..8 (default 3)
  --keep              keep the temporary directory (configs, logs)
  -h, --help          show this help`;

interface DemoNode {
  id: number;
  dir: string;
  child: Deno.ChildProcess | null;
  logFile: string;
}

/** Entry point of `denosync demo`. */
export async function main(args: string[]): Promise<number> {
  if (args[0] === "--sim") {
    const sim = await import("../sim/demo.ts");
    return await sim.main(args.slice(1));
  }
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        duration: { type: "string", default: "40" },
        nodes: { type: "string", default: "3" },
        keep: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
    });
  } catch (e) {
    console.error(`denosync demo: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (parsed.values.help) {
    console.log(USAGE);
    return 0;
  }
  const durationS = Number(parsed.values.duration);
  const count = Number(parsed.values.nodes);
  if (!Number.isFinite(durationS) || durationS < 0) {
    console.error(
      `denosync demo: --duration must be a number of seconds, got "${parsed.values.duration}"`,
    );
    return 2;
  }
  if (!Number.isInteger(count) || count < 2 || count > 8) {
    console.error(
      `denosync demo: --nodes must be 2..8, got "${parsed.values.nodes}"`,
    );
    return 2;
  }

  const root = await Deno.makeTempDir({ prefix: "denosync-demo-" });
  const port = freePort();
  const conf = `${root}/corosync.conf`;
  await Deno.writeTextFile(conf, demoConfig(count, port));
  const nodes: DemoNode[] = [];
  for (let id = 1; id <= count; id++) {
    const dir = `${root}/node${id}`;
    await Deno.mkdir(dir);
    nodes.push({ id, dir, child: null, logFile: `${dir}/daemon.log` });
  }
  const t0 = performance.now();
  const say = (text: string) => {
    const t = ((performance.now() - t0) / 1000).toFixed(1).padStart(5);
    console.log(`[${t}s] ${text}`);
  };
  let interrupted = false;
  const cleanup: (() => Promise<void>)[] = [];
  const onSignal = () => {
    interrupted = true;
  };
  Deno.addSignalListener("SIGINT", onSignal);
  say(
    `cluster of ${count} nodes on 127.0.0.1..${count} port ${port}, files in ${root}`,
  );
  try {
    for (const n of nodes) startNode(n, conf, root);
    say(
      "started " +
        nodes.map((n) => `node ${n.id} (pid ${n.child!.pid})`).join(", "),
    );
    const deadline = durationS > 0 ? t0 + durationS * 1000 : Infinity;
    const all = nodes.map((n) => n.id);
    const group = new DemoGroup(nodes, say);
    const watcher = new Watcher(nodes, say, group);
    cleanup.push(() => group.close());

    const script: { label: string; run: () => Promise<boolean> }[] = [
      {
        label: "wait for the ring",
        run: () => watcher.waitRing(all, 20_000, () => interrupted),
      },
      { label: "pause", run: () => watcher.idle(3_000, () => interrupted) },
      {
        label: `kill -9 node ${count}`,
        run: async () => {
          const victim = nodes[count - 1];
          say(
            `>>> kill -9 node ${victim.id} (pid ${
              victim.child!.pid
            }): the others lose its token and re-form`,
          );
          const start = performance.now();
          victim.child!.kill("SIGKILL");
          await victim.child!.status;
          victim.child = null;
          const ok = await watcher.waitRing(
            all.slice(0, -1),
            20_000,
            () => interrupted,
          );
          if (ok) {
            say(
              `    new ring ${
                ((performance.now() - start) / 1000).toFixed(2)
              } s after the kill (the token timeout; its links were down by then, so no consensus wait)`,
            );
          }
          return ok;
        },
      },
      {
        label: `restart node ${count}`,
        run: async () => {
          const victim = nodes[count - 1];
          say(`>>> restart node ${victim.id}: it rejoins with a fresh ring id`);
          const start = performance.now();
          startNode(victim, conf, root);
          const ok = await watcher.waitRing(all, 20_000, () => interrupted);
          if (ok) {
            say(
              `    back in the ring after ${
                ((performance.now() - start) / 1000).toFixed(2)
              } s`,
            );
          }
          return ok;
        },
      },
      { label: "pause", run: () => watcher.idle(3_000, () => interrupted) },
      {
        label: "SIGTERM node 2",
        run: async () => {
          const victim = nodes[1];
          say(
            `>>> SIGTERM node ${victim.id}: it leaves cleanly, the others re-form at once`,
          );
          const start = performance.now();
          victim.child!.kill("SIGTERM");
          const ok = await watcher.waitRing(
            all.filter((id) => id !== victim.id),
            20_000,
            () => interrupted,
          );
          if (ok) {
            say(
              `    new ring ${
                ((performance.now() - start) * 1).toFixed(0)
              } ms after SIGTERM`,
            );
          }
          await victim.child!.status;
          victim.child = null;
          return ok;
        },
      },
      {
        label: "restart node 2",
        run: async () => {
          const victim = nodes[1];
          say(`>>> restart node ${victim.id}`);
          startNode(victim, conf, root);
          return await watcher.waitRing(all, 20_000, () => interrupted);
        },
      },
    ];
    for (const stepItem of script) {
      if (interrupted || performance.now() > deadline) break;
      const ok = await stepItem.run();
      if (!ok && !interrupted) {
        say(
          `!!! step "${stepItem.label}" did not complete in time; daemon logs are in ${root}`,
        );
        return 1;
      }
    }
    while (!interrupted && performance.now() < deadline) {
      await watcher.idle(
        Math.min(1000, deadline - performance.now()),
        () => interrupted,
      );
    }
    say(
      interrupted
        ? "interrupted: stopping the cluster"
        : "done: stopping the cluster",
    );
    return 0;
  } finally {
    for (const f of cleanup) await f();
    Deno.removeSignalListener("SIGINT", onSignal);
    await stopAll(nodes);
    if (!parsed.values.keep) {
      await Deno.remove(root, { recursive: true }).catch(() => {});
    } else console.log(`kept ${root}`);
  }
}

/** Prints membership changes as the daemons report them in their status files. */
class Watcher {
  #nodes: DemoNode[];
  #say: (text: string) => void;
  #last = new Map<number, string>();
  #group: DemoGroup;
  #lastSendMs = 0;

  constructor(
    nodes: DemoNode[],
    say: (text: string) => void,
    group: DemoGroup,
  ) {
    this.#nodes = nodes;
    this.#say = say;
    this.#group = group;
  }

  /** Keeps the CPG group busy: reconnects clients, sends, reports. */
  async #traffic(): Promise<void> {
    if (performance.now() - this.#lastSendMs < 1000) return;
    this.#lastSendMs = performance.now();
    await this.#group.connectAll();
    await this.#group.sendRound();
    this.#group.report();
  }

  async poll(): Promise<Map<number, DaemonStatus>> {
    const out = new Map<number, DaemonStatus>();
    for (const n of this.#nodes) {
      if (n.child === null) {
        this.#last.delete(n.id);
        continue;
      }
      const s = await readStatus(n.dir);
      // A restarted node's file still holds its previous incarnation until
      // the new daemon writes it.
      if (s === null || s.pid !== n.child.pid) continue;
      out.set(n.id, s);
      const links = s.links.map((l) =>
        `${l.nodeId}/${l.link}:${l.connected ? "up" : "down"}`
      ).join(" ");
      const line = `${s.state} ring ${s.ringId.rep}.${s.ringId.seq} members [${
        s.members.join(" ")
      }]`;
      if (this.#last.get(n.id) !== line) {
        this.#last.set(n.id, line);
        this.#say(
          `node ${n.id}: ${line}  links ${
            links || "-"
          }  delivered ${s.delivered}`,
        );
      }
    }
    return out;
  }

  /** Waits until every node in `ids` is operational in one ring of exactly `ids`. */
  async waitRing(
    ids: number[],
    timeoutMs: number,
    stop: () => boolean,
  ): Promise<boolean> {
    const end = performance.now() + timeoutMs;
    while (performance.now() < end && !stop()) {
      const st = await this.poll();
      const want = ids.join(" ");
      const rings = ids.map((id) => st.get(id));
      if (ids.length === this.#nodes.filter((n) => n.child !== null).length) {
        await this.#traffic();
      }
      if (
        rings.every((s) =>
          s !== undefined && s.state === "operational" &&
          s.members.join(" ") === want
        ) &&
        new Set(rings.map((s) => `${s!.ringId.rep}.${s!.ringId.seq}`)).size ===
          1
      ) {
        const r = rings[0]!.ringId;
        this.#say(`=== ring ${r.rep}.${r.seq} formed with members [${want}]`);
        return true;
      }
      await delay(100);
    }
    return false;
  }

  async idle(ms: number, stop: () => boolean): Promise<boolean> {
    const end = performance.now() + ms;
    while (performance.now() < end && !stop()) {
      await this.poll();
      await this.#traffic();
      await delay(Math.min(200, Math.max(0, end - performance.now())));
    }
    return true;
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The demo's configuration: corosync.conf syntax, two links per node. */
export function demoConfig(count: number, port: number): string {
  const nodes = [];
  for (let id = 1; id <= count; id++) {
    nodes.push(`    node {
        nodeid: ${id}
        name: demo${id}
        ring0_addr: 127.0.0.${id}
        ring1_addr: 127.0.1.${id}
    }`);
  }
  return `# Written by denosync demo
totem {
    version: 2
    cluster_name: demo
    transport: udpu
    token: 1000
    token_coefficient: 0
    consensus: 1200
    interface {
        linknumber: 0
        mcastport: ${port}
    }
    interface {
        linknumber: 1
        mcastport: ${port + 1}
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

/** Command line that starts a daemon the same way `deno task denosync run` does. */
export function daemonCommand(
  args: string[],
  readable: string[],
  writable: string[],
): string[] {
  const main = new URL("../../main.ts", import.meta.url);
  const compiled = Deno.mainModule.includes("deno-compile");
  if (compiled) return args;
  return [
    "run",
    "--unstable-net",
    "--allow-net",
    `--allow-read=${readable.join(",")}`,
    `--allow-write=${writable.join(",")}`,
    `--allow-ffi=${DAEMON_FFI_PATHS.join(",")}`,
    "--allow-env=LOG_TOKENS,LOG_STREAM,DENOSYNC_*",
    "--allow-sys=networkInterfaces,hostname",
    main.href,
    ...args,
  ];
}

function startNode(n: DemoNode, conf: string, root: string): void {
  const log = Deno.openSync(n.logFile, {
    append: true,
    create: true,
    write: true,
  });
  const args = daemonCommand(
    ["run", "-c", conf, "--nodeid", String(n.id), "--run-dir", n.dir],
    [root],
    [root],
  );
  const child = new Deno.Command(Deno.execPath(), {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // Daemon output goes to its log file in the demo directory.
  void child.stderr.pipeTo(
    new WritableStream({ write: (c) => void log.writeSync(c) }),
  ).catch(() => {});
  void child.stdout.pipeTo(
    new WritableStream({ write: (c) => void log.writeSync(c) }),
  ).catch(() => {});
  void child.status.then(() => log.close());
  n.child = child;
}

async function stopAll(nodes: DemoNode[]): Promise<void> {
  for (const n of nodes) {
    if (n.child === null) continue;
    try {
      n.child.kill("SIGTERM");
    } catch {
      // Already exited.
    }
  }
  for (const n of nodes) {
    if (n.child === null) continue;
    const child = n.child;
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch {
        // Exited meanwhile.
      }
    }, 3000);
    await child.status;
    clearTimeout(timer);
    n.child = null;
  }
}

function freePort(): number {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 30000) * 2;
    try {
      const a = Deno.listenDatagram({
        transport: "udp",
        hostname: "127.0.0.1",
        port,
      });
      const b = Deno.listenDatagram({
        transport: "udp",
        hostname: "127.0.0.1",
        port: port + 1,
      });
      a.close();
      b.close();
      return port;
    } catch {
      // In use: try another.
    }
  }
  throw new Error("no free UDP port pair found on 127.0.0.1");
}

/**
 * One CPG client per running node, all in group "demo", each sending a
 * greeting now and then; shows membership changes with reasons and checks
 * that every node delivers the messages in one order.
 */
class DemoGroup {
  #nodes: DemoNode[];
  #say: (text: string) => void;
  #members = new Map<number, { client: CpgClient; delivered: string[] }>();
  #counter = 0;
  #lastReport = "";

  constructor(nodes: DemoNode[], say: (text: string) => void) {
    this.#nodes = nodes;
    this.#say = say;
  }

  /** Connects and joins on every running node that has no client yet. */
  async connectAll(): Promise<void> {
    for (const n of this.#nodes) {
      if (n.child === null || this.#members.has(n.id)) continue;
      try {
        const delivered: string[] = [];
        const id = n.id;
        const client = await CpgClient.initialize({
          socketPath: `${n.dir}/denosync.sock`,
          pid: 1000 + id,
          onEvent: (ev) => this.#onEvent(id, ev, delivered),
        });
        void client.closed.then(() => this.#members.delete(id));
        await client.join("demo");
        this.#members.set(id, { client, delivered });
        this.#say(
          `cpg: client (pid ${1000 + id}) on node ${id} joined group "demo"`,
        );
      } catch {
        // Not ready yet; the next round tries again.
      }
    }
  }

  #onEvent(id: number, ev: CpgEvent, delivered: string[]): void {
    if (ev.type === "deliver") {
      delivered.push(new TextDecoder().decode(ev.message));
      return;
    }
    // Print membership changes once, as the lowest connected node sees them.
    if (ev.type !== "confchg" || id !== Math.min(...this.#members.keys(), id)) {
      return;
    }
    const who = (
      l: readonly { nodeId: number; pid: number; reason?: string }[],
    ) =>
      l.map((p) =>
        `${p.nodeId}/${p.pid}${p.reason ? ` ${p.reason.toUpperCase()}` : ""}`
      ).join(", ");
    const parts = [`members [${who(ev.members)}]`];
    if (ev.joined.length > 0) parts.push(`joined [${who(ev.joined)}]`);
    if (ev.left.length > 0) parts.push(`left [${who(ev.left)}]`);
    this.#say(`cpg: confchg of "demo" at node ${id}: ${parts.join(" ")}`);
  }

  /** Every member sends one greeting. */
  async sendRound(): Promise<void> {
    for (const [id, m] of this.#members) {
      const text = `#${++this.#counter} from node ${id}`;
      await m.client.mcast(new TextEncoder().encode(text)).catch(() => {});
    }
  }

  /** Compares delivery orders across members and reports when it changes. */
  report(): void {
    const lists = [...this.#members.entries()];
    if (lists.length === 0) return;
    const [refId, ref] = lists.reduce((
      a,
      b,
    ) => (b[1].delivered.length > a[1].delivered.length ? b : a));
    let same = true;
    // Messages in flight reach nodes at different moments: compare the
    // order of the messages both have.
    for (const [, m] of lists) {
      const mine = new Set(m.delivered);
      const theirs = new Set(ref.delivered);
      const a = ref.delivered.filter((x) => mine.has(x));
      const b = m.delivered.filter((x) => theirs.has(x));
      if (a.join("|") !== b.join("|")) same = false;
    }
    const counts = lists.map(([id, m]) => `node ${id}: ${m.delivered.length}`)
      .join(", ");
    const line =
      `cpg: delivered ${counts}; order identical at every node: ${
        same ? "yes" : "NO"
      }` +
      ` (latest at node ${refId}: "${ref.delivered.at(-1) ?? "-"}")`;
    if (line !== this.#lastReport) {
      this.#lastReport = line;
      this.#say(line);
    }
  }

  async close(): Promise<void> {
    for (const m of this.#members.values()) {
      await m.client.finalize().catch(() => {});
    }
    this.#members.clear();
  }
}
