/**
 * cmap keys the daemon keeps with effect (an edge), beside the statistics
 * of stats_feed.ts:
 *
 * - `runtime.config.totem.*`: the effective Totem values after defaults
 *   and derivations (`resolveTotemConfig`), uint32 as Corosync's
 *   `totem_volatile_config_set_uint32_value`; read-only to clients.
 * - `logging.debug` and `logging.logger_subsys.<SUBSYS>.debug` ("on",
 *   "off", "trace") and `logging.to_stderr` ("yes"/"no", "on"/"off",
 *   1/0): a client's write changes the logger at once; a value the logger
 *   cannot take is refused (INVALID_PARAM) and the daemon log says why. A
 *   delete returns the setting to its default, as Corosync re-reads
 *   `logging.*` with defaults for what is missing.
 *
 * @module
 */
import type { CmapEngine } from "../../engines/cmap/cmap.ts";
import type { CmapValue } from "../../engines/cmap/values.ts";
import { CsError, type CsStatus } from "../exec/cs_error.ts";
import type { Logger } from "../log/logger.ts";
import type { TotemConfig } from "../totem/config.ts";

/** `runtime.config.totem.<name>` ← the resolved config field. */
export const RUNTIME_TOTEM_KEYS: readonly (readonly [
  string,
  keyof TotemConfig,
])[] = [
  ["token", "tokenMs"],
  ["token_coefficient", "tokenCoefficientMs"],
  ["token_warning", "tokenWarningPercent"],
  ["token_retransmit", "tokenRetransmitMs"],
  ["hold", "holdMs"],
  ["token_retransmits_before_loss_const", "tokenRetransmitsBeforeLossConst"],
  ["join", "joinMs"],
  ["send_join", "sendJoinMs"],
  ["consensus", "consensusMs"],
  ["merge", "mergeMs"],
  ["downcheck", "downcheckMs"],
  ["fail_recv_const", "failRecvConst"],
  ["seqno_unchanged_const", "seqnoUnchangedConst"],
  ["heartbeat_failures_allowed", "heartbeatFailuresAllowed"],
  ["max_network_delay", "maxNetworkDelayMs"],
  ["window_size", "windowSize"],
  ["max_messages", "maxMessages"],
  ["miss_count_const", "missCountConst"],
  ["cancel_token_hold_on_retransmit", "cancelTokenHoldOnRetransmit"],
  ["unreachable_fails_fast", "unreachableFailsFast"],
  ["fast_token_retransmit_min", "fastTokenRetransmitMinMs"],
  ["netmtu", "netmtu"],
];

/**
 * Writes `runtime.config.totem.*` from `config` (at start, and again by
 * whoever changes the effective values, e.g. a reload). Unchanged values
 * notify nobody.
 */
export function publishTotemConfig(
  cmap: Pick<CmapEngine, "setInternal">,
  config: TotemConfig,
): void {
  for (const [name, field] of RUNTIME_TOTEM_KEYS) {
    const v = config[field];
    const n = typeof v === "boolean" ? (v ? 1 : 0) : v;
    cmap.setInternal(`runtime.config.totem.${name}`, {
      type: "uint32",
      value: Math.min(0xffff_ffff, Math.max(0, Math.trunc(n))),
    });
  }
}

type DebugLevel = "off" | "on" | "trace";

const DEBUG_LEVELS: readonly string[] = ["off", "on", "trace"];
const SUBSYS_DEBUG = /^logging\.logger_subsys\.([^.]+)\.debug$/;

/** Defaults a deleted logging key returns to. */
export interface LoggingDefaults {
  debug: DebugLevel;
  toStderr: boolean;
}

function text(v: CmapValue): string | null {
  return v.type === "string" ? v.value.trim().toLowerCase() : null;
}

function parseBool(v: CmapValue): boolean | null {
  if (v.type === "string") {
    const t = v.value.trim().toLowerCase();
    if (t === "yes" || t === "on" || t === "1") return true;
    if (t === "no" || t === "off" || t === "0") return false;
    return null;
  }
  if (
    v.type === "int8" || v.type === "uint8" || v.type === "int16" ||
    v.type === "uint16" || v.type === "int32" || v.type === "uint32"
  ) return v.value === 0 ? false : v.value === 1 ? true : null;
  return null;
}

/**
 * Makes client writes of the logging keys change `logger` live (see the
 * module comment).
 */
export function bindLoggingKeys(
  cmap: Pick<CmapEngine, "addWriteHook">,
  logger: Logger,
  defaults: LoggingDefaults = { debug: "off", toStderr: true },
): void {
  const refuse = (key: string, v: CmapValue, expected: string): CsStatus => {
    logger.log(
      "warn",
      "CMAP",
      `${key}: expected ${expected}, got ${v.type} ${
        String(v.value)
      }; not changed`,
    );
    return CsError.INVALID_PARAM;
  };
  cmap.addWriteHook("logging.", (key, value) => {
    const subsys = SUBSYS_DEBUG.exec(key)?.[1];
    if (key === "logging.debug" || subsys !== undefined) {
      let level: DebugLevel | null = null;
      if (value !== null) {
        const t = text(value);
        if (t === null || !DEBUG_LEVELS.includes(t)) {
          return refuse(key, value, `a string "on", "off" or "trace"`);
        }
        level = t as DebugLevel;
      }
      if (subsys === undefined) logger.setDebug(level ?? defaults.debug);
      else if (level === null) logger.clearSubsysDebug(subsys);
      else logger.setDebug(level, subsys);
      logger.log(
        "notice",
        "CMAP",
        `${key} ${level === null ? "deleted" : `set to ${level}`}: debug ${
          subsys === undefined ? "logging" : `logging of ${subsys}`
        } is now ${logger.debugLevel(subsys)}`,
      );
      return CsError.OK;
    }
    if (key === "logging.to_stderr") {
      let on = defaults.toStderr;
      if (value !== null) {
        const b = parseBool(value);
        if (b === null) return refuse(key, value, `"yes" or "no"`);
        on = b;
      }
      logger.setToStderr(on);
      return CsError.OK;
    }
    // Other logging keys are stored without effect until a restart.
    return CsError.OK;
  });
}
