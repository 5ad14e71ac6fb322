/**
 * The transport packet header: what the UDP edge puts in front of every
 * Totem frame and what its heartbeats look like. It plays the part of knet's
 * packet header (libknet `struct knet_header`) in Corosync 3; nothing of the
 * Totem protocol lives here.
 *
 * All integers are little-endian, like the crypto header (crypto.ts).
 *
 * | Off | Field         | Notes                                          |
 * |-----|---------------|------------------------------------------------|
 * | 0   | u8 magic      | `WIRE_MAGIC`                                   |
 * | 1   | u8 version    | `WIRE_VERSION`; others get "bad_version"       |
 * | 2   | u8 kind       | 0 data, 1 ping, 2 pong                         |
 * | 3   | u8 link       | link number 0..`WIRE_LINKS_MAX - 1`            |
 * | 4   | u32 sender    | sender nodeid, non-zero                        |
 * | 8   | u32 dst       | destination nodeid; 0 = every node ("all")     |
 * | 12  | body          | data: the Totem frame; ping/pong: u32 seq      |
 *
 * The magic differs from `CRYPTO_VERSION` (1), so a sealed datagram reaching
 * a node without crypto fails with "bad_magic" and a clear one reaching a
 * node with crypto fails the opener's version check: a key mismatch between
 * nodes shows up as a counted reason, never as garbage handed to Totem.
 *
 * Decoding never throws: every bad datagram yields a `WireRejectReason`
 * (STYLE.md section 6).
 *
 * @module
 */
import { assert } from "../lib/assert.ts";
import { claimHeadroom } from "../lib/headroom.ts";
import { smallBytes } from "../lib/small_bytes.ts";

/** First byte of every transport packet. */
export const WIRE_MAGIC = 0xd5;
/** Second byte: version of this header layout. */
export const WIRE_VERSION = 1;
/** Bytes of the fixed header in front of every body. */
export const WIRE_HEADER_BYTES = 12;
/** Bytes of a ping or pong body (the u32 ping sequence number). */
export const PING_BODY_BYTES = 4;
/** Link numbers fit knet's 8 links (`KNET_MAX_LINK`). */
export const WIRE_LINKS_MAX = 8;
/** Largest UDP payload over IPv4 (65535 - 20 IP - 8 UDP); IPv6 allows more. */
export const DATAGRAM_BYTES_MAX = 65_507;

const U32_MAX = 0xffff_ffff;

/** What a packet carries. */
export type PacketKind = "data" | "ping" | "pong";

const KIND_CODES: Record<PacketKind, number> = { data: 0, ping: 1, pong: 2 };
const KINDS: readonly PacketKind[] = ["data", "ping", "pong"];

/** The decoded fixed header. */
export interface PacketHeader {
  kind: PacketKind;
  /** Link the sender sent it on; the receiver checks it against its socket. */
  link: number;
  /** Sender nodeid (trusted only after the transport's checks). */
  sender: number;
  /** Destination nodeid, or 0 for a frame sent to every node. */
  dst: number;
}

/** A decoded packet; `body` is a view into the input bytes. */
export interface Packet {
  header: PacketHeader;
  body: Uint8Array;
}

/** Why `decodePacket` refused a datagram. */
export type WireRejectReason =
  | "truncated"
  | "bad_magic"
  | "bad_version"
  | "bad_kind"
  | "bad_link"
  | "bad_sender"
  | "bad_ping_length";

/** Result of decoding one datagram. */
export type DecodedPacket =
  | { ok: true; value: Packet }
  | { ok: false; reason: WireRejectReason };

/**
 * Returns header || body as one buffer: in place when `body` has a free
 * `WIRE_HEADER_BYTES` slot in front of it (src/lib/headroom.ts), else a
 * copy (a small one is a view of a shared chunk, src/lib/small_bytes.ts).
 */
export function encodePacket(
  header: PacketHeader,
  body: Uint8Array,
): Uint8Array<ArrayBuffer> {
  assert(
    Number.isInteger(header.link) && header.link >= 0 &&
      header.link < WIRE_LINKS_MAX,
    `link must be 0..${WIRE_LINKS_MAX - 1}, got ${header.link}`,
  );
  assert(
    Number.isInteger(header.sender) && header.sender >= 1 &&
      header.sender <= U32_MAX,
    `sender must be 1..${U32_MAX}, got ${header.sender}`,
  );
  assert(
    Number.isInteger(header.dst) && header.dst >= 0 && header.dst <= U32_MAX,
    `dst must be 0..${U32_MAX}, got ${header.dst}`,
  );
  assert(
    header.kind === "data" || body.length === PING_BODY_BYTES,
    `${header.kind} body must be ${PING_BODY_BYTES} bytes, got ${body.length}`,
  );
  const inPlace = claimHeadroom(body, WIRE_HEADER_BYTES);
  // Tokens and heartbeats come without headroom: small, from a shared chunk.
  const out = inPlace ?? smallBytes(WIRE_HEADER_BYTES + body.length);
  out[0] = WIRE_MAGIC;
  out[1] = WIRE_VERSION;
  out[2] = KIND_CODES[header.kind];
  out[3] = header.link;
  writeU32(out, 4, header.sender);
  writeU32(out, 8, header.dst);
  if (inPlace === null) out.set(body, WIRE_HEADER_BYTES);
  return out;
}

/** Splits one datagram into header and body. Never throws. */
export function decodePacket(bytes: Uint8Array): DecodedPacket {
  if (bytes.length < WIRE_HEADER_BYTES) return reject("truncated");
  if (bytes[0] !== WIRE_MAGIC) return reject("bad_magic");
  if (bytes[1] !== WIRE_VERSION) return reject("bad_version");
  const kind = KINDS[bytes[2]];
  if (kind === undefined) return reject("bad_kind");
  const link = bytes[3];
  if (link >= WIRE_LINKS_MAX) return reject("bad_link");
  const sender = readU32(bytes, 4);
  if (sender === 0) return reject("bad_sender");
  const body = bytes.subarray(WIRE_HEADER_BYTES);
  if (kind !== "data" && body.length !== PING_BODY_BYTES) {
    return reject("bad_ping_length");
  }
  return {
    ok: true,
    value: { header: { kind, link, sender, dst: readU32(bytes, 8) }, body },
  };
}

/** The body of a ping or pong: its sequence number. */
export function encodePingBody(seq: number): Uint8Array<ArrayBuffer> {
  assert(
    Number.isInteger(seq) && seq >= 0 && seq <= U32_MAX,
    `ping seq must be 0..${U32_MAX}, got ${seq}`,
  );
  const out = new Uint8Array(PING_BODY_BYTES);
  writeU32(out, 0, seq);
  return out;
}

/** Reads the sequence number of a decoded ping or pong body. */
export function decodePingBody(body: Uint8Array): number {
  assert(body.length === PING_BODY_BYTES, "ping body length checked by decode");
  return readU32(body, 0);
}

function reject(reason: WireRejectReason): DecodedPacket {
  return { ok: false, reason };
}

function writeU32(out: Uint8Array, at: number, value: number): void {
  out[at] = value;
  out[at + 1] = value >>> 8;
  out[at + 2] = value >>> 16;
  out[at + 3] = value >>> 24;
}

function readU32(bytes: Uint8Array, at: number): number {
  return (bytes[at] | (bytes[at + 1] << 8) | (bytes[at + 2] << 16) |
    (bytes[at + 3] << 24)) >>> 0;
}
