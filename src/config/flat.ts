/**
 * The flat form of a configuration: cmap key → string value, exactly as
 * Corosync's `coroparse.c` stores a parsed corosync.conf in icmap
 * (`totem.token`, `totem.interface.0.bindnetaddr`, `nodelist.node.1.ring0_addr`,
 * `logging.logger_subsys.QUORUM.debug`, …). Both file syntaxes produce it;
 * the typed model is built from it; the cmap engine can seed itself from it.
 *
 * @module
 */
import type { ConfigWarning } from "./config_error.ts";

/** One key's value and where it was written. */
export interface FlatEntry {
  readonly value: string;
  readonly file: string;
  readonly line: number;
}

/** A parsed file: its keys, plus where each section started. */
export interface FlatConfig {
  /** The file the keys came from; errors that point at no key use it. */
  readonly file: string;
  /** cmap key → value, in file order. */
  readonly entries: ReadonlyMap<string, FlatEntry>;
  /**
   * First line of every section, by its cmap path after re-keying
   * (`totem`, `totem.interface.1`, `nodelist.node.0`,
   * `logging.logger_subsys.QUORUM`).
   */
  readonly sections: ReadonlyMap<string, number>;
}

/** What the parsers return: the flat config and the syntax-level warnings. */
export interface ParsedConfig extends FlatConfig {
  readonly warnings: readonly ConfigWarning[];
}

/** Longest cmap key name (`ICMAP_KEYNAME_MAXLEN` is 256 with the NUL). */
export const CMAP_KEY_CHARS_MAX = 255;

/** The values only, as a plain object sorted by key (for cmap and tests). */
export function flatToRecord(flat: FlatConfig): Record<string, string> {
  const record: Record<string, string> = {};
  const keys = [...flat.entries.keys()].sort();
  for (const key of keys) record[key] = flat.entries.get(key)!.value;
  return record;
}
