/**
 * cfg's IPC payloads: requests from clients, their replies and the
 * shutdown callback. Little-endian; decoders never throw. Function numbers
 * follow Corosync's `MESSAGE_REQ_CFG_*` (include/corosync/ipc_cfg.h).
 *
 * ```
 * text = u16 len | UTF-8 (len 0 allowed)
 *
 * Requests (fn: payload → reply payload on CS_OK):
 * 2  kill_node          u32 nodeId | text reason   → (empty)
 * 3  try_shutdown       u8 flags                   → (empty)
 * 4  reply_to_shutdown  u8 response (0 no, 1 yes)  → (empty)
 * 6  local_get          (empty)                    → u32 nodeId
 * 7  reload_config      (empty)                    → reload report (also
 *                                                    on failure statuses)
 * 8  reopen_log_files   (empty)                    → (empty)
 * 9  node_status_get    (empty)                    → node status
 * 10 track_start        (empty)                    → (empty)  shutdown callbacks on
 * 11 track_stop         (empty)                    → (empty)  shutdown callbacks off
 *
 * Replies with another status may carry `text` saying why (empty: none).
 *
 * node status = u32 localNodeId | text transport | u32 ringRep | u64 ringSeq
 *   | u32 n | n × u32 member
 *   | u32 n | n × (u8 link | text addr)                       (local links)
 *   | u32 n | n × (u32 nodeId | u8 reachable | u32 m
 *                  | m × (u8 link | u8 enabled | u8 connected | u32 mtu
 *                        | text src | text dst))
 * reload report = u8 outcome | u32 n | n × (u32 nodeId | u8 ok | text error)
 *   | u32 n | n × text change | text message
 *
 * Callback: u8 kind (1 shutdown_request) | u8 flags
 * ```
 *
 * @module
 */
import { ByteReader, ByteWriter, finishDecode } from "../../src/exec/bytes.ts";
import { assert, unreachable } from "../../src/lib/assert.ts";
import type { Decoded, NodeId, RingId } from "../../src/totem/types.ts";
import {
  CFG_ERROR_BYTES_MAX,
  CFG_REASON_BYTES_MAX,
  clipText,
  readText,
  writeText,
} from "./wire.ts";

/** Request function numbers. */
export const CFG_REQUEST_FN = {
  kill_node: 2,
  try_shutdown: 3,
  reply_to_shutdown: 4,
  local_get: 6,
  reload_config: 7,
  reopen_log_files: 8,
  node_status_get: 9,
  track_start: 10,
  track_stop: 11,
} as const;

/** `corosync_cfg_shutdown_flags_t`. */
export const CFG_SHUTDOWN_FLAG = {
  /** Ask clients; any veto refuses the shutdown. */
  REQUEST: 0,
  /** Ask clients (so they can prepare), then shut down whatever they say. */
  REGARDLESS: 1,
  /** Shut down without asking. */
  IMMEDIATE: 2,
} as const;

/** One shutdown flag value. */
export type CfgShutdownFlag =
  (typeof CFG_SHUTDOWN_FLAG)[keyof typeof CFG_SHUTDOWN_FLAG];

/** How a reload vote ended (first byte of the reload report). */
export const CFG_RELOAD_OUTCOME = {
  /** Every member validated the file; every member applied it. */
  applied: 0,
  /** At least one member refused the file; nobody applied it. */
  refused: 1,
  /** Membership changed during the vote; nobody applied it. */
  interrupted: 2,
  /** Every member validated it, but applying failed on this node. */
  commit_failed: 3,
  /** Another reload vote was in progress; this one never started. */
  busy: 4,
} as const;

/** One reload outcome name. */
export type CfgReloadOutcome = keyof typeof CFG_RELOAD_OUTCOME;

/** Most links per node on the wire (`totem.interface` numbers 0..7). */
export const CFG_LINKS_MAX = 8;
/** Most nodes in one status reply (Corosync `PROCESSOR_COUNT_MAX`). */
export const CFG_NODES_MAX = 384;
/** Most change lines in one reload report. */
export const CFG_CHANGES_MAX = 256;
const ADDR_BYTES_MAX = 128;
const TRANSPORT_BYTES_MAX = 16;

/** A decoded request. */
export type CfgRequest =
  | {
    readonly fn: "kill_node";
    readonly nodeId: NodeId;
    readonly reason: string;
  }
  | { readonly fn: "try_shutdown"; readonly flags: CfgShutdownFlag }
  | { readonly fn: "reply_to_shutdown"; readonly allow: boolean }
  | {
    readonly fn:
      | "local_get"
      | "reload_config"
      | "reopen_log_files"
      | "node_status_get"
      | "track_start"
      | "track_stop";
  };

/** One link of one peer in a node status reply. */
export interface CfgLinkStatus {
  readonly link: number;
  readonly enabled: boolean;
  readonly connected: boolean;
  readonly mtu: number;
  readonly src: string;
  readonly dst: string;
}

/** One peer in a node status reply. */
export interface CfgNodeStatus {
  readonly nodeId: NodeId;
  /** A member of this node's current ring. */
  readonly reachable: boolean;
  readonly links: readonly CfgLinkStatus[];
}

/** The reply of node_status_get. */
export interface CfgStatus {
  readonly localNodeId: NodeId;
  readonly transport: string;
  /** The current regular ring ({0, 0} before the first one). */
  readonly ringId: RingId;
  readonly members: readonly NodeId[];
  readonly localLinks: readonly {
    readonly link: number;
    readonly addr: string;
  }[];
  /** Every configured node but the local one, ascending. */
  readonly nodes: readonly CfgNodeStatus[];
}

/** One member's answer in a reload vote. */
export interface CfgVerdict {
  readonly nodeId: NodeId;
  readonly ok: boolean;
  /** Why it refused (file:line or the key); empty when ok. */
  readonly error: string;
}

/** The reply of reload_config. */
export interface CfgReloadReport {
  readonly outcome: CfgReloadOutcome;
  /** Every voter's answer received before the end, ascending by node. */
  readonly verdicts: readonly CfgVerdict[];
  /** What was applied on this node (empty unless applied). */
  readonly changes: readonly string[];
  /** One sentence for people. */
  readonly message: string;
}

/** A callback pushed to a client. */
export type CfgCallback = {
  readonly kind: "shutdown_request";
  readonly flags: CfgShutdownFlag;
};

/** Function number of a request. */
export function cfgRequestFn(req: CfgRequest): number {
  return CFG_REQUEST_FN[req.fn];
}

/** Encodes a request payload (client side). */
export function encodeCfgRequest(req: CfgRequest): Uint8Array {
  const w = new ByteWriter(16);
  switch (req.fn) {
    case "kill_node":
      w.u32(req.nodeId);
      writeText(
        w,
        clipText(req.reason, CFG_REASON_BYTES_MAX),
        CFG_REASON_BYTES_MAX,
      );
      break;
    case "try_shutdown":
      w.u8(req.flags);
      break;
    case "reply_to_shutdown":
      w.u8(req.allow ? 1 : 0);
      break;
    case "local_get":
    case "reload_config":
    case "reopen_log_files":
    case "node_status_get":
    case "track_start":
    case "track_stop":
      break;
    default:
      unreachable(req);
  }
  return w.finish();
}

const EMPTY_REQUESTS = new Map<number, CfgRequest["fn"]>([
  [CFG_REQUEST_FN.local_get, "local_get"],
  [CFG_REQUEST_FN.reload_config, "reload_config"],
  [CFG_REQUEST_FN.reopen_log_files, "reopen_log_files"],
  [CFG_REQUEST_FN.node_status_get, "node_status_get"],
  [CFG_REQUEST_FN.track_start, "track_start"],
  [CFG_REQUEST_FN.track_stop, "track_stop"],
]);

/** Decodes a request payload of function `fn` (daemon side). Never throws. */
export function decodeCfgRequest(
  fn: number,
  bytes: Uint8Array,
): Decoded<CfgRequest> {
  const r = new ByteReader(bytes);
  switch (fn) {
    case CFG_REQUEST_FN.kill_node: {
      const nodeId = r.u32("node id");
      if (r.ok && nodeId === 0) r.fail("node id 0");
      const reason = readText(r, CFG_REASON_BYTES_MAX, "reason");
      return finishDecode<CfgRequest>(r, { fn: "kill_node", nodeId, reason });
    }
    case CFG_REQUEST_FN.try_shutdown: {
      const flags = r.u8("flags");
      if (r.ok && flags > 2) r.fail(`shutdown flags ${flags}`);
      return finishDecode<CfgRequest>(r, {
        fn: "try_shutdown",
        flags: flags as CfgShutdownFlag,
      });
    }
    case CFG_REQUEST_FN.reply_to_shutdown: {
      const response = r.u8("response");
      if (r.ok && response > 1) r.fail(`shutdown response ${response}`);
      return finishDecode<CfgRequest>(r, {
        fn: "reply_to_shutdown",
        allow: response === 1,
      });
    }
    default: {
      const name = EMPTY_REQUESTS.get(fn);
      if (name === undefined) {
        return {
          ok: false,
          reason: "bad_type",
          detail: `cfg request fn ${fn}`,
        };
      }
      return finishDecode(r, { fn: name } as CfgRequest);
    }
  }
}

/** Encodes the text of a non-OK reply (may be empty). */
export function encodeErrorText(text: string): Uint8Array {
  const w = new ByteWriter(16 + text.length);
  writeText(w, clipText(text, CFG_ERROR_BYTES_MAX), CFG_ERROR_BYTES_MAX);
  return w.finish();
}

/** Decodes the text of a non-OK reply; "" for an empty or malformed one. */
export function decodeErrorText(bytes: Uint8Array): string {
  if (bytes.length === 0) return "";
  const r = new ByteReader(bytes);
  const text = readText(r, CFG_ERROR_BYTES_MAX, "error text");
  const d = finishDecode(r, text);
  return d.ok ? d.value : "";
}

/** Encodes a u32 reply (local_get). */
export function encodeCfgU32(v: number): Uint8Array {
  return new ByteWriter(4).u32(v).finish();
}

/** Decodes a u32 reply. Never throws. */
export function decodeCfgU32(bytes: Uint8Array): Decoded<number> {
  const r = new ByteReader(bytes);
  const v = r.u32("value");
  return finishDecode(r, v);
}

/** Encodes the reply of node_status_get. */
export function encodeCfgStatus(s: CfgStatus): Uint8Array {
  assert(s.nodes.length <= CFG_NODES_MAX, "too many nodes in a status");
  const w = new ByteWriter(256).u32(s.localNodeId);
  writeText(w, s.transport, TRANSPORT_BYTES_MAX);
  w.u32(s.ringId.rep).u64(s.ringId.seq).u32(s.members.length);
  for (const m of s.members) w.u32(m);
  w.u32(s.localLinks.length);
  for (const l of s.localLinks) {
    w.u8(l.link);
    writeText(w, l.addr, ADDR_BYTES_MAX);
  }
  w.u32(s.nodes.length);
  for (const n of s.nodes) {
    assert(n.links.length <= CFG_LINKS_MAX, "too many links in a status");
    w.u32(n.nodeId).u8(n.reachable ? 1 : 0).u32(n.links.length);
    for (const l of n.links) {
      w.u8(l.link).u8(l.enabled ? 1 : 0).u8(l.connected ? 1 : 0).u32(l.mtu);
      writeText(w, l.src, ADDR_BYTES_MAX);
      writeText(w, l.dst, ADDR_BYTES_MAX);
    }
  }
  return w.finish();
}

function readFlag(r: ByteReader, what: string): boolean {
  const v = r.u8(what);
  if (r.ok && v > 1) r.fail(`${what} ${v}`);
  return v === 1;
}

/** Decodes the reply of node_status_get. Never throws. */
export function decodeCfgStatus(bytes: Uint8Array): Decoded<CfgStatus> {
  const r = new ByteReader(bytes);
  const localNodeId = r.u32("local node id");
  const transport = readText(r, TRANSPORT_BYTES_MAX, "transport");
  const ringId = { rep: r.u32("ring rep"), seq: r.u64("ring seq") };
  const memberCount = r.count(CFG_NODES_MAX, 4, "member count");
  const members: NodeId[] = [];
  for (let i = 0; i < memberCount && r.ok; i++) members.push(r.u32("member"));
  const linkCount = r.count(CFG_LINKS_MAX, 3, "local link count");
  const localLinks: { link: number; addr: string }[] = [];
  for (let i = 0; i < linkCount && r.ok; i++) {
    const link = r.u8("link");
    const addr = readText(r, ADDR_BYTES_MAX, "address");
    localLinks.push({ link, addr });
  }
  const nodeCount = r.count(CFG_NODES_MAX, 9, "node count");
  const nodes: CfgNodeStatus[] = [];
  for (let i = 0; i < nodeCount && r.ok; i++) {
    const nodeId = r.u32("node id");
    const reachable = readFlag(r, "reachable flag");
    const n = r.count(CFG_LINKS_MAX, 11, "link count");
    const links: CfgLinkStatus[] = [];
    for (let k = 0; k < n && r.ok; k++) {
      const link = r.u8("link");
      const enabled = readFlag(r, "enabled flag");
      const connected = readFlag(r, "connected flag");
      const mtu = r.u32("mtu");
      const src = readText(r, ADDR_BYTES_MAX, "source address");
      const dst = readText(r, ADDR_BYTES_MAX, "destination address");
      links.push({ link, enabled, connected, mtu, src, dst });
    }
    nodes.push({ nodeId, reachable, links });
  }
  return finishDecode(r, {
    localNodeId,
    transport,
    ringId,
    members,
    localLinks,
    nodes,
  });
}

const OUTCOME_BY_CODE = new Map<number, CfgReloadOutcome>(
  Object.entries(CFG_RELOAD_OUTCOME).map(([k, v]) => [
    v,
    k as CfgReloadOutcome,
  ]),
);

/** Encodes the reply of reload_config. */
export function encodeReloadReport(rep: CfgReloadReport): Uint8Array {
  const w = new ByteWriter(128).u8(CFG_RELOAD_OUTCOME[rep.outcome]);
  assert(rep.verdicts.length <= CFG_NODES_MAX, "too many verdicts");
  w.u32(rep.verdicts.length);
  for (const v of rep.verdicts) {
    w.u32(v.nodeId).u8(v.ok ? 1 : 0);
    writeText(w, clipText(v.error, CFG_ERROR_BYTES_MAX), CFG_ERROR_BYTES_MAX);
  }
  const changes = rep.changes.slice(0, CFG_CHANGES_MAX);
  w.u32(changes.length);
  for (const c of changes) {
    writeText(w, clipText(c, CFG_ERROR_BYTES_MAX), CFG_ERROR_BYTES_MAX);
  }
  writeText(
    w,
    clipText(rep.message, CFG_ERROR_BYTES_MAX),
    CFG_ERROR_BYTES_MAX,
  );
  return w.finish();
}

/** Decodes the reply of reload_config. Never throws. */
export function decodeReloadReport(
  bytes: Uint8Array,
): Decoded<CfgReloadReport> {
  const r = new ByteReader(bytes);
  const code = r.u8("outcome");
  const outcome = OUTCOME_BY_CODE.get(code);
  if (r.ok && outcome === undefined) r.fail(`reload outcome ${code}`);
  const n = r.count(CFG_NODES_MAX, 7, "verdict count");
  const verdicts: CfgVerdict[] = [];
  for (let i = 0; i < n && r.ok; i++) {
    const nodeId = r.u32("node id");
    const ok = readFlag(r, "ok flag");
    const error = readText(r, CFG_ERROR_BYTES_MAX, "error");
    verdicts.push({ nodeId, ok, error });
  }
  const m = r.count(CFG_CHANGES_MAX, 2, "change count");
  const changes: string[] = [];
  for (let i = 0; i < m && r.ok; i++) {
    changes.push(readText(r, CFG_ERROR_BYTES_MAX, "change"));
  }
  const message = readText(r, CFG_ERROR_BYTES_MAX, "message");
  return finishDecode(r, {
    outcome: outcome ?? "refused",
    verdicts,
    changes,
    message,
  });
}

const KIND = { shutdown_request: 1 } as const;

/** Encodes a callback. */
export function encodeCfgCallback(cb: CfgCallback): Uint8Array {
  return new ByteWriter(2).u8(KIND[cb.kind]).u8(cb.flags).finish();
}

/** Decodes a callback (client side). Never throws. */
export function decodeCfgCallback(bytes: Uint8Array): Decoded<CfgCallback> {
  const r = new ByteReader(bytes);
  const kind = r.u8("callback kind");
  if (r.ok && kind !== KIND.shutdown_request) r.fail(`callback kind ${kind}`);
  const flags = r.u8("flags");
  if (r.ok && flags > 2) r.fail(`shutdown flags ${flags}`);
  return finishDecode<CfgCallback>(r, {
    kind: "shutdown_request",
    flags: flags as CfgShutdownFlag,
  });
}
