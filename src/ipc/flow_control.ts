/**
 * Per-connection outgoing flow control, pure accounting (no timers, no I/O).
 *
 * A connection's *pending* bytes are what the server holds for it and the
 * client has not yet taken:
 * - without event acks: frames queued in the server and not yet written;
 * - with event acks (Feature.EVENT_ACKS): queued non-event frames plus every
 *   EVENT frame from the moment it is queued until the client acknowledges
 *   that its application consumed it. This measures the application's pace,
 *   not the socket's: the client library reads the socket eagerly so that
 *   responses never wait behind unread events.
 *
 * Above `bytesMax` (or `framesMax` queued frames) the connection is in flow
 * control: `sendEvent` still queues but answers false, and the executive
 * answers TRY_AGAIN to that client's sends. Above `bytesHardMax` it is cut.
 */
import { assert } from "../lib/assert.ts";

/** Limits of one connection's outgoing queue. */
export interface OutgoingLimits {
  /** Pending bytes above which the connection is in flow control. */
  bytesMax: number;
  /** Pending bytes above which the connection is disconnected at once. */
  bytesHardMax: number;
  /** Queued frames above which the connection is in flow control. */
  framesMax: number;
}

/** A change of flow-control state reported by `OutgoingBudget.update`. */
export type FlowTransition = "on" | "off" | null;

/** Outgoing accounting of one connection. */
export class OutgoingBudget {
  readonly limits: OutgoingLimits;
  readonly eventAcks: boolean;
  #queuedBytes = 0;
  #queuedFrames = 0;
  #queuedEventBytes = 0;
  #unackedEventBytes = 0;
  #unackedEvents = 0;
  #flowOn = false;

  constructor(limits: OutgoingLimits, eventAcks: boolean) {
    assert(limits.bytesMax > 0, "bytesMax must be positive");
    assert(limits.bytesHardMax >= limits.bytesMax, "hard limit below soft");
    assert(limits.framesMax > 0, "framesMax must be positive");
    this.limits = limits;
    this.eventAcks = eventAcks;
  }

  /** Bytes queued in the server, not yet written to the socket. */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /** Frames queued in the server, not yet written to the socket. */
  get queuedFrames(): number {
    return this.#queuedFrames;
  }

  /** Events sent (or queued) and not yet acknowledged (ack mode only). */
  get unackedEvents(): number {
    return this.#unackedEvents;
  }

  /** What counts against the limits (see the module comment). */
  get pendingBytes(): number {
    if (!this.eventAcks) return this.#queuedBytes;
    return this.#queuedBytes - this.#queuedEventBytes +
      this.#unackedEventBytes;
  }

  /** True while over `bytesMax` or `framesMax`. */
  get overLimit(): boolean {
    return this.pendingBytes > this.limits.bytesMax ||
      this.#queuedFrames > this.limits.framesMax;
  }

  /** True while over `bytesHardMax`: the connection must be cut. */
  get overHardLimit(): boolean {
    return this.pendingBytes > this.limits.bytesHardMax;
  }

  /** The state last reported by `update`. */
  get flowControlled(): boolean {
    return this.#flowOn;
  }

  /** Accounts one frame of `bytes` put in the queue. */
  enqueued(bytes: number, isEvent: boolean): void {
    this.#queuedBytes += bytes;
    this.#queuedFrames += 1;
    if (isEvent) {
      this.#queuedEventBytes += bytes;
      if (this.eventAcks) {
        this.#unackedEventBytes += bytes;
        this.#unackedEvents += 1;
      }
    }
  }

  /** Accounts frames taken off the queue and written to the socket. */
  written(frames: number, bytes: number, eventBytes: number): void {
    assert(frames <= this.#queuedFrames, "wrote more frames than queued");
    assert(bytes <= this.#queuedBytes, "wrote more bytes than queued");
    assert(eventBytes <= this.#queuedEventBytes, "wrote unqueued events");
    this.#queuedFrames -= frames;
    this.#queuedBytes -= bytes;
    this.#queuedEventBytes -= eventBytes;
  }

  /**
   * Accounts an EVENT_ACK. False (nothing changed) when it acknowledges
   * more than was ever sent, or when acks were not negotiated: a protocol
   * error by the client.
   */
  acked(events: number, bytes: number): boolean {
    if (!this.eventAcks) return false;
    if (events > this.#unackedEvents) return false;
    if (bytes > this.#unackedEventBytes) return false;
    this.#unackedEvents -= events;
    this.#unackedEventBytes -= bytes;
    return true;
  }

  /** Reports whether the flow-control state just changed. */
  update(): FlowTransition {
    const over = this.overLimit;
    if (over === this.#flowOn) return null;
    this.#flowOn = over;
    return over ? "on" : "off";
  }
}
