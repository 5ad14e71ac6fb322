/**
 * The packing layer on top of one SRP instance (Corosync's `totempg.c`):
 * application messages of any size up to MESSAGE_BYTES_MAX go in, packed
 * into or fragmented across Totem frames; ordered frames come out of the
 * core and are unpacked into the same messages, in the same total order.
 * Pure like the core: the daemon and the simulator drive it the same way.
 */
import { assert } from "../../lib/assert.ts";
import { MCAST_HEADER_BYTES } from "../codec.ts";
import { MESSAGE_BYTES_MAX } from "../config.ts";
import type { Srp } from "../srp.ts";
import type { Guarantee, SrpAction, SrpEvent } from "../types.ts";
import { Assembler } from "./assembler.ts";
import { Packer } from "./packer.ts";

/** IPv4 + UDP headers, subtracted from `netmtu`. */
export const IP_UDP_HEADER_BYTES = 28;

/** Options of the packing layer. */
export interface TotemPgOptions {
  /** Bytes the transport adds per datagram (its header and crypto). */
  transportOverheadBytes: number;
  /**
   * The transport's header in front of each frame, which it writes in place
   * when frames leave room for it (src/net/wire.ts `encodePacket`). 0: none.
   */
  transportHeaderBytes?: number;
}

/**
 * Largest packed frame for a network MTU: a RECOVERY re-broadcast wraps a
 * whole frame in a second mcast header, so budget two (TOTEM.md section 4).
 */
export function frameBytesForMtu(
  netmtu: number,
  transportOverheadBytes: number,
): number {
  return netmtu - IP_UDP_HEADER_BYTES - transportOverheadBytes -
    2 * MCAST_HEADER_BYTES;
}

/** Result of queueing one application message. */
export interface PgSendResult {
  /** False: not queued, the caller must retry later (TRY_AGAIN). */
  accepted: boolean;
  actions: SrpAction[];
}

type Lane = "app" | "sync";

/** Packs application messages into SRP frames and unpacks deliveries. */
export class TotemPg {
  readonly srp: Srp;
  /** Application and sync traffic pack apart: they leave by different queues. */
  #packers: Record<Lane, Packer>;
  #pendingGuarantee: Record<Lane, Guarantee> = {
    app: "agreed",
    sync: "agreed",
  };
  #assembler = new Assembler();
  /** Frames dropped because they did not unpack (a peer's bug or attack). */
  rejectedFrames = 0;
  /** Partial messages discarded after a lost fragment or a departed sender. */
  droppedPartials = 0;

  constructor(srp: Srp, options: TotemPgOptions) {
    this.srp = srp;
    const frameBytesMax = frameBytesForMtu(
      srp.config.netmtu,
      options.transportOverheadBytes,
    );
    // Room for the Totem mcast header and the transport's, written in place.
    const headroom = [MCAST_HEADER_BYTES];
    if ((options.transportHeaderBytes ?? 0) > 0) {
      headroom.push(options.transportHeaderBytes!);
    }
    this.#packers = {
      app: new Packer({ frameBytesMax, headroom }),
      sync: new Packer({ frameBytesMax, headroom }),
    };
  }

  /** True when a partly filled frame waits for `flush`. */
  get hasPending(): boolean {
    return this.#packers.app.hasPending || this.#packers.sync.hasPending;
  }

  /**
   * Queues one message. Refuses (TRY_AGAIN) when the SRP send queue lacks
   * room for all of its frames: full queues refuse, they never evict.
   * `sync` messages belong to service synchronisation (TOTEM.md 8.1).
   */
  mcast(
    message: Uint8Array | readonly Uint8Array[],
    guarantee: Guarantee,
    nowMs: number,
    options: { sync?: boolean } = {},
  ): PgSendResult {
    const parts = message instanceof Uint8Array ? [message] : message;
    let size = 0;
    for (const p of parts) size += p.length;
    assert(
      size <= MESSAGE_BYTES_MAX,
      `message of ${size} bytes exceeds ${MESSAGE_BYTES_MAX}`,
    );
    const lane: Lane = options.sync ? "sync" : "app";
    const packer = this.#packers[lane];
    const actions: SrpAction[] = [];
    if (packer.hasPending && guarantee !== this.#pendingGuarantee[lane]) {
      // A frame carries one guarantee: close the pending one first.
      actions.push(...this.#flushLane(lane, nowMs));
    }
    const free = lane === "sync"
      ? this.srp.syncQueueFree
      : this.srp.sendQueueFree;
    const needed = packer.frameCount(size) + (packer.hasPending ? 1 : 0);
    if (free < needed) return { accepted: false, actions };
    this.#pendingGuarantee[lane] = guarantee;
    for (const frame of packer.add(parts)) {
      actions.push(...this.#sendFrame(frame, guarantee, lane, nowMs));
    }
    return { accepted: true, actions };
  }

  /** Sends the partly filled frames, if any. Drivers call it once per turn. */
  flush(nowMs: number): SrpAction[] {
    return [
      ...this.#flushLane("sync", nowMs),
      ...this.#flushLane("app", nowMs),
    ];
  }

  /** Feeds one event to the core and unpacks what it delivers. */
  step(event: SrpEvent, nowMs: number): SrpAction[] {
    return this.#unpack(this.srp.step(event, nowMs));
  }

  #flushLane(lane: Lane, nowMs: number): SrpAction[] {
    const frame = this.#packers[lane].flush();
    return frame === null
      ? []
      : this.#sendFrame(frame, this.#pendingGuarantee[lane], lane, nowMs);
  }

  #sendFrame(
    frame: Uint8Array,
    guarantee: Guarantee,
    lane: Lane,
    nowMs: number,
  ): SrpAction[] {
    const actions = this.#unpack(
      this.srp.step({
        type: "send",
        payload: frame,
        guarantee,
        sync: lane === "sync",
      }, nowMs),
    );
    // Room was checked before packing, so the core must take every frame.
    assert(
      !actions.some((a) => a.type === "try_again"),
      "SRP refused a frame the packer reserved room for",
    );
    return actions;
  }

  #unpack(actions: SrpAction[]): SrpAction[] {
    let out: SrpAction[] | null = null;
    for (let i = 0; i < actions.length; i++) {
      const a = actions[i];
      if (a.type === "deliver") {
        out ??= actions.slice(0, i);
        const r = this.#assembler.push(a.from, a.payload);
        if (!r.ok) {
          this.rejectedFrames++;
          out.push({ type: "rejected", reason: r.reason });
          continue;
        }
        this.droppedPartials += r.dropped;
        for (const m of r.messages) out.push({ ...a, payload: m });
        continue;
      }
      if (a.type === "confchg" && a.change.kind === "transitional") {
        // A departed sender's half-assembled message can never complete.
        for (const id of a.change.left) {
          if (this.#assembler.partialBytes(id) > 0) this.droppedPartials++;
          this.#assembler.dropSender(id);
        }
      }
      out?.push(a);
    }
    return out ?? actions;
  }
}
