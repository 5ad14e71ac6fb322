/**
 * cfg's totally ordered messages between nodes (Corosync `exec/cfg.c`,
 * `req_exec_cfg_*`), the payloads behind the executive's engine header.
 * Little-endian; decoders are bounds-checked and never throw. The sender's
 * node id is the Totem sender, never in the payload.
 *
 * ```
 * KILL_NODE       (fn 1)  u32 nodeId | u32 tag | text reason
 * RELOAD_REQUEST  (fn 3)  u32 tag
 * RELOAD_VERDICT  (fn 5)  u32 origin | u32 tag | u8 ok | text error
 * text = u16 len | UTF-8 (len 0 allowed)
 * ```
 *
 * `tag` is chosen by the sender of the request, so a reload vote is named
 * by (origin node, tag) and the sender can match its own message to the
 * client waiting for it. Function numbers follow Corosync's
 * `MESSAGE_REQ_EXEC_CFG_*` (1 killnode, 3 reload_config); 5 is ours.
 *
 * @module
 */
import { ByteReader, ByteWriter, finishDecode } from "../../src/exec/bytes.ts";
import { assert, unreachable } from "../../src/lib/assert.ts";
import type { Decoded, NodeId } from "../../src/totem/types.ts";

/** Longest kill reason in bytes (longer ones are cut by the client). */
export const CFG_REASON_BYTES_MAX = 1024;
/** Longest error text in bytes; longer texts are cut when encoded. */
export const CFG_ERROR_BYTES_MAX = 4096;

/** Function numbers of cfg's ordered messages. */
export const CFG_MESSAGE_FN = {
  kill_node: 1,
  reload_request: 3,
  reload_verdict: 5,
} as const;

/** Name of one ordered message. */
export type CfgMessageName = keyof typeof CFG_MESSAGE_FN;

/** The decoded ordered messages. */
export type CfgMessage =
  | {
    readonly type: "kill_node";
    readonly nodeId: NodeId;
    readonly tag: number;
    readonly reason: string;
  }
  | { readonly type: "reload_request"; readonly tag: number }
  | {
    readonly type: "reload_verdict";
    readonly origin: NodeId;
    readonly tag: number;
    readonly ok: boolean;
    readonly error: string;
  };

const UTF8 = new TextEncoder();
const UTF8_STRICT = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * `text` cut to at most `maxBytes` UTF-8 bytes on a character boundary
 * (an error text is for people: a cut one beats a refused one).
 */
export function clipText(text: string, maxBytes: number): string {
  if (UTF8.encode(text).length <= maxBytes) return text;
  let out = "";
  let bytes = 0;
  for (const ch of text) {
    const n = UTF8.encode(ch).length;
    if (bytes + n > maxBytes - 3) break;
    out += ch;
    bytes += n;
  }
  return `${out}...`;
}

/** Writes `u16 len | UTF-8`; the caller keeps `text` within `maxBytes`. */
export function writeText(w: ByteWriter, text: string, maxBytes: number): void {
  const b = UTF8.encode(text);
  assert(b.length <= maxBytes, `text of ${b.length} bytes above ${maxBytes}`);
  w.u16(b.length).bytes(b);
}

/** Reads `u16 len | UTF-8` with len in 0..maxBytes, strict UTF-8. */
export function readText(
  r: ByteReader,
  maxBytes: number,
  what: string,
): string {
  const len = r.u16(`${what} length`);
  if (!r.ok) return "";
  if (len > maxBytes) {
    r.fail(`${what} length ${len} above ${maxBytes}`);
    return "";
  }
  const raw = r.bytes(len, what);
  if (!r.ok) return "";
  try {
    return UTF8_STRICT.decode(raw);
  } catch {
    // A fatal decoder throws on malformed input; that is a rejection here.
    r.fail(`${what} is not UTF-8`);
    return "";
  }
}

/** Encodes one ordered message (the payload behind the engine header). */
export function encodeCfgMessage(m: CfgMessage): Uint8Array {
  const w = new ByteWriter(32);
  switch (m.type) {
    case "kill_node":
      assert(m.nodeId > 0, "kill of node id 0");
      w.u32(m.nodeId).u32(m.tag);
      writeText(w, m.reason, CFG_REASON_BYTES_MAX);
      break;
    case "reload_request":
      w.u32(m.tag);
      break;
    case "reload_verdict":
      w.u32(m.origin).u32(m.tag).u8(m.ok ? 1 : 0);
      writeText(w, m.error, CFG_ERROR_BYTES_MAX);
      break;
    default:
      unreachable(m);
  }
  return w.finish();
}

/** Decodes the payload of message `type`. Never throws. */
export function decodeCfgMessage(
  type: CfgMessageName,
  bytes: Uint8Array,
): Decoded<CfgMessage> {
  const r = new ByteReader(bytes);
  switch (type) {
    case "kill_node": {
      const nodeId = r.u32("node id");
      if (r.ok && nodeId === 0) r.fail("node id 0");
      const tag = r.u32("tag");
      const reason = readText(r, CFG_REASON_BYTES_MAX, "reason");
      return finishDecode<CfgMessage>(r, { type, nodeId, tag, reason });
    }
    case "reload_request":
      return finishDecode<CfgMessage>(r, { type, tag: r.u32("tag") });
    case "reload_verdict": {
      const origin = r.u32("origin");
      if (r.ok && origin === 0) r.fail("origin node id 0");
      const tag = r.u32("tag");
      const ok = r.u8("ok flag");
      if (r.ok && ok > 1) r.fail(`ok flag ${ok}`);
      const error = readText(r, CFG_ERROR_BYTES_MAX, "error");
      return finishDecode<CfgMessage>(r, {
        type,
        origin,
        tag,
        ok: ok === 1,
        error,
      });
    }
    default:
      return unreachable(type);
  }
}
