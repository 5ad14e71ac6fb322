/**
 * CPG's totally ordered messages between nodes (Corosync `exec/cpg.c`,
 * `req_exec_cpg_*`), the payloads behind the executive's engine header.
 * Little-endian; decoders are bounds-checked and never throw. The sender's
 * node id is never in the payload: it is the Totem sender.
 *
 * ```
 * PROCJOIN   (fn 0)  u32 pid | u32 reason | u16 len | group
 * PROCLEAVE  (fn 1)  u32 pid | u32 reason | u16 len | group
 * JOINLIST   (fn 2)  u32 rep | u64 seq | u32 count | count × (u32 pid | u16 len | group)
 * MCAST      (fn 3)  u32 pid | u8 guarantee (0 agreed, 1 safe) | u16 len | group | u32 len | message
 * DOWNLIST   (fn 5)  u32 rep | u64 seq | u32 oldMembers | u32 count | count × u32 nodeId
 * ```
 *
 * JOINLIST and DOWNLIST carry the ring id of their sync round (Corosync's
 * do not): a list sent in an aborted round and delivered in a later one
 * is then recognised and ignored instead of confirming stale processes.
 *
 * @module
 */
import {
  ByteReader,
  ByteWriter,
  finishDecode,
  utf8Length,
} from "../../src/exec/bytes.ts";
import { gather } from "../../src/lib/gather.ts";
import { assert } from "../../src/lib/assert.ts";
import { MESSAGE_BYTES_MAX } from "../../src/totem/config.ts";
import type {
  Decoded,
  Guarantee,
  NodeId,
  RingId,
} from "../../src/totem/types.ts";

/** Longest group name in bytes (Corosync `CPG_MAX_NAME_LENGTH`). */
export const CPG_GROUP_NAME_BYTES_MAX = 128;
/**
 * Largest message a client may multicast: the 1 MiB packing limit minus
 * room for the group prefix, the engine header and the MCAST header.
 */
export const CPG_MESSAGE_BYTES_MAX = MESSAGE_BYTES_MAX - 512;
/** Most entries one JOINLIST may carry (bounded far below by 1 MiB anyway). */
export const JOINLIST_ENTRIES_MAX = 65_536;
/** Most node ids one DOWNLIST may carry (Corosync `PROCESSOR_COUNT_MAX`). */
export const DOWNLIST_ENTRIES_MAX = 384;

/** Why a process joined or left a group (`cpg_reason_t`, cpg_overview(3)). */
export const CpgReason = {
  JOIN: 1,
  LEAVE: 2,
  NODEDOWN: 3,
  NODEUP: 4,
  PROCDOWN: 5,
} as const;

/** One reason code. */
export type CpgReasonCode = (typeof CpgReason)[keyof typeof CpgReason];

/** Function numbers of CPG's ordered messages (Corosync numbering). */
export const CPG_MESSAGE_FN = {
  procjoin: 0,
  procleave: 1,
  joinlist: 2,
  mcast: 3,
  downlist: 5,
} as const;

/** Name of one ordered message. */
export type CpgMessageName = keyof typeof CPG_MESSAGE_FN;

/** One entry of a JOINLIST: a local process of the sender in a group. */
export interface JoinListEntry {
  readonly pid: number;
  readonly group: string;
}

/** The decoded ordered messages. */
export type CpgMessage =
  | {
    readonly type: "procjoin" | "procleave";
    readonly pid: number;
    readonly reason: CpgReasonCode;
    readonly group: string;
  }
  | {
    readonly type: "mcast";
    readonly pid: number;
    readonly guarantee: Guarantee;
    readonly group: string;
    readonly message: Uint8Array;
  }
  | {
    readonly type: "joinlist";
    readonly ringId: RingId;
    readonly entries: readonly JoinListEntry[];
  }
  | {
    readonly type: "downlist";
    readonly ringId: RingId;
    readonly oldMembers: number;
    readonly left: readonly NodeId[];
  };

/** True for a valid group name (1..128 UTF-8 bytes). */
export function validGroupName(group: string): boolean {
  const n = utf8Length(group);
  return n >= 1 && n <= CPG_GROUP_NAME_BYTES_MAX;
}

function isReason(v: number): v is CpgReasonCode {
  return Number.isInteger(v) && v >= 1 && v <= 5;
}

/**
 * Encodes one ordered message as parts to gather: an mcast is its header
 * and the application's bytes as they came, so the packing layer copies
 * them once, straight into frames.
 */
export function encodeCpgMessageParts(m: CpgMessage): readonly Uint8Array[] {
  if (m.type !== "mcast") return [encodeCpgMessage(m)];
  assert(validGroupName(m.group), "group name length");
  assert(m.message.length <= CPG_MESSAGE_BYTES_MAX, "message too big");
  const head = ByteWriter.transient(4 + 1 + 2 + utf8Length(m.group) + 4)
    .u32(m.pid).u8(m.guarantee === "safe" ? 1 : 0).name(m.group)
    .u32(m.message.length).finish();
  return [head, m.message];
}

/** Encodes one ordered message (the payload behind the engine header). */
export function encodeCpgMessage(m: CpgMessage): Uint8Array {
  if (m.type === "mcast") return gather(encodeCpgMessageParts(m));
  const w = new ByteWriter(64);
  switch (m.type) {
    case "procjoin":
    case "procleave":
      assert(validGroupName(m.group), "group name length");
      w.u32(m.pid).u32(m.reason).name(m.group);
      break;
    case "joinlist":
      assert(m.entries.length <= JOINLIST_ENTRIES_MAX, "joinlist too long");
      w.ringId(m.ringId).u32(m.entries.length);
      for (const e of m.entries) {
        assert(validGroupName(e.group), "group name length");
        w.u32(e.pid).name(e.group);
      }
      break;
    case "downlist":
      assert(m.left.length <= DOWNLIST_ENTRIES_MAX, "downlist too long");
      w.ringId(m.ringId).u32(m.oldMembers).u32(m.left.length);
      for (const n of m.left) w.u32(n);
      break;
  }
  return w.finish();
}

/** Decodes the payload of message `type`. Never throws. */
export function decodeCpgMessage(
  type: CpgMessageName,
  bytes: Uint8Array,
): Decoded<CpgMessage> {
  const r = new ByteReader(bytes);
  switch (type) {
    case "procjoin":
    case "procleave": {
      const pid = r.u32("pid");
      const reason = r.u32("reason");
      if (r.ok && !isReason(reason)) r.fail(`reason ${reason}`);
      const group = r.name(CPG_GROUP_NAME_BYTES_MAX, "group");
      return finishDecode<CpgMessage>(r, {
        type,
        pid,
        reason: reason as CpgReasonCode,
        group,
      });
    }
    case "mcast": {
      const pid = r.u32("pid");
      const g = r.u8("guarantee");
      if (r.ok && g > 1) r.fail(`guarantee ${g}`);
      const group = r.name(CPG_GROUP_NAME_BYTES_MAX, "group");
      const message = r.blob(CPG_MESSAGE_BYTES_MAX, "message");
      return finishDecode<CpgMessage>(r, {
        type,
        pid,
        guarantee: g === 1 ? "safe" : "agreed",
        group,
        message,
      });
    }
    case "joinlist": {
      const ringId = r.ringId();
      const count = r.count(JOINLIST_ENTRIES_MAX, 7, "joinlist count");
      const entries: JoinListEntry[] = [];
      for (let i = 0; i < count && r.ok; i++) {
        const pid = r.u32("pid");
        const group = r.name(CPG_GROUP_NAME_BYTES_MAX, "group");
        entries.push({ pid, group });
      }
      return finishDecode<CpgMessage>(r, { type, ringId, entries });
    }
    case "downlist": {
      const ringId = r.ringId();
      const oldMembers = r.u32("old member count");
      const count = r.count(DOWNLIST_ENTRIES_MAX, 4, "downlist count");
      const left: NodeId[] = [];
      for (let i = 0; i < count && r.ok; i++) {
        const n = r.u32("node id");
        if (r.ok && n === 0) r.fail("node id 0");
        left.push(n);
      }
      return finishDecode<CpgMessage>(r, { type, ringId, oldMembers, left });
    }
  }
}
