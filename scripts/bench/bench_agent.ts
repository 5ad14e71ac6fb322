/**
 * One node's bench agent for scripts/bench/side_by_side.ts. It runs inside
 * that node's network namespace (Corosync's IPC sockets are per namespace),
 * holds one CpgPort on the local engine, and runs the pieces of the shared
 * workloads (src/bench/workloads.ts) that the orchestrator asks for. One
 * JSON command per line on stdin, one JSON answer per line on stdout.
 *
 *   ip netns exec NS deno run -A scripts/bench/bench_agent.ts \
 *     --engine corosync|denosync [--socket PATH]
 *
 * Commands: {"cmd":"open","group"} -> {"nodeId"}; {"cmd":"members"} ->
 * {"count"}; {"cmd":"listen","runId","senders"} -> {"listening"} (before
 * any "run"); {"cmd":"run","runId","size","durationMs","window","index",
 * "send"} -> {"accepted","tryAgain"} once sending ended;
 * {"cmd":"drain","accepted":[...],"drainMs","quietMs"} -> ReceiverResult;
 * {"cmd":"latency","size","count","timeoutMs"} -> LatencyResult; {"cmd":"waitMembers",
 * "count","timeoutMs"} -> {"at"} (epoch ms when the group had that many);
 * {"cmd":"close"}. Errors come back as {"error"}.
 */
import { parseArgs } from "node:util";
import type { CpgPort } from "../../src/bench/cpg_port.ts";
import { DenosyncPort } from "../../src/bench/denosync_port.ts";
import {
  runLatency,
  sendUntil,
  ThroughputReceiver,
} from "../../src/bench/workloads.ts";
import { CorosyncPort } from "./corosync_port.ts";

/** Wall-clock milliseconds with sub-millisecond resolution. */
export function epochMs(): number {
  return performance.timeOrigin + performance.now();
}

if (import.meta.main) {
  const args = parseArgs({
    args: Deno.args,
    options: {
      engine: { type: "string" },
      socket: { type: "string" },
    },
  }).values;
  let port: CpgPort | null = null;
  let receiver: ThroughputReceiver | null = null;
  let t0 = 0;
  const enc = new TextEncoder();
  const reply = (v: unknown) =>
    Deno.stdout.writeSync(enc.encode(JSON.stringify(v) + "\n"));
  const lines = Deno.stdin.readable.pipeThrough(new TextDecoderStream());
  let buf = "";
  outer: for await (const chunk of lines) {
    buf += chunk;
    for (;;) {
      const nl = buf.indexOf("\n");
      if (nl < 0) break;
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      // deno-lint-ignore no-explicit-any
      const c = JSON.parse(line) as any;
      try {
        switch (c.cmd) {
          case "open":
            port = args.engine === "corosync"
              ? CorosyncPort.open()
              : await DenosyncPort.open(args.socket!);
            await port.join(c.group);
            reply({ nodeId: port.nodeId });
            break;
          case "members":
            reply({ count: port!.memberCount() });
            break;
          case "listen":
            // Before any agent sends: a receiver created on "run" could miss
            // the first messages of a sender whose "run" came first.
            receiver = new ThroughputReceiver(c.runId, c.senders).listen(port!);
            reply({ listening: true });
            break;
          case "run": {
            if (receiver === null || receiver.runId !== c.runId) {
              // No "listen" came first (an older orchestrator).
              receiver = new ThroughputReceiver(c.runId, c.senders)
                .listen(port!);
            }
            t0 = performance.now();
            const out = c.send
              ? await sendUntil(port!, {
                runId: c.runId,
                index: c.index,
                size: c.size,
                endAt: t0 + c.durationMs,
                window: c.window,
              })
              : { accepted: 0, tryAgain: 0 };
            reply(out);
            break;
          }
          case "drain":
            await receiver!.drain(c.accepted, c.drainMs, c.quietMs);
            reply(receiver!.result(port!.nodeId, c.accepted, t0));
            break;
          case "latency":
            reply(
              await runLatency(port!, {
                size: c.size,
                count: c.count,
                timeoutMs: c.timeoutMs,
              }),
            );
            break;
          case "waitMembers": {
            const end = performance.now() + c.timeoutMs;
            while (port!.memberCount() !== c.count && performance.now() < end) {
              await new Promise((r) => setTimeout(r, 2));
            }
            reply(
              port!.memberCount() === c.count
                ? { at: epochMs() }
                : { error: `group still has ${port!.memberCount()} members` },
            );
            break;
          }
          case "close":
            await port?.close();
            reply({ closed: true });
            break outer;
          default:
            reply({ error: `unknown command ${c.cmd}` });
        }
      } catch (e) {
        reply({ error: (e as Error).message });
      }
    }
  }
  Deno.exit(0);
}
