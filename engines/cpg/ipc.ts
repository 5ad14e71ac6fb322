/**
 * CPG's IPC payloads: requests from clients, their replies, and the
 * callbacks the daemon pushes (cpg_overview(3): deliver, confchg, totem
 * confchg). These are the bytes inside the IPC server's framing; the
 * request function numbers follow Corosync's `MESSAGE_REQ_CPG_*` where
 * they exist. Little-endian; decoders never throw (the daemon decodes
 * requests from untrusted clients, the client library decodes callbacks).
 *
 * Requests (fn: payload → reply payload on CS_OK):
 *
 * ```
 * 0 join                  u32 flags | u16 len | group          → (empty)
 * 1 leave                 (empty)                              → (empty)
 * 2 mcast                 u8 guarantee | message (rest)        → (empty)
 * 3 membership_get        u16 len | group                      → u32 n | n × (u32 nodeId | u32 pid)
 * 4 local_get             (empty)                              → u32 nodeId
 * 5 iteration_initialize  u8 type | [u16 len | group]          → u32 handle
 * 6 iteration_next        u32 handle                           → u16 len | group | u32 nodeId | u32 pid
 * 7 iteration_finalize    u32 handle                           → (empty)
 * ```
 *
 * Callbacks (`u8 kind` first):
 *
 * ```
 * 1 deliver        u16 len | group | u32 nodeId | u32 pid | u32 len | message
 * 2 confchg        u16 len | group | u32 n | n × (u32 nodeId | u32 pid)
 *                  | u32 n | n × (u32 nodeId | u32 pid | u32 reason)   (left)
 *                  | u32 n | n × (u32 nodeId | u32 pid | u32 reason)   (joined)
 * 3 totem_confchg  u32 rep | u64 seq | u32 n | n × u32 nodeId
 * ```
 *
 * @module
 */
import {
  ByteReader,
  ByteWriter,
  finishDecode,
  utf8Length,
} from "../../src/exec/bytes.ts";
import { assert, unreachable } from "../../src/lib/assert.ts";
import { gather } from "../../src/lib/gather.ts";
import type {
  Decoded,
  Guarantee,
  NodeId,
  RingId,
} from "../../src/totem/types.ts";
import {
  CPG_GROUP_NAME_BYTES_MAX,
  CPG_MESSAGE_BYTES_MAX,
  type CpgReasonCode,
  DOWNLIST_ENTRIES_MAX,
} from "./wire.ts";

/** Request function numbers. */
export const CPG_REQUEST_FN = {
  join: 0,
  leave: 1,
  mcast: 2,
  membership_get: 3,
  local_get: 4,
  iteration_initialize: 5,
  iteration_next: 6,
  iteration_finalize: 7,
} as const;

/** Join flag: send a totem confchg callback as soon as the join completes. */
export const CPG_JOIN_FLAG_INITIAL_TOTEM_CONF = 1;

/** `cpg_iteration_type_t`. */
export const CpgIterationType = { NAME_ONLY: 1, ONE_GROUP: 2, ALL: 3 } as const;

/** Most entries a membership list or confchg callback may carry. */
export const CPG_MEMBERS_MAX = 65_536;

/** A process: node and pid. */
export interface CpgProcess {
  readonly nodeId: NodeId;
  readonly pid: number;
}

/** A process that joined or left, with the reason. */
export interface CpgAddress extends CpgProcess {
  readonly reason: CpgReasonCode;
}

/** One item of an iteration. */
export interface CpgIterationItem {
  readonly group: string;
  readonly nodeId: NodeId;
  readonly pid: number;
}

/** A decoded request. */
export type CpgRequest =
  | { readonly fn: "join"; readonly flags: number; readonly group: string }
  | { readonly fn: "leave" }
  | {
    readonly fn: "mcast";
    readonly guarantee: Guarantee;
    readonly message: Uint8Array;
  }
  | { readonly fn: "membership_get"; readonly group: string }
  | { readonly fn: "local_get" }
  | {
    readonly fn: "iteration_initialize";
    readonly iterationType: number;
    readonly group: string | null;
  }
  | {
    readonly fn: "iteration_next" | "iteration_finalize";
    readonly handle: number;
  };

/** A callback pushed to a client. */
export type CpgCallback =
  | {
    readonly kind: "deliver";
    readonly group: string;
    readonly nodeId: NodeId;
    readonly pid: number;
    readonly message: Uint8Array;
  }
  | {
    readonly kind: "confchg";
    readonly group: string;
    readonly members: readonly CpgProcess[];
    readonly left: readonly CpgAddress[];
    readonly joined: readonly CpgAddress[];
  }
  | {
    readonly kind: "totem_confchg";
    readonly ringId: RingId;
    readonly members: readonly NodeId[];
  };

/** Function number of a request. */
export function requestFn(req: CpgRequest): number {
  return CPG_REQUEST_FN[req.fn];
}

/**
 * The guarantee byte in front of an mcast, shared by every request: parts
 * are only ever copied on, and a buffer per message costs the client 1.1 µs
 * (small_bytes.ts).
 */
const GUARANTEE_AGREED = new Uint8Array([0]);
const GUARANTEE_SAFE = new Uint8Array([1]);

/**
 * Encodes a request payload as parts (client side): an mcast is its
 * guarantee byte and the application's message as given, which the IPC
 * writer sends without copying it behind the byte.
 */
export function encodeCpgRequestParts(req: CpgRequest): readonly Uint8Array[] {
  if (req.fn !== "mcast") return [encodeCpgRequest(req)];
  assert(req.message.length <= CPG_MESSAGE_BYTES_MAX, "message too big");
  return [
    req.guarantee === "safe" ? GUARANTEE_SAFE : GUARANTEE_AGREED,
    req.message,
  ];
}

/** Encodes a request payload (client side). */
export function encodeCpgRequest(req: CpgRequest): Uint8Array {
  if (req.fn === "mcast") return gather(encodeCpgRequestParts(req));
  const w = new ByteWriter(32);
  switch (req.fn) {
    case "join":
      w.u32(req.flags).name(req.group);
      break;
    case "leave":
    case "local_get":
      break;
    case "membership_get":
      w.name(req.group);
      break;
    case "iteration_initialize":
      w.u8(req.iterationType);
      if (req.group !== null) w.name(req.group);
      break;
    case "iteration_next":
    case "iteration_finalize":
      w.u32(req.handle);
      break;
    default:
      unreachable(req);
  }
  return w.finish();
}

/** Decodes a request payload of function `fn` (daemon side). Never throws. */
export function decodeCpgRequest(
  fn: number,
  bytes: Uint8Array,
): Decoded<CpgRequest> {
  const r = new ByteReader(bytes);
  const group = (): string => r.name(CPG_GROUP_NAME_BYTES_MAX, "group");
  switch (fn) {
    case CPG_REQUEST_FN.join: {
      const flags = r.u32("flags");
      return finishDecode<CpgRequest>(r, { fn: "join", flags, group: group() });
    }
    case CPG_REQUEST_FN.leave:
      return finishDecode<CpgRequest>(r, { fn: "leave" });
    case CPG_REQUEST_FN.mcast: {
      const g = r.u8("guarantee");
      if (r.ok && g > 1) r.fail(`guarantee ${g}`);
      if (r.ok && r.remaining > CPG_MESSAGE_BYTES_MAX) {
        r.fail(`message length ${r.remaining} above ${CPG_MESSAGE_BYTES_MAX}`);
      }
      const message = r.rest();
      return finishDecode<CpgRequest>(r, {
        fn: "mcast",
        guarantee: g === 1 ? "safe" : "agreed",
        message,
      });
    }
    case CPG_REQUEST_FN.membership_get:
      return finishDecode<CpgRequest>(r, {
        fn: "membership_get",
        group: group(),
      });
    case CPG_REQUEST_FN.local_get:
      return finishDecode<CpgRequest>(r, { fn: "local_get" });
    case CPG_REQUEST_FN.iteration_initialize: {
      const iterationType = r.u8("iteration type");
      if (r.ok && (iterationType < 1 || iterationType > 3)) {
        r.fail(`iteration type ${iterationType}`);
      }
      const g = iterationType === CpgIterationType.ONE_GROUP ? group() : null;
      return finishDecode<CpgRequest>(r, {
        fn: "iteration_initialize",
        iterationType,
        group: g,
      });
    }
    case CPG_REQUEST_FN.iteration_next:
      return finishDecode<CpgRequest>(r, {
        fn: "iteration_next",
        handle: r.u32("handle"),
      });
    case CPG_REQUEST_FN.iteration_finalize:
      return finishDecode<CpgRequest>(r, {
        fn: "iteration_finalize",
        handle: r.u32("handle"),
      });
    default:
      return { ok: false, reason: "bad_type", detail: `cpg request fn ${fn}` };
  }
}

/** Encodes the reply payload of membership_get. */
export function encodeMembership(members: readonly CpgProcess[]): Uint8Array {
  const w = new ByteWriter(4 + 8 * members.length).u32(members.length);
  for (const m of members) w.u32(m.nodeId).u32(m.pid);
  return w.finish();
}

/** Decodes the reply payload of membership_get. Never throws. */
export function decodeMembership(bytes: Uint8Array): Decoded<CpgProcess[]> {
  const r = new ByteReader(bytes);
  const members = readProcesses(r);
  return finishDecode(r, members);
}

/** Encodes the reply of iteration_next. */
export function encodeIterationItem(item: CpgIterationItem): Uint8Array {
  return new ByteWriter(16).name(item.group).u32(item.nodeId).u32(item.pid)
    .finish();
}

/** Decodes the reply of iteration_next. Never throws. */
export function decodeIterationItem(
  bytes: Uint8Array,
): Decoded<CpgIterationItem> {
  const r = new ByteReader(bytes);
  const group = r.name(CPG_GROUP_NAME_BYTES_MAX, "group");
  const nodeId = r.u32("node id");
  const pid = r.u32("pid");
  return finishDecode(r, { group, nodeId, pid });
}

/** Encodes a u32 reply (local_get, iteration_initialize). */
export function encodeU32(v: number): Uint8Array {
  return new ByteWriter(4).u32(v).finish();
}

/** Decodes a u32 reply. Never throws. */
export function decodeU32(bytes: Uint8Array): Decoded<number> {
  const r = new ByteReader(bytes);
  const v = r.u32("value");
  return finishDecode(r, v);
}

const KIND = { deliver: 1, confchg: 2, totem_confchg: 3 } as const;

/**
 * Encodes a callback as parts to write in order: a delivery is its header
 * and the delivered message as it came out of the ring, so the IPC writer
 * copies the message at most once (into its write batch).
 */
export function encodeCpgCallbackParts(
  cb: CpgCallback,
): readonly Uint8Array[] {
  if (cb.kind !== "deliver") return [encodeCpgCallback(cb)];
  const head = ByteWriter.transient(1 + 2 + utf8Length(cb.group) + 4 + 4 + 4)
    .u8(KIND.deliver).name(cb.group).u32(cb.nodeId).u32(cb.pid)
    .u32(cb.message.length).finish();
  return [head, cb.message];
}

/** Encodes a callback. */
export function encodeCpgCallback(cb: CpgCallback): Uint8Array {
  if (cb.kind === "deliver") return gather(encodeCpgCallbackParts(cb));
  const w = new ByteWriter(64).u8(KIND[cb.kind]);
  switch (cb.kind) {
    case "confchg":
      w.name(cb.group).u32(cb.members.length);
      for (const m of cb.members) w.u32(m.nodeId).u32(m.pid);
      for (const list of [cb.left, cb.joined]) {
        w.u32(list.length);
        for (const a of list) w.u32(a.nodeId).u32(a.pid).u32(a.reason);
      }
      break;
    case "totem_confchg":
      w.ringId(cb.ringId).u32(cb.members.length);
      for (const n of cb.members) w.u32(n);
      break;
    default:
      unreachable(cb);
  }
  return w.finish();
}

/** Decodes a callback (client side). Never throws. */
export function decodeCpgCallback(bytes: Uint8Array): Decoded<CpgCallback> {
  const r = new ByteReader(bytes);
  const kind = r.u8("callback kind");
  switch (kind) {
    case KIND.deliver: {
      const group = r.name(CPG_GROUP_NAME_BYTES_MAX, "group");
      const nodeId = r.u32("node id");
      const pid = r.u32("pid");
      const message = r.blob(CPG_MESSAGE_BYTES_MAX, "message");
      return finishDecode<CpgCallback>(r, {
        kind: "deliver",
        group,
        nodeId,
        pid,
        message,
      });
    }
    case KIND.confchg: {
      const group = r.name(CPG_GROUP_NAME_BYTES_MAX, "group");
      const members = readProcesses(r);
      const left = readAddresses(r);
      const joined = readAddresses(r);
      return finishDecode<CpgCallback>(r, {
        kind: "confchg",
        group,
        members,
        left,
        joined,
      });
    }
    case KIND.totem_confchg: {
      const ringId = r.ringId();
      const count = r.count(DOWNLIST_ENTRIES_MAX, 4, "member count");
      const members: NodeId[] = [];
      for (let i = 0; i < count && r.ok; i++) members.push(r.u32("node id"));
      return finishDecode<CpgCallback>(r, {
        kind: "totem_confchg",
        ringId,
        members,
      });
    }
    default:
      if (r.ok) r.fail(`callback kind ${kind}`);
      return finishDecode<CpgCallback>(r, {
        kind: "totem_confchg",
        ringId: { rep: 0, seq: 0 },
        members: [],
      });
  }
}

function readProcesses(r: ByteReader): CpgProcess[] {
  const count = r.count(CPG_MEMBERS_MAX, 8, "member count");
  const out: CpgProcess[] = [];
  for (let i = 0; i < count && r.ok; i++) {
    const nodeId = r.u32("node id");
    const pid = r.u32("pid");
    out.push({ nodeId, pid });
  }
  return out;
}

function readAddresses(r: ByteReader): CpgAddress[] {
  const count = r.count(CPG_MEMBERS_MAX, 12, "address count");
  const out: CpgAddress[] = [];
  for (let i = 0; i < count && r.ok; i++) {
    const nodeId = r.u32("node id");
    const pid = r.u32("pid");
    const reason = r.u32("reason");
    if (r.ok && (reason < 1 || reason > 5)) r.fail(`reason ${reason}`);
    out.push({ nodeId, pid, reason: reason as CpgReasonCode });
  }
  return out;
}
