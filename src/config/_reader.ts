/**
 * Typed reads from a flat config with Corosync's value rules, remembering
 * which keys were read so that the rest can be reported as unknown.
 *
 * @module
 */
import {
  ConfigError,
  type ConfigPlace,
  type ConfigWarning,
} from "./config_error.ts";
import type { FlatConfig, FlatEntry } from "./flat.ts";

const TRUE_WORDS = ["yes", "on", "true", "1"];
const FALSE_WORDS = ["no", "off", "false", "0"];

/** Bounds and wording for an integer key. */
export interface IntSpec {
  readonly min?: number;
  readonly max?: number;
  /** What the number counts, for messages: "milliseconds", "votes". */
  readonly unit?: string;
}

/** Reads keys, records them as known, and turns bad values into ConfigErrors. */
export class FlatReader {
  readonly flat: FlatConfig;
  readonly warnings: ConfigWarning[] = [];
  /** Keys that were read or looked for, with indexes replaced by `#`. */
  readonly knownPatterns = new Set<string>();
  readonly #used = new Set<string>();

  constructor(flat: FlatConfig) {
    this.flat = flat;
  }

  /** The entry for `key` (marking it as read). */
  entry(key: string): FlatEntry | undefined {
    this.knownPatterns.add(patternOf(key));
    const entry = this.flat.entries.get(key);
    if (entry !== undefined) this.#used.add(key);
    return entry;
  }

  /** Whether `key` is present, without marking it. */
  has(key: string): boolean {
    return this.flat.entries.has(key);
  }

  /** Marks a key as handled. */
  use(key: string): void {
    this.knownPatterns.add(patternOf(key));
    this.#used.add(key);
  }

  /** Keys not read so far, in file order. */
  unused(): string[] {
    return [...this.flat.entries.keys()].filter((key) => !this.#used.has(key));
  }

  /** Present keys that start with `prefix`, in file order (not marked). */
  keysUnder(prefix: string): string[] {
    return [...this.flat.entries.keys()].filter((key) =>
      key.startsWith(prefix)
    );
  }

  /**
   * Where to point for `key`: its own line, else the innermost section that
   * would contain it, else the file.
   */
  place(key: string): ConfigPlace {
    const entry = this.flat.entries.get(key);
    if (entry !== undefined) return { file: entry.file, line: entry.line };
    let path = key;
    while (path !== "") {
      const line = this.flat.sections.get(path);
      if (line !== undefined) return { file: this.flat.file, line };
      const dot = path.lastIndexOf(".");
      path = dot < 0 ? "" : path.slice(0, dot);
    }
    return { file: this.flat.file, line: 0 };
  }

  /** Throws a ConfigError at `key`'s place. */
  fail(key: string, reason: string): never {
    throw new ConfigError(this.place(key), reason);
  }

  /** Adds a warning at `key`'s place. */
  warn(key: string, message: string): void {
    this.warnings.push({ ...this.place(key), message });
  }

  /** The string value, or undefined when absent. */
  str(key: string): string | undefined {
    return this.entry(key)?.value;
  }

  /** A whole number within `spec`, as Corosync's `safe_atoq` reads it (base 10). */
  int(key: string, spec: IntSpec = {}): number | undefined {
    const raw = this.str(key);
    if (raw === undefined) return undefined;
    const min = spec.min ?? 0;
    const max = spec.max ?? 0xffff_ffff;
    const unit = spec.unit ? ` (${spec.unit})` : "";
    if (!/^[+-]?[0-9]+$/.test(raw)) {
      this.fail(key, `${key} must be a whole number${unit}, got "${raw}"`);
    }
    const value = Number(raw);
    if (value < min || value > max) {
      this.fail(
        key,
        `${key} must be between ${min} and ${max}${unit}, got ${raw}`,
      );
    }
    return value;
  }

  /** yes/no, on/off (Corosync uses both spellings, depending on the key). */
  bool(key: string): boolean | undefined {
    const raw = this.str(key);
    if (raw === undefined) return undefined;
    if (TRUE_WORDS.includes(raw)) return true;
    if (FALSE_WORDS.includes(raw)) return false;
    this.fail(key, `${key} must be yes or no (on or off), got "${raw}"`);
  }

  /** Votequorum flags are integers (0 = off), as in coroparse.c. */
  flag(key: string): boolean | undefined {
    const value = this.int(key, { max: 255 });
    return value === undefined ? undefined : value !== 0;
  }

  /** One of `choices`, or undefined when absent. */
  choice<T extends string>(key: string, choices: readonly T[]): T | undefined {
    const raw = this.str(key);
    if (raw === undefined) return undefined;
    if ((choices as readonly string[]).includes(raw)) return raw as T;
    this.fail(key, `${key} must be one of ${choices.join(", ")}, got "${raw}"`);
  }
}

/** `nodelist.node.3.ring1_addr` → `nodelist.node.#.ring1_addr`. */
export function patternOf(key: string): string {
  return key.split(".").map((part) => /^[0-9]+$/.test(part) ? "#" : part)
    .join(".");
}
