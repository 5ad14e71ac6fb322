/**
 * Per-node event logs of a simulation run (TOTEM.md 9.1): start, crash,
 * submit, confchg, deliver, state transitions, ring-seq persistence, pauses
 * and faults. The EVS checker (checker.ts) works over these logs only, never
 * over core internals, so a history can also be written by hand in tests.
 */
import type {
  Guarantee,
  NodeId,
  RingId,
  SrpState,
  TransitionReason,
} from "../totem/types.ts";

/**
 * Identity of an application message, embedded in its payload by the test
 * client: the sending node, its incarnation (restart count) and a counter.
 */
export interface MsgId {
  readonly sender: NodeId;
  readonly inc: number;
  readonly counter: number;
}

/** What happened to stable storage when an incarnation started. */
export type StorageFate = "fresh" | "kept" | "lost" | "rolled_back";

/** Fields every history entry has: global order and virtual time. */
interface EntryBase {
  /** Position in the global order of all entries of the run. */
  readonly i: number;
  /** Virtual time in milliseconds. */
  readonly t: number;
}

/** One logged event of one node. */
export type HistoryEntry =
  | EntryBase & {
    readonly kind: "start";
    readonly inc: number;
    readonly storage: StorageFate;
    readonly storedRingSeq: number | null;
  }
  | EntryBase & { readonly kind: "crash" }
  | EntryBase & {
    readonly kind: "submit";
    readonly msg: string;
    readonly guarantee: Guarantee;
  }
  | EntryBase & { readonly kind: "refused"; readonly msg: string }
  | EntryBase & {
    readonly kind: "confchg";
    readonly type: "TRANS" | "REG";
    readonly ringId: RingId;
    readonly members: readonly NodeId[];
    readonly left: readonly NodeId[];
    readonly joined: readonly NodeId[];
  }
  | EntryBase & {
    readonly kind: "deliver";
    /** Message key (`msgKey`), or null when the payload did not decode. */
    readonly msg: string | null;
    readonly sender: NodeId;
    readonly ringId: RingId;
    readonly seq: number;
    readonly safe: boolean;
  }
  | EntryBase & {
    readonly kind: "state";
    readonly from: SrpState;
    readonly to: SrpState;
    readonly reason: TransitionReason;
  }
  | EntryBase & { readonly kind: "persist"; readonly ringSeq: number }
  | EntryBase & { readonly kind: "pause" }
  | EntryBase & { readonly kind: "resume" }
  | EntryBase & { readonly kind: "fault"; readonly text: string }
  | EntryBase & { readonly kind: "log"; readonly text: string };

/** The logs of a whole run plus what the checker needs to know about it. */
export interface History {
  /** Configured nodes, ascending. */
  readonly nodes: readonly NodeId[];
  /** Entries of each node in its local order (also ascending `i`). */
  readonly logs: ReadonlyMap<NodeId, readonly HistoryEntry[]>;
  /** `config.seqnoStart`: the first message of every ring has this + 1. */
  readonly seqnoStart: number;
  /** Start of the quiet connected phase, or null if the run has none (no L1). */
  readonly quietStartMs: number | null;
  /** Time by which L1 requires one regular configuration of all live nodes. */
  readonly l1DeadlineMs: number | null;
  /** Virtual time at which the run ended. */
  readonly endMs: number;
}

/** Pseudo-node id of the log of network-wide faults (no real node is 0). */
export const NET_LOG = 0;

/** Canonical text key of a message id: `sender/inc/counter`. */
export function msgKey(id: MsgId): string {
  return `${id.sender}/${id.inc}/${id.counter}`;
}

/** Parses a key made by `msgKey`. */
export function parseMsgKey(key: string): MsgId {
  const [sender, inc, counter] = key.split("/").map(Number);
  return { sender, inc, counter };
}

/** Bytes of the message id at the start of every test payload. */
export const MSG_ID_BYTES = 12;

/**
 * Test-client payload: `u32 sender | u32 inc | u32 counter` (little endian),
 * then `padBytes` bytes of a pattern derived from the counter, so that a
 * corrupted or spliced payload is detected.
 */
export function encodeMsgPayload(id: MsgId, padBytes = 0): Uint8Array {
  const bytes = new Uint8Array(MSG_ID_BYTES + padBytes);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, id.sender, true);
  view.setUint32(4, id.inc, true);
  view.setUint32(8, id.counter, true);
  for (let k = 0; k < padBytes; k++) {
    bytes[MSG_ID_BYTES + k] = (id.counter + k) & 0xff;
  }
  return bytes;
}

/** Inverse of `encodeMsgPayload`; null for anything the test client did not make. */
export function decodeMsgPayload(bytes: Uint8Array): MsgId | null {
  if (bytes.length < MSG_ID_BYTES) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const id: MsgId = {
    sender: view.getUint32(0, true),
    inc: view.getUint32(4, true),
    counter: view.getUint32(8, true),
  };
  for (let k = MSG_ID_BYTES; k < bytes.length; k++) {
    if (bytes[k] !== ((id.counter + k - MSG_ID_BYTES) & 0xff)) return null;
  }
  return id;
}

/** Distributes `Omit<HistoryEntry, "i" | "t">` over the union members. */
export type EntryBody = HistoryEntry extends infer E
  ? E extends HistoryEntry ? Omit<E, "i" | "t"> : never
  : never;

/** Appends entries to per-node logs with a global order counter. */
export class HistoryRecorder {
  readonly nodes: readonly NodeId[];
  #logs = new Map<NodeId, HistoryEntry[]>();
  #next = 0;

  /** Called with every entry as it is recorded (narration, observers). */
  onRecord: ((node: NodeId, entry: HistoryEntry) => void) | null = null;

  /**
   * `nodes` are the configured nodes; the pseudo-node `NET_LOG` (0) always
   * has a log too, for network-wide fault notes.
   */
  constructor(nodes: readonly NodeId[]) {
    this.nodes = [...nodes].sort((a, b) => a - b);
    this.#logs.set(NET_LOG, []);
    for (const id of this.nodes) this.#logs.set(id, []);
  }

  /** Number of entries recorded so far (the next entry's `i`). */
  get count(): number {
    return this.#next;
  }

  /** Records `body` for `node` at virtual time `t`; returns the entry. */
  record(node: NodeId, t: number, body: EntryBody): HistoryEntry {
    const entry = { i: this.#next++, t, ...body } as HistoryEntry;
    this.#logs.get(node)!.push(entry);
    this.onRecord?.(node, entry);
    return entry;
  }

  /** Entries of one node so far. */
  log(node: NodeId): readonly HistoryEntry[] {
    return this.#logs.get(node) ?? [];
  }

  /** Freezes the recorded logs into a `History`. */
  toHistory(
    meta: Omit<History, "nodes" | "logs">,
  ): History {
    return { nodes: this.nodes, logs: this.#logs, ...meta };
  }
}

/** One-line human-readable form of an entry, for traces. */
export function formatEntry(node: NodeId, e: HistoryEntry): string {
  const who = node === NET_LOG ? "net" : `n${node}`;
  const head = `${e.t.toFixed(1).padStart(9)}ms ${who} #${e.i}`;
  const ring = (r: RingId): string => `${r.rep}.${r.seq}`;
  const ids = (xs: readonly NodeId[]): string => `[${xs.join(",")}]`;
  switch (e.kind) {
    case "start":
      return `${head} start inc=${e.inc} storage=${e.storage} storedRingSeq=${e.storedRingSeq}`;
    case "crash":
      return `${head} CRASH`;
    case "submit":
      return `${head} submit ${e.msg} ${e.guarantee}`;
    case "refused":
      return `${head} submit refused (try_again) ${e.msg}`;
    case "confchg":
      return `${head} confchg ${e.type} ring=${ring(e.ringId)} members=${
        ids(e.members)
      } left=${ids(e.left)} joined=${ids(e.joined)}`;
    case "deliver":
      return `${head} deliver ${
        e.msg ?? "<undecodable>"
      } from=${e.sender} ring=${ring(e.ringId)} seq=${e.seq}${
        e.safe ? " safe" : ""
      }`;
    case "state":
      return `${head} state ${e.from} -> ${e.to} (${e.reason})`;
    case "persist":
      return `${head} persist ringSeq=${e.ringSeq}`;
    case "pause":
      return `${head} PAUSE`;
    case "resume":
      return `${head} RESUME`;
    case "fault":
      return `${head} fault: ${e.text}`;
    case "log":
      return `${head} log: ${e.text}`;
  }
}

/**
 * 64-bit FNV-1a (as two 32-bit lanes) over the canonical text of every entry
 * in global order. Two runs of the same seed must give the same hash.
 */
export function hashHistory(history: History): string {
  const all: [NodeId, HistoryEntry][] = [];
  for (const node of [...history.logs.keys()].sort((a, b) => a - b)) {
    for (const e of history.logs.get(node) ?? []) all.push([node, e]);
  }
  all.sort((a, b) => a[1].i - b[1].i);
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193 ^ 0x5bd1e995;
  for (const [node, e] of all) {
    const text = `${node}|${JSON.stringify(e)}\n`;
    for (let k = 0; k < text.length; k++) {
      const c = text.charCodeAt(k);
      h1 = Math.imul(h1 ^ c, 0x01000193) >>> 0;
      h2 = Math.imul(h2 ^ c, 0x01000193 ^ 0x2f) >>> 0;
      h2 = (h2 ^ (h1 >>> 7)) >>> 0;
    }
  }
  return h1.toString(16).padStart(8, "0") + h2.toString(16).padStart(8, "0");
}
