/**
 * The totempg layer (TOTEM.md section 5): packing and fragmentation of
 * application messages into Totem frames (`Packer`), per-sender reassembly
 * (`Assembler`), and group multiplexing of several services over one ring.
 *
 * Group message layout, little-endian (TOTEM.md 5.3):
 *
 * ```
 * u16 G | u16 nameLen[G] | names (UTF-8, back to back) | payload
 * ```
 *
 * A message is delivered to every local group instance that joined any of
 * the G names, with the prefix stripped. Corosync uses group "a" for all
 * services and "sync" for the sync protocol.
 *
 * @module
 */
import { assert } from "../../lib/assert.ts";
import { utf8DecodeStrict, utf8Encode } from "../../lib/utf8.ts";
import type { Decoded } from "../types.ts";

export {
  FRAGMENT_BYTES_MIN_DEFAULT,
  Packer,
  type PackerOptions,
  PG_FRAME_BYTES_MAX,
  PG_FRAME_BYTES_MIN,
  PG_HEADER_BYTES,
  PG_LEN_BYTES,
  PG_VERSION,
} from "./packer.ts";
export { Assembler, type AssembleResult } from "./assembler.ts";

/** Most group names one message may address. */
export const GROUP_COUNT_MAX = 64;
/** Longest group name in UTF-8 bytes. */
export const GROUP_NAME_BYTES_MAX = 255;

/** A decoded group message. `payload` shares memory with the input. */
export interface GroupMessage {
  groups: string[];
  payload: Uint8Array;
}

/**
 * The `G | lengths | names` prefix alone, to hand to `Packer.add` as
 * `[header, payload]` so the payload is copied only once, into the frame.
 */
export function encodeGroupHeader(groups: readonly string[]): Uint8Array {
  assert(
    groups.length >= 1 && groups.length <= GROUP_COUNT_MAX,
    `a group message needs 1..${GROUP_COUNT_MAX} groups, got ${groups.length}`,
  );
  const names = groups.map(utf8Encode);
  let bytes = 2 + 2 * names.length;
  for (const n of names) {
    assert(
      n.length >= 1 && n.length <= GROUP_NAME_BYTES_MAX,
      `group name must be 1..${GROUP_NAME_BYTES_MAX} bytes, got ${n.length}`,
    );
    bytes += n.length;
  }
  const out = new Uint8Array(bytes);
  writeU16(out, 0, names.length);
  let at = 2 + 2 * names.length;
  names.forEach((n, i) => {
    writeU16(out, 2 + 2 * i, n.length);
    out.set(n, at);
    at += n.length;
  });
  return out;
}

/**
 * One buffer holding the group prefix followed by the payload, given whole
 * or as parts to gather (each copied once).
 */
export function encodeGroupMessage(
  groups: readonly string[],
  ...payload: readonly Uint8Array[]
): Uint8Array {
  const header = encodeGroupHeader(groups);
  let bytes = header.length;
  for (const p of payload) bytes += p.length;
  const out = new Uint8Array(bytes);
  out.set(header);
  let at = header.length;
  for (const p of payload) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Splits a delivered message into its groups and payload. Never throws. */
export function decodeGroupMessage(bytes: Uint8Array): Decoded<GroupMessage> {
  if (bytes.length < 2) return { ok: false, reason: "truncated" };
  const count = readU16(bytes, 0);
  if (count === 0) {
    return { ok: false, reason: "bad_field", detail: "no groups" };
  }
  if (count > GROUP_COUNT_MAX) {
    return { ok: false, reason: "too_many_entries", detail: `${count} groups` };
  }
  let at = 2 + 2 * count;
  if (at > bytes.length) {
    return { ok: false, reason: "truncated", detail: "name lengths" };
  }
  const groups: string[] = [];
  for (let i = 0; i < count; i++) {
    const len = readU16(bytes, 2 + 2 * i);
    if (len === 0 || len > GROUP_NAME_BYTES_MAX) {
      return { ok: false, reason: "bad_field", detail: `name length ${len}` };
    }
    if (at + len > bytes.length) {
      return { ok: false, reason: "truncated", detail: "names" };
    }
    const name = utf8(bytes.subarray(at, at + len));
    if (name === null) {
      return { ok: false, reason: "bad_field", detail: "name is not UTF-8" };
    }
    groups.push(name);
    at += len;
  }
  return { ok: true, value: { groups, payload: bytes.subarray(at) } };
}

function utf8(bytes: Uint8Array): string | null {
  // A fatal decoder throws on malformed input; that is a rejection here.
  try {
    return utf8DecodeStrict(bytes);
  } catch {
    return null;
  }
}

function readU16(bytes: Uint8Array, at: number): number {
  return bytes[at] | (bytes[at + 1] << 8);
}

function writeU16(out: Uint8Array, at: number, value: number): void {
  out[at] = value & 0xff;
  out[at + 1] = value >>> 8;
}
