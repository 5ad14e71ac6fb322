/**
 * Engine-agnostic CPG workloads for `denosync bench` and the side-by-side
 * comparison in scripts/bench: throughput (one sender or every port sending
 * for a while) and latency (one message at a time, send to self-delivery).
 *
 * Every payload starts with a header so receivers can check what they get:
 *
 *   offset 0  u32  MAGIC
 *   offset 4  u32  run id (a fresh one per workload: late frames of an
 *                  earlier run are counted as stale, not as duplicates)
 *   offset 8  u32  sender index (position of the sending port)
 *   offset 12 u32  sequence number, from 0 per sender and run
 *   offset 16 f64  send time (`performance.now()` of the sending process)
 *
 * A sequence number is spent on every attempt, accepted or not, because a
 * pipelined sender learns about TRY_AGAIN only after later sends went out.
 * So receivers check that each sender's numbers only grow (a repeat is a
 * duplicate, a decrease is out of order), and a gap is an accepted message
 * that no receiver copy ever shows: `accepted - delivered` per sender.
 *
 * @module
 */
import type { CpgPort } from "./cpg_port.ts";

/** Payload bytes taken by the header; messages must be at least this big. */
export const HEADER_BYTES = 24;
const MAGIC = 0x44534231; // "DSB1"

/** Largest message `denosync bench` sends (the daemon's limit is 1 MiB). */
export const MAX_SIZE = 1 << 20;

/** Options of `runThroughput`. */
export interface ThroughputOptions {
  /** Bytes per message, header included (`HEADER_BYTES`..`MAX_SIZE`). */
  size: number;
  /** How long senders send, in ms. */
  durationMs: number;
  /** Port 0 alone, or every port. */
  senders: "one" | "all";
  /** Sends in flight per sender before waiting for their answers. */
  window?: number;
  /** How long to wait for the last deliveries after sending stopped, in ms. */
  drainMs?: number;
  /** Called about once a second while sending. */
  onProgress?: (p: Progress) => void;
}

/** What a running workload reports once a second. */
export interface Progress {
  readonly elapsedMs: number;
  /** Messages delivered so far at each port, in port order. */
  readonly delivered: readonly number[];
}

/** One port's view of a throughput run. */
export interface ReceiverResult {
  readonly nodeId: number;
  readonly delivered: number;
  readonly bytes: number;
  /** Delivered messages per second from the first send to its last delivery. */
  readonly msgsPerSec: number;
  readonly mbPerSec: number;
  /** Accepted messages (of any sender) this port never delivered. */
  readonly gaps: number;
  /** Messages delivered more than once. */
  readonly duplicates: number;
  /** Messages whose sequence number went back for their sender. */
  readonly outOfOrder: number;
}

/** One sending port's counts. */
export interface SenderResult {
  readonly nodeId: number;
  /** Messages the engine accepted. */
  readonly accepted: number;
  /** Sends refused with TRY_AGAIN (retried later with a new number). */
  readonly tryAgain: number;
}

/** The outcome of `runThroughput`. */
export interface ThroughputResult {
  readonly engine: string;
  readonly size: number;
  readonly senders: "one" | "all";
  readonly durationMs: number;
  readonly sendersResults: readonly SenderResult[];
  readonly receivers: readonly ReceiverResult[];
  /** Median over receivers. */
  readonly msgsPerSec: number;
  readonly mbPerSec: number;
  readonly gaps: number;
  readonly duplicates: number;
  readonly outOfOrder: number;
  readonly tryAgain: number;
}

/** The outcome of `runLatency`. */
export interface LatencyResult {
  readonly engine: string;
  readonly size: number;
  readonly count: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly tryAgain: number;
}

let nextRunId = (Date.now() & 0xffff) << 8;

/** Writes the header into `buf` (which is reused between sends). */
export function writeHeader(
  buf: Uint8Array,
  runId: number,
  sender: number,
  seq: number,
  sentAt: number,
): void {
  const v = new DataView(buf.buffer, buf.byteOffset, HEADER_BYTES);
  v.setUint32(0, MAGIC, true);
  v.setUint32(4, runId, true);
  v.setUint32(8, sender, true);
  v.setUint32(12, seq, true);
  v.setFloat64(16, sentAt, true);
}

/** The header of a delivered payload, or null when it is not ours. */
export function readHeader(
  payload: Uint8Array,
): { runId: number; sender: number; seq: number; sentAt: number } | null {
  if (payload.length < HEADER_BYTES) return null;
  const v = new DataView(payload.buffer, payload.byteOffset, HEADER_BYTES);
  if (v.getUint32(0, true) !== MAGIC) return null;
  return {
    runId: v.getUint32(4, true),
    sender: v.getUint32(8, true),
    seq: v.getUint32(12, true),
    sentAt: v.getFloat64(16, true),
  };
}

/** Checks `size` against what the workloads can send. */
export function checkSize(size: number): void {
  if (!Number.isInteger(size) || size < HEADER_BYTES || size > MAX_SIZE) {
    throw new RangeError(
      `message size must be an integer in ${HEADER_BYTES}..${MAX_SIZE} bytes, got ${size}`,
    );
  }
}

/** Per-receiver bookkeeping of one run. */
class Receiver {
  delivered = 0;
  bytes = 0;
  duplicates = 0;
  outOfOrder = 0;
  stale = 0;
  lastAt = 0;
  /** Highest sequence number seen per sender, -1 before any. */
  readonly highest: number[];
  /** Distinct messages per sender. */
  readonly distinct: number[];

  constructor(senders: number) {
    this.highest = new Array(senders).fill(-1);
    this.distinct = new Array(senders).fill(0);
  }

  take(runId: number, payload: Uint8Array): boolean {
    const h = readHeader(payload);
    if (h === null || h.runId !== runId || h.sender >= this.highest.length) {
      this.stale++;
      return false;
    }
    this.delivered++;
    this.bytes += payload.length;
    this.lastAt = performance.now();
    const top = this.highest[h.sender];
    if (h.seq > top) {
      this.highest[h.sender] = h.seq;
      this.distinct[h.sender]++;
    } else if (h.seq === top) {
      this.duplicates++;
    } else {
      // Either an old copy (duplicate) or a reordering: both break the
      // contract, and without a per-message set we cannot tell which.
      this.outOfOrder++;
    }
    return true;
  }
}

/** The value at quantile `q` of ascending `sorted`. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1);
  return sorted[Math.max(0, i)];
}

/** The median of `values` (any order). */
export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Every port (or port 0) sends `size`-byte messages for `durationMs`; every
 * port counts what it receives. Resolves once deliveries have stopped.
 */
export async function runThroughput(
  ports: readonly CpgPort[],
  o: ThroughputOptions,
): Promise<ThroughputResult> {
  checkSize(o.size);
  if (ports.length === 0) throw new RangeError("no ports to run on");
  const runId = nextRunId++ >>> 0;
  const window = o.window ?? 32;
  const drainMs = o.drainMs ?? 5000;
  const sending = o.senders === "one" ? [0] : ports.map((_, i) => i);
  const receivers = ports.map(() => new Receiver(ports.length));
  ports.forEach((p, i) =>
    p.onDeliver((_node, _pid, payload) => {
      receivers[i].take(runId, payload);
    })
  );
  const accepted = new Array(ports.length).fill(0);
  const tryAgain = new Array(ports.length).fill(0);
  const t0 = performance.now();
  const end = t0 + o.durationMs;
  const progress = o.onProgress === undefined ? undefined : setInterval(() => {
    o.onProgress!({
      elapsedMs: performance.now() - t0,
      delivered: receivers.map((r) => r.delivered),
    });
  }, 1000);
  try {
    await Promise.all(sending.map(async (i) => {
      const port = ports[i];
      let seq = 0;
      const inFlight: Promise<void>[] = [];
      let refused = false;
      while (performance.now() < end) {
        // A buffer per send: the engine may hold it until the send answers.
        const buf = new Uint8Array(o.size);
        writeHeader(buf, runId, i, seq++, performance.now());
        inFlight.push(
          port.send(buf).then((r) => {
            if (r === "ok") accepted[i]++;
            else {
              tryAgain[i]++;
              refused = true;
            }
          }),
        );
        if (inFlight.length >= window || refused) {
          await Promise.all(inFlight.splice(0));
          if (refused) {
            // Give the ring a moment to drain instead of spinning.
            refused = false;
            await sleep(1);
          }
        }
      }
      await Promise.all(inFlight);
    }));
  } finally {
    if (progress !== undefined) clearInterval(progress);
  }
  // Drain: until every port has every accepted message, or nothing moved
  // for a while, or the drain budget is spent.
  const total = accepted.reduce((a, b) => a + b, 0);
  const drainEnd = performance.now() + drainMs;
  let last = -1;
  let quietSince = performance.now();
  while (performance.now() < drainEnd) {
    const sum = receivers.reduce((a, r) => a + r.delivered, 0);
    if (
      receivers.every((r) => r.distinct.reduce((a, b) => a + b, 0) >= total)
    ) {
      break;
    }
    if (sum !== last) {
      last = sum;
      quietSince = performance.now();
    } else if (performance.now() - quietSince > 1000) break;
    await sleep(20);
  }
  const results: ReceiverResult[] = receivers.map((r, i) => {
    const seconds = Math.max(1e-3, ((r.lastAt || t0) - t0) / 1000);
    const gaps = accepted.reduce(
      (a, n, s) => a + Math.max(0, n - r.distinct[s]),
      0,
    );
    return {
      nodeId: ports[i].nodeId,
      delivered: r.delivered,
      bytes: r.bytes,
      msgsPerSec: r.delivered / seconds,
      mbPerSec: r.bytes / seconds / 1e6,
      gaps,
      duplicates: r.duplicates,
      outOfOrder: r.outOfOrder,
    };
  });
  const msgsPerSec = median(results.map((r) => r.msgsPerSec));
  return {
    engine: ports[0].engine,
    size: o.size,
    senders: o.senders,
    durationMs: o.durationMs,
    sendersResults: sending.map((i) => ({
      nodeId: ports[i].nodeId,
      accepted: accepted[i],
      tryAgain: tryAgain[i],
    })),
    receivers: results,
    msgsPerSec,
    mbPerSec: median(results.map((r) => r.mbPerSec)),
    gaps: results.reduce((a, r) => a + r.gaps, 0),
    duplicates: results.reduce((a, r) => a + r.duplicates, 0),
    outOfOrder: results.reduce((a, r) => a + r.outOfOrder, 0),
    tryAgain: tryAgain.reduce((a, b) => a + b, 0),
  };
}

/** Options of `runLatency`. */
export interface LatencyOptions {
  size: number;
  count: number;
  /** Unmeasured round trips first, to warm caches and JITs. */
  warmup?: number;
  /** Longest wait for one self-delivery before giving up, in ms. */
  timeoutMs?: number;
  onProgress?: (done: number) => void;
}

/**
 * Port 0 sends one message at a time and waits for its own copy; the
 * samples are send-to-self-delivery times in ms.
 */
export async function runLatency(
  port: CpgPort,
  o: LatencyOptions,
): Promise<LatencyResult> {
  checkSize(o.size);
  if (!Number.isInteger(o.count) || o.count < 1) {
    throw new RangeError(
      `latency count must be a positive integer, got ${o.count}`,
    );
  }
  const runId = nextRunId++ >>> 0;
  const timeoutMs = o.timeoutMs ?? 10_000;
  let waiting: { seq: number; done: (t: number) => void } | null = null;
  port.onDeliver((_node, _pid, payload) => {
    const h = readHeader(payload);
    if (h === null || h.runId !== runId || h.sender !== 0) return;
    if (waiting !== null && h.seq === waiting.seq) {
      waiting.done(performance.now());
    }
  });
  const warmup = o.warmup ?? Math.min(100, o.count);
  const samples: number[] = [];
  let tryAgain = 0;
  let seq = 0;
  for (let k = 0; k < warmup + o.count; k++) {
    const buf = new Uint8Array(o.size);
    for (;;) {
      const mySeq = seq++;
      const arrived = new Promise<number>((done) => {
        waiting = { seq: mySeq, done };
      });
      const t0 = performance.now();
      writeHeader(buf, runId, 0, mySeq, t0);
      if (await port.send(buf) === "try_again") {
        tryAgain++;
        await sleep(1);
        continue;
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      const t1 = await Promise.race([
        arrived,
        new Promise<null>((r) => {
          timer = setTimeout(() => r(null), timeoutMs);
        }),
      ]);
      clearTimeout(timer);
      if (t1 === null) {
        throw new Error(
          `latency: message ${mySeq} was not delivered back within ${timeoutMs} ms`,
        );
      }
      if (k >= warmup) samples.push(t1 - t0);
      break;
    }
    if (
      k >= warmup && o.onProgress !== undefined && (k - warmup) % 100 === 99
    ) {
      o.onProgress(k - warmup + 1);
    }
  }
  waiting = null;
  samples.sort((a, b) => a - b);
  return {
    engine: port.engine,
    size: o.size,
    count: samples.length,
    p50Ms: quantile(samples, 0.5),
    p90Ms: quantile(samples, 0.9),
    p99Ms: quantile(samples, 0.99),
    maxMs: samples[samples.length - 1],
    tryAgain,
  };
}

/**
 * Resolves once every port sees at least `count` members in its group, or
 * throws after `timeoutMs`.
 */
export async function waitForMembers(
  ports: readonly CpgPort[],
  count: number,
  timeoutMs = 10_000,
): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!ports.every((p) => p.memberCount() >= count)) {
    if (performance.now() > end) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${count} group members (seen: ${
          ports.map((p) => p.memberCount()).join(", ")
        })`,
      );
    }
    await sleep(20);
  }
}
