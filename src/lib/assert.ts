/**
 * Invariant checks that stay on in production. A failed assertion is our own
 * bug: it throws with context and is never caught (STYLE.md section 6).
 */
export class AssertionError extends Error {
  override name = "AssertionError";
}

/** Throws an AssertionError when `condition` is false. */
export function assert(
  condition: unknown,
  message = "assertion failed",
): asserts condition {
  if (!condition) throw new AssertionError(message);
}

/** Marks the end of an exhaustive switch over a union. */
export function unreachable(value: never): never {
  throw new AssertionError(`unreachable: ${JSON.stringify(value)}`);
}
