/**
 * Which node of the configuration is this process. Pure: the caller passes
 * the host's addresses (for example from `Deno.networkInterfaces()`).
 *
 * Order, as in Corosync (exec/totemconfig.c `find_local_node_in_nodelist`)
 * plus our `--nodeid`: the node with `--nodeid`; else the node at
 * `nodelist.local_node_pos`; else the one node whose ring0_addr is a local
 * address. For udp multicast without a nodelist, the id is `--nodeid`, else
 * the deprecated `totem.nodeid`, else derived from the local address in
 * the network of `bindnetaddr`.
 *
 * @module
 */
import { ConfigError } from "./config_error.ts";
import {
  type DaemonConfig,
  type NodeConfig,
  nodeIdFromIpv4,
} from "./daemon_config.ts";
import { canonicalIp, ipFamily, samePrefix } from "./_ip.ts";

/** What the daemon knows about the host. */
export interface LocalNodeOptions {
  /** `--nodeid` from the command line. */
  nodeId?: number;
  /**
   * This host's addresses as IP literals, optionally with a prefix length
   * (`10.0.0.5/24`; needed only for udp without a nodelist).
   */
  localAddresses: readonly string[];
}

/** The local node and how it was found. */
export interface LocalNode {
  nodeId: number;
  /** Position in `cfg.nodelist`; undefined for udp without a nodelist. */
  pos?: number;
  /** The nodelist entry; undefined for udp without a nodelist. */
  node?: NodeConfig;
  /** Own address per link (index = linknumber). */
  ringAddrs: string[];
  /** For the startup log. */
  via: "nodeid" | "local_node_pos" | "address";
}

interface LocalAddress {
  address: string;
  prefixLength?: number;
}

function parseLocal(entries: readonly string[]): LocalAddress[] {
  const out: LocalAddress[] = [];
  for (const entry of entries) {
    const slash = entry.indexOf("/");
    const address = canonicalIp(slash >= 0 ? entry.slice(0, slash) : entry);
    if (address === undefined) continue;
    const prefix = slash >= 0 ? Number(entry.slice(slash + 1)) : undefined;
    out.push(
      prefix !== undefined && Number.isInteger(prefix)
        ? { address, prefixLength: prefix }
        : { address },
    );
  }
  return out;
}

/** Finds the local node; throws `ConfigError` with the fix when it cannot. */
export function findLocalNode(
  cfg: DaemonConfig,
  options: LocalNodeOptions,
): LocalNode {
  const file = { file: cfg.file, line: 0 };
  const local = parseLocal(options.localAddresses);
  if (cfg.nodelist.length === 0) return multicastLocalNode(cfg, options, local);

  const found = (node: NodeConfig, via: LocalNode["via"]): LocalNode => ({
    nodeId: node.nodeid,
    pos: node.pos,
    node,
    ringAddrs: [...node.ringAddrs],
    via,
  });
  const ids = cfg.nodelist.map((n) => n.nodeid).join(", ");

  if (options.nodeId !== undefined) {
    const node = cfg.nodelist.find((n) => n.nodeid === options.nodeId);
    if (node === undefined) {
      throw new ConfigError(
        file,
        `--nodeid ${options.nodeId} is not in the nodelist (node ids: ${ids})`,
      );
    }
    return found(node, "nodeid");
  }
  if (cfg.localNodePos !== undefined) {
    return found(cfg.nodelist[cfg.localNodePos], "local_node_pos");
  }
  const isLocal = new Set(local.map((l) => l.address));
  const matches = cfg.nodelist.filter((n) => isLocal.has(n.ringAddrs[0]));
  if (matches.length === 1) return found(matches[0], "address");
  if (matches.length === 0) {
    throw new ConfigError(
      file,
      `no node's ring0_addr is an address of this host (${
        local.map((l) => l.address).join(", ") || "none found"
      }); pass --nodeid (node ids: ${ids})`,
    );
  }
  throw new ConfigError(
    { file: cfg.file, line: matches[1].line },
    `nodes ${
      matches.map((n) => n.nodeid).join(", ")
    } all have a ring0_addr of this host; pass --nodeid to say which one this is`,
  );
}

function multicastLocalNode(
  cfg: DaemonConfig,
  options: LocalNodeOptions,
  local: LocalAddress[],
): LocalNode {
  const ringAddrs = cfg.totem.interfaces.map((iface) => {
    const bind = iface.bindnetaddr!;
    // Corosync binds to the interface whose network contains bindnetaddr;
    // bindnetaddr may also be the host address itself.
    const match = local.find((l) => l.address === bind) ??
      local.find((l) =>
        l.prefixLength !== undefined &&
        ipFamily(l.address) === ipFamily(bind) &&
        samePrefix(l.address, bind, l.prefixLength)
      );
    if (match === undefined) {
      throw new ConfigError(
        { file: cfg.file, line: 0 },
        `no address of this host is in the network of totem.interface.${iface.linknumber}.bindnetaddr ${bind}`,
      );
    }
    return match.address;
  });
  if (options.nodeId !== undefined) {
    return { nodeId: options.nodeId, ringAddrs, via: "nodeid" };
  }
  if (cfg.totem.nodeid !== undefined) {
    return { nodeId: cfg.totem.nodeid, ringAddrs, via: "nodeid" };
  }
  const derived = nodeIdFromIpv4(ringAddrs[0], cfg.totem.clearNodeHighBit);
  if (derived === undefined || derived === 0) {
    throw new ConfigError(
      { file: cfg.file, line: 0 },
      `cannot derive a node id from ${
        ringAddrs[0]
      } (IPv6 needs an explicit id); pass --nodeid`,
    );
  }
  return { nodeId: derived, ringAddrs, via: "address" };
}
