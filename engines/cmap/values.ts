/**
 * cmap's typed values and key names, as Corosync's `cmap_value_types_t`
 * and `icmap` name rules. A value travels and is stored as its type code
 * and its raw little-endian bytes (strings as UTF-8 without a NUL); these
 * helpers convert between raw bytes and a `CmapValue`, parse values from
 * text (cmapctl) and format them back. Decoders never throw.
 *
 * @module
 */
import type { Decoded } from "../../src/totem/types.ts";

/** Type codes, as Corosync's `CMAP_VALUETYPE_*`. */
export const CMAP_TYPE_CODE = {
  int8: 1,
  uint8: 2,
  int16: 3,
  uint16: 4,
  int32: 5,
  uint32: 6,
  int64: 7,
  uint64: 8,
  float: 9,
  double: 10,
  string: 11,
  binary: 12,
} as const;

/** A value type name. */
export type CmapType = keyof typeof CMAP_TYPE_CODE;

/** Integer types of at most 32 bits (JS numbers). */
export type CmapSmallIntType =
  | "int8"
  | "uint8"
  | "int16"
  | "uint16"
  | "int32"
  | "uint32";

/** A typed value. */
export type CmapValue =
  | { readonly type: CmapSmallIntType; readonly value: number }
  | { readonly type: "int64" | "uint64"; readonly value: bigint }
  | { readonly type: "float" | "double"; readonly value: number }
  | { readonly type: "string"; readonly value: string }
  | { readonly type: "binary"; readonly value: Uint8Array };

/** Largest value in bytes (CS_ERR_TOO_BIG above). */
export const CMAP_VALUE_BYTES_MAX = 16 * 1024;
/** Shortest key name (Corosync `ICMAP_KEYNAME_MINLEN`). */
export const CMAP_KEY_CHARS_MIN = 3;
/** Longest key name (Corosync `ICMAP_KEYNAME_MAXLEN`). */
export const CMAP_KEY_CHARS_MAX = 255;

const TYPE_BY_CODE = new Map<number, CmapType>(
  Object.entries(CMAP_TYPE_CODE).map(([n, c]) => [c, n as CmapType]),
);

/** Type name of a code, or null when unknown. */
export function cmapTypeOf(code: number): CmapType | null {
  return TYPE_BY_CODE.get(code) ?? null;
}

/** Short aliases accepted by cmapctl, as corosync-cmapctl's (`u8`, `str`…). */
export const CMAP_TYPE_ALIASES: Readonly<Record<string, CmapType>> = {
  i8: "int8",
  u8: "uint8",
  i16: "int16",
  u16: "uint16",
  i32: "int32",
  u32: "uint32",
  i64: "int64",
  u64: "uint64",
  flt: "float",
  dbl: "double",
  str: "string",
  bin: "binary",
};

/** Parses a type name or alias, or null. */
export function parseCmapType(text: string): CmapType | null {
  if (Object.hasOwn(CMAP_TYPE_CODE, text)) return text as CmapType;
  return CMAP_TYPE_ALIASES[text] ?? null;
}

const SMALL_RANGE: Record<CmapSmallIntType, readonly [number, number]> = {
  int8: [-0x80, 0x7f],
  uint8: [0, 0xff],
  int16: [-0x8000, 0x7fff],
  uint16: [0, 0xffff],
  int32: [-0x8000_0000, 0x7fff_ffff],
  uint32: [0, 0xffff_ffff],
};

const FIXED_BYTES: Partial<Record<CmapType, number>> = {
  int8: 1,
  uint8: 1,
  int16: 2,
  uint16: 2,
  int32: 4,
  uint32: 4,
  int64: 8,
  uint64: 8,
  float: 4,
  double: 8,
};

/** True for the eight integer types (inc/dec apply). */
export function isIntType(t: CmapType): boolean {
  return t !== "float" && t !== "double" && t !== "string" && t !== "binary";
}

/** True when `c` (one UTF-16 unit) may appear in a key: `[A-Za-z0-9._/:-]`. */
function keyChar(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) ||
    (c >= 0x61 && c <= 0x7a) || c === 0x2e || c === 0x5f || c === 0x2f ||
    c === 0x2d || c === 0x3a;
}

/** Why `name` is not a valid key name, or null when it is. */
export function keyNameProblem(name: string): string | null {
  if (name.length < CMAP_KEY_CHARS_MIN || name.length > CMAP_KEY_CHARS_MAX) {
    return `key name must be ${CMAP_KEY_CHARS_MIN}..${CMAP_KEY_CHARS_MAX} characters, got ${name.length}`;
  }
  return prefixProblem(name);
}

/** Why `prefix` is not a valid key prefix (0..255 key characters), or null. */
export function prefixProblem(prefix: string): string | null {
  if (prefix.length > CMAP_KEY_CHARS_MAX) {
    return `prefix must be at most ${CMAP_KEY_CHARS_MAX} characters, got ${prefix.length}`;
  }
  for (let i = 0; i < prefix.length; i++) {
    if (!keyChar(prefix.charCodeAt(i))) {
      return `character ${
        JSON.stringify(prefix[i])
      } at ${i} is not allowed in a key name (letters, digits and . _ / - :)`;
    }
  }
  return null;
}

const UTF8 = new TextEncoder();
const UTF8_STRICT = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Why `v` cannot be stored (range, integer, size), or null. */
export function valueProblem(v: CmapValue): string | null {
  switch (v.type) {
    case "int8":
    case "uint8":
    case "int16":
    case "uint16":
    case "int32":
    case "uint32": {
      const [lo, hi] = SMALL_RANGE[v.type];
      if (!Number.isInteger(v.value) || v.value < lo || v.value > hi) {
        return `${v.type} value must be an integer in ${lo}..${hi}, got ${v.value}`;
      }
      return null;
    }
    case "int64":
      return v.value >= -(1n << 63n) && v.value < (1n << 63n)
        ? null
        : `int64 value out of range: ${v.value}`;
    case "uint64":
      return v.value >= 0n && v.value < (1n << 64n)
        ? null
        : `uint64 value out of range: ${v.value}`;
    case "float":
    case "double":
      return typeof v.value === "number"
        ? null
        : `${v.type} value must be a number`;
    case "string":
    case "binary":
      return null;
  }
}

/** Raw little-endian bytes of a value; `valueProblem(v)` must be null. */
export function valueToBytes(v: CmapValue): Uint8Array {
  const n = FIXED_BYTES[v.type];
  if (n === undefined) {
    return v.type === "string"
      ? UTF8.encode(v.value as string)
      : (v.value as Uint8Array).slice();
  }
  const out = new Uint8Array(n);
  const dv = new DataView(out.buffer);
  switch (v.type) {
    case "int8":
      dv.setInt8(0, v.value);
      break;
    case "uint8":
      dv.setUint8(0, v.value);
      break;
    case "int16":
      dv.setInt16(0, v.value, true);
      break;
    case "uint16":
      dv.setUint16(0, v.value, true);
      break;
    case "int32":
      dv.setInt32(0, v.value, true);
      break;
    case "uint32":
      dv.setUint32(0, v.value, true);
      break;
    case "int64":
      dv.setBigInt64(0, v.value, true);
      break;
    case "uint64":
      dv.setBigUint64(0, v.value, true);
      break;
    case "float":
      dv.setFloat32(0, v.value, true);
      break;
    case "double":
      dv.setFloat64(0, v.value, true);
      break;
  }
  return out;
}

/** The value of type `t` held in raw `bytes`. Never throws. */
export function valueFromBytes(
  t: CmapType,
  bytes: Uint8Array,
): Decoded<CmapValue> {
  const n = FIXED_BYTES[t];
  if (n !== undefined && bytes.length !== n) {
    return {
      ok: false,
      reason: "bad_length",
      detail: `${t} value must be ${n} bytes, got ${bytes.length}`,
    };
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (t) {
    case "int8":
      return { ok: true, value: { type: t, value: dv.getInt8(0) } };
    case "uint8":
      return { ok: true, value: { type: t, value: dv.getUint8(0) } };
    case "int16":
      return { ok: true, value: { type: t, value: dv.getInt16(0, true) } };
    case "uint16":
      return { ok: true, value: { type: t, value: dv.getUint16(0, true) } };
    case "int32":
      return { ok: true, value: { type: t, value: dv.getInt32(0, true) } };
    case "uint32":
      return { ok: true, value: { type: t, value: dv.getUint32(0, true) } };
    case "int64":
      return { ok: true, value: { type: t, value: dv.getBigInt64(0, true) } };
    case "uint64":
      return { ok: true, value: { type: t, value: dv.getBigUint64(0, true) } };
    case "float":
      return { ok: true, value: { type: t, value: dv.getFloat32(0, true) } };
    case "double":
      return { ok: true, value: { type: t, value: dv.getFloat64(0, true) } };
    case "string":
      try {
        return {
          ok: true,
          value: { type: t, value: UTF8_STRICT.decode(bytes) },
        };
      } catch {
        // A fatal decoder throws on malformed input: a rejection here.
        return { ok: false, reason: "bad_field", detail: "string not UTF-8" };
      }
    case "binary":
      return { ok: true, value: { type: t, value: bytes.slice() } };
  }
}

/**
 * Adds `step` (±1) to an integer value with two's-complement wrap-around,
 * as Corosync's `icmap_adjust_int` does in C (uint8 255 + 1 = 0, int8
 * 127 + 1 = -128). Null for non-integer types.
 */
export function adjustInt(v: CmapValue, step: 1 | -1): CmapValue | null {
  switch (v.type) {
    case "int8":
    case "uint8":
    case "int16":
    case "uint16":
    case "int32":
    case "uint32": {
      const [lo, hi] = SMALL_RANGE[v.type];
      const span = hi - lo + 1;
      const next = ((v.value + step - lo) % span + span) % span + lo;
      return { type: v.type, value: next };
    }
    case "int64":
      return { type: v.type, value: BigInt.asIntN(64, v.value + BigInt(step)) };
    case "uint64":
      return {
        type: v.type,
        value: BigInt.asUintN(64, v.value + BigInt(step)),
      };
    default:
      return null;
  }
}

/** Parses `text` as a value of type `t` (cmapctl -s); binary as hex. */
export function parseValue(
  t: CmapType,
  text: string,
): { ok: true; value: CmapValue } | { ok: false; error: string } {
  const bad = (
    what: string,
  ): { ok: false; error: string } => ({
    ok: false,
    error: `${JSON.stringify(text)} is not ${what}`,
  });
  let v: CmapValue;
  switch (t) {
    case "int8":
    case "uint8":
    case "int16":
    case "uint16":
    case "int32":
    case "uint32":
      if (!/^[-+]?\d+$/.test(text)) return bad(`an integer (${t})`);
      v = { type: t, value: Number(text) };
      break;
    case "int64":
    case "uint64":
      if (!/^[-+]?\d+$/.test(text)) return bad(`an integer (${t})`);
      v = { type: t, value: BigInt(text) };
      break;
    case "float":
    case "double": {
      const n = Number(text);
      if (text.trim() === "" || Number.isNaN(n) && text !== "NaN") {
        return bad(`a number (${t})`);
      }
      v = { type: t, value: n };
      break;
    }
    case "string":
      v = { type: t, value: text };
      break;
    case "binary": {
      const hex = text.replace(/\s+/g, "");
      if (!/^([0-9a-fA-F]{2})*$/.test(hex)) {
        return bad("hex bytes (binary)");
      }
      const out = new Uint8Array(hex.length / 2);
      for (let i = 0; i < out.length; i++) {
        out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
      }
      v = { type: t, value: out };
      break;
    }
  }
  const problem = valueProblem(v);
  return problem === null
    ? { ok: true, value: v }
    : { ok: false, error: problem };
}

/** Lower-case hex of `b`. */
export function toHex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/**
 * A value as text: numbers in decimal, strings as is, binary as hex when
 * `hexBinary`, else as its text when printable, else as hex.
 */
export function formatValue(v: CmapValue, hexBinary = true): string {
  if (v.type === "binary") {
    if (!hexBinary) {
      const printable = v.value.every((x) => x >= 0x20 && x < 0x7f);
      if (printable) return new TextDecoder().decode(v.value);
    }
    return toHex(v.value);
  }
  return String(v.value);
}
