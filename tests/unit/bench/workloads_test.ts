// The bench workloads against an in-memory engine: counting, gap, duplicate
// and reorder detection, TRY_AGAIN handling, percentiles and the report.
import assert from "node:assert/strict";
import type { CpgPort } from "../../../src/bench/cpg_port.ts";
import {
  HEADER_BYTES,
  median,
  quantile,
  readHeader,
  runLatency,
  runThroughput,
  writeHeader,
} from "../../../src/bench/workloads.ts";
import { formatReport } from "../../../src/bench/cli.ts";

type Deliver = (node: number, pid: number, payload: Uint8Array) => void;

/** A totally ordered bus: every accepted send reaches every port in order. */
class Bus {
  readonly ports: FakePort[] = [];
  /** Decides per send: deliver, drop at port `dropAt`, duplicate, refuse. */
  fault: (n: number) => "ok" | "try_again" | "dup" | { dropAt: number } = () =>
    "ok";
  #sends = 0;

  port(nodeId: number): FakePort {
    const p = new FakePort(this, nodeId);
    this.ports.push(p);
    return p;
  }

  send(from: FakePort, payload: Uint8Array): "ok" | "try_again" {
    const f = this.fault(this.#sends++);
    if (f === "try_again") return "try_again";
    const copy = payload.slice();
    queueMicrotask(() => {
      for (const [i, p] of this.ports.entries()) {
        if (typeof f === "object" && f.dropAt === i) continue;
        p.deliver(from.nodeId, 1, copy);
        if (f === "dup") p.deliver(from.nodeId, 1, copy);
      }
    });
    return "ok";
  }
}

class FakePort implements CpgPort {
  readonly engine = "fake";
  #handler: Deliver = () => {};
  constructor(readonly bus: Bus, readonly nodeId: number) {}
  join(): Promise<void> {
    return Promise.resolve();
  }
  send(payload: Uint8Array): Promise<"ok" | "try_again"> {
    return Promise.resolve(this.bus.send(this, payload));
  }
  onDeliver(h: Deliver): void {
    this.#handler = h;
  }
  deliver(node: number, pid: number, payload: Uint8Array): void {
    this.#handler(node, pid, payload);
  }
  memberCount(): number {
    return this.bus.ports.length;
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

function cluster(n: number): Bus {
  const bus = new Bus();
  for (let i = 1; i <= n; i++) bus.port(i);
  return bus;
}

Deno.test("header round trip; foreign payloads are not ours", () => {
  const buf = new Uint8Array(64);
  writeHeader(buf, 7, 2, 99, 123.5);
  assert.deepEqual(readHeader(buf), {
    runId: 7,
    sender: 2,
    seq: 99,
    sentAt: 123.5,
  });
  assert.equal(readHeader(new Uint8Array(64)), null);
  assert.equal(readHeader(new Uint8Array(HEADER_BYTES - 1)), null);
});

Deno.test("quantile and median", () => {
  const s = Array.from({ length: 100 }, (_, i) => i + 1);
  assert.equal(quantile(s, 0.5), 50);
  assert.equal(quantile(s, 0.99), 99);
  assert.equal(quantile(s, 1), 100);
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 2, 3]), 2.5);
});

Deno.test("throughput on a clean bus: every receiver gets every message", async () => {
  const bus = cluster(3);
  const r = await runThroughput(bus.ports, {
    size: 100,
    durationMs: 100,
    senders: "all",
    window: 8,
  });
  const sent = r.sendersResults.reduce((a, s) => a + s.accepted, 0);
  assert.ok(sent > 0);
  assert.equal(r.sendersResults.length, 3);
  for (const rx of r.receivers) {
    assert.equal(rx.delivered, sent);
    assert.equal(rx.bytes, sent * 100);
    assert.equal(rx.gaps + rx.duplicates + rx.outOfOrder, 0);
  }
  assert.equal(r.gaps + r.duplicates + r.outOfOrder + r.tryAgain, 0);
  assert.ok(r.msgsPerSec > 0);
});

Deno.test("throughput counts TRY_AGAIN and does not call it a gap", async () => {
  const bus = cluster(2);
  bus.fault = (n) => (n % 5 === 4 ? "try_again" : "ok");
  const r = await runThroughput(bus.ports, {
    size: 64,
    durationMs: 50,
    senders: "one",
  });
  assert.equal(r.sendersResults.length, 1);
  assert.ok(r.tryAgain > 0);
  assert.equal(r.gaps, 0);
  assert.equal(r.receivers[1].delivered, r.sendersResults[0].accepted);
});

Deno.test("throughput reports a lost message at the port that lost it", async () => {
  const bus = cluster(3);
  bus.fault = (n) => (n === 3 ? { dropAt: 2 } : "ok");
  const r = await runThroughput(bus.ports, {
    size: 64,
    durationMs: 30,
    senders: "one",
    drainMs: 200,
  });
  assert.deepEqual(r.receivers.map((x) => x.gaps), [0, 0, 1]);
  assert.equal(r.gaps, 1);
});

Deno.test("throughput reports duplicates", async () => {
  const bus = cluster(2);
  bus.fault = (n) => (n === 2 ? "dup" : "ok");
  const r = await runThroughput(bus.ports, {
    size: 64,
    durationMs: 30,
    senders: "one",
  });
  assert.deepEqual(r.receivers.map((x) => x.duplicates), [1, 1]);
  assert.equal(r.gaps, 0);
});

Deno.test("throughput reports reordering and ignores other runs' frames", async () => {
  const bus = cluster(1);
  const [p] = bus.ports;
  const run = runThroughput(bus.ports, {
    size: 64,
    durationMs: 30,
    senders: "one",
    drainMs: 200,
  });
  // A frame of an unknown run, and a stray non-bench message.
  const stray = new Uint8Array(64);
  writeHeader(stray, 1, 0, 0, 0);
  p.deliver(1, 1, stray);
  p.deliver(1, 1, new Uint8Array(10));
  const r = await run;
  assert.equal(r.receivers[0].outOfOrder, 0);
  assert.equal(r.receivers[0].delivered, r.sendersResults[0].accepted);
  // Reordering: replay an old sequence number of the current run by
  // hand through a second run whose bus swaps two deliveries.
  const bus2 = cluster(1);
  let held: Uint8Array | null = null;
  bus2.send = (from, payload) => {
    const copy = payload.slice();
    const h = readHeader(copy)!;
    if (h.seq === 1) held = copy;
    else {
      queueMicrotask(() => {
        bus2.ports[0].deliver(from.nodeId, 1, copy);
        if (h.seq === 2 && held !== null) {
          bus2.ports[0].deliver(from.nodeId, 1, held);
        }
      });
    }
    return "ok";
  };
  const r2 = await runThroughput(bus2.ports, {
    size: 64,
    durationMs: 30,
    senders: "one",
    drainMs: 200,
  });
  assert.equal(r2.receivers[0].outOfOrder, 1);
  // seq 1 arrived late: it is no gap, but it broke the order.
  assert.equal(r2.receivers[0].gaps, 1);
});

Deno.test("throughput refuses sizes below the header", async () => {
  await assert.rejects(
    () =>
      runThroughput(cluster(1).ports, {
        size: 8,
        durationMs: 10,
        senders: "one",
      }),
    /24\.\.1048576 bytes, got 8/,
  );
});

Deno.test("latency measures self-delivery and retries TRY_AGAIN", async () => {
  const bus = cluster(2);
  bus.fault = (n) => (n === 5 ? "try_again" : "ok");
  const r = await runLatency(bus.ports[0], {
    size: 1024,
    count: 50,
    warmup: 3,
  });
  assert.equal(r.count, 50);
  assert.equal(r.tryAgain, 1);
  assert.ok(r.p50Ms <= r.p90Ms && r.p90Ms <= r.p99Ms && r.p99Ms <= r.maxMs);
});

Deno.test("latency fails clearly when a message never comes back", async () => {
  const bus = cluster(1);
  bus.fault = () => ({ dropAt: 0 });
  await assert.rejects(
    () =>
      runLatency(bus.ports[0], {
        size: 64,
        count: 1,
        warmup: 0,
        timeoutMs: 50,
      }),
    /message 0 was not delivered back within 50 ms/,
  );
});

Deno.test("the human table shows every workload and the latency line", async () => {
  const bus = cluster(2);
  const t = await runThroughput(bus.ports, {
    size: 64,
    durationMs: 20,
    senders: "all",
  });
  const l = await runLatency(bus.ports[0], { size: 64, count: 5, warmup: 0 });
  const text = formatReport({
    engine: "fake",
    group: "g",
    nodes: [1, 2],
    throughput: [t],
    latency: l,
  }, 1);
  assert.match(text, /^fake bench: nodes 1, 2, group g/);
  assert.match(text, /\nall\s+64\s+\d+/);
  assert.match(text, /latency 64 B send -> self delivery, 5 messages: p50/);
});
