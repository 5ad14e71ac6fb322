/**
 * Free bytes reserved in front of a buffer, so that the layers below can
 * write their headers in place instead of copying the whole frame behind
 * each header (a 60 KB frame was copied twice more on its way out: once
 * behind the Totem mcast header, once behind the wire header).
 *
 * `withHeadroom(size, [a, b])` returns a `size`-byte view with `a + b` free
 * bytes before it in the same ArrayBuffer. `claimHeadroom(view, a)` hands
 * out the `a` bytes just before the view, as a view extended by them, which
 * keeps the remaining slot `b` for its own claimer. Claims are one-shot and
 * in slot order: the free bytes were never part of any view handed out
 * before, and each is handed out once, so no two owners ever write the same
 * byte. A buffer without a matching slot gives null and the caller copies.
 *
 * @module
 */

import { smallBytes } from "./small_bytes.ts";

/** Unclaimed slots of a view, nearest to it first. */
const slots = new WeakMap<Uint8Array, readonly number[]>();

/**
 * A new, zeroed `size`-byte buffer with free bytes for `reserve` before it:
 * the first entry is claimed first and sits just before the data. A small
 * one (a lightly loaded ring's frame) is a view of a shared chunk
 * (small_bytes.ts), which saves an allocation per frame.
 */
export function withHeadroom(
  size: number,
  reserve: readonly number[],
): Uint8Array {
  let room = 0;
  for (const n of reserve) room += n;
  if (room === 0) return smallBytes(size);
  const view = smallBytes(room + size).subarray(room);
  slots.set(view, reserve);
  return view;
}

/**
 * The view extended by the `bytes` free bytes just before it, when its next
 * unclaimed slot is exactly that size (the caller writes its header there);
 * null otherwise. The extended view carries the remaining slots.
 */
export function claimHeadroom(
  view: Uint8Array,
  bytes: number,
): Uint8Array<ArrayBuffer> | null {
  const reserve = slots.get(view);
  if (reserve === undefined || reserve[0] !== bytes) return null;
  slots.delete(view);
  // Registered views are made by withHeadroom, on a plain ArrayBuffer.
  const extended = new Uint8Array(
    view.buffer as ArrayBuffer,
    view.byteOffset - bytes,
    view.length + bytes,
  );
  if (reserve.length > 1) slots.set(extended, reserve.slice(1));
  return extended;
}
