/**
 * The daemon's driver of the Totem core (an edge): it feeds the pure `Srp`
 * from the transport and real timers, and performs the actions it returns —
 * datagrams out, `setTimeout`s, the ring-seq file, membership log lines.
 * The simulator drives the very same core from a virtual clock instead.
 */
import { setImmediate } from "node:timers";
import { assert, unreachable } from "../lib/assert.ts";
import { DeadlineTimers } from "../lib/deadline_timers.ts";
import { Prng } from "../lib/prng.ts";
import type { Logger } from "../log/logger.ts";
import type { TotemConfig } from "../totem/config.ts";
import { TotemPg } from "../totem/pg/totem_pg.ts";
import { Srp } from "../totem/srp.ts";
import {
  type ConfChange,
  type Guarantee,
  type NodeId,
  type RingId,
  ringIdText,
  type SrpAction,
  type SrpEvent,
  type SrpState,
  type TimerName,
  type TransitionReason,
} from "../totem/types.ts";

/** What the runtime needs from the transport. */
export interface FrameTransport {
  send(to: NodeId | "all", bytes: Uint8Array): void;
  /**
   * Sends at once what `send` queued this turn (Transport.flush). Called
   * after a step unless this turn delivered one of this node's own
   * messages; absent, sends keep their own pace.
   */
  flush?(): void;
}

/** A message delivered in total order. */
export interface Delivery {
  from: NodeId;
  ringId: RingId;
  seq: number;
  guarantee: Guarantee;
  payload: Uint8Array;
}

/** Listener for ordered deliveries and configuration changes. */
export interface RuntimeListener {
  deliver?(d: Delivery): void;
  confchg?(change: ConfChange, reason: TransitionReason): void;
}

/** Construction parameters. */
export interface NodeRuntimeOptions {
  nodeId: NodeId;
  nodes: readonly NodeId[];
  totem: TotemConfig;
  transport: FrameTransport;
  logger: Logger;
  /** Directory of the `ringid_<nodeid>` file (stable storage). */
  stateDir: string;
  /** Seed of the core's PRNG (join jitter only); defaults to a CSPRNG value. */
  seed?: number;
  /** Bytes the transport adds per datagram (header, crypto), for packing. */
  transportOverheadBytes?: number;
  /** The transport's header, written in place in front of frames (wire.ts). */
  transportHeaderBytes?: number;
  /** Hold application frames after ring changes until `syncDone()`. */
  syncBarrier?: boolean;
}

const REASON_TEXT: Record<TransitionReason, string> = {
  start: "node started",
  token_lost: "token lost",
  consensus_timeout: "consensus timeout",
  join: "join",
  foreign_message: "message from another ring (merge)",
  merge_detect: "merge of another ring",
  node_left: "node left cleanly",
  fail_to_recv: "failed to receive",
  unreachable: "node unreachable on every link",
  commit_token: "commit token",
  recovery_done: "recovery done",
  shutdown: "shutdown",
};

/** Human text for a transition reason, as logs print it. */
export function reasonText(reason: TransitionReason): string {
  return REASON_TEXT[reason];
}

/** Reads the last committed ring seq, or null when none was stored. */
export function loadRingSeq(stateDir: string, nodeId: NodeId): number | null {
  const path = `${stateDir}/ringid_${nodeId}`;
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  const seq = Number(text.trim());
  if (!Number.isSafeInteger(seq) || seq < 0) {
    throw new Error(
      `${path}: ring sequence file holds "${text.trim()}", expected a whole number`,
    );
  }
  return seq;
}

/** Writes the ring seq durably: temp file, fsync, rename (STYLE.md 6). */
export function storeRingSeq(
  stateDir: string,
  nodeId: NodeId,
  seq: number,
): void {
  const path = `${stateDir}/ringid_${nodeId}`;
  const tmp = `${path}.tmp`;
  const file = Deno.openSync(tmp, {
    write: true,
    create: true,
    truncate: true,
    mode: 0o600,
  });
  try {
    file.writeSync(new TextEncoder().encode(`${seq}\n`));
    file.syncSync();
  } finally {
    file.close();
  }
  Deno.renameSync(tmp, path);
}

/** Runs one Totem processor against real time and a real transport. */
export class NodeRuntime {
  readonly srp: Srp;
  readonly pg: TotemPg;
  readonly nodeId: NodeId;
  #transport: FrameTransport;
  #logger: Logger;
  #stateDir: string;
  readonly #timers = new DeadlineTimers<TimerName>((timer) =>
    this.#step({ type: "timer", timer })
  );
  #listeners: RuntimeListener[] = [];
  #lastTrans: ConfChange | null = null;
  #stopped = false;
  #epochMs = performance.now();
  #flushScheduled = false;
  /**
   * A step delivered a message this node sent, since the last microtask
   * checkpoint (`#performAll`).
   */
  #deliveredOwnThisTurn = false;
  #roomWaiters: (() => void)[] = [];
  /** Listener calls waiting for the event loop's pending I/O (`#notify`). */
  #held: (() => void)[] = [];
  delivered = 0;
  rejected = new Map<string, number>();

  constructor(options: NodeRuntimeOptions) {
    this.nodeId = options.nodeId;
    this.#transport = options.transport;
    this.#logger = options.logger;
    this.#stateDir = options.stateDir;
    const stored = loadRingSeq(options.stateDir, options.nodeId);
    const seed = options.seed ?? crypto.getRandomValues(new Uint32Array(1))[0];
    this.srp = new Srp({
      nodeId: options.nodeId,
      nodes: options.nodes,
      config: options.totem,
      rng: new Prng(seed),
      storedRingSeq: stored,
      bootTimeMs: Date.now(),
      syncBarrier: options.syncBarrier ?? false,
    });
    this.pg = new TotemPg(this.srp, {
      transportOverheadBytes: options.transportOverheadBytes ?? 0,
      transportHeaderBytes: options.transportHeaderBytes ?? 0,
    });
  }

  /** Subscribes to deliveries and configuration changes. */
  listen(listener: RuntimeListener): void {
    this.#listeners.push(listener);
  }

  /** Milliseconds since this runtime was created (monotonic). */
  now(): number {
    return performance.now() - this.#epochMs;
  }

  /** Enters GATHER: the first membership round starts. */
  start(): void {
    this.#step({ type: "start" });
  }

  /** Hands a received datagram's payload to the core. */
  receive(bytes: Uint8Array): void {
    this.#step({ type: "frame", bytes });
  }

  /** The link layer's verdict on a peer (any link up, or none). */
  reachability(node: number, reachable: boolean): void {
    this.#step({ type: "reachability", node, reachable });
  }

  /**
   * Queues an application message (up to 1 MiB; packed or fragmented into
   * frames). False means TRY_AGAIN: the send queue is full; `whenWritable`
   * tells when to retry.
   */
  send(
    payload: Uint8Array | readonly Uint8Array[],
    guarantee: Guarantee = "agreed",
    options: { sync?: boolean } = {},
  ): boolean {
    if (this.#stopped) return false;
    const r = this.pg.mcast(payload, guarantee, this.now(), options);
    this.#performAll(r.actions);
    if (r.accepted && this.pg.hasPending && !this.#flushScheduled) {
      // Everything sent in this turn shares frames; the rest goes out at
      // the end of the turn, so no message waits for a later one.
      this.#flushScheduled = true;
      queueMicrotask(() => {
        this.#flushScheduled = false;
        if (!this.#stopped) this.#performAll(this.pg.flush(this.now()));
      });
    }
    return r.accepted;
  }

  /** Service sync is complete: application frames may go out again. */
  syncDone(): void {
    this.#step({ type: "sync_done" });
  }

  /** Resolves once the send queue has room again (after a TRY_AGAIN). */
  whenWritable(): Promise<void> {
    if (this.srp.sendQueueFree > this.srp.config.sendQueueFramesMax / 4) {
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#roomWaiters.push(resolve));
  }

  /** Leaves the ring cleanly and stops every timer. */
  shutdown(): void {
    if (this.#stopped) return;
    // What the ring delivered before the leave still reaches the clients.
    this.#releaseHeld();
    this.#step({ type: "shutdown" });
    this.#stopped = true;
    const waiters = this.#roomWaiters;
    this.#roomWaiters = [];
    for (const w of waiters) w();
    this.#timers.clear();
  }

  /** A summary for status files and admin tools. */
  status(): {
    nodeId: NodeId;
    state: SrpState;
    ringId: RingId;
    members: readonly NodeId[];
    delivered: number;
    sendQueue: number;
  } {
    return {
      nodeId: this.nodeId,
      state: this.srp.state,
      ringId: this.srp.ringId,
      members: this.srp.members,
      delivered: this.delivered,
      sendQueue: this.srp.sendQueueLength,
    };
  }

  #step(event: SrpEvent): void {
    if (this.#stopped) return;
    this.#performAll(this.pg.step(event, this.now()));
    if (
      this.#roomWaiters.length > 0 &&
      this.srp.sendQueueFree > this.srp.config.sendQueueFramesMax / 4
    ) {
      const waiters = this.#roomWaiters;
      this.#roomWaiters = [];
      for (const w of waiters) w();
    }
  }

  #performAll(actions: SrpAction[]): void {
    let deliveredOwn = false;
    for (const action of actions) {
      if (action.type === "deliver" && action.from === this.nodeId) {
        deliveredOwn = true;
      }
      this.#perform(action);
    }
    // Datagrams leave at once (the next node is waiting on them) unless a
    // step of this turn delivered a message this node sent: its sender
    // waits for that delivery before it sends again, so the datagrams wait
    // until the IPC writes are out (the transport's own deferral) and the
    // client is woken before the next node competes with it for the CPU.
    // After another node's message the token that may follow in this turn
    // matters more: the whole ring waits on it (README, Measurements).
    if (deliveredOwn) {
      if (!this.#deliveredOwnThisTurn) {
        this.#deliveredOwnThisTurn = true;
        // Queued after the microtasks the listeners' IPC writers scheduled
        // for this delivery, so it runs after them.
        queueMicrotask(() => this.#deliveredOwnThisTurn = false);
      }
    } else if (!this.#deliveredOwnThisTurn) {
      this.#transport.flush?.();
    }
  }

  /**
   * Calls the listeners now, or after the I/O the event loop already has
   * (an immediate) when `hold` or when earlier calls wait: they always see
   * the core's order. Another node's message is held: the token that came
   * with it is usually waiting in the socket, and forwarding it first keeps
   * this node's clients from taking the CPU the next node needs. This
   * node's own messages are not held: their senders wait on them to send
   * the next.
   */
  #notify(call: () => void, hold: boolean): void {
    if (this.#held.length === 0) {
      if (!hold) return call();
      setImmediate(() => this.#releaseHeld());
    }
    this.#held.push(call);
  }

  /** Makes the held listener calls, and any they add, in order. */
  #releaseHeld(): void {
    try {
      for (let i = 0; i < this.#held.length; i++) this.#held[i]();
    } finally {
      this.#held = [];
    }
  }

  #perform(action: SrpAction): void {
    switch (action.type) {
      case "transmit":
        this.#transport.send(action.to, action.bytes);
        break;
      case "arm":
        this.#timers.arm(action.timer, action.afterMs);
        break;
      case "cancel":
        this.#timers.cancel(action.timer);
        break;
      case "deliver":
        this.delivered++;
        this.#notify(
          () => {
            for (const l of this.#listeners) l.deliver?.(action);
          },
          action.from !== this.nodeId,
        );
        break;
      case "confchg":
        this.#logConfChg(action.change, action.reason);
        this.#notify(() => {
          for (const l of this.#listeners) {
            l.confchg?.(action.change, action.reason);
          }
        }, false);
        break;
      case "persist_ring_seq":
        // Synchronous on purpose: the commit token that follows in this
        // action list must not leave before the seq is durable.
        storeRingSeq(this.#stateDir, this.nodeId, action.ringSeq);
        break;
      case "state":
        if (action.reason === "shutdown") {
          this.#logger.log("info", "TOTEM", "left the ring (shutdown)");
        } else {
          this.#logger.log(
            action.to === "gather" ? "info" : "debug",
            "TOTEM",
            `${action.from.toUpperCase()} -> ${action.to.toUpperCase()} (${
              reasonText(action.reason)
            })`,
          );
        }
        break;
      case "try_again":
        // The packing layer checks room first; the core never refuses it.
        break;
      case "rejected":
        this.rejected.set(
          action.reason,
          (this.rejected.get(action.reason) ?? 0) + 1,
        );
        this.#logger.log("debug", "TOTEM", `dropped frame: ${action.reason}`);
        break;
      case "log":
        this.#logger.log(action.level, "TOTEM", action.message);
        break;
      default:
        unreachable(action);
    }
  }

  #logConfChg(change: ConfChange, reason: TransitionReason): void {
    if (change.kind === "transitional") {
      this.#lastTrans = change;
      return;
    }
    const left = this.#lastTrans?.left ?? [];
    assert(
      this.#lastTrans === null ||
        this.#lastTrans.ringId.seq === change.ringId.seq,
      "regular configuration without its transitional one",
    );
    this.#lastTrans = null;
    const list = (ids: readonly NodeId[]) =>
      ids.length === 0 ? "-" : ids.join(" ");
    this.#logger.log(
      "notice",
      "TOTEM",
      `membership: ring ${ringIdText(change.ringId)} members [${
        change.members.join(" ")
      }] joined [${list(change.joined)}] left [${list(left)}] reason: ${
        reasonText(reason)
      }`,
    );
  }
}
