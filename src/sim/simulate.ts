/**
 * The deterministic simulator (TOTEM.md 9.2): a single-threaded event loop
 * over a virtual clock that runs real `Srp` cores on a virtual network with
 * seeded faults, then checks EVS over the histories. Everything derives from
 * one seed: the same options give a bit-identical run.
 *
 * A run has two phases: a *safety* phase with faults, then a *quiet* phase
 * (rules cleared, paused nodes resumed, crashed nodes restarted) long enough
 * for L1, followed by a drain without new submissions so every accepted
 * message can reach everybody (E9).
 */
import { assert, unreachable } from "../lib/assert.ts";
import { Prng } from "../lib/prng.ts";
import {
  resolveTotemConfig,
  type TotemConfig,
  type TotemOptions,
} from "../totem/config.ts";
import type {
  Guarantee,
  NodeId,
  SrpAction,
  TimerName,
} from "../totem/types.ts";
import { checkHistory, type Violation } from "./checker.ts";
import { VirtualClock } from "./clock.ts";
import { EventQueue } from "./event_queue.ts";
import {
  CRASH_POINT_WAIT_MS,
  type CrashPoint,
  describeFault,
  type FaultEvent,
  type FaultKind,
  type FaultPlan,
  generateFaultPlan,
  type StorageOnRestart,
} from "./faults.ts";
import {
  formatEntry,
  hashHistory,
  type History,
  type HistoryEntry,
  HistoryRecorder,
  NET_LOG,
} from "./history.ts";
import { type LinkRule, Network } from "./network.ts";
import { type CrashTrigger, NodeHost } from "./node_host.ts";

/** Timer profiles: small timers for fast sweeps, or Corosync's defaults. */
export type TimerProfile = "fast" | "corosync";

/** Totem options of the "fast" profile (TOTEM.md section 4 scaled down). */
export const FAST_TOTEM: TotemOptions = {
  tokenMs: 1000,
  tokenCoefficientMs: 0,
  consensusMs: 1200,
};

/** The test application's behaviour. */
export interface AppOptions {
  /** Mean time between submissions per node (default 50 ms); 0 = no traffic. */
  readonly intervalMs?: number;
  /** Fraction of messages sent with the "safe" guarantee (default 0.2). */
  readonly safeRatio?: number;
  /** Padding after the 12-byte msg id: uniform in [lo, hi] (default [0, 48]). */
  readonly padBytes?: readonly [number, number];
  /** Probability that a submission is a burst (default 0.02). */
  readonly burstP?: number;
  /** Messages per burst (default 40). */
  readonly burstSize?: number;
}

/** Options of `Simulation.crash`. */
export interface CrashOptions {
  /** Where the crash strikes (default "now"). */
  readonly at?: CrashPoint;
  /** Restart this long after the crash; null or omitted: stay down until the quiet phase. */
  readonly restartAfterMs?: number | null;
  /** Stable storage on restart (default "kept"). */
  readonly storage?: StorageOnRestart;
}

/** Options of `Simulation.submit`. */
export interface SubmitOptions {
  readonly count?: number;
  readonly guarantee?: Guarantee;
  readonly padBytes?: number;
}

/** Parameters of one simulation. */
export interface SimOptions {
  readonly seed: number;
  /** Node count (ids 1..n) or explicit node ids. */
  readonly nodes: number | readonly NodeId[];
  /** Fault kinds for the generated schedule (default none). Ignored when `plan` is given. */
  readonly faults?: readonly FaultKind[];
  /** Explicit schedule instead of a generated one. */
  readonly plan?: FaultPlan;
  /** Length of the safety phase in virtual ms (default 30000). */
  readonly durationMs?: number;
  /** Timer profile (default "fast"); `totem` overrides single values. */
  readonly profile?: TimerProfile;
  readonly totem?: TotemOptions;
  readonly app?: AppOptions;
  /** Skip the quiet phase and L1 (scenario tests that only check safety). */
  readonly noQuietPhase?: boolean;
  /** Entries per violation trace (default 40). */
  readonly traceEntries?: number;
  /**
   * Abort the run (reported as an L1 violation, "event storm") when more
   * events than this are processed (default 400 per virtual ms) or pending
   * (default 200000).
   */
  readonly maxEvents?: number;
  readonly maxPendingEvents?: number;
  /** Called for every history entry as it is recorded (narration). */
  readonly observer?: (node: NodeId | null, entry: HistoryEntry) => void;
}

/** Counters of a run. */
export interface SimStats {
  nodes: number;
  seed: number;
  virtualMs: number;
  events: number;
  submitted: number;
  refused: number;
  deliveries: number;
  /** Distinct messages delivered at every node alive at the end. */
  ordered: number;
  regularConfigs: number;
  crashes: number;
  pauses: number;
  faults: number;
  datagrams: number;
  dropped: number;
  duplicated: number;
  /** From the start of the quiet phase to the last confchg (null: no quiet phase). */
  settleMs: number | null;
  /** Hash of the whole history: equal for equal seeds. */
  historyHash: string;
}

/** Result of `simulate`. */
export interface SimResult {
  readonly seed: number;
  readonly violations: Violation[];
  readonly stats: SimStats;
  /** L1 held: all live nodes ended in one ring of all of them, in time. */
  readonly live: boolean;
  /** Formatted trace per violation (same order), for reports. */
  readonly traces: string[][];
  readonly history: History;
  readonly plan: FaultPlan;
  readonly config: TotemConfig;
}

type SimEvent =
  | { readonly kind: "frame"; readonly to: NodeId; readonly bytes: Uint8Array }
  | {
    readonly kind: "timer";
    readonly node: NodeId;
    readonly timer: TimerName;
    readonly gen: number;
  }
  | { readonly kind: "app"; readonly node: NodeId }
  | { readonly kind: "fault"; readonly fault: FaultEvent }
  | {
    readonly kind: "restart";
    readonly node: NodeId;
    readonly epoch: number;
    readonly storage: StorageOnRestart;
  }
  | {
    readonly kind: "resume";
    readonly node: NodeId;
    readonly epoch: number;
    readonly pauseId: number;
  }
  | {
    readonly kind: "crash_deadline";
    readonly node: NodeId;
    readonly epoch: number;
  }
  | { readonly kind: "quiet" }
  | { readonly kind: "call"; readonly fn: (sim: Simulation) => void };

/** The L1 budget after the quiet phase starts (TOTEM.md 1.3, L1). */
export function l1BudgetMs(c: TotemConfig): number {
  // Detect (token loss or merge detect), possibly one failed round (commit
  // token lost, consensus expiry), then consensus, k·join and the two
  // commit rotations plus recovery rotations.
  return 2 * c.tokenMs + 2 * c.consensusMs + 10 * c.joinMs + c.mergeMs +
    4 * c.holdMs;
}

/** A simulation that tests can also drive step by step. */
export class Simulation {
  readonly seed: number;
  readonly nodes: readonly NodeId[];
  readonly config: TotemConfig;
  readonly clock = new VirtualClock();
  readonly net: Network;
  readonly history: HistoryRecorder;
  readonly hosts = new Map<NodeId, NodeHost>();
  readonly plan: FaultPlan;
  readonly durationMs: number;
  readonly quietStartMs: number | null;
  readonly submitStopMs: number;
  readonly endMs: number;
  #queue = new EventQueue<SimEvent>();
  #rng: Prng;
  #app: Required<AppOptions>;
  #ruleIds = new Map<string, number[]>();
  #events = 0;
  #faults = 0;
  #pauses = 0;
  #pauseId = 0;
  #currentPause = new Map<NodeId, number>();
  #quiet = false;
  #observers: ((node: NodeId, action: SrpAction, nowMs: number) => void)[] = [];
  #options: SimOptions;
  #maxEvents: number;
  #maxPending: number;
  /** Why the run was cut short, or null. */
  aborted: string | null = null;
  /** The exception that cut the run short, if one did. */
  failure: { node: NodeId | null; message: string; where: string } | null =
    null;

  constructor(options: SimOptions) {
    this.#options = options;
    this.seed = options.seed;
    this.nodes = typeof options.nodes === "number"
      ? Array.from({ length: options.nodes }, (_, k) => k + 1)
      : [...options.nodes].sort((a, b) => a - b);
    assert(this.nodes.length >= 1, "a simulation needs at least one node");
    const base = options.profile === "corosync" ? {} : FAST_TOTEM;
    this.config = resolveTotemConfig(
      { ...base, ...options.totem },
      this.nodes.length,
    );
    this.#rng = new Prng(options.seed);
    const planRng = this.#rng.fork();
    const netRng = this.#rng.fork();
    this.durationMs = options.durationMs ?? 30_000;
    this.plan = options.plan ?? generateFaultPlan({
      rng: planRng,
      nodes: this.nodes,
      kinds: options.faults ?? [],
      durationMs: this.durationMs,
      config: this.config,
    });
    const budget = l1BudgetMs(this.config);
    const drain = 2 * this.config.tokenMs + 4 * this.config.holdMs;
    this.quietStartMs = options.noQuietPhase ? null : this.durationMs;
    this.submitStopMs = options.noQuietPhase
      ? this.durationMs
      : this.durationMs + budget;
    this.endMs = options.noQuietPhase
      ? this.durationMs
      : this.submitStopMs + drain;
    this.#app = {
      intervalMs: options.app?.intervalMs ?? 50,
      safeRatio: options.app?.safeRatio ?? 0.2,
      padBytes: options.app?.padBytes ?? [0, 48],
      burstP: options.app?.burstP ?? 0.02,
      burstSize: options.app?.burstSize ?? 40,
    };
    this.#maxEvents = options.maxEvents ?? 400 * this.endMs;
    this.#maxPending = options.maxPendingEvents ?? 200_000;
    this.net = new Network({ nodes: this.nodes, rng: netRng });
    this.history = new HistoryRecorder(this.nodes);
    const env = {
      transmit: (from: NodeId, to: NodeId | "all", bytes: Uint8Array): void =>
        this.#transmit(from, to, bytes),
      scheduleTimer: (
        node: NodeId,
        timer: TimerName,
        gen: number,
        atMs: number,
      ): void => this.#queue.push(atMs, { kind: "timer", node, timer, gen }),
      observe: (node: NodeId, action: SrpAction, nowMs: number): void => {
        for (const fn of this.#observers) fn(node, action, nowMs);
      },
    };
    for (const id of this.nodes) {
      const host = new NodeHost({
        nodeId: id,
        nodes: this.nodes,
        config: this.config,
        rng: this.#rng.fork(),
        history: this.history,
        env,
      });
      host.onTriggeredCrash = (trigger, nowMs) =>
        this.#afterCrash(host, trigger.restartAfterMs, trigger.storage, nowMs);
      this.hosts.set(id, host);
    }
    if (options.observer !== undefined) {
      const observer = options.observer;
      this.history.onRecord = (node, e) =>
        observer(node === NET_LOG ? null : node, e);
    }
    // Initial schedule: every node starts at 0 (in id order), the app ticks,
    // the faults, the quiet phase.
    for (const id of this.nodes) {
      this.#queue.push(0, {
        kind: "call",
        fn: (sim) => sim.host(id).boot(sim.clock.nowMs, "fresh"),
      });
    }
    if (this.#app.intervalMs > 0) {
      for (const id of this.nodes) {
        this.#queue.push(this.#nextAppDelay(this.host(id)), {
          kind: "app",
          node: id,
        });
      }
    }
    for (const fault of this.plan.events) {
      this.#queue.push(fault.atMs, { kind: "fault", fault });
    }
    if (this.quietStartMs !== null) {
      this.#queue.push(this.quietStartMs, { kind: "quiet" });
    }
  }

  /** The host of node `id`. */
  host(id: NodeId): NodeHost {
    const h = this.hosts.get(id);
    assert(h !== undefined, `no node ${id}`);
    return h;
  }

  /** Virtual time now. */
  get nowMs(): number {
    return this.clock.nowMs;
  }

  /** Registers an observer of every action any node performs (scenario hooks). */
  onAction(fn: (node: NodeId, action: SrpAction, nowMs: number) => void): void {
    this.#observers.push(fn);
  }

  /** Runs `fn` at virtual time `atMs` (scenario scripting). */
  at(atMs: number, fn: (sim: Simulation) => void): void {
    this.#queue.push(Math.max(atMs, this.clock.nowMs), { kind: "call", fn });
  }

  /** Records a network-wide fault note. */
  note(text: string): void {
    this.history.record(NET_LOG, this.clock.nowMs, { kind: "fault", text });
  }

  /** Adds a network rule under `key` (now). */
  addRule(key: string, rule: LinkRule): void {
    const id = this.net.addRule(rule);
    const ids = this.#ruleIds.get(key) ?? [];
    // One note per key: a partition is several rules with one label.
    if (ids.length === 0) this.note(`${key}: ${rule.label ?? "rule"}`);
    this.#ruleIds.set(key, [...ids, id]);
  }

  /** Removes the rules added under `key`. */
  removeRule(key: string): void {
    for (const id of this.#ruleIds.get(key) ?? []) this.net.removeRule(id);
    if (this.#ruleIds.delete(key)) this.note(`${key}: over`);
  }

  /**
   * Crashes `node` now, or when it reaches `at` (faults.ts, `CrashPoint`);
   * restarts it `restartAfterMs` later (null: not before the quiet phase)
   * with its stable storage kept, lost or rolled back.
   */
  crash(node: NodeId, options: CrashOptions = {}): void {
    const point = options.at ?? "now";
    const restartAfterMs = options.restartAfterMs ?? null;
    const storage = options.storage ?? "kept";
    const host = this.host(node);
    if (!host.up) return;
    if (point === "now") {
      this.history.record(node, this.clock.nowMs, {
        kind: "fault",
        text: "crash",
      });
      host.crash(this.clock.nowMs);
      this.#afterCrash(host, restartAfterMs, storage, this.clock.nowMs);
      return;
    }
    const trigger: CrashTrigger = {
      point,
      deadlineMs: this.clock.nowMs + CRASH_POINT_WAIT_MS,
      restartAfterMs,
      storage,
    };
    host.crashTrigger = trigger;
    this.history.record(node, this.clock.nowMs, {
      kind: "fault",
      text: `crash armed at ${point}`,
    });
    this.#queue.push(trigger.deadlineMs, {
      kind: "crash_deadline",
      node,
      epoch: host.epoch,
    });
  }

  /** Restarts a crashed node with its stable storage kept, lost or rolled back. */
  restart(node: NodeId, storage: StorageOnRestart = "kept"): void {
    const host = this.host(node);
    if (host.up) return;
    this.history.record(node, this.clock.nowMs, {
      kind: "fault",
      text: `restart (storage ${storage})`,
    });
    host.boot(this.clock.nowMs, storage);
  }

  /** Pauses `node` for `durationMs`: its datagrams and timers queue up. */
  pause(node: NodeId, durationMs: number): void {
    const host = this.host(node);
    if (!host.pause(this.clock.nowMs)) return;
    this.#pauses++;
    const pauseId = ++this.#pauseId;
    this.#currentPause.set(node, pauseId);
    this.#queue.push(this.clock.nowMs + durationMs, {
      kind: "resume",
      node,
      epoch: host.epoch,
      pauseId,
    });
  }

  /** Resumes a paused node now; its queued events run first, in order. */
  resume(node: NodeId): void {
    const host = this.host(node);
    this.#currentPause.delete(node);
    const now = this.clock.nowMs;
    for (const ev of host.resume(now)) {
      if (ev.kind === "frame") {
        this.#queue.push(now, { kind: "frame", to: node, bytes: ev.bytes });
      } else {
        this.#queue.push(now, {
          kind: "timer",
          node,
          timer: ev.timer,
          gen: ev.gen,
        });
      }
    }
  }

  /**
   * The test application of `node` submits `count` messages now (scenario
   * scripting); returns how many the core accepted.
   */
  submit(node: NodeId, options: SubmitOptions = {}): number {
    const count = options.count ?? 1;
    let accepted = 0;
    for (let k = 0; k < count; k++) {
      const ok = this.host(node).submit(this.clock.nowMs, {
        guarantee: options.guarantee ?? "agreed",
        padBytes: options.padBytes ?? 0,
      });
      if (ok) accepted++;
    }
    return accepted;
  }

  /** Processes every event up to and including `untilMs`, then sets the clock there. */
  runUntil(untilMs: number): void {
    if (this.aborted !== null) return;
    while (this.#queue.peekTime() <= untilMs) {
      if (
        this.#events >= this.#maxEvents || this.#queue.size >= this.#maxPending
      ) {
        this.aborted =
          `event storm: ${this.#events} events processed, ${this.#queue.size} pending at ${
            this.clock.nowMs.toFixed(1)
          }ms; run aborted`;
        this.note(this.aborted);
        return;
      }
      const next = this.#queue.pop()!;
      this.clock.advanceTo(next.atMs);
      this.#events++;
      try {
        this.#handle(next.item);
      } catch (error) {
        // A failed assertion is a bug (STYLE.md section 6). Stop the run and
        // report it with the node's trace instead of losing the history.
        const node = eventNode(next.item);
        const e = error instanceof Error ? error : new Error(String(error));
        const where = e.stack?.split("\n").slice(1, 4).map((l) =>
          l.trim()
        ).join(" < ") ?? "";
        this.failure = { node, message: `${e.name}: ${e.message}`, where };
        this.aborted = `${
          node === null ? "simulator" : `node ${node}`
        } threw ${e.name}: ${e.message}`;
        this.history.record(node ?? NET_LOG, this.clock.nowMs, {
          kind: "fault",
          text: `${this.aborted} (${where})`,
        });
        return;
      }
    }
    if (untilMs > this.clock.nowMs && untilMs !== Infinity) {
      this.clock.advanceTo(untilMs);
    }
  }

  /** Runs to the end of the schedule and checks the histories. */
  run(): SimResult {
    this.runUntil(this.endMs);
    return this.finish();
  }

  /** Checks the histories recorded so far and builds the result. */
  finish(): SimResult {
    const history = this.history.toHistory({
      seqnoStart: this.config.seqnoStart,
      quietStartMs: this.quietStartMs,
      l1DeadlineMs: this.quietStartMs === null
        ? null
        : this.quietStartMs + l1BudgetMs(this.config),
      endMs: this.clock.nowMs,
    });
    const aborted = this.aborted;
    const violations = checkHistory(history, {
      liveness: aborted === null && this.quietStartMs !== null,
      eventual: aborted === null && this.quietStartMs !== null,
    });
    if (this.failure !== null) {
      violations.push({
        property: "ASSERT",
        message: `${aborted} at ${
          this.clock.nowMs.toFixed(1)
        }ms (${this.failure.where})`,
        nodes: this.failure.node === null ? this.nodes : [this.failure.node],
        atIndex: this.history.count - 1,
        msgs: [],
      });
    } else if (aborted !== null) {
      violations.push({
        property: "L1",
        message: aborted,
        nodes: this.nodes,
        atIndex: this.history.count - 1,
        msgs: [],
      });
    }
    const traceEntries = this.#options.traceEntries ?? 40;
    const traces = violations.map((v) =>
      violationTrace(history, v, traceEntries)
    );
    return {
      seed: this.seed,
      violations,
      stats: this.#stats(history),
      live: !violations.some((v) => v.property === "L1"),
      traces,
      history,
      plan: this.plan,
      config: this.config,
    };
  }

  #stats(history: History): SimStats {
    let submitted = 0;
    let refused = 0;
    let deliveries = 0;
    let crashes = 0;
    for (const h of this.hosts.values()) {
      submitted += h.stats.submitted;
      refused += h.stats.refused;
      deliveries += h.stats.delivered;
      crashes += h.stats.crashes;
    }
    // Messages delivered by every node alive at the end (last incarnation).
    const liveSets: Set<string>[] = [];
    const regs = new Set<string>();
    let lastConfT = -1;
    for (const node of this.nodes) {
      const log = history.logs.get(node) ?? [];
      let startK = 0;
      for (let k = 0; k < log.length; k++) {
        const e = log[k];
        if (e.kind === "start") startK = k;
        if (e.kind === "confchg") {
          if (e.type === "REG") {
            regs.add(`${e.ringId.rep}.${e.ringId.seq}/${e.members.join(",")}`);
          }
          lastConfT = Math.max(lastConfT, e.t);
        }
      }
      if (!this.host(node).up) continue;
      const s = new Set<string>();
      for (let k = startK; k < log.length; k++) {
        const e = log[k];
        if (e.kind === "deliver" && e.msg !== null) s.add(e.msg);
      }
      liveSets.push(s);
    }
    let ordered = 0;
    if (liveSets.length > 0) {
      for (const m of liveSets[0]) {
        if (liveSets.every((s) => s.has(m))) ordered++;
      }
    }
    return {
      nodes: this.nodes.length,
      seed: this.seed,
      virtualMs: this.clock.nowMs,
      events: this.#events,
      submitted,
      refused,
      deliveries,
      ordered,
      regularConfigs: regs.size,
      crashes,
      pauses: this.#pauses,
      faults: this.#faults,
      datagrams: this.net.stats.datagrams,
      dropped: this.net.stats.dropped,
      duplicated: this.net.stats.duplicated,
      settleMs: this.quietStartMs === null
        ? null
        : Math.max(0, lastConfT - this.quietStartMs),
      historyHash: hashHistory(history),
    };
  }

  #transmit(from: NodeId, to: NodeId | "all", bytes: Uint8Array): void {
    const now = this.clock.nowMs;
    for (const target of this.net.targets(from, to)) {
      for (const arrival of this.net.route(from, target, bytes, now)) {
        this.#queue.push(arrival.atMs, {
          kind: "frame",
          to: target,
          bytes: arrival.bytes,
        });
      }
    }
  }

  #nextAppDelay(host: NodeHost): number {
    // Exponential think time with the configured mean.
    const u = host.appRng.float();
    return -Math.log(1 - u) * this.#app.intervalMs;
  }

  #appTick(host: NodeHost): void {
    const now = this.clock.nowMs;
    if (now >= this.submitStopMs) return;
    const rng = host.appRng;
    const count = rng.chance(this.#app.burstP) ? this.#app.burstSize : 1;
    const [lo, hi] = this.#app.padBytes;
    for (let k = 0; k < count; k++) {
      const guarantee = rng.chance(this.#app.safeRatio) ? "safe" : "agreed";
      const pad = lo + rng.int(hi - lo + 1);
      // TRY_AGAIN: the app retries on a later tick.
      if (!host.submit(now, { guarantee, padBytes: pad })) break;
    }
    this.#queue.push(now + this.#nextAppDelay(host), {
      kind: "app",
      node: host.id,
    });
  }

  #afterCrash(
    host: NodeHost,
    restartAfterMs: number | null,
    storage: StorageOnRestart,
    nowMs: number,
  ): void {
    if (restartAfterMs === null) return;
    this.#queue.push(nowMs + restartAfterMs, {
      kind: "restart",
      node: host.id,
      epoch: host.epoch,
      storage,
    });
  }

  #applyFault(f: FaultEvent): void {
    this.#faults++;
    switch (f.kind) {
      case "rule":
        this.addRule(f.key, f.rule);
        break;
      case "unrule":
        this.removeRule(f.key);
        break;
      case "crash": {
        const host = this.host(f.node);
        if (!host.up || host.crashTrigger !== null) return;
        this.note(describeFault(f));
        this.crash(f.node, {
          at: f.point,
          restartAfterMs: f.restartAfterMs,
          storage: f.storage,
        });
        break;
      }
      case "pause": {
        const host = this.host(f.node);
        if (!host.up || host.paused) return;
        this.note(describeFault(f));
        this.pause(f.node, f.durationMs);
        break;
      }
      case "reachability":
        this.history.record(f.observer, this.clock.nowMs, {
          kind: "fault",
          text: describeFault(f),
        });
        this.host(f.observer).reachability(
          f.peer,
          f.reachable,
          this.clock.nowMs,
        );
        break;
      default:
        unreachable(f);
    }
  }

  #enterQuiet(): void {
    this.#quiet = true;
    this.note(
      "quiet phase: faults off, network healed, paused nodes resumed, crashed nodes restarted",
    );
    for (const key of [...this.#ruleIds.keys()]) this.removeRule(key);
    this.net.clearRules();
    for (const id of this.nodes) {
      const host = this.host(id);
      if (host.crashTrigger !== null) {
        host.crashTrigger = null;
        this.history.record(id, this.clock.nowMs, {
          kind: "fault",
          text: "armed crash cancelled",
        });
      }
      if (host.paused) this.resume(id);
      if (!host.up) this.restart(id, "kept");
      // The link layer sees everyone again.
      for (const peer of this.nodes) {
        if (peer !== id) host.reachability(peer, true, this.clock.nowMs);
      }
    }
  }

  #handle(ev: SimEvent): void {
    const now = this.clock.nowMs;
    switch (ev.kind) {
      case "frame":
        this.host(ev.to).receive(ev.bytes, now);
        break;
      case "timer":
        this.host(ev.node).fireTimer(ev.timer, ev.gen, now);
        break;
      case "app":
        this.#appTick(this.host(ev.node));
        break;
      case "fault":
        if (!this.#quiet) this.#applyFault(ev.fault);
        break;
      case "restart": {
        const host = this.host(ev.node);
        if (host.epoch === ev.epoch && !host.up) {
          this.restart(ev.node, ev.storage);
        }
        break;
      }
      case "resume": {
        const host = this.host(ev.node);
        if (
          host.epoch === ev.epoch && host.paused &&
          this.#currentPause.get(ev.node) === ev.pauseId
        ) this.resume(ev.node);
        break;
      }
      case "crash_deadline": {
        const host = this.host(ev.node);
        const trigger = host.crashTrigger;
        if (host.epoch === ev.epoch && trigger !== null && host.up) {
          this.history.record(ev.node, now, {
            kind: "fault",
            text: `crash (${trigger.point} not reached in time)`,
          });
          host.crash(now);
          this.#afterCrash(host, trigger.restartAfterMs, trigger.storage, now);
        }
        break;
      }
      case "quiet":
        this.#enterQuiet();
        break;
      case "call":
        ev.fn(this);
        break;
      default:
        unreachable(ev);
    }
  }
}

/** The node an event is addressed to, if any. */
function eventNode(ev: SimEvent): NodeId | null {
  switch (ev.kind) {
    case "frame":
      return ev.to;
    case "timer":
    case "app":
    case "restart":
    case "resume":
    case "crash_deadline":
      return ev.node;
    case "fault":
      return "node" in ev.fault ? ev.fault.node : null;
    case "quiet":
    case "call":
      return null;
    default:
      return unreachable(ev);
  }
}

/** Runs one whole simulation and checks it. */
export function simulate(options: SimOptions): SimResult {
  return new Simulation(options).run();
}

/**
 * The last `limit` relevant entries of the nodes involved in `v` (and the
 * network fault log) up to where it shows: membership events, faults, logs,
 * and the deliveries/submissions of the messages involved.
 */
export function violationTrace(
  history: History,
  v: Violation,
  limit = 40,
): string[] {
  const msgs = new Set(v.msgs);
  const nodes = v.nodes.length > 0 ? v.nodes : history.nodes;
  const upTo = v.atIndex ?? Infinity;
  const picked: [NodeId, HistoryEntry][] = [];
  for (const node of [NET_LOG, ...nodes]) {
    for (const e of history.logs.get(node) ?? []) {
      if (e.i > upTo) break;
      const relevant =
        e.kind === "deliver" || e.kind === "submit" || e.kind === "refused"
          ? e.msg !== null && msgs.has(e.msg)
          : true;
      if (relevant) picked.push([node, e]);
    }
  }
  picked.sort((a, b) => a[1].i - b[1].i);
  return picked.slice(-limit).map(([node, e]) => formatEntry(node, e));
}
