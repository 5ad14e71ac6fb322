/**
 * Configuration loading for the daemon: corosync.conf(5) syntax or YAML →
 * flat cmap keys → typed, validated `DaemonConfig`.
 *
 * ```ts
 * const loaded = await loadConfigFile("/etc/corosync/corosync.conf");
 * for (const w of loaded.warnings) log.warn(formatWarning(w));
 * const me = findLocalNode(loaded.config, { nodeId, localAddresses });
 * const totem = resolveTotemConfig(toTotemOptions(loaded.config), loaded.config.nodelist.length);
 * ```
 *
 * @module
 */
export {
  ConfigError,
  type ConfigPlace,
  type ConfigWarning,
  formatPlace,
  formatWarning,
} from "./config_error.ts";
export {
  CMAP_KEY_CHARS_MAX,
  type FlatConfig,
  type FlatEntry,
  flatToRecord,
  type ParsedConfig,
} from "./flat.ts";
export { parseCorosyncConf } from "./corosync_conf.ts";
export { parseYamlConf } from "./yaml_conf.ts";
export {
  AUTHKEY_BYTES_MAX,
  AUTHKEY_BYTES_MIN,
  buildDaemonConfig,
  type BuildResult,
  clusterMcastAddr,
  type CryptoCipher,
  type CryptoHash,
  type CryptoMode,
  type DaemonConfig,
  type DebugLevel,
  DEFAULT_KEYFILE,
  DEFAULT_MCASTPORT,
  type InterfaceConfig,
  type IpVersion,
  type LinkMode,
  LINKS_MAX,
  type LoggingConfig,
  type LoggingOverrides,
  type LogPriority,
  type NodeConfig,
  nodeIdFromIpv4,
  type QuorumConfig,
  type SystemConfig,
  type TimestampMode,
  type TotemSection,
  toTotemOptions,
  type TransportName,
  type TransportSetting,
  type UidGidConfig,
} from "./daemon_config.ts";
export {
  findLocalNode,
  type LocalNode,
  type LocalNodeOptions,
} from "./local_node.ts";
export {
  type ConfigFormat,
  configFormatOf,
  loadConfigFile,
  type LoadedConfig,
  type LoadOptions,
  loadYamlSupport,
  parseConfigText,
  readAuthKey,
} from "./load.ts";
