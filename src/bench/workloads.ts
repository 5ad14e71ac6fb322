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

/**
 * One port's bookkeeping of a throughput run. Exported so that a run can be
 * split over processes (scripts/bench runs one agent per node, each in its
 * network namespace); `runThroughput` is the one-process composition.
 */
export class ThroughputReceiver {
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

  constructor(readonly runId: number, senders: number) {
    this.highest = new Array(senders).fill(-1);
    this.distinct = new Array(senders).fill(0);
  }

  /** Starts counting what `port` delivers. */
  listen(port: CpgPort): this {
    port.onDeliver((_node, _pid, payload) => this.take(payload));
    return this;
  }

  /** True once every accepted message (per sender) has arrived here. */
  hasAll(accepted: readonly number[]): boolean {
    return accepted.every((n, s) => this.distinct[s] >= n);
  }

  /**
   * Waits until `hasAll(accepted)`, or deliveries stop for `quietMs`, or
   * `drainMs` passed.
   */
  async drain(
    accepted: readonly number[],
    drainMs: number,
    quietMs = 1000,
  ): Promise<void> {
    const end = performance.now() + drainMs;
    let last = -1;
    let quietSince = performance.now();
    while (performance.now() < end && !this.hasAll(accepted)) {
      if (this.delivered !== last) {
        last = this.delivered;
        quietSince = performance.now();
      } else if (performance.now() - quietSince > quietMs) break;
      await sleep(20);
    }
  }

  /** This port's result; `t0` is when sending started (this clock). */
  result(
    nodeId: number,
    accepted: readonly number[],
    t0: number,
  ): ReceiverResult {
    const seconds = Math.max(1e-3, ((this.lastAt || t0) - t0) / 1000);
    return {
      nodeId,
      delivered: this.delivered,
      bytes: this.bytes,
      msgsPerSec: this.delivered / seconds,
      mbPerSec: this.bytes / seconds / 1e6,
      gaps: accepted.reduce(
        (a, n, s) => a + Math.max(0, n - (this.distinct[s] ?? 0)),
        0,
      ),
      duplicates: this.duplicates,
      outOfOrder: this.outOfOrder,
    };
  }

  take(payload: Uint8Array): boolean {
    const h = readHeader(payload);
    if (
      h === null || h.runId !== this.runId || h.sender >= this.highest.length
    ) {
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

/** A fresh run id (distinct between runs of one process). */
export function newRunId(): number {
  return nextRunId++ >>> 0;
}

/** What one sender did in a throughput run. */
export interface SendOutcome {
  accepted: number;
  tryAgain: number;
}

/**
 * Sends `size`-byte messages as sender `index` of run `runId` until
 * `endAt` (`performance.now()` time), with up to `window` sends in flight.
 */
export async function sendUntil(
  port: CpgPort,
  o: {
    runId: number;
    index: number;
    size: number;
    endAt: number;
    window: number;
  },
): Promise<SendOutcome> {
  const out = { accepted: 0, tryAgain: 0 };
  let seq = 0;
  const inFlight: Promise<void>[] = [];
  let refused = false;
  // A buffer per send in flight (the engine may hold it until the send
  // answers), reused after: allocating 64 KiB per message costs the sender
  // more than the message itself.
  const free: Uint8Array[] = [];
  while (performance.now() < o.endAt) {
    const buf = free.pop() ?? new Uint8Array(o.size);
    writeHeader(buf, o.runId, o.index, seq++, performance.now());
    inFlight.push(
      port.send(buf).then((r) => {
        free.push(buf);
        if (r === "ok") out.accepted++;
        else {
          out.tryAgain++;
          refused = true;
        }
      }),
    );
    if (inFlight.length >= o.window || refused) {
      await Promise.all(inFlight.splice(0));
      if (refused) {
        // Give the ring a moment to drain instead of spinning.
        refused = false;
        await sleep(1);
      }
    }
  }
  await Promise.all(inFlight);
  return out;
}

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
  const runId = newRunId();
  const sending = o.senders === "one" ? [0] : ports.map((_, i) => i);
  const receivers = ports.map((p) =>
    new ThroughputReceiver(runId, ports.length).listen(p)
  );
  const t0 = performance.now();
  const progress = o.onProgress === undefined ? undefined : setInterval(() => {
    o.onProgress!({
      elapsedMs: performance.now() - t0,
      delivered: receivers.map((r) => r.delivered),
    });
  }, 1000);
  const outcomes: SendOutcome[] = ports.map(() => ({
    accepted: 0,
    tryAgain: 0,
  }));
  try {
    await Promise.all(sending.map(async (i) => {
      outcomes[i] = await sendUntil(ports[i], {
        runId,
        index: i,
        size: o.size,
        endAt: t0 + o.durationMs,
        window: o.window ?? 32,
      });
    }));
  } finally {
    if (progress !== undefined) clearInterval(progress);
  }
  const accepted = outcomes.map((x) => x.accepted);
  await Promise.all(receivers.map((r) => r.drain(accepted, o.drainMs ?? 5000)));
  return summarize(
    ports[0].engine,
    o,
    sending.map((i) => ({ nodeId: ports[i].nodeId, ...outcomes[i] })),
    receivers.map((r, i) => r.result(ports[i].nodeId, accepted, t0)),
  );
}

/** Folds per-sender and per-receiver results into one run's result. */
export function summarize(
  engine: string,
  o: { size: number; senders: "one" | "all"; durationMs: number },
  sendersResults: SenderResult[],
  receivers: ReceiverResult[],
): ThroughputResult {
  return {
    engine,
    size: o.size,
    senders: o.senders,
    durationMs: o.durationMs,
    sendersResults,
    receivers,
    msgsPerSec: median(receivers.map((r) => r.msgsPerSec)),
    mbPerSec: median(receivers.map((r) => r.mbPerSec)),
    gaps: receivers.reduce((a, r) => a + r.gaps, 0),
    duplicates: receivers.reduce((a, r) => a + r.duplicates, 0),
    outOfOrder: receivers.reduce((a, r) => a + r.outOfOrder, 0),
    tryAgain: sendersResults.reduce((a, s) => a + s.tryAgain, 0),
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
  const runId = newRunId();
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
