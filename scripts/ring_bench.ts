/**
 * Throughput of the Totem ring through real daemons' code paths: three
 * processes on 127.0.0.1-3, each running the node stack of `denosync run`
 * (UDP transport, optional AES-256-GCM, packing, SRP), every node sending
 * messages of one size as fast as flow control allows. Prints messages/s and
 * MB/s delivered at every node, with and without encryption.
 *
 *   deno run -A scripts/ring_bench.ts [--size 1024] [--duration 5] [--nodes 3]
 *
 * No IPC: `deno task bench` measures through the daemons' IPC sockets; this
 * measures the ring itself. `DENOSYNC_CRYPTO_BACKEND=node` seals with
 * node:crypto instead of libcrypto.
 */
import { parseArgs } from "node:util";
import { loadConfigFile } from "../src/config/load.ts";
import { openNode } from "../src/daemon/node.ts";
import { Logger } from "../src/log/logger.ts";

interface NodeResult {
  node: number;
  sent: number;
  delivered: number;
  bytes: number;
  windowMs: number;
}

const args = parseArgs({
  args: Deno.args,
  options: {
    size: { type: "string", default: "1024" },
    duration: { type: "string", default: "5" },
    nodes: { type: "string", default: "3" },
    node: { type: "string" },
    conf: { type: "string" },
    dir: { type: "string" },
    start: { type: "string" },
  },
}).values;

if (args.node !== undefined) {
  Deno.exit(await child());
} else {
  await parent();
}

async function child(): Promise<number> {
  const nodeId = Number(args.node);
  const size = Number(args.size);
  const durationMs = Number(args.duration) * 1000;
  const startAt = Number(args.start);
  const loaded = await loadConfigFile(args.conf!);
  const logger = new Logger({
    toStderr: true,
    debug: "off",
    timestamp: false,
    ident: `bench ${nodeId}`,
  });
  const node = await openNode({
    loaded,
    nodeId,
    via: "nodeid",
    stateDir: args.dir!,
    logger,
  });
  const rt = node.runtime;
  let delivered = 0;
  let bytes = 0;
  let first = 0;
  let last = 0;
  let counting = false;
  rt.listen({
    deliver: (d) => {
      if (!counting) return;
      if (delivered === 0) first = performance.now();
      delivered++;
      bytes += d.payload.length;
      last = performance.now();
    },
  });
  rt.start();
  const members = loaded.config.nodelist.length;
  while (rt.srp.members.length !== members || rt.srp.state !== "operational") {
    await new Promise((r) => setTimeout(r, 20));
  }
  await new Promise((r) => setTimeout(r, Math.max(0, startAt - Date.now())));
  counting = true;
  const msg = new Uint8Array(size).fill(nodeId);
  const end = performance.now() + durationMs;
  let sent = 0;
  while (performance.now() < end) {
    while (rt.send(msg)) {
      sent++;
      if ((sent & 1023) === 0) break;
    }
    await rt.whenWritable();
    await new Promise((r) => setTimeout(r, 0));
  }
  // Let the ring drain what was accepted.
  const drainEnd = performance.now() + 3000;
  while (performance.now() < drainEnd && rt.srp.sendQueueLength > 0) {
    await new Promise((r) => setTimeout(r, 20));
  }
  await new Promise((r) => setTimeout(r, 500));
  counting = false;
  const result: NodeResult = {
    node: nodeId,
    sent,
    delivered,
    bytes,
    windowMs: last - first,
  };
  console.log(JSON.stringify(result));
  await node.close();
  logger.close();
  return 0;
}

function config(
  n: number,
  port: number,
  crypto: boolean,
  root: string,
): string {
  const nodes = [];
  for (let id = 1; id <= n; id++) {
    nodes.push(
      `    node {\n        nodeid: ${id}\n        ring0_addr: 127.0.0.${id}\n    }`,
    );
  }
  return `totem {
    version: 2
    cluster_name: bench
    transport: udpu
    token: 3000
${
    crypto
      ? `    crypto_cipher: aes256\n    crypto_hash: sha256\n    keyfile: ${root}/authkey\n`
      : ""
  }    interface {
        linknumber: 0
        mcastport: ${port}
    }
}
nodelist {
${nodes.join("\n")}
}
logging {
    to_stderr: yes
    to_syslog: no
}
`;
}

async function runOnce(crypto: boolean, n: number): Promise<NodeResult[]> {
  const root = await Deno.makeTempDir({ prefix: "denosync-bench-" });
  try {
    await Deno.writeFile(
      `${root}/authkey`,
      crypto
        ? globalThis.crypto.getRandomValues(new Uint8Array(256))
        : new Uint8Array(0),
    );
    const port = 30000 + Math.floor(Math.random() * 20000);
    const conf = `${root}/bench.conf`;
    await Deno.writeTextFile(conf, config(n, port, crypto, root));
    const startAt = Date.now() + 3000;
    const children = [];
    for (let id = 1; id <= n; id++) {
      await Deno.mkdir(`${root}/n${id}`);
      children.push(
        new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "-A",
            new URL(import.meta.url).href,
            "--node",
            String(id),
            "--conf",
            conf,
            "--dir",
            `${root}/n${id}`,
            "--size",
            args.size!,
            "--duration",
            args.duration!,
            "--start",
            String(startAt),
          ],
          stdout: "piped",
          stderr: "null",
        }).spawn(),
      );
    }
    const outs = await Promise.all(children.map((c) => c.output()));
    return outs.map((o) =>
      JSON.parse(new TextDecoder().decode(o.stdout).trim().split("\n").at(-1)!)
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

async function parent(): Promise<void> {
  const n = Number(args.nodes);
  const size = Number(args.size);
  console.log(
    `ring bench: ${n} nodes on loopback, every node sending ${size} B messages for ${args.duration} s`,
  );
  console.log("crypto | node | sent     | delivered | msgs/s   | MB/s");
  for (const crypto of [false, true]) {
    const results = await runOnce(crypto, n);
    for (const r of results) {
      const rate = r.delivered / (r.windowMs / 1000);
      const mb = r.bytes / (r.windowMs / 1000) / 1e6;
      console.log(
        `${(crypto ? "aead" : "none").padEnd(6)} | ${
          String(r.node).padEnd(4)
        } | ${String(r.sent).padEnd(8)} | ${String(r.delivered).padEnd(9)} | ${
          rate.toFixed(0).padEnd(8)
        } | ${mb.toFixed(1)}`,
      );
    }
  }
}
