/**
 * `denosync bench`: CPG throughput and latency against a running cluster.
 * It opens one CPG handle per daemon socket it is given, joins a group, and
 * runs the workloads of src/bench/workloads.ts, reporting what every
 * receiver saw.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { defaultSocketPath } from "../client/cpg.ts";
import { IpcError } from "../ipc/errors.ts";
import type { CpgPort } from "./cpg_port.ts";
import { DenosyncPort } from "./denosync_port.ts";
import {
  checkSize,
  type LatencyResult,
  runLatency,
  runThroughput,
  type ThroughputResult,
  waitForMembers,
} from "./workloads.ts";

const USAGE = `Usage: denosync bench [options]

Measure CPG throughput and latency on a running cluster. Give one daemon
socket to measure from that node alone, or one per node (--socket repeated,
or --run-dir repeated) to send and receive at every node from this process.

  --socket PATH        a daemon's IPC socket; repeat for several nodes
                       (default: $DENOSYNC_SOCKET or /var/run/denosync/denosync.sock)
  --run-dir DIR        same as --socket DIR/denosync.sock; repeatable
  --group NAME         CPG group to use (default: denosync-bench)
  --size LIST          message sizes in bytes, comma-separated, each
                       24..1048576 (default: 64,1024,8192,65536)
  --duration SEC       seconds of sending per workload (default: 10)
  --senders WHO        one (the first socket sends), all, or both
                       (default: both with several sockets, else one)
  --window N           sends in flight per sender (default: 32)
  --latency COUNT      latency samples: one message at a time, send to
                       self-delivery (default: 1000; 0 skips it)
  --latency-size BYTES message size for latency (default: 1024)
  --json               print one JSON document instead of the table
  --quiet              no progress lines on stderr
  -h, --help           show this help

Every payload carries its sender and sequence number: receivers report
gaps (accepted messages never delivered), duplicates and out-of-order
deliveries, which must all be 0.

JSON fields (stable): {"engine","group","nodes":[id],"throughput":[{"size",
"senders":"one"|"all","durationMs","msgsPerSec","mbPerSec","gaps",
"duplicates","outOfOrder","tryAgain","sendersResults":[{"nodeId",
"accepted","tryAgain"}],"receivers":[{"nodeId","delivered","bytes",
"msgsPerSec","mbPerSec","gaps","duplicates","outOfOrder"}]}],"latency":
{"size","count","p50Ms","p90Ms","p99Ms","maxMs","tryAgain"}|null}.
msgsPerSec and mbPerSec are medians over receivers.

Exit status: 0 ok, 1 the run failed or saw gaps/duplicates/reordering,
2 usage error, 3 daemon not running or socket not permitted.`;

const EXIT_OK = 0;
const EXIT_FAILED = 1;
const EXIT_USAGE = 2;
const EXIT_NOT_CONNECTED = 3;

/** What `denosync bench --json` prints. */
export interface BenchReport {
  engine: string;
  group: string;
  nodes: number[];
  throughput: ThroughputResult[];
  latency: LatencyResult | null;
}

/** Parsed options. */
interface Options {
  sockets: string[];
  group: string;
  sizes: number[];
  durationMs: number;
  senders: ("one" | "all")[];
  window: number;
  latency: number;
  latencySize: number;
  json: boolean;
  quiet: boolean;
}

/** Entry point of `denosync bench`; resolves to the exit code. */
export async function main(args: string[]): Promise<number> {
  let o: Options | string;
  try {
    o = parseOptions(args);
  } catch (e) {
    o = (e as Error).message;
  }
  if (o === "help") {
    console.log(USAGE);
    return EXIT_OK;
  }
  if (typeof o === "string") {
    console.error(`denosync bench: ${o}\n\n${USAGE}`);
    return EXIT_USAGE;
  }
  const ports: CpgPort[] = [];
  try {
    for (const [i, path] of o.sockets.entries()) {
      try {
        // Distinct pids: two sockets may lead to the same daemon.
        ports.push(await DenosyncPort.open(path, Deno.pid * 16 + i));
      } catch (e) {
        console.error(
          `denosync bench: cannot connect to ${path}: ${(e as Error).message}` +
            (e instanceof IpcError || e instanceof Deno.errors.NotFound ||
                e instanceof Deno.errors.ConnectionRefused ||
                e instanceof Deno.errors.PermissionDenied
              ? " (is the daemon running, and may this user use its socket?)"
              : ""),
        );
        return EXIT_NOT_CONNECTED;
      }
    }
    for (const p of ports) await p.join(o.group);
    await waitForMembers(ports, ports.length);
    const report = await run(ports, o);
    if (o.json) console.log(JSON.stringify(report));
    else printReport(report, o);
    const bad = report.throughput.some((t) =>
      t.gaps + t.duplicates + t.outOfOrder > 0
    );
    if (bad) {
      console.error(
        "denosync bench: receivers saw gaps, duplicates or reordering",
      );
      return EXIT_FAILED;
    }
    return EXIT_OK;
  } catch (e) {
    console.error(`denosync bench: ${(e as Error).message}`);
    return EXIT_FAILED;
  } finally {
    for (const p of ports) await p.close();
  }
}

function parseOptions(args: string[]): Options | "help" {
  const { values: v } = parseArgs({
    args,
    options: {
      socket: { type: "string", multiple: true },
      "run-dir": { type: "string", multiple: true },
      group: { type: "string", default: "denosync-bench" },
      size: { type: "string", default: "64,1024,8192,65536" },
      duration: { type: "string", default: "10" },
      senders: { type: "string" },
      window: { type: "string", default: "32" },
      latency: { type: "string", default: "1000" },
      "latency-size": { type: "string", default: "1024" },
      json: { type: "boolean", default: false },
      quiet: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
  });
  if (v.help) return "help";
  const sockets = [
    ...(v.socket ?? []),
    ...(v["run-dir"] ?? []).map((d) => `${d}/denosync.sock`),
  ];
  if (sockets.length === 0) sockets.push(defaultSocketPath());
  const sizes = v.size!.split(",").map((s) => number("--size", s));
  sizes.forEach(checkSize);
  const duration = number("--duration", v.duration!);
  if (duration <= 0) throw new Error("--duration must be positive");
  const who = v.senders ?? (sockets.length > 1 ? "both" : "one");
  if (who !== "one" && who !== "all" && who !== "both") {
    throw new Error(`--senders takes one, all or both, got "${who}"`);
  }
  const window = number("--window", v.window!);
  if (!Number.isInteger(window) || window < 1) {
    throw new Error("--window must be a positive integer");
  }
  const latency = number("--latency", v.latency!);
  if (!Number.isInteger(latency) || latency < 0) {
    throw new Error("--latency must be a count, 0 or more");
  }
  const latencySize = number("--latency-size", v["latency-size"]!);
  checkSize(latencySize);
  return {
    sockets,
    group: v.group!,
    sizes,
    durationMs: duration * 1000,
    senders: who === "both" ? ["one", "all"] : [who],
    window,
    latency,
    latencySize,
    json: v.json!,
    quiet: v.quiet!,
  };
}

function number(option: string, text: string): number {
  const n = Number(text);
  if (text.trim() === "" || !Number.isFinite(n)) {
    throw new Error(`${option}: "${text}" is not a number`);
  }
  return n;
}

async function run(ports: CpgPort[], o: Options): Promise<BenchReport> {
  const say = (line: string) => {
    if (!o.quiet) console.error(line);
  };
  const throughput: ThroughputResult[] = [];
  for (const senders of o.senders) {
    for (const size of o.sizes) {
      say(
        `bench: ${senders === "one" ? "1 sender" : "all senders"}, ${size} B, ${
          o.durationMs / 1000
        } s`,
      );
      throughput.push(
        await runThroughput(ports, {
          size,
          durationMs: o.durationMs,
          senders,
          window: o.window,
          onProgress: (p) =>
            say(
              `  ${(p.elapsedMs / 1000).toFixed(0)} s: delivered ${
                p.delivered.join(" / ")
              }`,
            ),
        }),
      );
    }
  }
  let latency: LatencyResult | null = null;
  if (o.latency > 0) {
    say(`bench: latency, ${o.latency} messages of ${o.latencySize} B`);
    latency = await runLatency(ports[0], {
      size: o.latencySize,
      count: o.latency,
      onProgress: (n) => {
        if (n % 1000 === 0) say(`  ${n} of ${o.latency}`);
      },
    });
  }
  return {
    engine: ports[0].engine,
    group: o.group,
    nodes: ports.map((p) => p.nodeId),
    throughput,
    latency,
  };
}

/** The human table. */
export function formatReport(r: BenchReport, durationS: number): string {
  const lines = [
    `${r.engine} bench: nodes ${
      r.nodes.join(", ")
    }, group ${r.group}, ${durationS} s per workload`,
    "",
    "senders  size     msgs/s    MB/s     receivers msgs/s (min..max)  gaps dups order try-again",
  ];
  for (const t of r.throughput) {
    const rates = t.receivers.map((x) => x.msgsPerSec);
    lines.push(
      [
        (t.senders === "one" ? "1" : "all").padEnd(8),
        String(t.size).padEnd(8),
        t.msgsPerSec.toFixed(0).padStart(8),
        t.mbPerSec.toFixed(1).padStart(7),
        `   ${Math.min(...rates).toFixed(0)}..${Math.max(...rates).toFixed(0)}`
          .padEnd(33),
        String(t.gaps).padStart(4),
        String(t.duplicates).padStart(4),
        String(t.outOfOrder).padStart(5),
        String(t.tryAgain).padStart(9),
      ].join(" "),
    );
  }
  if (r.latency !== null) {
    const l = r.latency;
    lines.push(
      "",
      `latency ${l.size} B send -> self delivery, ${l.count} messages: p50 ${
        l.p50Ms.toFixed(3)
      } ms, p90 ${l.p90Ms.toFixed(3)} ms, p99 ${l.p99Ms.toFixed(3)} ms, max ${
        l.maxMs.toFixed(3)
      } ms`,
    );
  }
  return lines.join("\n");
}

function printReport(r: BenchReport, o: Options): void {
  console.log(formatReport(r, o.durationMs / 1000));
}
