/**
 * cmap's IPC payloads: requests from clients, their replies and the track
 * callbacks. Little-endian; decoders never throw. Decoders check framing
 * only: names, types and sizes are checked by the engine, which answers
 * INVALID_PARAM or TOO_BIG with a reason a client can act on.
 *
 * ```
 * key    = u16 len | ASCII name            (len 0..255 on the wire)
 * value  = u8 type | u32 len | raw bytes   (type: CMAP_TYPE_CODE, raw LE)
 *
 * Requests (fn: payload → reply payload on CS_OK):
 * 0 set           key | value                      → (empty)
 * 1 delete        key                              → (empty)
 * 2 get           key                              → value
 * 3 inc           key                              → value (after)
 * 4 dec           key                              → value (after)
 * 5 iter          key prefix | key after           → u8 more | u32 n | n × (key | value)
 *                 (keys sorted; "after" empty for the first page, else the
 *                 last key of the previous page)
 * 7 track_add     u8 flags | key-or-prefix         → u32 track handle
 * 8 track_delete  u32 handle                       → (empty)
 *
 * Callback:
 *   u32 handle | u8 event | key | u8 hasOld | [value] | u8 hasNew | [value]
 * ```
 *
 * Track flags and events are Corosync's: DELETE 1, MODIFY 2, ADD 4, and
 * flag PREFIX 8.
 *
 * @module
 */
import { ByteReader, ByteWriter, finishDecode } from "../../src/exec/bytes.ts";
import { assert, unreachable } from "../../src/lib/assert.ts";
import type { Decoded } from "../../src/totem/types.ts";
import { CMAP_KEY_CHARS_MAX } from "./values.ts";

/** Request function numbers. */
export const CMAP_REQUEST_FN = {
  set: 0,
  delete: 1,
  get: 2,
  inc: 3,
  dec: 4,
  iter: 5,
  track_add: 7,
  track_delete: 8,
} as const;

/** Track flags and callback events (`CMAP_TRACK_*`). */
export const CMAP_TRACK = {
  DELETE: 1,
  MODIFY: 2,
  ADD: 4,
  PREFIX: 8,
} as const;

/** Largest raw value accepted by the decoders (the engine's limit is lower). */
export const CMAP_WIRE_VALUE_BYTES_MAX = 1024 * 1024;
/** Most entries one iter reply may carry. */
export const CMAP_ITER_ENTRIES_MAX = 65_536;

/** A value as it travels: type code and raw bytes. */
export interface RawValue {
  readonly typeCode: number;
  readonly bytes: Uint8Array;
}

/** One entry of an iter reply. */
export interface RawEntry {
  readonly key: string;
  readonly value: RawValue;
}

/** A decoded request. */
export type CmapRequest =
  | { readonly fn: "set"; readonly key: string; readonly value: RawValue }
  | { readonly fn: "delete" | "get" | "inc" | "dec"; readonly key: string }
  | { readonly fn: "iter"; readonly prefix: string; readonly after: string }
  | { readonly fn: "track_add"; readonly flags: number; readonly key: string }
  | { readonly fn: "track_delete"; readonly handle: number };

/** A track callback. */
export interface CmapTrackCallback {
  readonly handle: number;
  /** `CMAP_TRACK.ADD`, `DELETE` or `MODIFY`. */
  readonly event: number;
  readonly key: string;
  readonly oldValue: RawValue | null;
  readonly newValue: RawValue | null;
}

/** One iter reply page. */
export interface CmapIterPage {
  readonly more: boolean;
  readonly entries: readonly RawEntry[];
}

/** Function number of a request. */
export function cmapRequestFn(req: CmapRequest): number {
  return CMAP_REQUEST_FN[req.fn];
}

const LATIN1 = new TextDecoder("latin1");

function writeKey(w: ByteWriter, key: string): void {
  assert(key.length <= CMAP_KEY_CHARS_MAX, "cmap key too long to encode");
  const b = new Uint8Array(key.length);
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    // Non-ASCII characters become "?" (0x3f): the engine rejects them.
    b[i] = c < 0x80 ? c : 0x3f;
  }
  w.u16(b.length).bytes(b);
}

function readKey(r: ByteReader, what: string): string {
  const len = r.u16(`${what} length`);
  if (r.ok && len > CMAP_KEY_CHARS_MAX) {
    r.fail(`${what} length ${len} outside 0..${CMAP_KEY_CHARS_MAX}`);
    return "";
  }
  const raw = r.bytes(len, what);
  if (!r.ok) return "";
  if (raw.some((c) => c >= 0x80)) {
    r.fail(`${what} is not ASCII`);
    return "";
  }
  return LATIN1.decode(raw);
}

function writeValue(w: ByteWriter, v: RawValue): void {
  w.u8(v.typeCode).blob(v.bytes);
}

function readValue(r: ByteReader): RawValue {
  const typeCode = r.u8("value type");
  const bytes = r.blob(CMAP_WIRE_VALUE_BYTES_MAX, "value");
  return { typeCode, bytes };
}

/** Encodes a request payload (client side). */
export function encodeCmapRequest(req: CmapRequest): Uint8Array {
  const w = new ByteWriter(32);
  switch (req.fn) {
    case "set":
      writeKey(w, req.key);
      writeValue(w, req.value);
      break;
    case "delete":
    case "get":
    case "inc":
    case "dec":
      writeKey(w, req.key);
      break;
    case "iter":
      writeKey(w, req.prefix);
      writeKey(w, req.after);
      break;
    case "track_add":
      w.u8(req.flags);
      writeKey(w, req.key);
      break;
    case "track_delete":
      w.u32(req.handle);
      break;
    default:
      unreachable(req);
  }
  return w.finish();
}

/** Decodes a request of function `fn` (daemon side). Never throws. */
export function decodeCmapRequest(
  fn: number,
  bytes: Uint8Array,
): Decoded<CmapRequest> {
  const r = new ByteReader(bytes);
  switch (fn) {
    case CMAP_REQUEST_FN.set: {
      const key = readKey(r, "key");
      const value = readValue(r);
      return finishDecode<CmapRequest>(r, { fn: "set", key, value });
    }
    case CMAP_REQUEST_FN.delete:
    case CMAP_REQUEST_FN.get:
    case CMAP_REQUEST_FN.inc:
    case CMAP_REQUEST_FN.dec: {
      const name = fn === CMAP_REQUEST_FN.delete
        ? "delete"
        : fn === CMAP_REQUEST_FN.get
        ? "get"
        : fn === CMAP_REQUEST_FN.inc
        ? "inc"
        : "dec";
      return finishDecode<CmapRequest>(r, {
        fn: name,
        key: readKey(r, "key"),
      });
    }
    case CMAP_REQUEST_FN.iter: {
      const prefix = readKey(r, "prefix");
      const after = readKey(r, "after");
      return finishDecode<CmapRequest>(r, { fn: "iter", prefix, after });
    }
    case CMAP_REQUEST_FN.track_add: {
      const flags = r.u8("flags");
      const key = readKey(r, "key");
      return finishDecode<CmapRequest>(r, { fn: "track_add", flags, key });
    }
    case CMAP_REQUEST_FN.track_delete:
      return finishDecode<CmapRequest>(r, {
        fn: "track_delete",
        handle: r.u32("handle"),
      });
    default:
      return { ok: false, reason: "bad_type", detail: `cmap request fn ${fn}` };
  }
}

/** Encodes a value reply (get, inc, dec). */
export function encodeRawValue(v: RawValue): Uint8Array {
  const w = new ByteWriter(8 + v.bytes.length);
  writeValue(w, v);
  return w.finish();
}

/** Decodes a value reply. Never throws. */
export function decodeRawValue(bytes: Uint8Array): Decoded<RawValue> {
  const r = new ByteReader(bytes);
  const v = readValue(r);
  return finishDecode(r, v);
}

/** Encodes a u32 reply (track_add). */
export function encodeCmapU32(v: number): Uint8Array {
  return new ByteWriter(4).u32(v).finish();
}

/** Decodes a u32 reply. Never throws. */
export function decodeCmapU32(bytes: Uint8Array): Decoded<number> {
  const r = new ByteReader(bytes);
  const v = r.u32("value");
  return finishDecode(r, v);
}

/** Encodes an iter reply page. */
export function encodeIterPage(page: CmapIterPage): Uint8Array {
  const w = new ByteWriter(64).u8(page.more ? 1 : 0).u32(page.entries.length);
  for (const e of page.entries) {
    writeKey(w, e.key);
    writeValue(w, e.value);
  }
  return w.finish();
}

/** Decodes an iter reply page. Never throws. */
export function decodeIterPage(bytes: Uint8Array): Decoded<CmapIterPage> {
  const r = new ByteReader(bytes);
  const more = r.u8("more");
  if (r.ok && more > 1) r.fail(`more flag ${more}`);
  // Each entry is at least 2 (key length) + 1 (type) + 4 (length) bytes.
  const n = r.count(CMAP_ITER_ENTRIES_MAX, 7, "entry count");
  const entries: RawEntry[] = [];
  for (let i = 0; i < n && r.ok; i++) {
    const key = readKey(r, "key");
    const value = readValue(r);
    entries.push({ key, value });
  }
  return finishDecode(r, { more: more === 1, entries });
}

/** Encodes a track callback. */
export function encodeTrackCallback(cb: CmapTrackCallback): Uint8Array {
  const w = new ByteWriter(64).u32(cb.handle).u8(cb.event);
  writeKey(w, cb.key);
  for (const v of [cb.oldValue, cb.newValue]) {
    w.u8(v === null ? 0 : 1);
    if (v !== null) writeValue(w, v);
  }
  return w.finish();
}

/** Decodes a track callback (client side). Never throws. */
export function decodeTrackCallback(
  bytes: Uint8Array,
): Decoded<CmapTrackCallback> {
  const r = new ByteReader(bytes);
  const handle = r.u32("handle");
  const event = r.u8("event");
  if (
    r.ok && event !== CMAP_TRACK.ADD && event !== CMAP_TRACK.DELETE &&
    event !== CMAP_TRACK.MODIFY
  ) r.fail(`track event ${event}`);
  const key = readKey(r, "key");
  const values: (RawValue | null)[] = [];
  for (const what of ["old value flag", "new value flag"]) {
    const has = r.u8(what);
    if (r.ok && has > 1) r.fail(`${what} ${has}`);
    values.push(has === 1 && r.ok ? readValue(r) : null);
  }
  return finishDecode(r, {
    handle,
    event,
    key,
    oldValue: values[0] ?? null,
    newValue: values[1] ?? null,
  });
}
