/**
 * Opening a system library over FFI from the first of its usual paths that
 * this process may load (`--allow-ffi` is granted per path) and that exists.
 * Callers treat a failure as "run without it" and log the reason.
 *
 * @module
 */

/** The opened library and where it came from, or why none could be opened. */
export type DlopenResult<S extends Deno.ForeignLibraryInterface> =
  | { lib: Deno.DynamicLibrary<S>; path: string }
  | { reason: string };

/** `name` (for messages, e.g. "libc") opened with `symbols` from `paths`. */
export function dlopenFirst<S extends Deno.ForeignLibraryInterface>(
  name: string,
  paths: readonly string[],
  symbols: S,
): DlopenResult<S> {
  const list = paths.join(", ");
  let reason = `no FFI permission for ${name} (one of ${list})`;
  for (const path of paths) {
    if (Deno.permissions.querySync({ name: "ffi", path }).state !== "granted") {
      continue;
    }
    reason = `no ${name} at ${list}`;
    try {
      return { lib: Deno.dlopen(path, symbols), path };
    } catch {
      continue; // not on this system, or without these symbols
    }
  }
  return { reason };
}
