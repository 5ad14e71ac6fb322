import assert from "node:assert/strict";
import { NodeRuntime } from "../../../src/daemon/node_runtime.ts";
import { Logger } from "../../../src/log/logger.ts";
import { resolveTotemConfig } from "../../../src/totem/config.ts";

/**
 * A transport for a one-node ring: frames to ourselves come back in a
 * microtask, as the real transport hands them back; every call is logged.
 */
class LoopbackTransport {
  readonly log: string[] = [];
  rt: NodeRuntime | null = null;

  send(to: number | "all", bytes: Uint8Array): void {
    this.log.push("send");
    if (to !== 1) return;
    const copy = bytes.slice();
    queueMicrotask(() => this.rt?.receive(copy));
  }

  flush(): void {
    this.log.push("flush");
  }
}

async function until(what: string, ok: () => boolean): Promise<void> {
  const end = performance.now() + 10_000;
  while (!ok()) {
    if (performance.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

Deno.test("NodeRuntime flushes sends at once unless the turn delivered", async () => {
  const stateDir = await Deno.makeTempDir();
  const transport = new LoopbackTransport();
  const rt = new NodeRuntime({
    nodeId: 1,
    nodes: [1],
    totem: resolveTotemConfig({ tokenMs: 300, joinMs: 30, consensusMs: 360 }),
    transport,
    logger: new Logger({ toStderr: false, debug: "off", timestamp: false }),
    stateDir,
    seed: 7,
  });
  transport.rt = rt;
  let delivered = 0;
  rt.listen({
    deliver: () => {
      transport.log.push("deliver");
      delivered++;
    },
  });
  try {
    rt.start();
    await until("a one-node ring", () => rt.srp.state === "operational");
    transport.log.length = 0;
    assert.equal(rt.send(new Uint8Array([1, 2, 3])), true);
    await until("the message delivered", () => delivered === 1);
    const log = transport.log;
    // Let the token pass a few more times with nothing to deliver.
    await until(
      "token visits after the delivery",
      () =>
        log.slice(log.indexOf("deliver")).filter((e) => e === "flush").length >=
          3,
    );
    const at = log.indexOf("deliver");
    assert.ok(at > 0, log.join(" "));
    // The delivering step leaves its sends to the transport's deferral, and
    // so does the token visit that follows in the same turn...
    assert.equal(log[at - 1], "send", log.join(" "));
    assert.notEqual(log[at + 1], "flush", log.join(" "));
    const nextFlush = log.indexOf("flush", at);
    assert.ok(nextFlush > at + 1, log.join(" "));
    // ...and token visits that deliver nothing flush each time.
    const rest = log.slice(nextFlush);
    assert.ok(rest.filter((e) => e === "flush").length >= 2, log.join(" "));
    assert.ok(!rest.includes("deliver"), log.join(" "));
  } finally {
    rt.shutdown();
    await Deno.remove(stateDir, { recursive: true });
  }
});
