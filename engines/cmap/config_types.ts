/**
 * Types of configuration keys in cmap, as Corosync's `coroparse.c` stores
 * them: the numeric settings of corosync.conf are integers (mostly uint32),
 * everything else is a string. The configuration reaches cmap as text
 * (`flatToRecord`); `configValue` gives each key its Corosync type.
 *
 * @module
 */
import { type CmapType, type CmapValue, parseValue } from "./values.ts";

/** Key patterns and their types; the first match wins. */
export const CMAP_CONFIG_TYPES: readonly (readonly [RegExp, CmapType])[] = [
  [/^totem\.config_version$/, "uint64"],
  [
    /^totem\.(version|nodeid|threads|netmtu|token|token_warning|token_coefficient|token_retransmit|token_retransmits_before_loss_const|hold|join|send_join|consensus|merge|downcheck|fail_recv_const|seqno_unchanged_const|heartbeat_failures_allowed|max_network_delay|window_size|max_messages|miss_count_const|knet_pmtud_interval|knet_mtu|knet_compression_threshold|knet_compression_level)$/,
    "uint32",
  ],
  [/^totem\.interface\.[0-9]+\.(mcastport)$/, "uint16"],
  [/^totem\.interface\.[0-9]+\.(ttl|knet_link_priority)$/, "uint8"],
  [
    /^totem\.interface\.[0-9]+\.(linknumber|knet_ping_interval|knet_ping_timeout|knet_ping_precision|knet_pong_count)$/,
    "uint32",
  ],
  [/^nodelist\.node\.[0-9]+\.(nodeid|quorum_votes)$/, "uint32"],
  [/^nodelist\.local_node_pos$/, "uint32"],
  [
    /^quorum\.(expected_votes|votes|last_man_standing_window|sync_timeout|leaving_timeout)$/,
    "uint32",
  ],
  [
    /^quorum\.(two_node|wait_for_all|last_man_standing|auto_tie_breaker|allow_downscale)$/,
    "uint8",
  ],
  [/^cfg\.shutdown_timeout$/, "uint32"],
];

/** The Corosync type of configuration key `key` ("string" when untyped). */
export function configKeyType(key: string): CmapType {
  for (const [pattern, type] of CMAP_CONFIG_TYPES) {
    if (pattern.test(key)) return type;
  }
  return "string";
}

/**
 * `text` of configuration key `key` as its typed value. Text that does not
 * parse as the key's type (e.g. `two_node: yes`) stays a string: the
 * configuration checks own the verdict on values, cmap only stores them.
 */
export function configValue(key: string, text: string): CmapValue {
  const type = configKeyType(key);
  if (type !== "string") {
    const parsed = parseValue(type, text.trim());
    if (parsed.ok) return parsed.value;
  }
  return { type: "string", value: text };
}
