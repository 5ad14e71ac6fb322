/**
 * Reassembly side of the totempg layer (TOTEM.md 5.2): delivered Totem mcast
 * payloads in, whole application messages out, per sender nodeid.
 *
 * Every frame is validated in full before any state changes, so garbage is
 * rejected and counted, never thrown and never half-applied.
 *
 * The one rule that matters: never deliver a partial or spliced message
 * (TOTEM.md 9.3-11). A frame whose first chunk continues a message we do not
 * hold (its start was never seen: we just joined, or frames were lost across
 * a ring change) has that chunk thrown away, and so has every following
 * fragment of the same message: with no assembly held, no continuation can
 * match. Corosync drops whole frames in this throw-away mode; we still
 * deliver the complete messages that follow the orphan chunk in the same
 * frame, because the explicit lengths mark exactly where each one starts.
 * Likewise, a held partial whose continuation never arrives is discarded as
 * soon as the sender's next frame starts afresh.
 *
 * Fragment ids are only 8 bits, so splicing is excluded only while frames
 * from a sender arrive in order without gaps, which Totem guarantees within
 * a ring: call `reset()` at every ring change and `dropSender()` for nodes
 * that left. Keep a second Assembler for traffic received while waiting for
 * the transitional confchg to be acknowledged, as Corosync does.
 *
 * @module
 */
import { gather } from "../../lib/gather.ts";
import { MESSAGE_BYTES_MAX } from "../config.ts";
import type { NodeId, RejectReason } from "../types.ts";
import { PG_HEADER_BYTES, PG_LEN_BYTES, PG_VERSION } from "./packer.ts";

/** Result of pushing one frame. */
export type AssembleResult =
  | {
    ok: true;
    /** Complete messages, in send order. They may share the frame's memory. */
    messages: Uint8Array[];
    /** Partial messages and orphan fragments thrown away by this frame. */
    dropped: number;
  }
  | { ok: false; reason: RejectReason; detail?: string };

/** A message being reassembled from one sender. */
interface Assembly {
  /** Chunks received so far (views into their frames). */
  parts: Uint8Array[];
  bytes: number;
  /** The `fragmented` id the next frame's `continuation` must carry. */
  fragId: number;
}

/** Per-sender reassembly state for one ring. */
export class Assembler {
  readonly #assemblies = new Map<NodeId, Assembly>();

  /** Senders holding a partial message. */
  get partialSenders(): number {
    return this.#assemblies.size;
  }

  /** Bytes held for `sender`'s partial message (0 when none). */
  partialBytes(sender: NodeId): number {
    return this.#assemblies.get(sender)?.bytes ?? 0;
  }

  /** Frees a sender's partial message (it is in a confchg's left list). */
  dropSender(sender: NodeId): void {
    this.#assemblies.delete(sender);
  }

  /** Frees every partial message (ring change). */
  reset(): void {
    this.#assemblies.clear();
  }

  /** Validates one frame from `sender`, then returns the messages it completes. */
  push(sender: NodeId, frame: Uint8Array): AssembleResult {
    const length = frame.length;
    if (length < PG_HEADER_BYTES) return reject("truncated");
    if (frame[0] !== PG_VERSION) return reject("bad_version");
    const fragmented = frame[1];
    const continuation = frame[2];
    if (frame[3] !== 0) return reject("bad_field", "reserved byte not zero");
    const count = frame[4] | (frame[5] << 8);
    if (count === 0) return reject("bad_field", "frame without chunks");
    const dataAt = PG_HEADER_BYTES + PG_LEN_BYTES * count;
    if (dataAt > length) return reject("truncated", "length table");
    let total = 0;
    for (let i = 0; i < count; i++) total += readLen(frame, i);
    if (dataAt + total > length) return reject("truncated", "chunk data");
    if (dataAt + total < length) return reject("trailing_bytes");
    // Fragments are never empty (the packer never makes them).
    if (continuation !== 0 && readLen(frame, 0) === 0) {
      return reject("bad_field", "empty continuation chunk");
    }
    if (fragmented !== 0 && readLen(frame, count - 1) === 0) {
      return reject("bad_field", "empty trailing fragment");
    }

    // The frame is well formed: from here on nothing is rejected.
    const messages: Uint8Array[] = [];
    let dropped = 0;
    let held = this.#assemblies.get(sender);
    let at = dataAt;
    let first = 0;

    if (continuation !== 0) {
      const len = readLen(frame, 0);
      const chunk = frame.subarray(at, at + len);
      at += len;
      first = 1;
      const endsHere = !(count === 1 && fragmented !== 0);
      if (held !== undefined && held.fragId === continuation) {
        held.parts.push(chunk);
        held.bytes += len;
        if (held.bytes > MESSAGE_BYTES_MAX) {
          // No sender of ours makes one: treat it as lost, not as a crash.
          dropped++;
          this.#assemblies.delete(sender);
          held = undefined;
        } else if (endsHere) {
          messages.push(gather(held.parts));
          this.#assemblies.delete(sender);
          held = undefined;
        } else {
          held.fragId = fragmented;
          return { ok: true, messages, dropped };
        }
      } else {
        // Throw-away: the start of this message was never seen here.
        if (held !== undefined) {
          dropped++;
          this.#assemblies.delete(sender);
          held = undefined;
        }
        dropped++;
        if (!endsHere) return { ok: true, messages, dropped };
      }
    } else if (held !== undefined) {
      // The held message's continuation never came: it can never complete.
      dropped++;
      this.#assemblies.delete(sender);
      held = undefined;
    }

    for (let i = first; i < count; i++) {
      const len = readLen(frame, i);
      const chunk = frame.subarray(at, at + len);
      at += len;
      if (i === count - 1 && fragmented !== 0) {
        this.#assemblies.set(sender, {
          parts: [chunk],
          bytes: len,
          fragId: fragmented,
        });
      } else {
        messages.push(chunk);
      }
    }
    return { ok: true, messages, dropped };
  }
}

function readLen(frame: Uint8Array, index: number): number {
  const at = PG_HEADER_BYTES + PG_LEN_BYTES * index;
  return frame[at] | (frame[at + 1] << 8);
}

function reject(reason: RejectReason, detail?: string): AssembleResult {
  return detail === undefined
    ? { ok: false, reason }
    : { ok: false, reason, detail };
}
