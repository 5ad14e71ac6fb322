/**
 * Binary wire codec for every Totem frame (TOTEM.md section 6, "Our design").
 *
 * Unlike Corosync, which writes packed structs in the sender's native byte
 * order and byte-swaps on receipt, every field here is little-endian with an
 * explicit length, and the header carries a version byte. Decoding is strict
 * and canonical: any byte string `decodeFrame` accepts re-encodes to exactly
 * the same bytes, so no two encodings mean the same message.
 *
 * Common header (`HEADER_BYTES` = 24):
 *
 * | Off | Field          | Notes                                          |
 * |-----|----------------|------------------------------------------------|
 * | 0   | u16 magic      | `FRAME_MAGIC`                                  |
 * | 2   | u8 version     | `FRAME_VERSION`                                |
 * | 3   | u8 type        | 0 token, 1 mcast, 2 merge_detect, 3 join, 4 commit, 5 token_hold_cancel |
 * | 4   | u8 flags       | mcast: bit0 encapsulated, bit1 safe; join: bit0 leave; token/commit: bit0 retransFlg |
 * | 5   | 3 reserved     | must be zero                                   |
 * | 8   | u32 sender     | non-zero nodeid                                |
 * | 12  | u32 ringId.rep |                                                |
 * | 16  | u64 ringId.seq | at most `Number.MAX_SAFE_INTEGER`              |
 *
 * Reserved bytes and undefined flag bits must be zero: a later format that
 * needs them bumps `FRAME_VERSION`, so an old node reports "bad_version"
 * instead of silently misreading a field it does not know.
 *
 * Decoding never throws: every malformed input yields a `RejectReason`
 * (STYLE.md section 6). Encoding asserts the message's invariants, since a
 * bad outgoing message is our own bug.
 */
import { assert, unreachable } from "../lib/assert.ts";
import { claimHeadroom } from "../lib/headroom.ts";
import { smallBytes } from "../lib/small_bytes.ts";
import { PROCESSOR_COUNT_MAX, RTR_ENTRIES_MAX } from "./config.ts";
import type {
  CommitEntry,
  CommitTokenMsg,
  Decoded,
  Guarantee,
  JoinMsg,
  McastMsg,
  NodeId,
  RejectReason,
  RingId,
  RtrEntry,
  TokenMsg,
  TotemMsg,
} from "./types.ts";

/** First two bytes of every frame (little-endian u16). */
export const FRAME_MAGIC = 0x5dc7;
/** Wire format version; any other value is rejected with "bad_version". */
export const FRAME_VERSION = 1;
/** Bytes of the common header that starts every frame. */
export const HEADER_BYTES = 24;
/** Bytes of an mcast frame before its payload (header, seq, payload length). */
export const MCAST_HEADER_BYTES = HEADER_BYTES + 8;
/** Bytes of a token frame without rtr entries. */
export const TOKEN_FIXED_BYTES = HEADER_BYTES + 26;
/** Bytes of one rtr entry: u32 rep, u64 ringSeq, u32 seq. */
export const RTR_ENTRY_BYTES = 16;
/** Bytes of a join frame without its sets. */
export const JOIN_FIXED_BYTES = HEADER_BYTES + 4;
/** Bytes of a commit token without members and entries. */
export const COMMIT_FIXED_BYTES = HEADER_BYTES + 10;
/** Bytes per commit member: u32 nodeid plus its 21-byte entry. */
export const COMMIT_MEMBER_BYTES = 4 + 21;

/** Frame type codes, fixed on the wire forever. */
export const FRAME_TYPE = {
  token: 0,
  mcast: 1,
  merge_detect: 2,
  join: 3,
  commit: 4,
  token_hold_cancel: 5,
} as const satisfies Record<TotemMsg["type"], number>;

const TYPE_NAMES: readonly TotemMsg["type"][] = [
  "token",
  "mcast",
  "merge_detect",
  "join",
  "commit",
  "token_hold_cancel",
];

const FLAG_ENCAPSULATED = 0x01;
const FLAG_SAFE = 0x02;
const FLAG_LEAVE = 0x01;
const FLAG_RETRANS = 0x01;

const U32_LIMIT = 0x1_0000_0000;
/** Largest high word of a u64 that stays within Number.MAX_SAFE_INTEGER. */
const U64_HIGH_MAX = 0x1f_ffff;

// ---------------------------------------------------------------------------
// Encoding

/**
 * Encodes any Totem message into a fresh buffer (one allocation per frame).
 * Asserts the message's invariants: violating them is a bug in the caller.
 */
export function encodeFrame(msg: TotemMsg): Uint8Array {
  switch (msg.type) {
    case "token":
      return encodeToken(msg);
    case "mcast":
      return encodeMcast(
        msg.sender,
        msg.ringId,
        msg.seq,
        msg.guarantee,
        msg.encapsulated,
        msg.payload,
      );
    case "join":
      return encodeJoin(msg);
    case "commit":
      return encodeCommit(msg);
    case "merge_detect":
    case "token_hold_cancel": {
      const bytes = new Uint8Array(HEADER_BYTES);
      writeHeader(
        viewOf(bytes),
        FRAME_TYPE[msg.type],
        0,
        msg.sender,
        msg.ringId,
      );
      return bytes;
    }
    default:
      return unreachable(msg);
  }
}

/**
 * Hot-path mcast encoder: the same bytes as `encodeFrame` of the equivalent
 * `McastMsg`, without building that object first. Positional parameters
 * (against STYLE.md section 4) because this runs once per sent frame. The
 * payload is copied once into the single frame buffer.
 */
export function encodeMcast(
  sender: NodeId,
  ringId: RingId,
  seq: number,
  guarantee: Guarantee,
  encapsulated: boolean,
  payload: Uint8Array,
): Uint8Array {
  assertU32(seq, "mcast seq");
  assert(
    guarantee === "agreed" || guarantee === "safe",
    "mcast guarantee must be agreed or safe",
  );
  // A frame built with headroom (the packer's) takes the header in place.
  const inPlace = claimHeadroom(payload, MCAST_HEADER_BYTES);
  const bytes = inPlace ??
    new Uint8Array(MCAST_HEADER_BYTES + payload.length);
  const view = viewOf(bytes);
  const flags = (encapsulated ? FLAG_ENCAPSULATED : 0) |
    (guarantee === "safe" ? FLAG_SAFE : 0);
  writeHeader(view, FRAME_TYPE.mcast, flags, sender, ringId);
  view.setUint32(HEADER_BYTES, seq, true);
  view.setUint32(HEADER_BYTES + 4, payload.length, true);
  if (inPlace === null) bytes.set(payload, MCAST_HEADER_BYTES);
  return bytes;
}

function encodeToken(msg: TokenMsg): Uint8Array {
  const rtr = msg.rtr;
  assert(rtr.length <= RTR_ENTRIES_MAX, "token rtr list over RTR_ENTRIES_MAX");
  assertU32(msg.seq, "token seq");
  assertU32(msg.tokenSeq, "token tokenSeq");
  assertU32(msg.aru, "token aru");
  assertU32(msg.aruAddr, "token aruAddr");
  assertU32(msg.fcc, "token fcc");
  assertU32(msg.backlog, "token backlog");
  // One per token visit: from a shared chunk (small_bytes.ts).
  const bytes = smallBytes(TOKEN_FIXED_BYTES + rtr.length * RTR_ENTRY_BYTES);
  const view = viewOf(bytes);
  writeHeader(
    view,
    FRAME_TYPE.token,
    msg.retransFlg ? FLAG_RETRANS : 0,
    msg.sender,
    msg.ringId,
  );
  let o = HEADER_BYTES;
  view.setUint32(o, msg.seq, true);
  view.setUint32(o + 4, msg.tokenSeq, true);
  view.setUint32(o + 8, msg.aru, true);
  view.setUint32(o + 12, msg.aruAddr, true);
  view.setUint32(o + 16, msg.fcc, true);
  view.setUint32(o + 20, msg.backlog, true);
  view.setUint16(o + 24, rtr.length, true);
  o = TOKEN_FIXED_BYTES;
  for (let i = 0; i < rtr.length; i++) {
    const entry = rtr[i];
    assertU32(entry.seq, "rtr entry seq");
    writeRingId(view, o, entry.ringId);
    view.setUint32(o + 12, entry.seq, true);
    o += RTR_ENTRY_BYTES;
  }
  return bytes;
}

function encodeJoin(msg: JoinMsg): Uint8Array {
  const proc = msg.procSet;
  const fail = msg.failSet;
  assert(proc.length <= PROCESSOR_COUNT_MAX, "join procSet over limit");
  assert(fail.length <= PROCESSOR_COUNT_MAX, "join failSet over limit");
  const bytes = new Uint8Array(
    JOIN_FIXED_BYTES + 4 * (proc.length + fail.length),
  );
  const view = viewOf(bytes);
  writeHeader(
    view,
    FRAME_TYPE.join,
    msg.leave ? FLAG_LEAVE : 0,
    msg.sender,
    msg.ringId,
  );
  view.setUint16(HEADER_BYTES, proc.length, true);
  view.setUint16(HEADER_BYTES + 2, fail.length, true);
  let o = writeNodeSet(view, JOIN_FIXED_BYTES, proc, "join procSet");
  o = writeNodeSet(view, o, fail, "join failSet");
  assert(o === bytes.length, "join size mismatch");
  return bytes;
}

function encodeCommit(msg: CommitTokenMsg): Uint8Array {
  const members = msg.members;
  const entries = msg.entries;
  const n = members.length;
  assert(n >= 1, "commit token without members");
  assert(n <= PROCESSOR_COUNT_MAX, "commit token members over limit");
  assert(entries.length === n, "commit entries and members differ in length");
  assertU32(msg.tokenSeq, "commit tokenSeq");
  assert(
    Number.isInteger(msg.membIndex) && msg.membIndex >= 0 &&
      msg.membIndex <= n,
    "commit membIndex outside 0..members.length",
  );
  const bytes = new Uint8Array(COMMIT_FIXED_BYTES + n * COMMIT_MEMBER_BYTES);
  const view = viewOf(bytes);
  writeHeader(
    view,
    FRAME_TYPE.commit,
    msg.retransFlg ? FLAG_RETRANS : 0,
    msg.sender,
    msg.ringId,
  );
  view.setUint32(HEADER_BYTES, msg.tokenSeq, true);
  view.setUint32(HEADER_BYTES + 4, msg.membIndex, true);
  view.setUint16(HEADER_BYTES + 8, n, true);
  let o = writeNodeSet(view, COMMIT_FIXED_BYTES, members, "commit members");
  for (let i = 0; i < n; i++) {
    const entry = entries[i];
    assertU32(entry.aru, "commit entry aru");
    assertU32(entry.highDelivered, "commit entry highDelivered");
    writeRingId(view, o, entry.oldRingId);
    view.setUint32(o + 12, entry.aru, true);
    view.setUint32(o + 16, entry.highDelivered, true);
    view.setUint8(o + 20, entry.receivedFlg ? 1 : 0);
    o += 21;
  }
  assert(o === bytes.length, "commit size mismatch");
  return bytes;
}

function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function writeHeader(
  view: DataView,
  type: number,
  flags: number,
  sender: NodeId,
  ringId: RingId,
): void {
  // Leaves are flagged, not sent from nodeid 0 as in Corosync (LEAVE_DUMMY):
  // receivers need the leaver's id and we have no separate system_from.
  assert(isU32(sender) && sender !== 0, "frame sender must be a non-zero u32");
  view.setUint16(0, FRAME_MAGIC, true);
  view.setUint8(2, FRAME_VERSION);
  view.setUint8(3, type);
  view.setUint8(4, flags);
  // Bytes 5..7 stay zero (reserved): the buffer is freshly allocated.
  view.setUint32(8, sender, true);
  writeRingId(view, 12, ringId);
}

/** Writes `u32 rep, u64 seq` (12 bytes) at `o`. */
function writeRingId(view: DataView, o: number, ringId: RingId): void {
  const { rep, seq } = ringId;
  assert(isU32(rep), "ring id rep must be a u32");
  assert(
    Number.isSafeInteger(seq) && seq >= 0,
    "ring id seq must be a non-negative safe integer",
  );
  view.setUint32(o, rep, true);
  view.setUint32(o + 4, seq % U32_LIMIT, true);
  view.setUint32(o + 8, Math.floor(seq / U32_LIMIT), true);
}

/** Writes a sorted, duplicate-free set of non-zero nodeids; returns the end. */
function writeNodeSet(
  view: DataView,
  o: number,
  ids: readonly NodeId[],
  what: string,
): number {
  let previous = 0;
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    // Sorted-and-unique makes the encoding canonical and lets receivers
    // compare sets element by element (TOTEM.md 3.3, consensus check).
    if (!(isU32(id) && id > previous)) {
      assert(
        false,
        `${what} must hold non-zero u32 nodeids, ascending and unique, got [${
          ids.join(",")
        }]`,
      );
    }
    view.setUint32(o, id, true);
    previous = id;
    o += 4;
  }
  return o;
}

function isU32(v: number): boolean {
  return Number.isInteger(v) && v >= 0 && v < U32_LIMIT;
}

function assertU32(v: number, what: string): void {
  if (!isU32(v)) assert(false, `${what} must be a u32, got ${v}`);
}

// ---------------------------------------------------------------------------
// Decoding

/**
 * Returns the frame type if `bytes` holds a full header with our magic, our
 * version and a known type, else null. Cheap routing and counting before a
 * full decode; `decodeFrame` still has the last word on validity.
 */
export function peekType(bytes: Uint8Array): TotemMsg["type"] | null {
  if (bytes.length < HEADER_BYTES) return null;
  if ((bytes[0] | (bytes[1] << 8)) !== FRAME_MAGIC) return null;
  if (bytes[2] !== FRAME_VERSION) return null;
  return TYPE_NAMES[bytes[3]] ?? null;
}

/**
 * Decodes one untrusted frame. Never throws: malformed input yields a
 * rejection to be counted and dropped. An mcast payload is a view into
 * `bytes` (no copy), so the caller must not reuse that buffer while the
 * message is alive.
 */
export function decodeFrame(bytes: Uint8Array): Decoded<TotemMsg> {
  const length = bytes.length;
  // Magic, version and type first, so that a frame of another protocol or a
  // later version is named as such even if its header is shorter.
  if (length < 4) return reject("truncated", "shorter than magic and version");
  if ((bytes[0] | (bytes[1] << 8)) !== FRAME_MAGIC) {
    return reject("bad_magic", `magic 0x${hex16(bytes[0] | bytes[1] << 8)}`);
  }
  if (bytes[2] !== FRAME_VERSION) {
    return reject("bad_version", `version ${bytes[2]}`);
  }
  const typeCode = bytes[3];
  if (typeCode >= TYPE_NAMES.length) {
    return reject("bad_type", `type ${typeCode}`);
  }
  if (length < HEADER_BYTES) {
    return reject("truncated", `${length} bytes, header needs ${HEADER_BYTES}`);
  }
  if ((bytes[5] | bytes[6] | bytes[7]) !== 0) {
    return reject("bad_field", "reserved header bytes are not zero");
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, length);
  const sender = view.getUint32(8, true);
  if (sender === 0) return reject("bad_field", "sender nodeid 0");
  const ringSeq = readU64(view, 16);
  if (ringSeq < 0) return reject("bad_field", "ring seq above 2^53 - 1");
  const ringId: RingId = { rep: view.getUint32(12, true), seq: ringSeq };
  const flags = bytes[4];
  switch (typeCode) {
    case FRAME_TYPE.token:
      return decodeToken(view, flags, sender, ringId);
    case FRAME_TYPE.mcast:
      return decodeMcast(bytes, view, flags, sender, ringId);
    case FRAME_TYPE.merge_detect:
    case FRAME_TYPE.token_hold_cancel: {
      if (flags !== 0) {
        return reject("bad_field", `flags 0x${flags.toString(16)}`);
      }
      if (length > HEADER_BYTES) {
        return reject(
          "trailing_bytes",
          `${length - HEADER_BYTES} after header`,
        );
      }
      const value: TotemMsg = typeCode === FRAME_TYPE.merge_detect
        ? { type: "merge_detect", sender, ringId }
        : { type: "token_hold_cancel", sender, ringId };
      return { ok: true, value };
    }
    case FRAME_TYPE.join:
      return decodeJoin(view, flags, sender, ringId);
    case FRAME_TYPE.commit:
      return decodeCommit(view, flags, sender, ringId);
    default:
      // Unreachable: typeCode < TYPE_NAMES.length was checked above. Still a
      // rejection rather than an assert, as decoding must never throw.
      return reject("bad_type", `type ${typeCode}`);
  }
}

function decodeMcast(
  bytes: Uint8Array,
  view: DataView,
  flags: number,
  sender: NodeId,
  ringId: RingId,
): Decoded<McastMsg> {
  if ((flags & ~(FLAG_ENCAPSULATED | FLAG_SAFE)) !== 0) {
    return reject("bad_field", `mcast flags 0x${flags.toString(16)}`);
  }
  const length = bytes.length;
  if (length < MCAST_HEADER_BYTES) {
    return reject("truncated", `mcast of ${length} bytes`);
  }
  const payloadLength = view.getUint32(HEADER_BYTES + 4, true);
  const available = length - MCAST_HEADER_BYTES;
  if (payloadLength > available) {
    return reject("truncated", `payload ${payloadLength} > ${available} bytes`);
  }
  if (payloadLength < available) {
    return reject(
      "trailing_bytes",
      `payload ${payloadLength} < ${available} bytes`,
    );
  }
  return {
    ok: true,
    value: {
      type: "mcast",
      sender,
      ringId,
      seq: view.getUint32(HEADER_BYTES, true),
      encapsulated: (flags & FLAG_ENCAPSULATED) !== 0,
      guarantee: (flags & FLAG_SAFE) !== 0 ? "safe" : "agreed",
      payload: bytes.subarray(MCAST_HEADER_BYTES),
    },
  };
}

function decodeToken(
  view: DataView,
  flags: number,
  sender: NodeId,
  ringId: RingId,
): Decoded<TokenMsg> {
  if ((flags & ~FLAG_RETRANS) !== 0) {
    return reject("bad_field", `token flags 0x${flags.toString(16)}`);
  }
  const length = view.byteLength;
  if (length < TOKEN_FIXED_BYTES) {
    return reject("truncated", `token of ${length} bytes`);
  }
  const count = view.getUint16(HEADER_BYTES + 24, true);
  if (count > RTR_ENTRIES_MAX) {
    return reject("too_many_entries", `${count} rtr entries`);
  }
  const check = checkLength(
    length,
    TOKEN_FIXED_BYTES + count * RTR_ENTRY_BYTES,
  );
  if (check !== null) return check;
  const rtr: RtrEntry[] = new Array(count);
  let o = TOKEN_FIXED_BYTES;
  for (let i = 0; i < count; i++) {
    const seq = readU64(view, o + 4);
    if (seq < 0) return reject("bad_field", `rtr ${i} ring seq above 2^53 - 1`);
    rtr[i] = {
      ringId: { rep: view.getUint32(o, true), seq },
      seq: view.getUint32(o + 12, true),
    };
    o += RTR_ENTRY_BYTES;
  }
  const o0 = HEADER_BYTES;
  return {
    ok: true,
    value: {
      type: "token",
      sender,
      ringId,
      seq: view.getUint32(o0, true),
      tokenSeq: view.getUint32(o0 + 4, true),
      aru: view.getUint32(o0 + 8, true),
      aruAddr: view.getUint32(o0 + 12, true),
      fcc: view.getUint32(o0 + 16, true),
      backlog: view.getUint32(o0 + 20, true),
      retransFlg: flags === FLAG_RETRANS,
      rtr,
    },
  };
}

function decodeJoin(
  view: DataView,
  flags: number,
  sender: NodeId,
  ringId: RingId,
): Decoded<JoinMsg> {
  if ((flags & ~FLAG_LEAVE) !== 0) {
    return reject("bad_field", `join flags 0x${flags.toString(16)}`);
  }
  const length = view.byteLength;
  if (length < JOIN_FIXED_BYTES) {
    return reject("truncated", `join of ${length} bytes`);
  }
  const procCount = view.getUint16(HEADER_BYTES, true);
  const failCount = view.getUint16(HEADER_BYTES + 2, true);
  if (procCount > PROCESSOR_COUNT_MAX) {
    return reject("too_many_entries", `${procCount} procSet entries`);
  }
  if (failCount > PROCESSOR_COUNT_MAX) {
    return reject("too_many_entries", `${failCount} failSet entries`);
  }
  const check = checkLength(
    length,
    JOIN_FIXED_BYTES + 4 * (procCount + failCount),
  );
  if (check !== null) return check;
  const procSet = readNodeSet(view, JOIN_FIXED_BYTES, procCount);
  if (procSet === null) return badSet("join procSet");
  const failSet = readNodeSet(
    view,
    JOIN_FIXED_BYTES + 4 * procCount,
    failCount,
  );
  if (failSet === null) return badSet("join failSet");
  return {
    ok: true,
    value: {
      type: "join",
      sender,
      ringId,
      leave: flags === FLAG_LEAVE,
      procSet,
      failSet,
    },
  };
}

function decodeCommit(
  view: DataView,
  flags: number,
  sender: NodeId,
  ringId: RingId,
): Decoded<CommitTokenMsg> {
  if ((flags & ~FLAG_RETRANS) !== 0) {
    return reject("bad_field", `commit flags 0x${flags.toString(16)}`);
  }
  const length = view.byteLength;
  if (length < COMMIT_FIXED_BYTES) {
    return reject("truncated", `commit of ${length} bytes`);
  }
  const n = view.getUint16(HEADER_BYTES + 8, true);
  if (n > PROCESSOR_COUNT_MAX) {
    return reject("too_many_entries", `${n} commit members`);
  }
  const check = checkLength(
    length,
    COMMIT_FIXED_BYTES + n * COMMIT_MEMBER_BYTES,
  );
  if (check !== null) return check;
  if (n === 0) return reject("bad_field", "commit token without members");
  const membIndex = view.getUint32(HEADER_BYTES + 4, true);
  if (membIndex > n) {
    return reject("bad_field", `membIndex ${membIndex} > ${n} members`);
  }
  const members = readNodeSet(view, COMMIT_FIXED_BYTES, n);
  if (members === null) return badSet("commit members");
  const entries: CommitEntry[] = new Array(n);
  let o = COMMIT_FIXED_BYTES + 4 * n;
  for (let i = 0; i < n; i++) {
    const oldSeq = readU64(view, o + 4);
    if (oldSeq < 0) {
      return reject("bad_field", `commit entry ${i} ring seq above 2^53 - 1`);
    }
    const received = view.getUint8(o + 20);
    if (received > 1) {
      return reject("bad_field", `commit entry ${i} receivedFlg ${received}`);
    }
    entries[i] = {
      oldRingId: { rep: view.getUint32(o, true), seq: oldSeq },
      aru: view.getUint32(o + 12, true),
      highDelivered: view.getUint32(o + 16, true),
      receivedFlg: received === 1,
    };
    o += 21;
  }
  return {
    ok: true,
    value: {
      type: "commit",
      sender,
      ringId,
      tokenSeq: view.getUint32(HEADER_BYTES, true),
      retransFlg: flags === FLAG_RETRANS,
      membIndex,
      members,
      entries,
    },
  };
}

/** Reads a u64 as a number, or -1 if it exceeds Number.MAX_SAFE_INTEGER. */
function readU64(view: DataView, o: number): number {
  const high = view.getUint32(o + 4, true);
  if (high > U64_HIGH_MAX) return -1;
  return high * U32_LIMIT + view.getUint32(o, true);
}

/** Reads `count` nodeids; null unless non-zero, ascending and unique. */
function readNodeSet(
  view: DataView,
  o: number,
  count: number,
): NodeId[] | null {
  const ids: NodeId[] = new Array(count);
  let previous = 0;
  for (let i = 0; i < count; i++) {
    const id = view.getUint32(o, true);
    if (id <= previous) return null;
    ids[i] = id;
    previous = id;
    o += 4;
  }
  return ids;
}

function checkLength(
  length: number,
  expected: number,
): { ok: false; reason: RejectReason; detail: string } | null {
  if (length < expected) {
    return reject("truncated", `${length} bytes, counts need ${expected}`);
  }
  if (length > expected) {
    return reject("trailing_bytes", `${length} bytes, counts need ${expected}`);
  }
  return null;
}

function badSet(
  what: string,
): { ok: false; reason: RejectReason; detail: string } {
  return reject(
    "bad_field",
    `${what} is not ascending, unique and free of nodeid 0`,
  );
}

function reject(
  reason: RejectReason,
  detail: string,
): { ok: false; reason: RejectReason; detail: string } {
  return { ok: false, reason, detail };
}

function hex16(v: number): string {
  return v.toString(16).padStart(4, "0");
}
