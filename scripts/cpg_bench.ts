/**
 * CPG throughput and latency through real daemons on loopback: starts a
 * 3-node cluster (the demo's configuration), puts one client per node in a
 * group, and measures
 *   - throughput: every client sending messages of a size for a while,
 *     delivered messages/s and MB/s at each client;
 *   - latency: one client sending one message at a time, send to its own
 *     delivery, p50/p90/p99.
 *
 *   deno run -A scripts/cpg_bench.ts [--seconds 5] [--sizes 64,1024,8192,65536]
 *
 * `denosync bench` (issue #6) will grow out of this.
 */
import { parseArgs } from "node:util";
import { CpgClient } from "../src/client/cpg.ts";
import { readStatus } from "../src/daemon/status.ts";
import { daemonCommand, demoConfig } from "../src/demo/cli.ts";

const args = parseArgs({
  args: Deno.args,
  options: {
    seconds: { type: "string", default: "5" },
    sizes: { type: "string", default: "64,1024,8192,65536" },
    latency: { type: "string", default: "2000" },
  },
}).values;
const seconds = Number(args.seconds);
const sizes = args.sizes!.split(",").map(Number);
const NODES = 3;

const root = await Deno.makeTempDir({ prefix: "denosync-cpgbench-" });
const children: Deno.ChildProcess[] = [];
const clients: CpgClient[] = [];
try {
  const port = 20000 + Math.floor(Math.random() * 15000) * 2;
  const conf = `${root}/corosync.conf`;
  await Deno.writeTextFile(conf, demoConfig(NODES, port));
  for (let id = 1; id <= NODES; id++) {
    const dir = `${root}/node${id}`;
    await Deno.mkdir(dir);
    children.push(
      new Deno.Command(Deno.execPath(), {
        args: daemonCommand(
          ["run", "-c", conf, "--nodeid", String(id), "--run-dir", dir],
          [root],
          [root],
        ),
        stdout: "null",
        stderr: "null",
      }).spawn(),
    );
  }
  // Ready when every daemon reports the full ring.
  for (;;) {
    const st = await Promise.all(
      [1, 2, 3].map((id) => readStatus(`${root}/node${id}`)),
    );
    if (
      st.every((s) =>
        s !== null && s.state === "operational" && s.members.length === NODES
      )
    ) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const delivered = [0, 0, 0];
  const bytes = [0, 0, 0];
  let latencyWaiter: ((t: number) => void) | null = null;
  for (let id = 1; id <= NODES; id++) {
    const i = id - 1;
    for (;;) {
      try {
        const c = await CpgClient.initialize({
          socketPath: `${root}/node${id}/denosync.sock`,
          onEvent: (ev) => {
            if (ev.type !== "deliver") return;
            delivered[i]++;
            bytes[i] += ev.message.length;
            if (i === 0 && ev.nodeId === 1 && latencyWaiter !== null) {
              latencyWaiter(performance.now());
            }
          },
        });
        await c.join("bench");
        clients.push(c);
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }
  await new Promise((r) => setTimeout(r, 500));

  console.log(
    `cpg bench: ${NODES} daemons on loopback, all ${NODES} clients sending, ${seconds} s per size`,
  );
  console.log("size     | msgs/s at each client (median) | MB/s   | try-again");
  for (const size of sizes) {
    delivered.fill(0);
    bytes.fill(0);
    let tryAgain = 0;
    const msg = new Uint8Array(size);
    const end = performance.now() + seconds * 1000;
    const t0 = performance.now();
    await Promise.all(clients.map(async (c) => {
      const inFlight: Promise<void>[] = [];
      while (performance.now() < end) {
        inFlight.push(
          c.mcast(msg).catch((e) => {
            tryAgain++;
            if (!e.tryAgain) throw e;
            return new Promise((r) => setTimeout(r, 1));
          }),
        );
        if (inFlight.length >= 64) await Promise.all(inFlight.splice(0));
      }
      await Promise.all(inFlight);
    }));
    // Let what was accepted arrive everywhere.
    let last = -1;
    while (delivered[0] !== last) {
      last = delivered[0];
      await new Promise((r) => setTimeout(r, 300));
    }
    const elapsed = (performance.now() - t0 - 300) / 1000;
    const rates = delivered.map((d) => d / elapsed).sort((a, b) => a - b);
    const median = rates[1];
    console.log(
      `${String(size).padEnd(8)} | ${median.toFixed(0).padEnd(30)} | ${
        (median * size / 1e6).toFixed(1).padEnd(6)
      } | ${tryAgain}`,
    );
  }

  const samples: number[] = [];
  const one = new Uint8Array(1024);
  for (let k = 0; k < Number(args.latency); k++) {
    const t0 = performance.now();
    const arrived = new Promise<number>((r) => (latencyWaiter = r));
    await clients[0].mcastRetry(one);
    samples.push((await arrived) - t0);
  }
  latencyWaiter = null;
  samples.sort((a, b) => a - b);
  const q = (p: number) =>
    samples[Math.min(samples.length - 1, Math.floor(p * samples.length))]
      .toFixed(3);
  console.log(
    `latency 1 KiB send->self delivery over ${samples.length} messages: p50 ${
      q(0.5)
    } ms, p90 ${q(0.9)} ms, p99 ${q(0.99)} ms`,
  );
} finally {
  for (const c of clients) await c.finalize().catch(() => {});
  for (const c of children) {
    try {
      c.kill("SIGTERM");
    } catch {
      // exited
    }
    await c.status;
  }
  await Deno.remove(root, { recursive: true }).catch(() => {});
}
