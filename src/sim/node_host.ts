/**
 * One simulated processor: wraps an `Srp` instance and performs its actions
 * (STYLE.md section 1, "a driver just performs the actions"), owns its timers,
 * its stable storage (survives crashes unless a fault loses or rolls it back),
 * its incarnation counter, its paused state with the datagrams queued while
 * paused, and a test application that submits messages whose payload embeds
 * `msgId = (sender, incarnation, counter)`.
 */
import { assert, unreachable } from "../lib/assert.ts";
import { Prng } from "../lib/prng.ts";
import { peekType } from "../totem/codec.ts";
import type { TotemConfig } from "../totem/config.ts";
import { Srp } from "../totem/srp.ts";
import type {
  Guarantee,
  NodeId,
  SrpAction,
  SrpEvent,
  TimerName,
} from "../totem/types.ts";
import type { CrashPoint, StorageOnRestart } from "./faults.ts";
import {
  decodeMsgPayload,
  encodeMsgPayload,
  type HistoryRecorder,
  msgKey,
  type StorageFate,
} from "./history.ts";

/** What the host needs from the simulation around it. */
export interface HostEnv {
  /** Sends one frame into the virtual network. */
  transmit(from: NodeId, to: NodeId | "all", bytes: Uint8Array): void;
  /** Schedules timer `timer` of `node` with generation `gen` at `atMs`. */
  scheduleTimer(
    node: NodeId,
    timer: TimerName,
    gen: number,
    atMs: number,
  ): void;
  /** Called for every action the node performs (observers, scenario hooks). */
  observe(node: NodeId, action: SrpAction, nowMs: number): void;
}

/** An event held back while the process is paused. */
export type PausedEvent =
  | { readonly kind: "frame"; readonly bytes: Uint8Array }
  | { readonly kind: "timer"; readonly timer: TimerName; readonly gen: number };

/** A crash waiting for its protocol point (faults.ts, `CrashPoint`). */
export interface CrashTrigger {
  readonly point: Exclude<CrashPoint, "now">;
  readonly deadlineMs: number;
  readonly restartAfterMs: number | null;
  readonly storage: StorageOnRestart;
}

/** Counters of one host. */
export interface HostStats {
  submitted: number;
  refused: number;
  delivered: number;
  rejected: number;
  crashes: number;
  starts: number;
  pausedDropped: number;
}

/** Datagrams a paused process can hold (a socket receive buffer). */
export const PAUSE_BUFFER_FRAMES_MAX = 20_000;

/** Construction parameters of a host. */
export interface NodeHostOptions {
  readonly nodeId: NodeId;
  readonly nodes: readonly NodeId[];
  readonly config: TotemConfig;
  /** Source of every incarnation's core Prng and of the application's choices. */
  readonly rng: Prng;
  readonly history: HistoryRecorder;
  readonly env: HostEnv;
}

/** One simulated node across its incarnations. */
export class NodeHost {
  readonly id: NodeId;
  readonly stats: HostStats = {
    submitted: 0,
    refused: 0,
    delivered: 0,
    rejected: 0,
    crashes: 0,
    starts: 0,
    pausedDropped: 0,
  };
  /** Application randomness (message sizes, guarantees, think times). */
  readonly appRng: Prng;
  /** Incarnation number, 0 before the first start. */
  incarnation = 0;
  /** Bumped at every crash and start; stale restart/resume events compare it. */
  epoch = 0;
  /** The running core, or null while crashed. */
  srp: Srp | null = null;
  paused = false;
  crashTrigger: CrashTrigger | null = null;
  /** Last durable ring seq (null = no file). */
  storedRingSeq: number | null = null;
  /** Every value ever persisted, oldest first (for rollback faults). */
  readonly persistedRingSeqs: number[] = [];

  #nodes: readonly NodeId[];
  #config: TotemConfig;
  #rng: Prng;
  #history: HistoryRecorder;
  #env: HostEnv;
  #timers = new Map<TimerName, number>();
  #timerGen = 0;
  #pauseBuffer: PausedEvent[] = [];
  /** Link-layer verdicts heard while paused: the latest per peer. */
  #pausedVerdicts = new Map<NodeId, boolean>();
  #counter = 0;

  constructor(options: NodeHostOptions) {
    this.id = options.nodeId;
    this.#nodes = options.nodes;
    this.#config = options.config;
    this.#rng = options.rng;
    this.appRng = options.rng.fork();
    this.#history = options.history;
    this.#env = options.env;
  }

  /** True while an incarnation is running (paused or not). */
  get up(): boolean {
    return this.srp !== null;
  }

  /**
   * Starts a new incarnation. `storage` says what it finds on disk: the last
   * persisted seq, nothing, or an older persisted value.
   */
  boot(nowMs: number, storage: StorageOnRestart | "fresh"): void {
    assert(this.srp === null, `node ${this.id} booted while running`);
    let fate: StorageFate = storage;
    if (storage === "lost") {
      this.storedRingSeq = null;
    } else if (storage === "rolled_back") {
      const older = this.persistedRingSeqs.filter((s) =>
        this.storedRingSeq === null || s < this.storedRingSeq
      );
      this.storedRingSeq = older.length === 0
        ? null
        : older[this.#rng.int(older.length)];
    } else if (this.incarnation > 0 && storage === "fresh") {
      fate = "kept";
    }
    this.incarnation++;
    this.epoch++;
    this.stats.starts++;
    this.#counter = 0;
    this.paused = false;
    this.#pauseBuffer = [];
    this.#pausedVerdicts.clear();
    this.#timers.clear();
    this.#history.record(this.id, nowMs, {
      kind: "start",
      inc: this.incarnation,
      storage: fate,
      storedRingSeq: this.storedRingSeq,
    });
    this.srp = new Srp({
      nodeId: this.id,
      nodes: this.#nodes,
      config: this.#config,
      rng: this.#rng.fork(),
      storedRingSeq: this.storedRingSeq,
      bootTimeMs: nowMs,
    });
    this.#step({ type: "start" }, nowMs);
  }

  /** Fail-stop: volatile state, timers and queued datagrams are gone. */
  crash(nowMs: number): void {
    if (this.srp === null) return;
    this.srp = null;
    this.epoch++;
    this.stats.crashes++;
    this.paused = false;
    this.crashTrigger = null;
    this.#pauseBuffer = [];
    this.#pausedVerdicts.clear();
    this.#timers.clear();
    this.#history.record(this.id, nowMs, { kind: "crash" });
  }

  /** Stops handling events; datagrams and expired timers queue up. */
  pause(nowMs: number): boolean {
    if (this.srp === null || this.paused) return false;
    this.paused = true;
    this.#history.record(this.id, nowMs, { kind: "pause" });
    return true;
  }

  /** Resumes; returns the queued events for the driver to replay in order. */
  resume(nowMs: number): PausedEvent[] {
    if (this.srp === null || !this.paused) return [];
    this.paused = false;
    this.#history.record(this.id, nowMs, { kind: "resume" });
    // Verdicts are not network events: the core hears them first.
    const verdicts = [...this.#pausedVerdicts].sort((a, b) => a[0] - b[0]);
    this.#pausedVerdicts.clear();
    for (const [peer, reachable] of verdicts) {
      this.#step({ type: "reachability", node: peer, reachable }, nowMs);
    }
    const queued = this.#pauseBuffer;
    this.#pauseBuffer = [];
    return queued;
  }

  /** A datagram arrives from the network. */
  receive(bytes: Uint8Array, nowMs: number): void {
    if (this.srp === null) return;
    if (this.paused) {
      if (this.#pauseBuffer.length >= PAUSE_BUFFER_FRAMES_MAX) {
        this.stats.pausedDropped++;
      } else {
        this.#pauseBuffer.push({ kind: "frame", bytes });
      }
      return;
    }
    this.#step({ type: "frame", bytes }, nowMs);
  }

  /**
   * The link layer's verdict on `peer`. A paused process hears it on resume
   * like anything else; a crashed one not at all (its core starts afresh).
   */
  reachability(peer: NodeId, reachable: boolean, nowMs: number): void {
    if (this.srp === null) return;
    if (this.paused) {
      this.#pausedVerdicts.set(peer, reachable);
      return;
    }
    this.#step({ type: "reachability", node: peer, reachable }, nowMs);
  }

  /** Timer `timer` with generation `gen` expires. */
  fireTimer(timer: TimerName, gen: number, nowMs: number): void {
    if (this.srp === null || this.#timers.get(timer) !== gen) return;
    if (this.paused) {
      this.#pauseBuffer.push({ kind: "timer", timer, gen });
      return;
    }
    this.#timers.delete(timer);
    this.#step({ type: "timer", timer }, nowMs);
  }

  /**
   * The test application submits one message. Returns false when the core
   * refused it (TRY_AGAIN): the counter is not used up, the app retries later.
   */
  submit(
    nowMs: number,
    options: { guarantee: Guarantee; padBytes: number },
  ): boolean {
    const { guarantee, padBytes } = options;
    if (this.srp === null || this.paused) return false;
    const id = {
      sender: this.id,
      inc: this.incarnation,
      counter: this.#counter + 1,
    };
    const key = msgKey(id);
    const actions = this.srp.step(
      { type: "send", payload: encodeMsgPayload(id, padBytes), guarantee },
      nowMs,
    );
    const refused = actions.some((a) => a.type === "try_again");
    if (refused) {
      this.stats.refused++;
      this.#history.record(this.id, nowMs, { kind: "refused", msg: key });
    } else {
      this.#counter++;
      this.stats.submitted++;
      this.#history.record(this.id, nowMs, {
        kind: "submit",
        msg: key,
        guarantee,
      });
    }
    this.#perform(actions, nowMs);
    return !refused;
  }

  /** Runs one event through the core and performs what it asks for. */
  #step(event: SrpEvent, nowMs: number): void {
    const srp = this.srp;
    if (srp === null) return;
    this.#perform(srp.step(event, nowMs), nowMs);
  }

  #perform(actions: SrpAction[], nowMs: number): void {
    const trigger = this.crashTrigger;
    let mcastSent = false;
    for (const action of actions) {
      if (this.srp === null) return; // crashed at a crash point mid-step
      // Crash points that strike before an action is performed.
      if (
        trigger !== null && trigger.point === "mid_token" && mcastSent &&
        action.type === "transmit" && peekType(action.bytes) === "token"
      ) {
        this.#crashAtPoint(
          nowMs,
          "before forwarding the token after multicasting",
        );
        return;
      }
      this.#env.observe(this.id, action, nowMs);
      switch (action.type) {
        case "transmit":
          if (!mcastSent && peekType(action.bytes) === "mcast") {
            mcastSent = true;
          }
          this.#env.transmit(this.id, action.to, action.bytes);
          break;
        case "arm": {
          const gen = ++this.#timerGen;
          this.#timers.set(action.timer, gen);
          this.#env.scheduleTimer(
            this.id,
            action.timer,
            gen,
            nowMs + action.afterMs,
          );
          break;
        }
        case "cancel":
          this.#timers.delete(action.timer);
          break;
        case "deliver": {
          const id = decodeMsgPayload(action.payload);
          this.stats.delivered++;
          this.#history.record(this.id, nowMs, {
            kind: "deliver",
            msg: id === null ? null : msgKey(id),
            sender: action.from,
            ringId: action.ringId,
            seq: action.seq,
            safe: action.guarantee === "safe",
          });
          break;
        }
        case "confchg":
          this.#history.record(this.id, nowMs, {
            kind: "confchg",
            type: action.change.kind === "regular" ? "REG" : "TRANS",
            ringId: action.change.ringId,
            members: [...action.change.members],
            left: [...action.change.left],
            joined: [...action.change.joined],
          });
          break;
        case "persist_ring_seq":
          this.storedRingSeq = action.ringSeq;
          this.persistedRingSeqs.push(action.ringSeq);
          this.#history.record(this.id, nowMs, {
            kind: "persist",
            ringSeq: action.ringSeq,
          });
          if (trigger !== null && trigger.point === "after_persist") {
            this.#crashAtPoint(nowMs, "right after persisting the ring seq");
            return;
          }
          break;
        case "state":
          this.#history.record(this.id, nowMs, {
            kind: "state",
            from: action.from,
            to: action.to,
            reason: action.reason,
          });
          if (
            trigger !== null && trigger.point === action.to &&
            action.from !== action.to
          ) {
            this.#crashAtPoint(nowMs, `on entering ${action.to.toUpperCase()}`);
            return;
          }
          break;
        case "try_again":
          break;
        case "rejected":
          this.stats.rejected++;
          break;
        case "log":
          if (action.level !== "debug") {
            this.#history.record(this.id, nowMs, {
              kind: "log",
              text: action.message,
            });
          }
          break;
        default:
          unreachable(action);
      }
    }
  }

  /** Set by the driver: called when a crash trigger fires (to schedule a restart). */
  onTriggeredCrash: ((trigger: CrashTrigger, nowMs: number) => void) | null =
    null;

  #crashAtPoint(nowMs: number, where: string): void {
    const trigger = this.crashTrigger!;
    this.#history.record(this.id, nowMs, {
      kind: "fault",
      text: `crash ${where}`,
    });
    this.crash(nowMs);
    this.onTriggeredCrash?.(trigger, nowMs);
  }
}
