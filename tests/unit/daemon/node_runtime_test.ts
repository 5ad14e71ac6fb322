import assert from "node:assert/strict";
import { NodeRuntime } from "../../../src/daemon/node_runtime.ts";
import { Logger } from "../../../src/log/logger.ts";
import { resolveTotemConfig } from "../../../src/totem/config.ts";

/** One in-process node: its runtime and the transport it sends through. */
interface RingNode {
  runtime: NodeRuntime;
  transport: RingTransport;
}

/**
 * Transports for a ring of in-process runtimes: a frame reaches its
 * destination (every other node for "all"; itself for a one-node ring's
 * token) in a microtask, as the real transport hands frames on. Each node
 * logs its sends, flushes and receives, and the test its deliveries.
 */
class RingTransport {
  readonly log: string[] = [];
  /** True while this node's runtime handles a received frame. */
  receiving = false;

  constructor(
    readonly me: number,
    readonly ring: Map<number, RingNode>,
  ) {}

  send(to: number | "all", bytes: Uint8Array): void {
    this.log.push("send");
    const copy = bytes.slice();
    const targets = to === "all"
      ? [...this.ring.keys()].filter((n) => n !== this.me)
      : [to];
    for (const n of targets) {
      queueMicrotask(() => {
        const node = this.ring.get(n);
        if (node === undefined) return;
        node.transport.log.push("recv");
        node.transport.receiving = true;
        try {
          node.runtime.receive(copy);
        } finally {
          node.transport.receiving = false;
        }
      });
    }
  }

  flush(): void {
    this.log.push("flush");
  }
}

/** A ring of in-process runtimes for `nodeIds`, not yet started. */
function newRing(nodeIds: number[], stateDir: string): Map<number, RingNode> {
  const ring = new Map<number, RingNode>();
  for (const id of nodeIds) {
    const transport = new RingTransport(id, ring);
    ring.set(id, {
      runtime: newRuntime(id, nodeIds, transport, stateDir),
      transport,
    });
  }
  return ring;
}

function newRuntime(
  nodeId: number,
  nodes: number[],
  transport: RingTransport,
  stateDir: string,
): NodeRuntime {
  return new NodeRuntime({
    nodeId,
    nodes,
    totem: resolveTotemConfig({ tokenMs: 300, joinMs: 30, consensusMs: 360 }),
    transport,
    logger: new Logger({ toStderr: false, debug: "off", timestamp: false }),
    stateDir,
    seed: 7 + nodeId,
  });
}

async function until(what: string, ok: () => boolean): Promise<void> {
  const end = performance.now() + 10_000;
  while (!ok()) {
    if (performance.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

Deno.test("NodeRuntime flushes sends at once unless the turn delivered its own message", async () => {
  const stateDir = await Deno.makeTempDir();
  const { runtime: rt, transport } = newRing([1], stateDir).get(1)!;
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

Deno.test("NodeRuntime flushes at once after another node's message and delivers it after the pending I/O", async () => {
  const stateDir = await Deno.makeTempDir();
  const ring = newRing([1, 2], stateDir);
  for (const { runtime, transport: t } of ring.values()) {
    runtime.listen({
      deliver: (d) =>
        t.log.push(
          `deliver:${d.from}:${d.payload[0]}${t.receiving ? ":in-step" : ""}`,
        ),
    });
  }
  const [t1, t2] = [ring.get(1)!.transport, ring.get(2)!.transport];
  const [rt1, rt2] = [ring.get(1)!.runtime, ring.get(2)!.runtime];
  const delivered = (t: RingTransport) =>
    t.log.filter((e) => e.startsWith("deliver"));
  try {
    for (const { runtime } of ring.values()) runtime.start();
    await until(
      "a two-node ring",
      () =>
        [rt1, rt2].every((rt) =>
          rt.srp.state === "operational" && rt.srp.members.length === 2
        ),
    );
    t1.log.length = 0;
    t2.log.length = 0;
    assert.equal(rt2.send(new Uint8Array([4])), true);
    assert.equal(rt2.send(new Uint8Array([5])), true);
    await until(
      "both messages delivered at both nodes",
      () => delivered(t1).length === 2 && delivered(t2).length === 2,
    );
    // Node 1: the step that received node 2's messages sent its datagrams
    // at once (nothing of node 1's own waited for IPC writes), and the
    // listeners got the messages later, outside any step, in order.
    assert.deepEqual(delivered(t1), ["deliver:2:4", "deliver:2:5"]);
    const at1 = t1.log.indexOf("deliver:2:4");
    const lastRecv = t1.log.lastIndexOf("recv", at1);
    assert.equal(t1.log[lastRecv + 1], "flush", t1.log.join(" "));
    assert.equal(rt1.delivered, 2);
    // Node 2 delivered its own messages at once, inside the token step, and
    // its datagrams waited for the turn's IPC writes instead of a flush.
    assert.deepEqual(delivered(t2), [
      "deliver:2:4:in-step",
      "deliver:2:5:in-step",
    ]);
    const at2 = t2.log.indexOf("deliver:2:5:in-step");
    assert.notEqual(t2.log[at2 + 1], "flush", t2.log.join(" "));
  } finally {
    for (const { runtime } of ring.values()) runtime.shutdown();
    await Deno.remove(stateDir, { recursive: true });
  }
});
