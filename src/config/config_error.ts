/**
 * Operator errors and warnings about configuration files. Both carry the
 * place (file and line) first, the way compilers and Corosync's parser do
 * (`parser error: FILE:LINE: reason`), so an editor can jump to it.
 *
 * @module
 */

/** A place in a configuration file. `line` is 1-based; 0 means "the whole file". */
export interface ConfigPlace {
  readonly file: string;
  readonly line: number;
}

/** Formats `file:line` (or just `file` when the line is unknown). */
export function formatPlace(place: ConfigPlace): string {
  return place.line > 0 ? `${place.file}:${place.line}` : place.file;
}

/**
 * A configuration the daemon refuses to start with (STYLE.md section 6:
 * operator error, exit 2). The message is `${file}:${line}: ${reason}`.
 */
export class ConfigError extends Error {
  override name = "ConfigError";
  readonly file: string;
  readonly line: number;
  readonly reason: string;

  constructor(place: ConfigPlace, reason: string) {
    super(`${formatPlace(place)}: ${reason}`);
    this.file = place.file;
    this.line = place.line;
    this.reason = reason;
  }
}

/** Something suspicious that does not stop the daemon (unknown key, overwritten key). */
export interface ConfigWarning extends ConfigPlace {
  readonly message: string;
}

/** Formats a warning as `${file}:${line}: ${message}`. */
export function formatWarning(warning: ConfigWarning): string {
  return `${formatPlace(warning)}: ${warning.message}`;
}
