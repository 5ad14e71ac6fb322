// Starts real denosync daemons on loopback for integration tests and always
// stops them. Readiness comes from each daemon's status file, never a sleep.
import { type DaemonStatus, readStatus } from "../../src/daemon/status.ts";
import { DAEMON_FFI_PATHS } from "../../src/daemon/ffi_paths.ts";

const MAIN = new URL("../../main.ts", import.meta.url).href;

export interface ClusterOptions {
  nodes: number;
  links?: number;
  tokenMs?: number;
  consensusMs?: number;
  /** Extra lines inside totem {}. */
  totemExtra?: string;
  /** Node ids listed in the nodelist beyond the started ones. */
  extraNodes?: number;
  /** Lines inside a system {} section (none without them). */
  systemExtra?: string;
}

export interface TestNode {
  id: number;
  dir: string;
  child: Deno.ChildProcess | null;
  log: string[];
}

export async function waitFor<T>(
  check: () => Promise<T | undefined | false> | T | undefined | false,
  { timeoutMs, what }: { timeoutMs: number; what: string },
): Promise<T> {
  const end = performance.now() + timeoutMs;
  while (performance.now() < end) {
    const v = await check();
    if (v !== undefined && v !== false) return v as T;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

function freePortPair(): number {
  for (let i = 0; i < 100; i++) {
    const port = 20000 + Math.floor(Math.random() * 20000) * 2;
    try {
      const socks = [];
      for (let l = 0; l < 2; l++) {
        socks.push(
          Deno.listenDatagram({
            transport: "udp",
            hostname: "127.0.0.1",
            port: port + l,
          }),
        );
      }
      for (const s of socks) s.close();
      return port;
    } catch {
      // in use
    }
  }
  throw new Error("no free UDP ports");
}

export class TestCluster {
  root = "";
  conf = "";
  port = 0;
  nodes: TestNode[] = [];
  env: Record<string, string> = {};

  static async create(o: ClusterOptions): Promise<TestCluster> {
    const c = new TestCluster();
    c.root = await Deno.makeTempDir({ prefix: "denosync-it-" });
    c.port = freePortPair();
    const links = o.links ?? 1;
    const total = o.nodes + (o.extraNodes ?? 0);
    const nodeLines = [];
    for (let id = 1; id <= total; id++) {
      const addrs = [];
      for (let l = 0; l < links; l++) {
        addrs.push(`        ring${l}_addr: 127.0.${l}.${id}`);
      }
      nodeLines.push(
        `    node {\n        nodeid: ${id}\n${addrs.join("\n")}\n    }`,
      );
    }
    const ifaces = [];
    for (let l = 0; l < links; l++) {
      ifaces.push(
        `    interface {\n        linknumber: ${l}\n        mcastport: ${
          c.port + l
        }\n    }`,
      );
    }
    c.conf = `${c.root}/corosync.conf`;
    await Deno.writeTextFile(
      c.conf,
      `totem {
    version: 2
    cluster_name: itest
    transport: udpu
    token: ${o.tokenMs ?? 1000}
    token_coefficient: 0
    consensus: ${o.consensusMs ?? 1200}
${o.totemExtra ?? ""}
${ifaces.join("\n")}
}
nodelist {
${nodeLines.join("\n")}
}
logging {
    to_stderr: yes
    timestamp: on
}
${o.systemExtra === undefined ? "" : `system {\n${o.systemExtra}\n}\n`}`,
    );
    for (let id = 1; id <= total; id++) {
      const dir = `${c.root}/node${id}`;
      await Deno.mkdir(dir);
      c.nodes.push({ id, dir, child: null, log: [] });
    }
    return c;
  }

  node(id: number): TestNode {
    return this.nodes[id - 1];
  }

  start(id: number, conf = this.conf, env: Record<string, string> = {}): void {
    const n = this.node(id);
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--unstable-net",
        "--allow-net",
        `--allow-read=${this.root}`,
        `--allow-write=${this.root}`,
        // As `deno task denosync`: larger UDP receive buffers via libc.
        `--allow-ffi=${DAEMON_FFI_PATHS.join(",")}`,
        "--allow-env",
        "--allow-sys=networkInterfaces,hostname",
        MAIN,
        "run",
        "-c",
        conf,
        "--nodeid",
        String(id),
        "--run-dir",
        n.dir,
      ],
      env: { ...this.env, ...env },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const decoder = new TextDecoder();
    const collect = (s: ReadableStream<Uint8Array>) =>
      s.pipeTo(
        new WritableStream({
          write: (c) => void n.log.push(decoder.decode(c)),
        }),
      ).catch(() => {});
    void collect(child.stdout);
    void collect(child.stderr);
    n.child = child;
  }

  /** The status of the running incarnation of `id` (null until it wrote one). */
  async status(id: number): Promise<DaemonStatus | null> {
    const n = this.node(id);
    const s = await readStatus(n.dir);
    return s !== null && n.child !== null && s.pid === n.child.pid ? s : null;
  }

  /** Starts every node in `ids` and waits for them to form one ring. */
  startRing(ids: number[], timeoutMs = 15000): Promise<DaemonStatus[]> {
    for (const id of ids) this.start(id);
    return this.waitRing(ids, timeoutMs);
  }

  /** Waits until every id in `ids` is operational in one ring of exactly `ids`. */
  async waitRing(ids: number[], timeoutMs = 15000): Promise<DaemonStatus[]> {
    try {
      return await this.#waitRing(ids, timeoutMs);
    } catch (e) {
      throw new Error(
        `${(e as Error).message}\n${this.logs(this.nodes.map((n) => n.id))}`,
      );
    }
  }

  async #waitRing(ids: number[], timeoutMs: number): Promise<DaemonStatus[]> {
    return await waitFor(async () => {
      const st = await Promise.all(ids.map((id) => this.status(id)));
      if (
        st.some((s) =>
          s === null || s.state !== "operational" ||
          s.members.join(",") !== ids.join(",")
        )
      ) {
        return undefined;
      }
      const rings = new Set(st.map((s) => `${s!.ringId.rep}.${s!.ringId.seq}`));
      return rings.size === 1 ? st as DaemonStatus[] : undefined;
    }, { timeoutMs, what: `ring [${ids}]` });
  }

  /**
   * Waits until each `[observer, peer]` logged link 0 to `peer` up. A ring
   * forms before every heartbeat round trip is done, and a link never up
   * cannot go down: failure tests wait for this first.
   */
  async waitLinksUp(
    pairs: readonly [number, number][],
    timeoutMs = 10_000,
  ): Promise<void> {
    await waitFor(
      () =>
        pairs.every(([observer, peer]) =>
          this.node(observer).log.join("").includes(
            `link 0 to node ${peer} is up`,
          )
        ),
      {
        timeoutMs,
        what: `links up: ${pairs.map(([o, p]) => `${o}->${p}`).join(" ")}`,
      },
    );
  }

  logs(ids: number[]): string {
    return ids.map((id) =>
      `--- node ${id}\n${this.node(id).log.join("").slice(-3000)}`
    ).join("\n");
  }

  async kill(id: number, signal: Deno.Signal): Promise<Deno.CommandStatus> {
    const n = this.node(id);
    const child = n.child!;
    child.kill(signal);
    const st = await child.status;
    n.child = null;
    return st;
  }

  async stop(): Promise<void> {
    for (const n of this.nodes) {
      if (n.child === null) continue;
      try {
        n.child.kill("SIGKILL");
      } catch {
        // exited
      }
      await n.child.status;
      n.child = null;
    }
    await Deno.remove(this.root, { recursive: true }).catch(() => {});
  }
}
