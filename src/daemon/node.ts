/**
 * Opening one node: frame crypto, the UDP transport and the runtime that
 * drives the Totem core, wired together from a loaded configuration. Shared
 * by `denosync run` and the ring benchmark (scripts/ring_bench.ts).
 */
import {
  type InterfaceConfig,
  toTotemOptions,
} from "../config/daemon_config.ts";
import type { LoadedConfig } from "../config/load.ts";
import type { Logger } from "../log/logger.ts";
// Frame crypto (and with it node:crypto) is imported only when crypto is
// on: a cluster without it saves the memory (issue 6, idle RSS).
import type { FrameOpener } from "../net/crypto.ts";
import { effectiveNetmtu } from "../net/netmtu.ts";
import { Transport } from "../net/transport.ts";
import { WIRE_HEADER_BYTES } from "../net/wire.ts";
import { resolveTotemConfig } from "../totem/config.ts";
import { peekType } from "../totem/codec.ts";
import { NodeRuntime } from "./node_runtime.ts";

/** A problem that stops the node from starting, caused by its settings. */
export class StartError extends Error {
  override name = "StartError";
}

/** What `openNode` needs. */
export interface OpenNodeOptions {
  loaded: LoadedConfig;
  nodeId: number;
  /** How the local node was found (for the start line). */
  via: string;
  stateDir: string;
  logger: Logger;
  testBlockFile?: string;
  /** An executive will run service sync above the core (TOTEM.md 8.1). */
  syncBarrier?: boolean;
  onLinkChange?: (
    change: { nodeId: number; link: number; up: boolean },
  ) => void;
}

/** A running node. */
export interface OpenNode {
  runtime: NodeRuntime;
  transport: Transport;
  /**
   * The frame opener when crypto is on: a configuration reload changes the
   * node ids it accepts (`setAllowedNodeIds`).
   */
  opener: FrameOpener | null;
  /** Leaves the ring cleanly, then flushes and closes the sockets. */
  close(): Promise<void>;
}

/** Opens the transport and starts the Totem runtime (not yet `start()`ed). */
export async function openNode(options: OpenNodeOptions): Promise<OpenNode> {
  const { loaded, nodeId, stateDir, logger } = options;
  const cfg = loaded.config;
  const nodeIds = cfg.nodelist.map((n) => n.nodeid);
  const totemOptions = toTotemOptions(cfg);
  // The timers do not depend on the frame size, which is settled once the
  // sockets' receive buffers are known (below).
  const timing = resolveTotemConfig(totemOptions, nodeIds.length);
  logger.log(
    "notice",
    "MAIN",
    `starting node ${nodeId} (found by ${options.via}) of cluster "${cfg.clusterName}" with ${nodeIds.length} nodes, ` +
      `${cfg.totem.interfaces.length} link(s), transport ${cfg.totem.transport}, crypto ${cfg.totem.crypto}, ` +
      `token ${timing.tokenMs} ms, consensus ${timing.consensusMs} ms`,
  );

  let crypto:
    | { seal(p: Uint8Array): Uint8Array; open: FrameOpener["open"] }
    | undefined;
  let frameOpener: FrameOpener | null = null;
  let cryptoOverheadBytes = 0;
  if (cfg.totem.crypto === "aead") {
    const master = loaded.authKey;
    if (master === undefined) {
      throw new StartError("crypto is on but no cluster key was read");
    }
    const { CRYPTO_OVERHEAD_BYTES, FrameOpener, FrameSealer, nextEpoch } =
      await import("../net/crypto.ts");
    const { gcmBackend } = await import("../net/aes_gcm.ts");
    logger.log("notice", "MAIN", `frame crypto: ${gcmBackend().describe}`);
    cryptoOverheadBytes = CRYPTO_OVERHEAD_BYTES;
    const epoch = await nextEpoch(stateDir, nodeId);
    const sealer = new FrameSealer({
      master,
      clusterName: cfg.clusterName,
      nodeId,
      epoch,
    });
    const opener = new FrameOpener({
      master,
      clusterName: cfg.clusterName,
      allowedNodeIds: new Set(nodeIds),
    });
    crypto = { seal: (p) => sealer.seal(p), open: (b) => opener.open(b) };
    frameOpener = opener;
  }

  let runtime: NodeRuntime | null = null;
  const transport = await Transport.open({
    nodeId,
    nodes: cfg.nodelist.map((n) => ({ nodeId: n.nodeid, addrs: n.ringAddrs })),
    port: cfg.totem.interfaces.map((i) => i.mcastport),
    mode: cfg.totem.transport,
    mcastAddr: cfg.totem.interfaces.map((i) => i.mcastaddr ?? ""),
    linkMode: cfg.totem.linkMode,
    linkPriorities: cfg.totem.interfaces.map((i) => i.knetLinkPriority),
    ...knetHeartbeat(cfg.totem.interfaces[0], timing.tokenMs),
    crypto,
    testBlockFile: options.testBlockFile,
    testFrameKind: peekType,
    onFrame: (bytes: Uint8Array) => runtime?.receive(bytes),
    onLinkChange: (c) => {
      logger.log(
        "notice",
        "KNET",
        `link ${c.link} to node ${c.nodeId} is ${c.up ? "up" : "down"}`,
      );
      // A peer is unreachable once its last link is down; the core fails
      // it without waiting for consensus if the token is lost meanwhile.
      const reachable = c.up ||
        transport.linkStatus().some((s) =>
          s.nodeId === c.nodeId && s.connected
        );
      runtime?.reachability(c.nodeId, reachable);
      options.onLinkChange?.(c);
    },
  });
  logReceiveBuffers(logger, transport.receiveBuffers);
  for (const { link, reason } of transport.directSend) {
    if (reason === null) {
      logger.log("info", "KNET", `link ${link}: datagrams sent with sendto`);
    } else {
      logger.log(
        "notice",
        "KNET",
        `link ${link}: datagrams sent through Deno's send, slower (${reason}). Run with the permissions of \`deno task denosync\``,
      );
    }
  }
  // An unset netmtu gets larger frames on loopback and with knet, as
  // Corosync's knet would send, when the buffers can take a token visit of
  // them (src/net/netmtu.ts).
  const configuredMtu = totemOptions.netmtu;
  totemOptions.netmtu = effectiveNetmtu(
    configuredMtu,
    cfg.nodelist.map((n) => n.ringAddrs),
    cfg.totem.transportSetting,
    smallestReceiveBuffer(transport.receiveBuffers),
  );
  const totem = resolveTotemConfig(totemOptions, nodeIds.length);
  if (configuredMtu === undefined) {
    logger.log(
      "info",
      "TOTEM",
      `netmtu ${totem.netmtu} (totem.netmtu unset; frame size chosen for this transport and receive buffer)`,
    );
  }
  const rt = new NodeRuntime({
    nodeId,
    nodes: nodeIds,
    totem,
    transport,
    logger,
    stateDir,
    transportOverheadBytes: WIRE_HEADER_BYTES + cryptoOverheadBytes,
    transportHeaderBytes: WIRE_HEADER_BYTES,
  });
  runtime = rt;
  return {
    runtime: rt,
    transport,
    opener: frameOpener,
    close: async () => {
      rt.shutdown();
      await transport.close();
    },
  };
}

/** The smallest receive buffer the kernel reports, null if one is unknown. */
function smallestReceiveBuffer(
  buffers: Transport["receiveBuffers"],
): number | null {
  if (buffers.length === 0) return null;
  let min = Infinity;
  for (const { result } of buffers) {
    if (!result.ok) return null;
    min = Math.min(min, result.bytes);
  }
  return min;
}

/**
 * One line per socket: the receive buffer we got, or why the kernel default
 * stays (then bursts are more likely to be dropped and retransmitted).
 */
function logReceiveBuffers(
  logger: Logger,
  buffers: Transport["receiveBuffers"],
): void {
  for (const { link, socket, result } of buffers) {
    if (result.ok) {
      logger.log(
        "info",
        "KNET",
        // Linux reports twice the size asked for (bookkeeping included).
        `link ${link} ${socket}: receive buffer ${
          (result.bytes / 2 / 1048576).toFixed(1)
        } MiB${result.forced ? "" : " (not root: at most net.core.rmem_max)"}`,
      );
    } else {
      logger.log(
        "notice",
        "KNET",
        `link ${link} ${socket}: receive buffer left at the kernel default (${result.reason}); ` +
          "bursts may be dropped and retransmitted. Run with the permissions of `deno task denosync` or raise net.core.rmem_default",
      );
    }
  }
}

/** corosync.conf(5) `knet_pong_count` default, used in the timing formulas. */
const KNET_PONG_COUNT_DEFAULT = 2;

/**
 * Link heartbeat timing of link 0 as Corosync derives it when unset
 * (corosync.conf(5)): `knet_ping_interval = token / (knet_pong_count * 2)`,
 * `knet_ping_timeout = token / knet_pong_count`, from the effective token.
 * At rest the heartbeats are most of a daemon's traffic, so this is also
 * what keeps an idle daemon's CPU low (issue 6).
 */
export function knetHeartbeat(
  link: InterfaceConfig | undefined,
  tokenMs: number,
): { pingIntervalMs: number; pingTimeoutMs: number; pongCount?: number } {
  const pongs = link?.knetPongCount ?? KNET_PONG_COUNT_DEFAULT;
  const derivedTimeout = Math.max(2, Math.floor(tokenMs / pongs));
  const interval = link?.knetPingIntervalMs ??
    Math.max(
      1,
      Math.min(
        Math.floor(tokenMs / (pongs * 2)),
        Math.floor((link?.knetPingTimeoutMs ?? derivedTimeout) / 2),
      ),
    );
  const timeout = link?.knetPingTimeoutMs ??
    Math.max(derivedTimeout, 2 * interval);
  return {
    pingIntervalMs: interval,
    pingTimeoutMs: timeout,
    ...(link?.knetPongCount !== undefined
      ? { pongCount: link.knetPongCount }
      : {}),
  };
}
