/**
 * UTF-8 for the short names every message carries (CPG groups, totempg
 * groups): a cache for encoding and an ASCII fast path for decoding. Each
 * TextEncoder/TextDecoder call is a call into the runtime, and on the ring
 * path there were several per message.
 *
 * @module
 */

const ENCODER = new TextEncoder();
// Strict: malformed input throws; a leading BOM is kept (canonical names).
const STRICT = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Names encoded before; cleared when full (names are few in practice). */
const encoded = new Map<string, Uint8Array>();
const ENCODED_MAX = 4096;
/** Longer strings are not cached. */
const CACHED_CHARS_MAX = 256;

/**
 * The UTF-8 bytes of `s`. The result may be shared between callers: copy
 * it, never modify it.
 */
export function utf8Encode(s: string): Uint8Array {
  if (s.length > CACHED_CHARS_MAX) return ENCODER.encode(s);
  let bytes = encoded.get(s);
  if (bytes === undefined) {
    if (encoded.size >= ENCODED_MAX) encoded.clear();
    bytes = ENCODER.encode(s);
    encoded.set(s, bytes);
  }
  return bytes;
}

/** UTF-8 byte length of `s`. */
export function utf8Length(s: string): number {
  return utf8Encode(s).length;
}

/**
 * Names decoded before, newest first: every message of a group carries the
 * same few bytes, and comparing them costs less than building the string
 * again (a spread `String.fromCharCode` was 4-10 % of a receiver's time).
 */
const decoded: { bytes: Uint8Array; text: string }[] = [];
const DECODED_MAX = 8;

/**
 * Decodes strict UTF-8 (throws a TypeError on malformed input, as a fatal
 * TextDecoder does). Short names come from a small cache of recent ones;
 * ASCII is decoded here without calling the runtime.
 */
export function utf8DecodeStrict(bytes: Uint8Array): string {
  if (bytes.length > CACHED_CHARS_MAX) return STRICT.decode(bytes);
  for (let i = 0; i < decoded.length; i++) {
    const entry = decoded[i];
    if (sameBytes(entry.bytes, bytes)) {
      if (i > 0) {
        decoded[i] = decoded[0];
        decoded[0] = entry;
      }
      return entry.text;
    }
  }
  let text = "";
  let ascii = true;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (b >= 0x80) {
      ascii = false;
      break;
    }
    text += String.fromCharCode(b);
  }
  if (!ascii) text = STRICT.decode(bytes);
  // Copied: the caller's bytes may lie in a buffer that is reused.
  if (decoded.length >= DECODED_MAX) decoded.pop();
  decoded.unshift({ bytes: bytes.slice(), text });
  return text;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
