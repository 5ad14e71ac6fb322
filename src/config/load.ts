/**
 * The edge: reads the configuration file (and the cluster key) from disk
 * and runs the pure parsers and model builder on them. Every failure is a
 * `ConfigError` naming the file (and line), so `denosync run` can print it
 * and exit 2.
 *
 * Permissions: `--allow-read` for the file and key file; YAML files also
 * need `--allow-env=LOG_TOKENS,LOG_STREAM` (the yaml package reads them).
 *
 * @module
 */
import {
  ConfigError,
  type ConfigPlace,
  type ConfigWarning,
} from "./config_error.ts";
import type { FlatConfig, ParsedConfig } from "./flat.ts";
import { parseCorosyncConf } from "./corosync_conf.ts";
import {
  AUTHKEY_BYTES_MAX,
  AUTHKEY_BYTES_MIN,
  buildDaemonConfig,
  type DaemonConfig,
} from "./daemon_config.ts";

/** Which syntax a file is in. */
export type ConfigFormat = "corosync" | "yaml";

/** A loaded, validated configuration. */
export interface LoadedConfig {
  file: string;
  format: ConfigFormat;
  /** The cmap keys as written (seed for the cmap engine). */
  flat: ParsedConfig;
  config: DaemonConfig;
  /** Parser warnings, then model warnings; log each with `formatWarning`. */
  warnings: ConfigWarning[];
  /** The cluster key when `config.totem.crypto` is `aead` and it was read. */
  authKey?: Uint8Array;
}

/** Options for `loadConfigFile`. */
export interface LoadOptions {
  /** Read the cluster key when crypto is on (default true). */
  readAuthKey?: boolean;
}

/** `.yaml` / `.yml` files are YAML; everything else is corosync.conf syntax. */
export function configFormatOf(file: string): ConfigFormat {
  return /\.ya?ml$/i.test(file) ? "yaml" : "corosync";
}

// The YAML parser (the `yaml` package, ~10 MB of heap once loaded) is
// imported only when a YAML file is read: a daemon on corosync.conf never
// pays for it (issue 6, idle RSS).
let yamlParser: ((text: string, file: string) => ParsedConfig) | null = null;

/** Loads the YAML parser; `loadConfigFile` does this for YAML files. */
export async function loadYamlSupport(): Promise<void> {
  yamlParser ??= (await import("./yaml_conf.ts")).parseYamlConf;
}

/**
 * Parses text in the syntax its file name implies. Pure. YAML needs
 * `loadYamlSupport()` to have run once before.
 */
export function parseConfigText(text: string, file: string): ParsedConfig {
  if (configFormatOf(file) !== "yaml") return parseCorosyncConf(text, file);
  if (yamlParser === null) {
    throw new Error("parseConfigText: call loadYamlSupport() before YAML");
  }
  return yamlParser(text, file);
}

/** Reads, parses and validates a configuration file (and its key). */
export async function loadConfigFile(
  path: string,
  options: LoadOptions = {},
): Promise<LoadedConfig> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    throw new ConfigError(
      { file: path, line: 0 },
      `cannot read the configuration file: ${describe(error)}`,
    );
  }
  if (configFormatOf(path) === "yaml") await loadYamlSupport();
  const flat = parseConfigText(text, path);
  const { config, warnings } = buildDaemonConfig(flat);
  const loaded: LoadedConfig = {
    file: path,
    format: configFormatOf(path),
    flat,
    config,
    warnings: [...flat.warnings, ...warnings],
  };
  if (config.totem.crypto === "aead" && (options.readAuthKey ?? true)) {
    loaded.authKey = await readAuthKey(config, flat);
  }
  return loaded;
}

/**
 * The cluster key: the inline `totem.key` (its UTF-8 bytes), else the
 * contents of `totem.keyfile`. Errors point at the key that chose it.
 */
export async function readAuthKey(
  cfg: DaemonConfig,
  flat?: FlatConfig,
): Promise<Uint8Array> {
  const placeOf = (...keys: string[]): ConfigPlace => {
    for (const key of keys) {
      const entry = flat?.entries.get(key);
      if (entry !== undefined) return entry;
    }
    return { file: cfg.file, line: 0 };
  };
  let key: Uint8Array;
  let place: ConfigPlace;
  let what: string;
  if (cfg.totem.key !== undefined) {
    key = new TextEncoder().encode(cfg.totem.key);
    place = placeOf("totem.key");
    what = "totem.key";
  } else {
    place = placeOf(
      "totem.keyfile",
      "totem.crypto_cipher",
      "totem.crypto_hash",
      "totem.secauth",
      "totem.crypto",
    );
    what = `key file ${cfg.totem.keyfile}`;
    try {
      key = await Deno.readFile(cfg.totem.keyfile);
    } catch (error) {
      throw new ConfigError(
        place,
        `crypto is on but the key file ${cfg.totem.keyfile} cannot be read: ${
          describe(error)
        } (create one with denosync keygen)`,
      );
    }
  }
  if (key.length < AUTHKEY_BYTES_MIN || key.length > AUTHKEY_BYTES_MAX) {
    throw new ConfigError(
      place,
      `${what} is ${key.length} bytes; the cluster key must be ${AUTHKEY_BYTES_MIN} to ${AUTHKEY_BYTES_MAX} bytes`,
    );
  }
  return key;
}

function describe(error: unknown): string {
  if (error instanceof Deno.errors.NotFound) return "no such file";
  if (error instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (error instanceof Deno.errors.NotCapable) {
    return "not allowed by Deno permissions (add it to --allow-read)";
  }
  if (error instanceof Deno.errors.IsADirectory) return "it is a directory";
  return error instanceof Error ? error.message : String(error);
}
