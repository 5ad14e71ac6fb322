/**
 * Wrap-aware u32 sequence arithmetic (TOTEM.md 2.11). Serial-number
 * comparison: `a` precedes `b` when the signed 32-bit distance `a - b` is
 * negative, so order survives the wrap from 0xFFFFFFFF to 0 and the crossing
 * of 0x80000000 as long as live values lie within 2^31 of each other (the
 * sort-queue window keeps them within 16384).
 */

/** `a < b` under serial-number arithmetic. */
export function seqLt(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}

/** `a <= b` with Corosync's wrap rule. */
export function seqLte(a: number, b: number): boolean {
  return a === b || seqLt(a, b);
}

/** `a > b` with Corosync's wrap rule. */
export function seqGt(a: number, b: number): boolean {
  return seqLt(b, a);
}

/** `a >= b` with Corosync's wrap rule. */
export function seqGte(a: number, b: number): boolean {
  return a === b || seqLt(b, a);
}

/** The smaller of two sequence numbers under the wrap rule. */
export function seqMin(a: number, b: number): number {
  return seqLt(a, b) ? a : b;
}

/** The larger of two sequence numbers under the wrap rule. */
export function seqMax(a: number, b: number): number {
  return seqLt(a, b) ? b : a;
}

/** `s + n` modulo 2^32. */
export function seqAdd(s: number, n: number): number {
  return (s + n) >>> 0;
}
