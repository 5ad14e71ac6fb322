/**
 * The typed, validated daemon configuration, built from the flat cmap keys
 * with Corosync 3's defaults and checks (exec/totemconfig.c,
 * exec/logconfig.c, votequorum(5)) and denosync's departures:
 *
 * - transports: `udpu` (our default), `udp` (multicast); `knet` is accepted
 *   and runs on our UDP unicast transport, since knet too sends to each node
 *   of the nodelist. Up to 8 links on every transport.
 * - crypto: Corosync's knet ciphers are not used; any `crypto_cipher` /
 *   `crypto_hash` other than none (or `secauth: on`) turns on our AEAD
 *   (TOTEM.md 7.2) on every transport. `crypto: none|aead` is our own key.
 * - ring addresses must be IP literals (or `localhost`): no name
 *   resolution yet.
 *
 * Pure: no I/O. Unknown keys become warnings; invalid values throw
 * `ConfigError` with the key's file and line.
 *
 * @module
 */
import {
  resolveTotemConfig,
  TIMEOUT_MIN_MS,
  type TotemOptions,
} from "../totem/config.ts";
import type { ConfigWarning } from "./config_error.ts";
import type { FlatConfig } from "./flat.ts";
import { FlatReader, patternOf } from "./_reader.ts";
import {
  canonicalIp,
  formatIpv4,
  ipFamily,
  isMulticast,
  parseIpv4,
} from "./_ip.ts";
import { LINKS_MAX } from "./_flat_builder.ts";

/** Default `totem.keyfile` (made by `corosync-keygen` / `denosync keygen`). */
export const DEFAULT_KEYFILE = "/etc/corosync/authkey";
/** Default UDP port of link 0; link N uses this + N (Corosync `DEFAULT_PORT`). */
export const DEFAULT_MCASTPORT = 5405;
/** Shortest cluster key our AEAD accepts (TOTEM.md 7.2: at least 32 random bytes). */
export const AUTHKEY_BYTES_MIN = 32;
/** Longest key knet accepts; we keep the same bound. */
export const AUTHKEY_BYTES_MAX = 4096;
/** Links per node: ring0_addr … ring7_addr. */
export { LINKS_MAX };

/** The transport we run. */
export type TransportName = "udpu" | "udp";
/** `totem.transport` as Corosync 3 spells it. */
export type TransportSetting = TransportName | "knet";
/** `totem.crypto_cipher`. */
export type CryptoCipher = "none" | "aes256" | "aes192" | "aes128";
/** `totem.crypto_hash`. */
export type CryptoHash =
  | "none"
  | "md5"
  | "sha1"
  | "sha256"
  | "sha384"
  | "sha512";
/** What our transport does with frames (TOTEM.md 7.2). */
export type CryptoMode = "none" | "aead";
/** `totem.link_mode`. */
export type LinkMode = "passive" | "active" | "rr";
/** `totem.ip_version`: allowed families, preferred first for the mixed ones. */
export type IpVersion = "ipv4" | "ipv6" | "ipv4-6" | "ipv6-4";
/** `logging.debug`. */
export type DebugLevel = "off" | "on" | "trace";
/** `logging.timestamp`. */
export type TimestampMode = "off" | "on" | "hires";
/** Syslog priorities (`err` and `warning` also accept `error` and `warn`). */
export type LogPriority =
  | "emerg"
  | "alert"
  | "crit"
  | "err"
  | "warning"
  | "notice"
  | "info"
  | "debug"
  | "trace";

const CIPHERS: readonly CryptoCipher[] = ["none", "aes256", "aes192", "aes128"];
const HASHES: readonly CryptoHash[] = [
  "none",
  "md5",
  "sha1",
  "sha256",
  "sha384",
  "sha512",
];
const PRIORITIES = [
  "emerg",
  "alert",
  "crit",
  "err",
  "error",
  "warning",
  "warn",
  "notice",
  "info",
  "debug",
  "trace",
] as const;
const FACILITIES = [
  "daemon",
  "local0",
  "local1",
  "local2",
  "local3",
  "local4",
  "local5",
  "local6",
  "local7",
  "kern",
  "user",
  "mail",
  "auth",
  "authpriv",
  "syslog",
  "lpr",
  "news",
  "uucp",
  "cron",
  "ftp",
] as const;

/** Per-link settings (`totem.interface.<linknumber>.*`). */
export interface InterfaceConfig {
  linknumber: number;
  /** Network to bind to (UDP multicast without a nodelist). */
  bindnetaddr?: string;
  /** Multicast group (transport udp); derived from the cluster name when absent. */
  mcastaddr?: string;
  /** UDP port; default 5405 + linknumber (5405 + 2·linknumber with broadcast). */
  mcastport: number;
  /** Send to 255.255.255.255 instead of a multicast group (udp only). */
  broadcast: boolean;
  /** Multicast TTL (udp only), default 1. */
  ttl: number;
  /** Priority in passive link mode, 0..255, default 1. */
  knetLinkPriority: number;
  knetPingIntervalMs?: number;
  knetPingTimeoutMs?: number;
  knetPingPrecision?: number;
  knetPongCount?: number;
  knetTransport: "udp";
}

/**
 * `totem {}`. The timer fields are the keys of TOTEM.md section 4; each is
 * undefined unless configured, and `resolveTotemConfig` derives the rest.
 */
export interface TotemSection {
  version: 2;
  transport: TransportName;
  /** What the file said (`knet` runs as `udpu`). */
  transportSetting: TransportSetting;
  tokenMs?: number;
  tokenCoefficientMs?: number;
  tokenWarningPercent?: number;
  tokenRetransmitsBeforeLossConst?: number;
  tokenRetransmitMs?: number;
  holdMs?: number;
  joinMs?: number;
  sendJoinMs?: number;
  consensusMs?: number;
  mergeMs?: number;
  downcheckMs?: number;
  failRecvConst?: number;
  seqnoUnchangedConst?: number;
  windowSize?: number;
  maxMessages?: number;
  missCountConst?: number;
  heartbeatFailuresAllowed?: number;
  maxNetworkDelayMs?: number;
  netmtu?: number;
  cancelTokenHoldOnRetransmit?: boolean;
  /** `totem.unreachable_fails_fast` (denosync; no = Corosync's behaviour). */
  unreachableFailsFast?: boolean;
  /** `totem.fast_token_retransmit_min` (denosync; 0 = Corosync's timing). */
  fastTokenRetransmitMinMs?: number;
  /** Effective cipher (after `secauth`). */
  cryptoCipher: CryptoCipher;
  /** Effective hash (after `secauth`). */
  cryptoHash: CryptoHash;
  secauth: boolean;
  /** Our frame protection: `aead` whenever a cipher or hash is configured. */
  crypto: CryptoMode;
  keyfile: string;
  /** Inline key (`totem.key`); wins over `keyfile`. */
  key?: string;
  linkMode: LinkMode;
  ipVersion: IpVersion;
  /** One entry per link, sorted by linknumber. */
  interfaces: InterfaceConfig[];
  clearNodeHighBit: boolean;
  blockUnlistedIps: boolean;
  configVersion: number;
  /** Deprecated `totem.nodeid` (for udp without a nodelist). */
  nodeid?: number;
}

/** One `nodelist { node {} }` entry. */
export interface NodeConfig {
  /** Position in the nodelist (`nodelist.node.<pos>`). */
  pos: number;
  nodeid: number;
  /** True when the id came from ring0_addr rather than `nodeid:`. */
  nodeidDerived: boolean;
  name?: string;
  /** ringN_addr for N = 0.., canonical IP literals (`localhost` resolved). */
  ringAddrs: string[];
  quorumVotes: number;
  /** Where the node section starts. */
  file: string;
  line: number;
}

/** `quorum {}` (votequorum(5)). */
export interface QuorumConfig {
  /** Only `corosync_votequorum` exists; undefined means no quorum service. */
  provider?: "corosync_votequorum";
  expectedVotes?: number;
  votes?: number;
  twoNode: boolean;
  /** Defaults to `twoNode`. */
  waitForAll: boolean;
  lastManStanding: boolean;
  lastManStandingWindowMs: number;
  autoTieBreaker: boolean;
  autoTieBreakerNode: "lowest" | "highest" | number[];
  allowDownscale: boolean;
  expectedVotesTracking: boolean;
}

/** Settings `logger_subsys {}` may override; undefined = inherit. */
export interface LoggingOverrides {
  toStderr?: boolean;
  toLogfile?: boolean;
  toSyslog?: boolean;
  logfile?: string;
  logfilePriority?: LogPriority;
  syslogFacility?: string;
  syslogPriority?: LogPriority;
  debug?: DebugLevel;
}

/** `logging {}` with Corosync's defaults. */
export interface LoggingConfig {
  toStderr: boolean;
  toLogfile: boolean;
  toSyslog: boolean;
  logfile?: string;
  logfilePriority: LogPriority;
  syslogFacility: string;
  syslogPriority: LogPriority;
  debug: DebugLevel;
  timestamp: TimestampMode;
  fileline: boolean;
  functionName: boolean;
  blackbox: boolean;
  /** By subsystem name as written (`QUORUM`, `CPG`, …). */
  subsys: Record<string, LoggingOverrides>;
}

/** `uidgid {}`: users and groups allowed to use the IPC socket. */
export interface UidGidConfig {
  uids: string[];
  gids: string[];
}

/** `system {}`. `runDir` is ours (where the IPC socket lives). */
export interface SystemConfig {
  stateDir?: string;
  runDir?: string;
  qbIpcType?: "native" | "shm" | "socket";
  schedRr?: boolean;
  priority?: string;
  moveToRootCgroup?: "yes" | "no" | "auto";
  allowKnetHandleFallback?: boolean;
}

/** Everything the daemon needs from its configuration file. */
export interface DaemonConfig {
  file: string;
  /** `totem.cluster_name` ("" when unset). */
  clusterName: string;
  totem: TotemSection;
  /** In file order; empty only for udp multicast without a nodelist. */
  nodelist: NodeConfig[];
  /** `nodelist.local_node_pos`, when the file pins the local node. */
  localNodePos?: number;
  quorum: QuorumConfig;
  logging: LoggingConfig;
  uidgid: UidGidConfig;
  system: SystemConfig;
  /** `resources.*` with the prefix removed, values as written. */
  resources: Record<string, string>;
}

/** A model and the warnings met while building it. */
export interface BuildResult {
  config: DaemonConfig;
  warnings: ConfigWarning[];
}

// Keys Corosync knows that change nothing here (say so rather than "unknown").
const NO_EFFECT: readonly [RegExp, string][] = [
  [
    /^totem\.(crypto_model|ip_dscp|knet_compression_model|knet_compression_threshold|knet_compression_level|knet_pmtud_interval|knet_mtu|threads|vsftype|crypto_type|crypto_accept)$/,
    "it is specific to Corosync's implementation",
  ],
  [/^totem\.rrp_/, "it is Corosync 2 redundant-ring syntax; links replace it"],
  [
    /^totem\.interface\.[0-9]+\.member\.[0-9]+$/,
    "member lists are Corosync 2 syntax; use the nodelist",
  ],
  [/^totem\.interface\.[0-9]+\.knet_/, "it only tunes knet"],
  [/^quorum\.device\./, "quorum devices (qdevice) are not supported"],
  [/^quorum\.leaving_timeout$/, "it is not implemented"],
  [/^nozzle\./, "nozzle devices are not supported"],
  [/^(pload|qb)\./, "it is a Corosync internal"],
  [
    /^logging\.logging_daemon\./,
    "logging_daemon sections other than corosync are ignored",
  ],
  [/^logging\.(tags|logger_subsys\.[^.]+\.tags)$/, "it is not implemented"],
];

// Suggestions for misspelt keys: within this edit distance.
const SUGGEST_DISTANCE_MAX = 2;

/**
 * Builds and validates the model from flat keys. Throws `ConfigError` for
 * invalid values; returns warnings for unknown or ineffective keys (parser
 * warnings stay with the `ParsedConfig`).
 */
export function buildDaemonConfig(flat: FlatConfig): BuildResult {
  const r = new FlatReader(flat);
  const clusterName = r.str("totem.cluster_name") ?? "";
  const transportSetting = r.choice<TransportSetting>("totem.transport", [
    "udpu",
    "udp",
    "knet",
  ]) ?? "udpu";
  const transport: TransportName = transportSetting === "udp" ? "udp" : "udpu";
  const ipVersion = r.choice<IpVersion>("totem.ip_version", [
    "ipv4",
    "ipv6",
    "ipv4-6",
    "ipv6-4",
  ]) ?? (transportSetting === "knet" ? "ipv6-4" : "ipv4");
  const clearNodeHighBit = r.bool("totem.clear_node_high_bit") ?? false;

  const nodelist = readNodelist(r, {
    transportSetting,
    ipVersion,
    clearNodeHighBit,
  });
  const totem = readTotem(r, {
    clusterName,
    transport,
    transportSetting,
    ipVersion,
    clearNodeHighBit,
    nodelist,
  });
  const localNodePos = r.int("nodelist.local_node_pos");
  if (localNodePos !== undefined && localNodePos >= nodelist.length) {
    r.fail(
      "nodelist.local_node_pos",
      `nodelist.local_node_pos is ${localNodePos} but the nodelist has ${nodelist.length} node(s)`,
    );
  }
  checkTimers(r, totem, Math.max(nodelist.length, 2));

  const config: DaemonConfig = {
    file: flat.file,
    clusterName,
    totem,
    nodelist,
    quorum: readQuorum(r, nodelist),
    logging: readLogging(r),
    uidgid: readUidGid(r),
    system: readSystem(r),
    resources: readResources(r),
  };
  if (localNodePos !== undefined) config.localNodePos = localNodePos;
  reportUnused(r);
  // In file order, whatever order the checks ran in (sort is stable).
  const warnings = [...r.warnings].sort((a, b) => a.line - b.line);
  return { config, warnings };
}

/**
 * The configured Totem timers as `TotemOptions` (only keys the file sets;
 * `resolveTotemConfig(options, cfg.nodelist.length)` derives the others).
 */
export function toTotemOptions(cfg: DaemonConfig): TotemOptions {
  const t = cfg.totem;
  const options: TotemOptions = {};
  const copy = <K extends keyof TotemOptions & keyof TotemSection>(
    key: K,
  ): void => {
    const value = t[key];
    if (value !== undefined) {
      (options as Record<string, unknown>)[key] = value;
    }
  };
  for (const spec of TIMER_KEYS) copy(spec.field);
  copy("cancelTokenHoldOnRetransmit");
  copy("unreachableFailsFast");
  return options;
}

type TimerField =
  & keyof TotemOptions
  & keyof TotemSection
  & (
    | "tokenMs"
    | "tokenCoefficientMs"
    | "tokenWarningPercent"
    | "tokenRetransmitsBeforeLossConst"
    | "tokenRetransmitMs"
    | "holdMs"
    | "joinMs"
    | "sendJoinMs"
    | "consensusMs"
    | "mergeMs"
    | "downcheckMs"
    | "failRecvConst"
    | "seqnoUnchangedConst"
    | "windowSize"
    | "maxMessages"
    | "missCountConst"
    | "heartbeatFailuresAllowed"
    | "maxNetworkDelayMs"
    | "netmtu"
    | "fastTokenRetransmitMinMs"
  );

interface TimerKey {
  readonly key: string;
  readonly field: TimerField;
  readonly unit: string;
  readonly min?: number;
  readonly max?: number;
}

// TOTEM.md section 4. Minimums are Corosync's (totem_volatile_config_validate):
// 30 ms for timeouts (three ticks of a 100 Hz kernel), 14 ms for hold.
const TIMER_KEYS: readonly TimerKey[] = [
  { key: "token", field: "tokenMs", unit: "milliseconds", min: TIMEOUT_MIN_MS },
  {
    key: "token_coefficient",
    field: "tokenCoefficientMs",
    unit: "milliseconds",
  },
  {
    key: "token_warning",
    field: "tokenWarningPercent",
    unit: "percent",
    max: 100,
  },
  {
    key: "token_retransmits_before_loss_const",
    field: "tokenRetransmitsBeforeLossConst",
    unit: "retransmits",
    min: 1,
  },
  {
    key: "token_retransmit",
    field: "tokenRetransmitMs",
    unit: "milliseconds",
    min: TIMEOUT_MIN_MS,
  },
  { key: "hold", field: "holdMs", unit: "milliseconds", min: 14 },
  { key: "join", field: "joinMs", unit: "milliseconds", min: TIMEOUT_MIN_MS },
  { key: "send_join", field: "sendJoinMs", unit: "milliseconds" },
  {
    key: "consensus",
    field: "consensusMs",
    unit: "milliseconds",
    min: TIMEOUT_MIN_MS,
  },
  { key: "merge", field: "mergeMs", unit: "milliseconds", min: TIMEOUT_MIN_MS },
  {
    key: "downcheck",
    field: "downcheckMs",
    unit: "milliseconds",
    min: TIMEOUT_MIN_MS,
  },
  {
    key: "fail_recv_const",
    field: "failRecvConst",
    unit: "token visits",
    min: 1,
  },
  {
    key: "seqno_unchanged_const",
    field: "seqnoUnchangedConst",
    unit: "token visits",
  },
  { key: "window_size", field: "windowSize", unit: "frames", min: 1 },
  { key: "max_messages", field: "maxMessages", unit: "frames", min: 1 },
  { key: "miss_count_const", field: "missCountConst", unit: "token visits" },
  {
    key: "heartbeat_failures_allowed",
    field: "heartbeatFailuresAllowed",
    unit: "failures",
  },
  {
    key: "max_network_delay",
    field: "maxNetworkDelayMs",
    unit: "milliseconds",
    min: TIMEOUT_MIN_MS,
  },
  // 576 bytes: the smallest datagram every IPv4 host must accept; 65535: UDP.
  { key: "netmtu", field: "netmtu", unit: "bytes", min: 576, max: 65_535 },
  // denosync addition (src/totem/config.ts): 0 turns fast token
  // retransmission off.
  {
    key: "fast_token_retransmit_min",
    field: "fastTokenRetransmitMinMs",
    unit: "milliseconds",
    min: 0,
  },
];

interface NodelistContext {
  transportSetting: TransportSetting;
  ipVersion: IpVersion;
  clearNodeHighBit: boolean;
}

/**
 * Node id from an IPv4 ring0 address, as Corosync's `generate_nodeid()`:
 * the address as a big-endian 32-bit number, top bit cleared on request
 * (`clear_node_high_bit: yes`, for applications that need a positive int32).
 */
export function nodeIdFromIpv4(
  address: string,
  clearHighBit = false,
): number | undefined {
  const value = parseIpv4(address);
  if (value === undefined) return undefined;
  return clearHighBit ? value % 0x8000_0000 : value;
}

function readNodelist(r: FlatReader, ctx: NodelistContext): NodeConfig[] {
  const positions = new Set<number>();
  for (const key of r.keysUnder("nodelist.node.")) {
    const match = /^nodelist\.node\.([0-9]+)(\.|$)/.exec(key);
    if (match) positions.add(Number(match[1]));
  }
  for (const path of r.flat.sections.keys()) {
    const match = /^nodelist\.node\.([0-9]+)$/.exec(path);
    if (match) positions.add(Number(match[1]));
  }
  const nodes: NodeConfig[] = [];
  for (const pos of [...positions].sort((a, b) => a - b)) {
    nodes.push(readNode(r, ctx, pos));
  }
  checkNodelist(r, nodes);
  return nodes;
}

function readNode(
  r: FlatReader,
  ctx: NodelistContext,
  pos: number,
): NodeConfig {
  const prefix = `nodelist.node.${pos}`;
  const place = r.place(prefix);
  const raw: string[] = [];
  for (const key of r.keysUnder(`${prefix}.`)) {
    const match = /^ring([0-9]+)_addr$/.exec(key.slice(prefix.length + 1));
    if (match === null) continue;
    const link = Number(match[1]);
    if (link >= LINKS_MAX) {
      r.fail(
        key,
        `${key}: at most ${LINKS_MAX} links are supported (ring0_addr … ring${
          LINKS_MAX - 1
        }_addr)`,
      );
    }
    raw[link] = r.str(key)!;
  }
  r.entry(`${prefix}.ring0_addr`);
  if (raw[0] === undefined) {
    r.fail(
      prefix,
      `node ${pos} of the nodelist has no ring0_addr (every node needs one)`,
    );
  }
  const ringAddrs: string[] = [];
  for (let link = 0; link < raw.length; link++) {
    const key = `${prefix}.ring${link}_addr`;
    if (raw[link] === undefined) {
      r.fail(
        `${prefix}.ring${raw.length - 1}_addr`,
        `node ${pos} has ring${
          raw.length - 1
        }_addr but no ring${link}_addr: links must be numbered without gaps`,
      );
    }
    ringAddrs.push(resolveAddress(r, key, raw[link], ctx.ipVersion));
  }
  const name = r.str(`${prefix}.name`);
  const quorumVotes = r.int(`${prefix}.quorum_votes`, { unit: "votes" }) ?? 1;
  let nodeid = r.int(`${prefix}.nodeid`, { unit: "node id" });
  const nodeidDerived = nodeid === undefined;
  if (nodeid === 0) {
    r.fail(
      `${prefix}.nodeid`,
      `${prefix}.nodeid 0 is reserved; node ids start at 1`,
    );
  }
  if (nodeid === undefined) {
    if (ctx.transportSetting === "knet") {
      r.fail(
        `${prefix}.ring0_addr`,
        `node ${pos} has no nodeid: transport knet requires an explicit nodeid, as in corosync`,
      );
    }
    nodeid = nodeIdFromIpv4(ringAddrs[0], ctx.clearNodeHighBit);
    if (nodeid === undefined) {
      r.fail(
        `${prefix}.ring0_addr`,
        `node ${pos} has no nodeid and an IPv6 ring0_addr; an IPv6 network requires an explicit nodeid`,
      );
    }
    if (nodeid === 0) {
      r.fail(
        `${prefix}.ring0_addr`,
        `node ${pos} has no nodeid and ${
          ringAddrs[0]
        } would give node id 0; set nodeid`,
      );
    }
  }
  const node: NodeConfig = {
    pos,
    nodeid,
    nodeidDerived,
    ringAddrs,
    quorumVotes,
    file: place.file,
    line: place.line,
  };
  if (name !== undefined) node.name = name;
  return node;
}

/**
 * An IP literal, canonicalised; `localhost` is the loopback address. Host
 * names are refused with a clear message: we do not resolve names yet.
 */
function resolveAddress(
  r: FlatReader,
  key: string,
  raw: string,
  ipVersion: IpVersion,
): string {
  const text = raw === "localhost"
    ? (ipVersion === "ipv6" ? "::1" : "127.0.0.1")
    : raw;
  const family = ipFamily(text);
  if (family === undefined) {
    r.fail(
      key,
      `${key} is "${raw}", which is not an IP address: host names are not resolved yet, write the IP address (or localhost)`,
    );
  }
  if (
    (ipVersion === "ipv4" && family !== 4) ||
    (ipVersion === "ipv6" && family !== 6)
  ) {
    r.fail(
      key,
      `${key} ${raw} is an IPv${family} address but totem.ip_version is ${ipVersion}`,
    );
  }
  return canonicalIp(text)!;
}

function checkNodelist(r: FlatReader, nodes: NodeConfig[]): void {
  const byId = new Map<number, NodeConfig>();
  const byAddr = new Map<string, NodeConfig>();
  const first = nodes[0];
  for (const node of nodes) {
    const prefix = `nodelist.node.${node.pos}`;
    const idKey = node.nodeidDerived
      ? `${prefix}.ring0_addr`
      : `${prefix}.nodeid`;
    const other = byId.get(node.nodeid);
    if (other !== undefined) {
      r.fail(
        idKey,
        `duplicate nodeid ${node.nodeid}: node ${node.pos} and node ${other.pos} (line ${other.line}) have the same id`,
      );
    }
    byId.set(node.nodeid, node);
    if (node.ringAddrs.length !== first.ringAddrs.length) {
      r.fail(
        prefix,
        `node ${node.pos} has ${node.ringAddrs.length} link(s) but node ${first.pos} has ${first.ringAddrs.length}: every node needs the same ringN_addr keys`,
      );
    }
    node.ringAddrs.forEach((addr, link) => {
      const key = `${prefix}.ring${link}_addr`;
      const same = byAddr.get(`${link}/${addr}`);
      if (same !== undefined) {
        r.fail(
          key,
          `${key} ${addr} is also the ring${link}_addr of node ${same.pos}`,
        );
      }
      byAddr.set(`${link}/${addr}`, node);
      // Corosync: "Nodes for link N have different IP families".
      if (ipFamily(addr) !== ipFamily(first.ringAddrs[link])) {
        r.fail(
          key,
          `nodes on link ${link} mix IP families (${addr} and ${
            first.ringAddrs[link]
          })`,
        );
      }
    });
  }
}

interface TotemContext {
  clusterName: string;
  transport: TransportName;
  transportSetting: TransportSetting;
  ipVersion: IpVersion;
  clearNodeHighBit: boolean;
  nodelist: NodeConfig[];
}

function readTotem(r: FlatReader, ctx: TotemContext): TotemSection {
  const version = r.int("totem.version", { max: 0xffff_ffff });
  if (version !== undefined && version !== 2) {
    r.fail("totem.version", `totem.version must be 2, got ${version}`);
  }
  if (ctx.transport === "udpu" && ctx.nodelist.length === 0) {
    r.fail(
      "totem.transport",
      `transport ${ctx.transportSetting} needs a nodelist { node { ring0_addr: … nodeid: … } } section`,
    );
  }
  const crypto = readCrypto(r);
  const linkMode =
    r.choice<LinkMode>("totem.link_mode", ["passive", "active", "rr"]) ??
      "passive";
  const totem: TotemSection = {
    version: 2,
    transport: ctx.transport,
    transportSetting: ctx.transportSetting,
    ...crypto,
    linkMode,
    ipVersion: ctx.ipVersion,
    interfaces: readInterfaces(r, ctx),
    clearNodeHighBit: ctx.clearNodeHighBit,
    blockUnlistedIps: r.bool("totem.block_unlisted_ips") ?? true,
    configVersion:
      r.int("totem.config_version", { max: Number.MAX_SAFE_INTEGER }) ?? 0,
  };
  for (const spec of TIMER_KEYS) {
    const value = r.int(`totem.${spec.key}`, {
      min: spec.min,
      max: spec.max,
      unit: spec.unit,
    });
    if (value !== undefined) totem[spec.field] = value;
  }
  const cancelHold = r.bool("totem.cancel_token_hold_on_retransmit");
  if (cancelHold !== undefined) totem.cancelTokenHoldOnRetransmit = cancelHold;
  const failFast = r.bool("totem.unreachable_fails_fast");
  if (failFast !== undefined) totem.unreachableFailsFast = failFast;
  const nodeid = r.int("totem.nodeid", { min: 1, unit: "node id" });
  if (nodeid !== undefined) {
    totem.nodeid = nodeid;
    if (ctx.nodelist.length > 0) {
      r.warn(
        "totem.nodeid",
        "totem.nodeid is deprecated and ignored with a nodelist; set nodeid in the node entry",
      );
    }
  }
  return totem;
}

type CryptoFields = Pick<
  TotemSection,
  "cryptoCipher" | "cryptoHash" | "secauth" | "crypto" | "keyfile" | "key"
>;

function readCrypto(r: FlatReader): CryptoFields {
  if (r.str("totem.crypto_cipher") === "3des") {
    r.fail(
      "totem.crypto_cipher",
      "totem.crypto_cipher 3des is no longer supported (Corosync 3 dropped it); use aes256",
    );
  }
  const secauth = r.bool("totem.secauth") ?? false;
  const cipher = r.choice("totem.crypto_cipher", CIPHERS);
  const hash = r.choice("totem.crypto_hash", HASHES);
  // totem_get_crypto(): secauth: on means aes256 + sha256; explicit keys win.
  const cryptoCipher = cipher ?? (secauth ? "aes256" : "none");
  const cryptoHash = hash ?? (secauth ? "sha256" : "none");
  if (cryptoCipher !== "none" && cryptoHash === "none") {
    r.fail(
      r.has("totem.crypto_hash") ? "totem.crypto_hash" : "totem.crypto_cipher",
      `totem.crypto_cipher ${cryptoCipher} requires totem.crypto_hash other than none (for example sha256), as in corosync`,
    );
  }
  const configured = r.choice<CryptoMode>("totem.crypto", ["none", "aead"]);
  const wanted: CryptoMode = cryptoCipher !== "none" || cryptoHash !== "none"
    ? "aead"
    : "none";
  const crypto = configured ?? wanted;
  if (configured === "none" && wanted === "aead") {
    r.warn(
      "totem.crypto",
      "totem.crypto is none: crypto_cipher and crypto_hash are ignored and frames are sent in clear",
    );
  }
  const fields: CryptoFields = {
    cryptoCipher,
    cryptoHash,
    secauth,
    crypto,
    keyfile: r.str("totem.keyfile") ?? DEFAULT_KEYFILE,
  };
  const key = r.str("totem.key");
  if (key !== undefined) fields.key = key;
  if (crypto === "aead") {
    if (key === undefined && fields.keyfile === "") {
      r.fail(
        "totem.keyfile",
        "crypto is on but totem.keyfile is empty and there is no totem.key; set keyfile (for example /etc/corosync/authkey)",
      );
    }
    if (key !== undefined) {
      const bytes = new TextEncoder().encode(key).length;
      if (bytes < AUTHKEY_BYTES_MIN || bytes > AUTHKEY_BYTES_MAX) {
        r.fail(
          "totem.key",
          `totem.key is ${bytes} bytes; the cluster key must be ${AUTHKEY_BYTES_MIN} to ${AUTHKEY_BYTES_MAX} bytes`,
        );
      }
    }
  }
  return fields;
}

function readInterfaces(r: FlatReader, ctx: TotemContext): InterfaceConfig[] {
  const sectionLinks = new Set<number>();
  for (const key of r.keysUnder("totem.interface.")) {
    const match = /^totem\.interface\.([0-9]+)\./.exec(key);
    if (match) sectionLinks.add(Number(match[1]));
  }
  for (const path of r.flat.sections.keys()) {
    const match = /^totem\.interface\.([0-9]+)$/.exec(path);
    if (match) sectionLinks.add(Number(match[1]));
  }
  const ringCount = ctx.nodelist[0]?.ringAddrs.length ?? 0;
  const links = new Set<number>();
  for (let link = 0; link < ringCount; link++) links.add(link);
  for (const link of sectionLinks) {
    if (link >= LINKS_MAX) {
      r.fail(
        `totem.interface.${link}`,
        `totem.interface.${link}: links are numbered 0..${LINKS_MAX - 1}`,
      );
    }
    if (ctx.nodelist.length > 0 && link >= ringCount) {
      r.warn(
        `totem.interface.${link}`,
        `totem.interface ${link} has no ring${link}_addr in the nodelist and is ignored`,
      );
      for (const key of r.keysUnder(`totem.interface.${link}.`)) r.use(key);
    } else {
      links.add(link);
    }
  }
  if (links.size === 0) {
    r.fail(
      "totem.interface.0.bindnetaddr",
      "transport udp without a nodelist needs an interface { bindnetaddr: … mcastaddr: … } section",
    );
  }
  return [...links].sort((a, b) => a - b).map((link) =>
    readInterface(r, ctx, link)
  );
}

function readInterface(
  r: FlatReader,
  ctx: TotemContext,
  link: number,
): InterfaceConfig {
  const p = `totem.interface.${link}`;
  const broadcast = r.bool(`${p}.broadcast`) ?? false;
  const iface: InterfaceConfig = {
    linknumber: link,
    mcastport:
      r.int(`${p}.mcastport`, { min: 1, max: 65_535, unit: "UDP port" }) ??
        DEFAULT_MCASTPORT + (broadcast ? 2 * link : link),
    broadcast,
    ttl: r.int(`${p}.ttl`, { max: 255 }) ?? 1,
    knetLinkPriority: r.int(`${p}.knet_link_priority`, { max: 255 }) ?? 1,
    knetTransport: "udp",
  };
  const knetTransport = r.str(`${p}.knet_transport`);
  if (knetTransport !== undefined && knetTransport !== "udp") {
    r.fail(
      `${p}.knet_transport`,
      `${p}.knet_transport must be udp, got "${knetTransport}" (sctp is not supported)`,
    );
  }
  const optionalInts: [string, keyof InterfaceConfig][] = [
    ["knet_ping_interval", "knetPingIntervalMs"],
    ["knet_ping_timeout", "knetPingTimeoutMs"],
    ["knet_ping_precision", "knetPingPrecision"],
    ["knet_pong_count", "knetPongCount"],
  ];
  for (const [key, field] of optionalInts) {
    const value = r.int(`${p}.${key}`);
    if (value !== undefined) {
      (iface as unknown as Record<string, number>)[field] = value;
    }
  }
  if (iface.ttl !== 1 && ctx.transport !== "udp") {
    r.fail(
      `${p}.ttl`,
      `${p}.ttl can only be set for transport udp (multicast), as in corosync`,
    );
  }
  if (broadcast && ctx.transport !== "udp") {
    r.fail(
      `${p}.broadcast`,
      `${p}.broadcast can only be set for transport udp`,
    );
  }

  const bindnetaddr = r.str(`${p}.bindnetaddr`);
  if (bindnetaddr !== undefined) {
    iface.bindnetaddr = literal(r, `${p}.bindnetaddr`, bindnetaddr);
    if (ctx.nodelist.length > 0) {
      r.warn(
        `${p}.bindnetaddr`,
        `${p}.bindnetaddr is ignored: the nodelist's ring${link}_addr is used, as in corosync`,
      );
    }
  } else if (ctx.transport === "udp" && ctx.nodelist.length === 0) {
    r.fail(
      p,
      `${p} needs bindnetaddr: transport udp without a nodelist binds by network`,
    );
  }

  const mcastaddr = r.str(`${p}.mcastaddr`);
  if (mcastaddr !== undefined) {
    iface.mcastaddr = literal(r, `${p}.mcastaddr`, mcastaddr);
    if (
      ctx.transport === "udp" && !broadcast && !isMulticast(iface.mcastaddr)
    ) {
      r.fail(
        `${p}.mcastaddr`,
        `${p}.mcastaddr ${mcastaddr} is not a multicast address`,
      );
    }
  } else if (ctx.transport === "udp" && !broadcast) {
    if (ctx.clusterName === "") {
      r.fail(
        p,
        `${p} needs mcastaddr for transport udp (or set totem.cluster_name to derive one, or broadcast: yes)`,
      );
    }
    const family = ctx.nodelist[0] !== undefined
      ? ipFamily(ctx.nodelist[0].ringAddrs[link])
      : ipFamily(iface.bindnetaddr ?? "0.0.0.0");
    iface.mcastaddr = clusterMcastAddr(
      ctx.clusterName,
      link,
      family === 6 ? 6 : 4,
    );
  }
  if (ctx.transport === "udp" && !broadcast) {
    const group = ipFamily(iface.mcastaddr!);
    const local = ctx.nodelist[0] !== undefined
      ? ipFamily(ctx.nodelist[0].ringAddrs[link])
      : ipFamily(iface.bindnetaddr!);
    if (group !== local) {
      r.fail(
        `${p}.mcastaddr`,
        `${p}.mcastaddr ${iface.mcastaddr} and the link's addresses are of different IP families`,
      );
    }
  }
  return iface;
}

function literal(r: FlatReader, key: string, raw: string): string {
  const canonical = canonicalIp(raw);
  if (canonical === undefined) {
    r.fail(
      key,
      `${key} is "${raw}", which is not an IP address (host names are not resolved yet)`,
    );
  }
  return canonical;
}

/**
 * The multicast group Corosync derives from the cluster name when udp has
 * no mcastaddr (`get_cluster_mcast_addr()` in exec/totemconfig.c, including
 * its `% 0xFF`).
 */
export function clusterMcastAddr(
  clusterName: string,
  linknumber: number,
  family: 4 | 6,
): string {
  let value = 0;
  for (const byte of new TextEncoder().encode(clusterName)) {
    // C `char` is signed on x86: bytes >= 0x80 count as negative.
    value = ((value << 1) + (byte >= 0x80 ? byte - 0x100 : byte)) | 0;
  }
  const clusterId = ((value & 0xffff) + linknumber) & 0xffff;
  return family === 4
    ? formatIpv4(
      ((239 * 256 + 192) * 256 + (clusterId >> 8)) * 256 + clusterId % 0xff,
    )
    : `ff15::${clusterId.toString(16)}`;
}

function checkTimers(
  r: FlatReader,
  totem: TotemSection,
  nodeCount: number,
): void {
  try {
    resolveTotemConfig(
      toTotemOptions({ totem } as DaemonConfig),
      nodeCount,
    );
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
    // Point at the first key the message names that the file actually sets.
    const named = [...error.message.matchAll(/totem\.[a-z_]+/g)].map((m) =>
      m[0]
    );
    const key = named.find((k) => r.has(k)) ?? named[0] ?? "totem";
    r.fail(key, error.message);
  }
}

function readQuorum(r: FlatReader, nodes: NodeConfig[]): QuorumConfig {
  const provider = r.choice(
    "quorum.provider",
    ["corosync_votequorum"] as const,
  );
  const twoNode = r.flag("quorum.two_node") ?? false;
  const quorum: QuorumConfig = {
    twoNode,
    waitForAll: r.flag("quorum.wait_for_all") ?? twoNode,
    lastManStanding: r.flag("quorum.last_man_standing") ?? false,
    lastManStandingWindowMs: r.int("quorum.last_man_standing_window", {
      unit: "milliseconds",
    }) ?? 10_000,
    autoTieBreaker: r.flag("quorum.auto_tie_breaker") ?? false,
    autoTieBreakerNode: readTieBreakerNode(r),
    allowDownscale: r.flag("quorum.allow_downscale") ?? false,
    expectedVotesTracking: r.flag("quorum.expected_votes_tracking") ?? false,
  };
  if (provider !== undefined) quorum.provider = provider;
  const expectedVotes = r.int("quorum.expected_votes", {
    min: 1,
    unit: "votes",
  });
  if (expectedVotes !== undefined) quorum.expectedVotes = expectedVotes;
  const votes = r.int("quorum.votes", { unit: "votes" });
  if (votes !== undefined) quorum.votes = votes;
  if (twoNode && nodes.length > 2) {
    r.warn(
      "quorum.two_node",
      `quorum.two_node is meant for exactly 2 nodes but the nodelist has ${nodes.length}`,
    );
  }
  return quorum;
}

function readTieBreakerNode(r: FlatReader): QuorumConfig["autoTieBreakerNode"] {
  const key = "quorum.auto_tie_breaker_node";
  const raw = r.str(key);
  if (raw === undefined || raw === "lowest") return "lowest";
  if (raw === "highest") return "highest";
  const ids = raw.split(/[ \t,]+/).filter((s) => s !== "");
  if (
    ids.length === 0 ||
    !ids.every((id) => /^[0-9]+$/.test(id) && Number(id) > 0)
  ) {
    r.fail(
      key,
      `${key} must be lowest, highest or a list of node ids, got "${raw}"`,
    );
  }
  return ids.map(Number);
}

function readLogging(r: FlatReader): LoggingConfig {
  // Corosync 1.x spellings still accepted by logconfig.c, with a warning.
  if (r.has("logging.to_file")) {
    r.warn("logging.to_file", "logging.to_file is obsolete; use to_logfile");
  }
  if (r.has("logging.syslog_level")) {
    r.warn(
      "logging.syslog_level",
      "logging.syslog_level is obsolete; use syslog_priority",
    );
  }
  const base = readOverrides(r, "logging");
  const toLogfile = base.toLogfile ?? r.bool("logging.to_file") ?? false;
  const syslogPriority = base.syslogPriority ??
    priority(r, "logging.syslog_level") ?? "info";
  const logging: LoggingConfig = {
    toStderr: base.toStderr ?? true,
    toLogfile,
    toSyslog: base.toSyslog ?? true,
    logfilePriority: base.logfilePriority ?? "info",
    syslogFacility: base.syslogFacility ?? "daemon",
    syslogPriority,
    debug: base.debug ?? "off",
    timestamp:
      r.choice<TimestampMode>("logging.timestamp", ["off", "on", "hires"]) ??
        "hires",
    fileline: r.bool("logging.fileline") ?? false,
    functionName: r.bool("logging.function_name") ?? false,
    blackbox: r.bool("logging.blackbox") ?? true,
    subsys: {},
  };
  if (base.logfile !== undefined) logging.logfile = base.logfile;
  if (toLogfile && (logging.logfile ?? "") === "") {
    r.fail(
      r.has("logging.to_logfile") ? "logging.to_logfile" : "logging.to_file",
      "logging.to_logfile is on but logging.logfile is not set",
    );
  }
  const names = new Set<string>();
  for (const key of r.keysUnder("logging.logger_subsys.")) {
    names.add(key.split(".")[2]);
  }
  for (const name of names) {
    const prefix = `logging.logger_subsys.${name}`;
    r.entry(`${prefix}.subsys`);
    logging.subsys[name] = readOverrides(r, prefix);
  }
  return logging;
}

function readOverrides(r: FlatReader, prefix: string): LoggingOverrides {
  const o: LoggingOverrides = {};
  const set = <K extends keyof LoggingOverrides>(
    field: K,
    value: LoggingOverrides[K] | undefined,
  ): void => {
    if (value !== undefined) o[field] = value;
  };
  set("toStderr", r.bool(`${prefix}.to_stderr`));
  set("toLogfile", r.bool(`${prefix}.to_logfile`));
  set("toSyslog", r.bool(`${prefix}.to_syslog`));
  set("logfile", r.str(`${prefix}.logfile`));
  set("logfilePriority", priority(r, `${prefix}.logfile_priority`));
  set("syslogFacility", r.choice(`${prefix}.syslog_facility`, FACILITIES));
  set("syslogPriority", priority(r, `${prefix}.syslog_priority`));
  set("debug", r.choice<DebugLevel>(`${prefix}.debug`, ["off", "on", "trace"]));
  return o;
}

function priority(r: FlatReader, key: string): LogPriority | undefined {
  const raw = r.choice(key, PRIORITIES);
  if (raw === "error") return "err";
  if (raw === "warn") return "warning";
  return raw;
}

function readUidGid(r: FlatReader): UidGidConfig {
  const uidgid: UidGidConfig = { uids: [], gids: [] };
  for (const key of r.keysUnder("uidgid.")) {
    const match = /^uidgid\.(uid|gid)\.(.+)$/.exec(key);
    if (match === null) continue;
    r.use(key);
    (match[1] === "uid" ? uidgid.uids : uidgid.gids).push(match[2]);
  }
  return uidgid;
}

function readSystem(r: FlatReader): SystemConfig {
  const s: SystemConfig = {};
  const stateDir = r.str("system.state_dir");
  if (stateDir !== undefined) s.stateDir = stateDir;
  const runDir = r.str("system.run_dir");
  if (runDir !== undefined) s.runDir = runDir;
  const qbIpcType = r.choice(
    "system.qb_ipc_type",
    ["native", "shm", "socket"] as const,
  );
  if (qbIpcType !== undefined) s.qbIpcType = qbIpcType;
  const schedRr = r.bool("system.sched_rr");
  if (schedRr !== undefined) s.schedRr = schedRr;
  const priorityValue = r.str("system.priority");
  if (priorityValue !== undefined) {
    const nice = Number(priorityValue);
    if (
      !/^(max|min|[+-]?[0-9]+)$/.test(priorityValue) ||
      (Number.isFinite(nice) && (nice < -20 || nice > 19))
    ) {
      r.fail(
        "system.priority",
        `system.priority must be max, min or a nice value -20..19, got "${priorityValue}"`,
      );
    }
    s.priority = priorityValue;
  }
  const move = r.choice(
    "system.move_to_root_cgroup",
    ["yes", "no", "auto"] as const,
  );
  if (move !== undefined) s.moveToRootCgroup = move;
  const fallback = r.bool("system.allow_knet_handle_fallback");
  if (fallback !== undefined) s.allowKnetHandleFallback = fallback;
  return s;
}

function readResources(r: FlatReader): Record<string, string> {
  const resources: Record<string, string> = {};
  for (const key of r.keysUnder("resources.")) {
    resources[key.slice("resources.".length)] = r.str(key)!;
  }
  return resources;
}

function reportUnused(r: FlatReader): void {
  for (const key of r.unused()) {
    const noEffect = NO_EFFECT.find(([re]) => re.test(key));
    if (noEffect !== undefined) {
      r.warn(key, `${key} has no effect in denosync: ${noEffect[1]}`);
      continue;
    }
    const suggestion = suggest(key, r.knownPatterns);
    r.warn(
      key,
      suggestion === undefined
        ? `unknown key ${key} (ignored)`
        : `unknown key ${key} (ignored); did you mean ${suggestion}?`,
    );
  }
}

function suggest(key: string, known: ReadonlySet<string>): string | undefined {
  const pattern = patternOf(key);
  let best: string | undefined;
  let bestDistance = SUGGEST_DISTANCE_MAX + 1;
  for (const candidate of known) {
    const d = editDistance(pattern, candidate);
    if (d > 0 && d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  if (best === undefined) return undefined;
  // Put the key's own indexes back into the pattern.
  const indexes = key.split(".").filter((part) => /^[0-9]+$/.test(part));
  return best.split(".").map((part) =>
    part === "#" ? indexes.shift() ?? "0" : part
  )
    .join(".");
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > SUGGEST_DISTANCE_MAX) {
    return SUGGEST_DISTANCE_MAX + 1;
  }
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        previous[j] + 1,
        current[j - 1] + 1,
        previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return previous[b.length];
}
