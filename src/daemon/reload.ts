/**
 * Configuration reload of a running node (an edge): re-read the
 * configuration file, decide whether every difference from the
 * configuration in force can be applied without a restart, and apply it.
 * `denosync cfgtool -R` runs this on every node through the cfg engine:
 * all nodes plan (`planReload`), and only when every plan succeeded does
 * each apply its own (`ReloadPlan.apply`), so the cluster never ends up
 * half reloaded because one node's file was wrong.
 *
 * The rules follow Corosync 3 (exec/cfg.c `remove_ro_entries`,
 * exec/totemconfig.c `totemconfig_configure_new_params`,
 * `totem_volatile_config_read` and `check_things_have_not_changed`), with
 * one deliberate departure: Corosync logs a changed read-only key and
 * silently keeps the old value, which leaves the file and the running node
 * disagreeing; we refuse the whole reload and name the key, so the operator
 * sees it at once and no node applies anything.
 *
 * Reloadable (applied at once):
 * - the nodelist: nodes added (the transport pings them, Totem accepts
 *   their frames, so a daemon started with that nodeid joins the ring) and
 *   removed (no longer sent to nor accepted from, so a still-running one
 *   drops out of the membership at the next token loss); the ring
 *   addresses of other nodes (that link restarts from down); `name` and
 *   `quorum_votes`; `nodelist.local_node_pos` as long as it still picks the
 *   same local node;
 * - the Totem timers and flow-control constants: `token`,
 *   `token_coefficient` (the effective token grows with the nodelist, so
 *   adding a node lengthens it, as in Corosync), `token_warning`,
 *   `token_retransmit`, `token_retransmits_before_loss_const`, `hold`,
 *   `join`, `send_join`, `consensus`, `merge`, `downcheck`,
 *   `fail_recv_const`, `seqno_unchanged_const`, `window_size`,
 *   `max_messages`, `miss_count_const`, `heartbeat_failures_allowed`,
 *   `max_network_delay`, `cancel_token_hold_on_retransmit`,
 *   `unreachable_fails_fast`, and
 *   `config_version`. A timer already running keeps its old duration; the
 *   next one uses the new value;
 * - logging: `debug`, `logger_subsys.<S>.debug` and `to_stderr` take effect
 *   at once; the other `logging.*` keys that do not pick a sink
 *   (priorities, `fileline`, `function_name`, `blackbox`, `logger_subsys.*`)
 *   are stored in cmap;
 * - `quorum.*` except `quorum.provider`, `resources.*`, and keys outside
 *   the known sections: stored in cmap for the engines that read them.
 *
 * Not reloadable (the reload is refused with `ReloadError.key`):
 * - every other `totem.*` key, notably `cluster_name` (it keys the frame
 *   crypto), `transport`, `version`, `ip_version`, `netmtu` (frames in
 *   flight and queues were sized with it), `link_mode`,
 *   `clear_node_high_bit`, `block_unlisted_ips`, `crypto`, `crypto_cipher`,
 *   `crypto_hash`, `secauth`, `key`, `keyfile` (and a changed key file
 *   content), the deprecated `nodeid`, and all of `totem.interface.*`
 *   (ports, multicast groups, bind addresses: bound sockets);
 * - the local node: its nodeid, its ring addresses and its number of
 *   links (its sockets are bound to them), and removing it from the
 *   nodelist (a node cannot configure itself out of the cluster; stop it
 *   instead);
 * - `logging.to_logfile`, `logfile`, `to_syslog`, `syslog_facility`,
 *   `timestamp` (and their obsolete spellings `to_file`, `syslog_level`):
 *   the log sinks and line format are set up at start;
 * - `quorum.provider`, `system.*` (as in Corosync) and `uidgid.*` (the IPC
 *   socket's group is set when it is created).
 *
 * cmap: keys the new file adds or changes are written, keys it drops are
 * deleted (trackers see each), `runtime.config.totem.*` and
 * `nodelist.local_node_pos` are refreshed. A key the file leaves as it was
 * keeps its runtime value, so a client's `cmapctl -s logging.debug …`
 * survives a reload that does not touch that key.
 *
 * @module
 */
import type { CmapEngine } from "../../engines/cmap/cmap.ts";
import { ConfigError, formatPlace } from "../config/config_error.ts";
import {
  type DaemonConfig,
  type NodeConfig,
  toTotemOptions,
} from "../config/daemon_config.ts";
import { flatToRecord } from "../config/flat.ts";
import { loadConfigFile, type LoadedConfig } from "../config/load.ts";
import { findLocalNode, type LocalNodeOptions } from "../config/local_node.ts";
import { assert } from "../lib/assert.ts";
import type { Logger } from "../log/logger.ts";
import type { FrameOpener } from "../net/crypto.ts";
import type { Transport, TransportNode } from "../net/transport.ts";
import { resolveTotemConfig, type TotemConfig } from "../totem/config.ts";
import type { Srp } from "../totem/srp.ts";
import { publishTotemConfig, RUNTIME_TOTEM_KEYS } from "./cmap_runtime.ts";
import type { ReloadPlanner } from "./node_control.ts";

/**
 * A reload that cannot be applied: the file does not parse or validate
 * (`where` is its file:line), or it changes something that needs a
 * restart (`key` names the first such key, `keys` all of them).
 */
export class ReloadError extends Error {
  override name = "ReloadError";
  /** The first refused non-reloadable key, when that is the reason. */
  readonly key?: string;
  /** Every refused key (the first is `key`). */
  readonly keys: readonly string[];
  /** `file:line` (or the file) of the problem, when known. */
  readonly where?: string;

  constructor(
    message: string,
    details: { keys?: readonly string[]; where?: string } = {},
  ) {
    super(message);
    this.keys = details.keys ?? [];
    if (this.keys.length > 0) this.key = this.keys[0];
    if (details.where !== undefined) this.where = details.where;
  }
}

/** A validated reload, ready to apply on this node. */
export interface ReloadPlan {
  /** What applying changes, one line each, for people; empty: nothing. */
  readonly changes: readonly string[];
  /**
   * Applies the new configuration to the running node and makes it the
   * one in force. Throws `ReloadError` when another reload was applied
   * since this plan was made (plan again).
   */
  apply(): Promise<void>;
}

/** What the daemon holds of a running node that a reload changes. */
export interface RunningNode {
  /** The configuration in force; `apply` replaces it. */
  loaded: LoadedConfig;
  /** This node's id (never changes). */
  readonly nodeId: number;
  /** How the daemon found its own node at start (`--nodeid`, addresses). */
  readonly localNode: LocalNodeOptions;
  /** The Totem core: its nodelist and timers. */
  readonly srp: Pick<Srp, "config" | "setNodes" | "reconfigure">;
  /** The UDP transport: its peers and their addresses. */
  readonly transport: Pick<Transport, "setPeers">;
  /** The frame opener when crypto is on: which senders it accepts. */
  readonly opener: Pick<FrameOpener, "setAllowedNodeIds"> | null;
  readonly logger: Pick<
    Logger,
    "log" | "setDebug" | "clearSubsysDebug" | "setToStderr"
  >;
  /** The cmap engine, whose configuration keys are re-seeded. */
  readonly cmap:
    | Pick<CmapEngine, "load" | "deleteInternal" | "setInternal" | "getValue">
    | null;
}

const RELOADABLE_TOTEM = new Set([
  "token",
  "token_coefficient",
  "token_warning",
  "token_retransmit",
  "token_retransmits_before_loss_const",
  "hold",
  "join",
  "send_join",
  "consensus",
  "merge",
  "downcheck",
  "fail_recv_const",
  "seqno_unchanged_const",
  "window_size",
  "max_messages",
  "miss_count_const",
  "heartbeat_failures_allowed",
  "max_network_delay",
  "cancel_token_hold_on_retransmit",
  "unreachable_fails_fast",
  "fast_token_retransmit_min",
  "config_version",
]);

// Keys whose values are secrets.
const SECRET_KEYS = new Set(["totem.key"]);

// logging.* keys that choose a sink or the line format: set up at start.
const FIXED_LOGGING = new Set([
  "to_logfile",
  "logfile",
  "to_syslog",
  "syslog_facility",
  "timestamp",
  "to_file",
  "syslog_level",
]);

/**
 * Why `key` (outside the nodelist, which is compared node by node) cannot
 * change at runtime, or null when it can.
 */
export function nonReloadableReason(key: string): string | null {
  const [section, ...rest] = key.split(".");
  const name = rest.join(".");
  switch (section) {
    case "totem":
      if (RELOADABLE_TOTEM.has(name)) return null;
      if (name === "cluster_name") {
        return "the cluster name keys the frame crypto and names the cluster on the wire";
      }
      if (name.startsWith("interface.")) {
        return "link ports, multicast groups and bind addresses belong to bound sockets";
      }
      if (
        /^(crypto|crypto_cipher|crypto_hash|secauth|key|keyfile)$/.test(name)
      ) {
        return "the frame crypto is set up at start";
      }
      if (name === "netmtu") {
        return "queued and in-flight frames were sized with it";
      }
      return "Totem reads it only at start";
    case "logging":
      return FIXED_LOGGING.has(name)
        ? "the log sinks and line format are set up at start"
        : null;
    case "quorum":
      return name === "provider"
        ? "the quorum provider is chosen at start"
        : null;
    case "system":
      return "system settings apply at start";
    case "uidgid":
      return "the IPC socket's group is set when it is created";
    default:
      return null;
  }
}

/**
 * Reads and validates `configPath` and compares it with the configuration
 * `current` runs with. Returns the plan, or throws `ReloadError` when the
 * file is invalid or changes something that needs a restart. Changes
 * nothing on the node.
 */
export async function planReload(
  configPath: string,
  current: RunningNode,
): Promise<ReloadPlan> {
  let next: LoadedConfig;
  try {
    next = await loadConfigFile(configPath);
  } catch (e) {
    if (e instanceof ConfigError) {
      throw new ReloadError(e.message, { where: formatPlace(e) });
    }
    throw e;
  }
  const base = current.loaded;
  const oldCfg = base.config;
  const newCfg = next.config;
  const oldRecord = flatToRecord(base.flat);
  const newRecord = flatToRecord(next.flat);

  // 1. Keys outside the nodelist, compared as written.
  const refused: Refusal[] = [];
  const keyChanges: string[] = [];
  const keys = [
    ...new Set([...Object.keys(oldRecord), ...Object.keys(newRecord)]),
  ]
    .filter((k) => !k.startsWith("nodelist."))
    .sort();
  for (const key of keys) {
    const was = oldRecord[key];
    const now = newRecord[key];
    if (was === now) continue;
    // The inline cluster key is a secret: never echo it to logs or clients.
    const values = SECRET_KEYS.has(key)
      ? "(value hidden)"
      : `${show(was)} -> ${show(now)}`;
    const reason = nonReloadableReason(key);
    if (reason === null) keyChanges.push(`${key}: ${values}`);
    else {
      refused.push({
        key,
        text: `${key} cannot be changed at runtime (${values}): ${reason}`,
      });
    }
  }
  if (
    refused.length === 0 && base.authKey !== undefined &&
    next.authKey !== undefined && !sameBytes(base.authKey, next.authKey)
  ) {
    refused.push({
      key: oldCfg.totem.key !== undefined ? "totem.key" : "totem.keyfile",
      text: `the cluster key in ${
        oldCfg.totem.key !== undefined ? "totem.key" : oldCfg.totem.keyfile
      } changed: the frame crypto is set up at start`,
    });
  }

  // 2. The nodelist, node by node (positions may shift).
  const nodeChanges: string[] = [];
  if ((oldCfg.nodelist.length === 0) !== (newCfg.nodelist.length === 0)) {
    refused.push({
      key: "nodelist",
      text:
        "adding or removing the whole nodelist cannot be done at runtime: it switches between multicast discovery and a fixed node set",
    });
  } else if (newCfg.nodelist.length > 0) {
    checkLocalNode(current, newCfg, refused);
    nodeChanges.push(...nodelistChanges(oldCfg.nodelist, newCfg.nodelist));
  }

  if (refused.length > 0) {
    const first = refused[0];
    const more = refused.length > 1
      ? ` (also refused: ${refused.slice(1).map((r) => r.key).join(", ")})`
      : "";
    const where = placeOf(first.placeKey ?? first.key, [next, base]);
    const text = first.text.startsWith(first.key)
      ? first.text
      : `${first.key}: ${first.text}`;
    throw new ReloadError(
      `${where}: ${text}; nothing was changed${more}`,
      { keys: refused.map((r) => r.key), where },
    );
  }

  // 3. The effective Totem values, derived as at start. netmtu, the send
  // queue and seqnoStart stay as the core runs with them (all refused above
  // when configured differently).
  const running = current.srp.config;
  let totem: TotemConfig;
  try {
    totem = resolveTotemConfig(
      {
        ...toTotemOptions(newCfg),
        netmtu: running.netmtu,
        sendQueueFramesMax: running.sendQueueFramesMax,
        seqnoStart: running.seqnoStart,
      },
      newCfg.nodelist.length,
    );
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    const named = e.message.match(/totem\.[a-z_]+/)?.[0];
    const entry = named === undefined
      ? undefined
      : next.flat.entries.get(named);
    const where = entry === undefined ? next.file : formatPlace(entry);
    throw new ReloadError(`${where}: ${e.message}`, { where });
  }
  const timerChanges: string[] = [];
  for (const [name, field] of RUNTIME_TOTEM_KEYS) {
    if (running[field] !== totem[field]) {
      timerChanges.push(
        `runtime.config.totem.${name}: ${running[field]} -> ${totem[field]}`,
      );
    }
  }

  const changes = [...nodeChanges, ...keyChanges, ...timerChanges];
  let applied = false;
  return {
    changes,
    apply: () => {
      if (applied) {
        return Promise.reject(
          new ReloadError("this reload plan was already applied"),
        );
      }
      if (current.loaded !== base) {
        return Promise.reject(
          new ReloadError(
            "another reload was applied since this one was planned; plan it again",
          ),
        );
      }
      applied = true;
      applyPlan(current, { next, totem, oldRecord, newRecord, changes });
      return Promise.resolve();
    },
  };
}

/**
 * `planReload` as the daemon's node control port takes it: refusals come
 * back as text (they are the operator's to fix), anything else is our bug
 * and propagates. `running` is asked at each reload, so the daemon can
 * hand the node over once every part of it exists (null until then).
 */
export function reloadPlanner(
  configPath: string,
  running: () => RunningNode | null,
): ReloadPlanner {
  return async () => {
    const node = running();
    if (node === null) {
      return {
        ok: false,
        error: "this node is still starting; reload again once it runs",
      };
    }
    try {
      return { ok: true, plan: await planReload(configPath, node) };
    } catch (e) {
      if (e instanceof ReloadError) return { ok: false, error: e.message };
      throw e;
    }
  };
}

/** A change that needs a restart. */
interface Refusal {
  key: string;
  text: string;
  /** What to point `where` at when not `key` itself. */
  placeKey?: string;
}

interface Prepared {
  next: LoadedConfig;
  totem: TotemConfig;
  oldRecord: Record<string, string>;
  newRecord: Record<string, string>;
  changes: readonly string[];
}

/**
 * Applies a planned reload. Synchronous on purpose: no frame, timer or
 * client request can run between the transport, the core and cmap being
 * updated, so none of them sees a half-applied configuration.
 */
function applyPlan(current: RunningNode, p: Prepared): void {
  const oldCfg = current.loaded.config;
  const newCfg = p.next.config;
  const { logger } = current;
  if (newCfg.nodelist.length > 0) {
    const ids = newCfg.nodelist.map((n) => n.nodeid);
    assert(ids.includes(current.nodeId), "planned nodelist keeps this node");
    // Transport first: once Totem accepts a node's frames, its address must
    // already be known to send the answers to.
    current.transport.setPeers(newCfg.nodelist.map(transportNode));
    current.opener?.setAllowedNodeIds(new Set(ids));
    current.srp.setNodes(ids);
  }
  current.srp.reconfigure(p.totem);
  applyLogging(logger, oldCfg, newCfg);

  const cmap = current.cmap;
  if (cmap !== null) {
    for (const key of Object.keys(p.oldRecord)) {
      if (!(key in p.newRecord)) cmap.deleteInternal(key);
    }
    const changed: Record<string, string> = {};
    for (const [key, value] of Object.entries(p.newRecord)) {
      if (p.oldRecord[key] !== value) changed[key] = value;
    }
    for (const key of cmap.load(changed)) {
      logger.log(
        "warn",
        "CMAP",
        `configuration key "${key}" is not a valid cmap key name; not stored`,
      );
    }
    publishTotemConfig(cmap, current.srp.config);
    const pos = newCfg.nodelist.find((n) => n.nodeid === current.nodeId)?.pos;
    if (pos !== undefined && !("nodelist.local_node_pos" in p.newRecord)) {
      cmap.setInternal("nodelist.local_node_pos", {
        type: "uint32",
        value: pos,
      });
    }
  }
  current.loaded = p.next;
  logger.log(
    "notice",
    "CFG",
    p.changes.length === 0
      ? `configuration reloaded from ${p.next.file}: no changes`
      : `configuration reloaded from ${p.next.file}: ${p.changes.join("; ")}`,
  );
}

function applyLogging(
  logger: RunningNode["logger"],
  oldCfg: DaemonConfig,
  newCfg: DaemonConfig,
): void {
  const was = oldCfg.logging;
  const now = newCfg.logging;
  if (was.debug !== now.debug) logger.setDebug(now.debug);
  if (was.toStderr !== now.toStderr) logger.setToStderr(now.toStderr);
  const names = new Set([
    ...Object.keys(was.subsys),
    ...Object.keys(now.subsys),
  ]);
  for (const name of names) {
    const before = was.subsys[name]?.debug;
    const after = now.subsys[name]?.debug;
    if (before === after) continue;
    if (after === undefined) logger.clearSubsysDebug(name);
    else logger.setDebug(after, name);
  }
}

/**
 * Refuses a new nodelist that drops this node, gives it another nodeid,
 * or moves its ring addresses (its sockets are bound to them).
 */
function checkLocalNode(
  current: RunningNode,
  newCfg: DaemonConfig,
  refused: Refusal[],
): void {
  const id = current.nodeId;
  const oldNode = current.loaded.config.nodelist.find((n) => n.nodeid === id);
  assert(oldNode !== undefined, "the running node is in its nodelist");
  let found;
  try {
    found = findLocalNode(newCfg, current.localNode);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    found = undefined;
  }
  const sameId = newCfg.nodelist.find((n) => n.nodeid === id);
  if (found !== undefined && found.nodeId !== id) {
    const pos = found.pos ?? 0;
    refused.push({
      key: `nodelist.node.${pos}.nodeid`,
      text:
        `the local node's nodeid cannot change at runtime (${id} -> ${found.nodeId}); stop the node, then start it with the new id`,
    });
    return;
  }
  if (sameId === undefined) {
    refused.push({
      key: `nodelist.node.${oldNode.pos}`,
      // Its old position holds another node now: point at the nodelist.
      placeKey: "nodelist",
      text:
        `the new nodelist no longer has the local node ${id}: a node cannot remove itself; stop it and reload the others`,
    });
    return;
  }
  if (sameId.ringAddrs.length !== oldNode.ringAddrs.length) {
    refused.push({
      key: `nodelist.node.${sameId.pos}.ring${
        Math.min(sameId.ringAddrs.length, oldNode.ringAddrs.length)
      }_addr`,
      text:
        `the number of links cannot change at runtime (${oldNode.ringAddrs.length} -> ${sameId.ringAddrs.length}): every link is a bound socket`,
    });
    return;
  }
  sameId.ringAddrs.forEach((addr, link) => {
    if (addr === oldNode.ringAddrs[link]) return;
    refused.push({
      key: `nodelist.node.${sameId.pos}.ring${link}_addr`,
      text: `the local node's ring${link}_addr cannot change at runtime (${
        oldNode.ringAddrs[link]
      } -> ${addr}): its socket is bound to it`,
    });
  });
}

/** One line per added, removed or re-addressed node, by nodeid. */
function nodelistChanges(
  was: readonly NodeConfig[],
  now: readonly NodeConfig[],
): string[] {
  const before = new Map(was.map((n) => [n.nodeid, n]));
  const after = new Map(now.map((n) => [n.nodeid, n]));
  const ids = [...new Set([...before.keys(), ...after.keys()])].sort((a, b) =>
    a - b
  );
  const out: string[] = [];
  for (const id of ids) {
    const o = before.get(id);
    const n = after.get(id);
    if (o === undefined && n !== undefined) {
      out.push(`node ${id} added (${links(n.ringAddrs)})`);
    } else if (o !== undefined && n === undefined) {
      out.push(`node ${id} removed`);
    } else if (o !== undefined && n !== undefined) {
      n.ringAddrs.forEach((addr, link) => {
        if (addr !== o.ringAddrs[link]) {
          out.push(
            `node ${id} link ${link} address ${o.ringAddrs[link]} -> ${addr}`,
          );
        }
      });
      if (o.name !== n.name) {
        out.push(`node ${id} name ${show(o.name)} -> ${show(n.name)}`);
      }
      if (o.quorumVotes !== n.quorumVotes) {
        out.push(
          `node ${id} quorum_votes ${o.quorumVotes} -> ${n.quorumVotes}`,
        );
      }
    }
  }
  return out;
}

/**
 * `file:line` of `key` (a key or a section such as `nodelist.node.2`) in
 * the first of `files` that has it, else the first file.
 */
function placeOf(key: string, files: readonly LoadedConfig[]): string {
  for (const loaded of files) {
    const entry = loaded.flat.entries.get(key);
    if (entry !== undefined) return formatPlace(entry);
    const line = loaded.flat.sections.get(key);
    if (line !== undefined) return formatPlace({ file: loaded.file, line });
  }
  return files[0].file;
}

function links(addrs: readonly string[]): string {
  return addrs.map((a, l) => `ring${l}_addr ${a}`).join(", ");
}

function transportNode(n: NodeConfig): TransportNode {
  return { nodeId: n.nodeid, addrs: n.ringAddrs };
}

function show(value: string | undefined): string {
  return value === undefined ? "(unset)" : `"${value}"`;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
