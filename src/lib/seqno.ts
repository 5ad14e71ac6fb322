/**
 * Wrap-aware u32 sequence arithmetic (TOTEM.md 2.11): totemsrp compares
 * sequence numbers with a half-range shift so that order survives the wrap
 * from 0xFFFFFFFF to 0.
 */
const HALF = 0x8000_0000;

/** `a < b` with Corosync's wrap rule. */
export function seqLt(a: number, b: number): boolean {
  if (a > HALF || b > HALF) {
    return ((a - HALF) >>> 0) < ((b - HALF) >>> 0);
  }
  return a < b;
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
