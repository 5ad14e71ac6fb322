/**
 * CPG on the real stack under faults: every simulated node runs the Totem
 * core with its sync barrier (`Srp` with `syncBarrier: true`), the packing
 * layer, the executive and the CPG engine (plus a probe engine on odd
 * nodes, cpg_probe.ts), all through `ServiceStack`, on the simulator's
 * virtual network, clock and fault schedules (network.ts, faults.ts).
 * Simulated local clients join groups, multicast messages with embedded
 * ids, leave, rejoin and die; their callbacks are recorded, tagged with the
 * ordered message that caused them, and checked by cpg_checker.ts.
 *
 * Everything derives from one seed. A run has a safety phase with faults,
 * then (unless `quiet: false`) a quiet phase long enough for the ring to
 * re-form and sync, then a drain without new client requests.
 *
 * @module
 */
import { CsError } from "../exec/cs_error.ts";
import { type Engine, SERVICE_ID } from "../exec/engine.ts";
import { Executive } from "../exec/executive.ts";
import {
  ServiceStack,
  type StackAction,
  type StackEvent,
} from "../exec/service_stack.ts";
import { decodeEngineMessage, ENGINE_GROUP } from "../exec/wire.ts";
import { CpgEngine } from "../../engines/cpg/cpg.ts";
import {
  CPG_REQUEST_FN,
  type CpgRequest,
  decodeCpgCallback,
  encodeCpgRequest,
} from "../../engines/cpg/ipc.ts";
import { CPG_MESSAGE_FN, CpgReason } from "../../engines/cpg/wire.ts";
import { assert, unreachable } from "../lib/assert.ts";
import { Prng } from "../lib/prng.ts";
import { peekType } from "../totem/codec.ts";
import {
  resolveTotemConfig,
  type TotemConfig,
  type TotemOptions,
} from "../totem/config.ts";
import { decodeGroupMessage } from "../totem/pg/mod.ts";
import { TotemPg } from "../totem/pg/totem_pg.ts";
import { Srp } from "../totem/srp.ts";
import { type NodeId, ringIdText, type TimerName } from "../totem/types.ts";
import { VirtualClock } from "./clock.ts";
import {
  checkCpg,
  type ClientEvent,
  compareMember,
  type ConnRecord,
  type CpgViolation,
  type SyncRecord,
  type ViewEvent,
} from "./cpg_checker.ts";
import { ProbeEngine } from "./cpg_probe.ts";
import { EventQueue } from "./event_queue.ts";
import {
  CRASH_POINT_WAIT_MS,
  type CrashPoint,
  describeFault,
  type FaultEvent,
  type FaultKind,
  generateFaultPlan,
  type StorageOnRestart,
} from "./faults.ts";
import { gather } from "../lib/gather.ts";
import { Network } from "./network.ts";
import { FAST_TOTEM, l1BudgetMs } from "./simulate.ts";

/** Crash points of the CPG simulation: the core's, plus "mid_sync". */
export type CpgCrashPoint = CrashPoint | "mid_sync";

/** Parameters of one CPG simulation. */
export interface CpgSimOptions {
  readonly seed: number;
  /** Node count (ids 1..n). */
  readonly nodes: number;
  /** Fault kinds of the generated schedule (default none). */
  readonly faults?: readonly FaultKind[];
  /** Length of the safety phase in virtual ms (default 12000). */
  readonly durationMs?: number;
  /** Client processes started per node incarnation (default 2). */
  readonly clientsPerNode?: number;
  /** Group names clients pick from (default ["alpha", "beta"]). */
  readonly groups?: readonly string[];
  /** Mean think time of a client between requests (default 60 ms). */
  readonly clientIntervalMs?: number;
  /** Share of generated crashes moved to the "mid_sync" point (default 0.3). */
  readonly midSyncCrashShare?: number;
  /** Totem overrides on top of the fast profile. */
  readonly totem?: TotemOptions;
  /** Quiet end and liveness checks (default true). */
  readonly quiet?: boolean;
  /** Trace lines kept in the result (default: the last 80, on failure only). */
  readonly traceLines?: number;
}

/** Counters of a run. */
export interface CpgSimStats {
  virtualMs: number;
  events: number;
  clients: number;
  accepted: number;
  tryAgain: number;
  /** Steps after which multicasts waited for room in the core's queues. */
  backlogged: number;
  deliveries: number;
  views: number;
  syncs: number;
  crashes: number;
  faults: number;
}

/** Result of `simulateCpg`. */
export interface CpgSimResult {
  readonly seed: number;
  readonly violations: CpgViolation[];
  readonly stats: CpgSimStats;
  /** The last trace lines (faults, confchgs, syncs, client lifecycle). */
  readonly trace: string[];
  /** What the clients saw, and the completed syncs (for reports and debugging). */
  readonly conns: readonly ConnRecord[];
  readonly syncs: readonly SyncRecord[];
}

type SimConnState = ConnRecord["state"];

interface SimConn {
  readonly conn: number;
  readonly record: ConnRecord;
  counter: number;
}

interface SimClient {
  readonly key: string;
  readonly node: NodeId;
  readonly epoch: number;
  readonly pid: number;
  readonly conns: SimConn[];
  alive: boolean;
}

type PausedEvent =
  | { readonly kind: "frame"; readonly bytes: Uint8Array }
  | { readonly kind: "timer"; readonly timer: TimerName; readonly gen: number };

interface CrashTrigger {
  readonly point: Exclude<CpgCrashPoint, "now">;
  readonly restartAfterMs: number | null;
  readonly storage: StorageOnRestart;
}

type CpgFault =
  | Exclude<FaultEvent, { kind: "crash" }>
  | (Omit<Extract<FaultEvent, { kind: "crash" }>, "point"> & {
    readonly point: CpgCrashPoint;
  });

type SimEvent =
  | { readonly kind: "frame"; readonly to: NodeId; readonly bytes: Uint8Array }
  | {
    readonly kind: "timer";
    readonly node: NodeId;
    readonly timer: TimerName;
    readonly gen: number;
  }
  | { readonly kind: "client"; readonly client: SimClient }
  | { readonly kind: "spawn"; readonly node: NodeId; readonly epoch: number }
  | { readonly kind: "tick"; readonly node: NodeId; readonly epoch: number }
  | { readonly kind: "fault"; readonly fault: CpgFault }
  | {
    readonly kind: "restart";
    readonly node: NodeId;
    readonly epoch: number;
    readonly storage: StorageOnRestart;
  }
  | { readonly kind: "resume"; readonly node: NodeId; readonly epoch: number }
  | {
    readonly kind: "crash_deadline";
    readonly node: NodeId;
    readonly epoch: number;
  }
  | { readonly kind: "quiet" };

class SimNode {
  readonly id: NodeId;
  incarnation = 0;
  epoch = 0;
  stack: ServiceStack | null = null;
  cpg: CpgEngine | null = null;
  probe: ProbeEngine | null = null;
  paused = false;
  pauseBuffer: PausedEvent[] = [];
  /** Link-layer verdicts heard while paused: the latest per peer. */
  pausedVerdicts = new Map<NodeId, boolean>();
  timers = new Map<TimerName, number>();
  /** Never reset: a timer event of an older incarnation never matches. */
  timerGen = 0;
  storedRingSeq: number | null = null;
  persisted: number[] = [];
  trigger: CrashTrigger | null = null;
  tickPending = false;
  /** Tag of the ordered message being processed (see `#tagFor`). */
  currentTag = "";
  lastFrame = "";
  frameIndex = 0;
  localSeq = 0;
  /** Between a REG confchg and its sync_done. */
  syncing = false;
  regRing = "";
  /** Configuration deliveries happen in now (`ViewEvent.seg`). */
  segment = "@R";
  regMembers: NodeId[] = [];
  activations: number[] = [];
  /** CPG process lists at activation, by ring. */
  cpgSnapshots = new Map<string, string>();
  clients: SimClient[] = [];

  constructor(id: NodeId) {
    this.id = id;
  }

  get up(): boolean {
    return this.stack !== null;
  }
}

/** Deterministic CPG simulation; `run()` once. */
export class CpgSimulation {
  readonly seed: number;
  readonly nodes: readonly NodeId[];
  readonly config: TotemConfig;
  readonly durationMs: number;
  readonly quietStartMs: number | null;
  readonly submitStopMs: number;
  readonly endMs: number;
  readonly clock = new VirtualClock();
  #queue = new EventQueue<SimEvent>();
  #rng: Prng;
  #net: Network;
  #hosts = new Map<NodeId, SimNode>();
  #options: CpgSimOptions;
  #groups: readonly string[];
  #clientIntervalMs: number;
  #probeNodes: NodeId[];
  #conns: ConnRecord[] = [];
  #connById = new Map<number, SimConn>();
  #syncs: SyncRecord[] = [];
  #online: CpgViolation[] = [];
  #trace: string[] = [];
  #ruleIds = new Map<string, number[]>();
  #replies = new Map<number, number>();
  #ringInstances = new Map<
    string,
    { instance: number; installers: Set<NodeId> }
  >();
  #nextConn = 1;
  #nextPid = 1000;
  #nextRequest = 1;
  #quiet = false;
  #aborted: string | null = null;
  #stats: CpgSimStats = {
    virtualMs: 0,
    events: 0,
    clients: 0,
    accepted: 0,
    tryAgain: 0,
    backlogged: 0,
    deliveries: 0,
    views: 0,
    syncs: 0,
    crashes: 0,
    faults: 0,
  };

  constructor(options: CpgSimOptions) {
    this.#options = options;
    this.seed = options.seed;
    assert(options.nodes >= 1, "a simulation needs at least one node");
    this.nodes = Array.from({ length: options.nodes }, (_, k) => k + 1);
    this.config = resolveTotemConfig(
      { ...FAST_TOTEM, ...options.totem },
      this.nodes.length,
    );
    this.#rng = new Prng(options.seed);
    const planRng = this.#rng.fork();
    const netRng = this.#rng.fork();
    this.durationMs = options.durationMs ?? 12_000;
    this.#groups = options.groups ?? ["alpha", "beta"];
    this.#clientIntervalMs = options.clientIntervalMs ?? 60;
    this.#probeNodes = this.nodes.filter((n) => n % 2 === 1);
    const quiet = options.quiet ?? true;
    const budget = l1BudgetMs(this.config);
    this.quietStartMs = quiet ? this.durationMs : null;
    this.submitStopMs = quiet ? this.durationMs + budget : this.durationMs;
    this.endMs = quiet
      ? this.submitStopMs + 4 * this.config.tokenMs + 4 * this.config.holdMs
      : this.durationMs;
    this.#net = new Network({ nodes: this.nodes, rng: netRng });
    for (const id of this.nodes) this.#hosts.set(id, new SimNode(id));

    const plan = generateFaultPlan({
      rng: planRng,
      nodes: this.nodes,
      kinds: options.faults ?? [],
      durationMs: this.durationMs,
      config: this.config,
    });
    const share = options.midSyncCrashShare ?? 0.3;
    for (const f of plan.events) {
      const fault: CpgFault = f.kind === "crash" && planRng.chance(share)
        ? { ...f, point: "mid_sync" }
        : f;
      this.#queue.push(f.atMs, { kind: "fault", fault });
    }
    for (const id of this.nodes) {
      this.#queue.push(0, {
        kind: "restart",
        node: id,
        epoch: 0,
        storage: "kept",
      });
    }
    if (this.quietStartMs !== null) {
      this.#queue.push(this.quietStartMs, { kind: "quiet" });
    }
  }

  /** Runs to the end and checks. */
  run(): CpgSimResult {
    const maxEvents = 600 * this.endMs;
    while (this.#queue.peekTime() <= this.endMs) {
      if (this.#stats.events >= maxEvents || this.#queue.size > 300_000) {
        this.#aborted =
          `event storm: ${this.#stats.events} events, ${this.#queue.size} pending`;
        break;
      }
      const next = this.#queue.pop()!;
      this.clock.advanceTo(next.atMs);
      this.#stats.events++;
      try {
        this.#handle(next.item);
      } catch (error) {
        const e = error instanceof Error ? error : new Error(String(error));
        this.#aborted = `threw ${e.name}: ${e.message} (${
          e.stack?.split("\n").slice(1, 5).join(" < ")
        })`;
        break;
      }
    }
    const violations = this.#check();
    this.#stats.virtualMs = this.clock.nowMs;
    const lines = this.#options.traceLines ?? 80;
    return {
      seed: this.seed,
      violations,
      stats: this.#stats,
      trace: violations.length > 0 || this.#options.traceLines !== undefined
        ? this.#trace.slice(-lines)
        : [],
      conns: this.#conns,
      syncs: this.#syncs,
    };
  }

  #check(): CpgViolation[] {
    const final = this.#aborted === null && this.quietStartMs !== null
      ? {
        up: this.nodes.filter((n) => this.#host(n).up),
        processInfo: new Map(
          this.nodes.filter((n) => this.#host(n).up).map((
            n,
          ) => [n, processInfoText(this.#host(n).cpg!)]),
        ),
      }
      : null;
    const online = [...this.#online];
    for (const host of this.#hosts.values()) {
      for (const v of host.probe?.violations ?? []) {
        online.push({ property: "S1", message: `node ${host.id} probe: ${v}` });
      }
    }
    if (this.#aborted !== null) {
      online.push({ property: "ASSERT", message: this.#aborted });
    }
    return checkCpg(
      {
        nodes: this.nodes,
        conns: this.#conns,
        syncs: this.#syncs,
        online,
        final,
      },
      { eventual: final !== null },
    );
  }

  // ---- events ----

  #handle(ev: SimEvent): void {
    const now = this.clock.nowMs;
    switch (ev.kind) {
      case "frame": {
        const host = this.#host(ev.to);
        if (!host.up) return;
        if (host.paused) {
          host.pauseBuffer.push({ kind: "frame", bytes: ev.bytes });
          return;
        }
        this.#step(host, { type: "frame", bytes: ev.bytes });
        break;
      }
      case "timer": {
        const host = this.#host(ev.node);
        if (!host.up || host.timers.get(ev.timer) !== ev.gen) return;
        if (host.paused) {
          host.pauseBuffer.push({
            kind: "timer",
            timer: ev.timer,
            gen: ev.gen,
          });
          return;
        }
        host.timers.delete(ev.timer);
        this.#step(host, { type: "timer", timer: ev.timer });
        break;
      }
      case "client":
        this.#clientTick(ev.client);
        break;
      case "spawn": {
        const host = this.#host(ev.node);
        if (host.up && host.epoch === ev.epoch && now < this.submitStopMs) {
          this.#spawn(host);
        }
        break;
      }
      case "tick": {
        const host = this.#host(ev.node);
        if (host.epoch !== ev.epoch) return;
        host.tickPending = false;
        if (!host.up || host.paused) return;
        this.#step(host, { type: "tick" });
        break;
      }
      case "fault":
        if (!this.#quiet) this.#applyFault(ev.fault);
        break;
      case "restart": {
        const host = this.#host(ev.node);
        if (host.epoch === ev.epoch && !host.up) this.#boot(host, ev.storage);
        break;
      }
      case "resume": {
        const host = this.#host(ev.node);
        if (host.epoch === ev.epoch && host.paused) this.#resume(host);
        break;
      }
      case "crash_deadline": {
        const host = this.#host(ev.node);
        if (host.epoch === ev.epoch && host.up && host.trigger !== null) {
          this.#log(
            host.id,
            `crash (${host.trigger.point} not reached in time)`,
          );
          this.#crash(host, host.trigger.restartAfterMs, host.trigger.storage);
        }
        break;
      }
      case "quiet":
        this.#enterQuiet();
        break;
      default:
        unreachable(ev);
    }
  }

  #host(id: NodeId): SimNode {
    const h = this.#hosts.get(id);
    assert(h !== undefined, `no node ${id}`);
    return h;
  }

  #log(node: NodeId | null, text: string): void {
    this.#trace.push(
      `${this.clock.nowMs.toFixed(1).padStart(8)} ${
        node === null ? "net" : `n${node}`
      }: ${text}`,
    );
  }

  // ---- node lifecycle ----

  #boot(host: SimNode, storage: StorageOnRestart): void {
    if (storage === "lost") host.storedRingSeq = null;
    else if (storage === "rolled_back") {
      const older = host.persisted.filter((s) =>
        host.storedRingSeq === null || s < host.storedRingSeq
      );
      host.storedRingSeq = older.length === 0
        ? null
        : older[this.#rng.int(older.length)];
    }
    host.incarnation++;
    host.epoch++;
    host.paused = false;
    host.pauseBuffer = [];
    host.pausedVerdicts.clear();
    host.timers.clear();
    host.trigger = null;
    host.tickPending = false;
    host.syncing = false;
    host.lastFrame = "";
    host.clients = [];
    const srp = new Srp({
      nodeId: host.id,
      nodes: this.nodes,
      config: this.config,
      rng: this.#rng.fork(),
      storedRingSeq: host.storedRingSeq,
      bootTimeMs: this.clock.nowMs,
      syncBarrier: true,
    });
    const pg = new TotemPg(srp, { transportOverheadBytes: 0 });
    const cpg = new CpgEngine();
    // S2 evidence: the process list right at CPG activation. Taking it at
    // sync_done would be too late: the core step that delivered the last
    // barrier may go on delivering (application messages of peers that
    // finished first) before the driver sees the sync_done action.
    host.cpgSnapshots.clear();
    const engines: Engine[] = [observeActivation(cpg, (ring) => {
      host.cpgSnapshots.set(ring, processInfoText(cpg));
    })];
    host.probe = null;
    if (this.#probeNodes.includes(host.id)) {
      host.probe = new ProbeEngine(this.#rng.fork(), this.#probeNodes);
    }
    host.cpg = cpg;
    const executive = new Executive({
      nodeId: host.id,
      engines: host.probe === null ? engines : [...engines, host.probe],
    });
    host.stack = new ServiceStack({ pg, executive });
    this.#log(
      host.id,
      `start incarnation ${host.incarnation} (stored ring seq ${host.storedRingSeq})`,
    );
    this.#step(host, { type: "start" });
    const clients = this.#options.clientsPerNode ?? 2;
    for (let k = 0; k < clients; k++) {
      this.#queue.push(this.clock.nowMs + this.#rng.float() * 300, {
        kind: "spawn",
        node: host.id,
        epoch: host.epoch,
      });
    }
  }

  #crash(
    host: SimNode,
    restartAfterMs: number | null,
    storage: StorageOnRestart,
  ): void {
    if (!host.up) return;
    this.#stats.crashes++;
    host.stack = null;
    host.cpg = null;
    host.probe = null;
    host.epoch++;
    host.paused = false;
    host.pauseBuffer = [];
    host.pausedVerdicts.clear();
    host.timers.clear();
    host.trigger = null;
    for (const c of host.clients) this.#endClient(c, "crashed");
    host.clients = [];
    this.#log(host.id, "crashed");
    if (restartAfterMs !== null) {
      this.#queue.push(this.clock.nowMs + restartAfterMs, {
        kind: "restart",
        node: host.id,
        epoch: host.epoch,
        storage,
      });
    }
  }

  #reachability(host: SimNode, peer: NodeId, reachable: boolean): void {
    this.#step(host, { type: "reachability", node: peer, reachable });
  }

  #resume(host: SimNode): void {
    host.paused = false;
    this.#log(host.id, "resumed");
    // Verdicts are not network events: the core hears them first.
    const verdicts = [...host.pausedVerdicts].sort((a, b) => a[0] - b[0]);
    host.pausedVerdicts.clear();
    for (const [peer, reachable] of verdicts) {
      this.#reachability(host, peer, reachable);
    }
    const now = this.clock.nowMs;
    for (const e of host.pauseBuffer) {
      if (e.kind === "frame") {
        this.#queue.push(now, { kind: "frame", to: host.id, bytes: e.bytes });
      } else {this.#queue.push(now, {
          kind: "timer",
          node: host.id,
          timer: e.timer,
          gen: e.gen,
        });}
    }
    host.pauseBuffer = [];
    this.#scheduleTick(host);
  }

  #applyFault(f: CpgFault): void {
    this.#stats.faults++;
    switch (f.kind) {
      case "rule": {
        const id = this.#net.addRule(f.rule);
        const ids = this.#ruleIds.get(f.key) ?? [];
        if (ids.length === 0) this.#log(null, describeFault(f));
        this.#ruleIds.set(f.key, [...ids, id]);
        break;
      }
      case "unrule":
        for (const id of this.#ruleIds.get(f.key) ?? []) {
          this.#net.removeRule(id);
        }
        if (this.#ruleIds.delete(f.key)) this.#log(null, describeFault(f));
        break;
      case "crash": {
        const host = this.#host(f.node);
        if (!host.up || host.trigger !== null) return;
        this.#log(
          f.node,
          f.point === "mid_sync"
            ? `crash armed at mid_sync`
            : describeFault(f as FaultEvent),
        );
        if (f.point === "now") {
          this.#crash(host, f.restartAfterMs, f.storage);
          return;
        }
        host.trigger = {
          point: f.point,
          restartAfterMs: f.restartAfterMs,
          storage: f.storage,
        };
        this.#queue.push(this.clock.nowMs + CRASH_POINT_WAIT_MS, {
          kind: "crash_deadline",
          node: f.node,
          epoch: host.epoch,
        });
        break;
      }
      case "pause": {
        const host = this.#host(f.node);
        if (!host.up || host.paused) return;
        host.paused = true;
        this.#log(f.node, describeFault(f));
        this.#queue.push(this.clock.nowMs + f.durationMs, {
          kind: "resume",
          node: f.node,
          epoch: host.epoch,
        });
        break;
      }
      case "reachability": {
        const host = this.#host(f.observer);
        if (!host.up) return;
        this.#log(f.observer, describeFault(f));
        if (host.paused) host.pausedVerdicts.set(f.peer, f.reachable);
        else this.#reachability(host, f.peer, f.reachable);
        break;
      }
      default:
        unreachable(f);
    }
  }

  #enterQuiet(): void {
    this.#quiet = true;
    this.#log(
      null,
      "quiet phase: network healed, paused nodes resumed, crashed nodes restarted",
    );
    for (const ids of this.#ruleIds.values()) {
      for (const id of ids) this.#net.removeRule(id);
    }
    this.#ruleIds.clear();
    this.#net.clearRules();
    for (const id of this.nodes) {
      const host = this.#host(id);
      host.trigger = null;
      if (host.paused) this.#resume(host);
      if (!host.up) this.#boot(host, "kept");
      // The link layer sees everyone again.
      for (const peer of this.nodes) {
        if (peer !== id) this.#reachability(host, peer, true);
      }
    }
  }

  // ---- driving one node's stack ----

  #step(host: SimNode, event: StackEvent): void {
    const stack = host.stack;
    if (stack === null) return;
    host.currentTag = `local:${host.id}.${host.incarnation}.${++host.localSeq}`;
    this.#perform(host, stack.step(event, this.clock.nowMs));
    if (host.stack === stack) {
      if (stack.backlogLength > 0) this.#stats.backlogged++;
      this.#scheduleTick(host);
    }
  }

  #scheduleTick(host: SimNode): void {
    if (host.stack === null || host.tickPending || !host.stack.needsTick) {
      return;
    }
    host.tickPending = true;
    this.#queue.push(this.clock.nowMs + 1, {
      kind: "tick",
      node: host.id,
      epoch: host.epoch,
    });
  }

  #perform(host: SimNode, actions: StackAction[]): void {
    const trigger = host.trigger;
    const epoch = host.epoch;
    let mcastSent = false;
    for (const a of actions) {
      if (host.epoch !== epoch) return; // crashed at a crash point
      switch (a.type) {
        case "transmit": {
          const kind = peekType(a.bytes);
          if (trigger?.point === "mid_token" && mcastSent && kind === "token") {
            this.#crashAt(
              host,
              "before forwarding the token after multicasting",
            );
            return;
          }
          if (kind === "mcast") mcastSent = true;
          this.#transmit(host.id, a.to, a.bytes);
          if (
            trigger?.point === "mid_sync" && kind === "mcast" && host.syncing
          ) {
            this.#crashAt(host, "mid sync, after multicasting");
            return;
          }
          break;
        }
        case "arm": {
          const gen = ++host.timerGen;
          host.timers.set(a.timer, gen);
          this.#queue.push(this.clock.nowMs + a.afterMs, {
            kind: "timer",
            node: host.id,
            timer: a.timer,
            gen,
          });
          break;
        }
        case "cancel":
          host.timers.delete(a.timer);
          break;
        case "persist_ring_seq":
          host.storedRingSeq = a.ringSeq;
          host.persisted.push(a.ringSeq);
          if (trigger?.point === "after_persist") {
            this.#crashAt(host, "right after persisting the ring seq");
            return;
          }
          break;
        case "state":
          if (trigger !== null && trigger.point === a.to && a.from !== a.to) {
            this.#crashAt(host, `on entering ${a.to.toUpperCase()}`);
            return;
          }
          break;
        case "deliver":
          this.#onDeliver(host, a);
          break;
        case "confchg": {
          const c = a.change;
          this.#log(
            host.id,
            `${c.kind === "regular" ? "REG" : "TRANS"} ${
              ringIdText(c.ringId)
            } [${c.members}] left [${c.left}] joined [${c.joined}] (${a.reason})`,
          );
          host.segment = c.kind === "regular"
            ? "@R"
            : `@T${ringIdText(c.ringId)}[${c.members}]`;
          if (c.kind === "regular") {
            host.syncing = true;
            host.regRing = ringIdText(c.ringId);
            this.#noteRingInstance(host.id, host.regRing);
            host.regMembers = [...c.members];
            host.activations = [];
          }
          break;
        }
        case "sync_activated":
          if (ringIdText(a.ringId) === host.regRing) {
            host.activations.push(a.serviceId);
          }
          break;
        case "sync_done": {
          const ring = ringIdText(a.ringId);
          assert(
            ring === host.regRing,
            `sync_done for ${ring} while in ${host.regRing}`,
          );
          host.syncing = false;
          this.#stats.syncs++;
          this.#syncs.push({
            node: host.id,
            inc: host.incarnation,
            ring: `${ring}#${this.#ringInstances.get(ring)?.instance ?? 0}`,
            members: host.regMembers,
            services: [...host.activations],
            processInfo: host.cpgSnapshots.get(ring) ?? "(cpg not activated)",
            atMs: this.clock.nowMs,
          });
          this.#log(
            host.id,
            `sync done ${ring} services [${host.activations}]${
              a.performed ? "" : " (core moved on)"
            }`,
          );
          break;
        }
        case "reply":
          this.#replies.set(a.requestId, a.status);
          break;
        case "event":
          this.#onClientEvent(host, a.conn, gather(a.payload));
          break;
        case "disconnect": {
          const sc = this.#connById.get(a.conn);
          this.#log(
            host.id,
            `daemon disconnected client conn ${a.conn} (${a.status})`,
          );
          if (sc !== undefined && sc.record.end === "alive") {
            this.#online.push({
              property: "CM",
              message:
                `daemon disconnected ${sc.record.key} (status ${a.status})`,
            });
          }
          break;
        }
        case "log":
          if (a.level === "warn" || a.level === "error") {
            this.#log(host.id, `[${a.subsys}] ${a.text}`);
          }
          break;
        case "try_again":
        case "rejected":
          break;
        case "control":
          // Only the cfg engine asks for node control (shutdown, reload,
          // timers), and this simulation runs CPG alone.
          assert(false, `node ${host.id}: unexpected ${a.request.op} request`);
          break;
        default:
          unreachable(a);
      }
    }
  }

  /**
   * A node that restarts without its ring seq may install a ring id again
   * (TOTEM.md 3.9): number the installations so tags stay unique. A node
   * installing a ring id it installed before starts a new instance.
   */
  #noteRingInstance(node: NodeId, ring: string): void {
    const known = this.#ringInstances.get(ring);
    if (known === undefined) {
      this.#ringInstances.set(ring, {
        instance: 0,
        installers: new Set([node]),
      });
    } else if (known.installers.has(node)) {
      known.instance++;
      known.installers = new Set([node]);
    } else {
      known.installers.add(node);
    }
  }

  #crashAt(host: SimNode, where: string): void {
    const t = host.trigger!;
    this.#log(host.id, `crash ${where}`);
    this.#crash(host, t.restartAfterMs, t.storage);
  }

  #transmit(from: NodeId, to: NodeId | "all", bytes: Uint8Array): void {
    const now = this.clock.nowMs;
    for (const target of this.#net.targets(from, to)) {
      for (const arrival of this.#net.route(from, target, bytes, now)) {
        this.#queue.push(arrival.atMs, {
          kind: "frame",
          to: target,
          bytes: arrival.bytes,
        });
      }
    }
  }

  /**
   * Tags the delivery with its place in the total order: ring, frame seq
   * and index inside the frame (messages are small, so none is fragmented
   * and every node unpacks a frame into the same messages).
   */
  #onDeliver(
    host: SimNode,
    a: Extract<StackAction, { type: "deliver" }>,
  ): void {
    const ring = ringIdText(a.ringId);
    const frame = `${ring}#${
      this.#ringInstances.get(ring)?.instance ?? 0
    }/${a.seq}`;
    host.frameIndex = frame === host.lastFrame ? host.frameIndex + 1 : 0;
    host.lastFrame = frame;
    host.currentTag = `${frame}/${host.frameIndex}`;
    if (!host.syncing) return;
    // ST: nothing from clients may be delivered between a REG confchg and
    // the end of its sync (the core holds application frames).
    const g = decodeGroupMessage(a.payload);
    if (!g.ok || !g.value.groups.includes(ENGINE_GROUP)) return;
    const m = decodeEngineMessage(g.value.payload);
    if (!m.ok || m.value.serviceId !== SERVICE_ID.CPG) return;
    const fn = m.value.fn;
    if (
      fn === CPG_MESSAGE_FN.procjoin || fn === CPG_MESSAGE_FN.procleave ||
      fn === CPG_MESSAGE_FN.mcast
    ) {
      this.#online.push({
        property: "ST",
        message:
          `node ${host.id} delivered CPG fn ${fn} from ${a.from} during sync of ${host.regRing}`,
      });
    }
  }

  // ---- clients ----

  #spawn(host: SimNode): void {
    const pid = this.#nextPid++;
    const key = `n${host.id}p${pid}`;
    const client: SimClient = {
      key,
      node: host.id,
      epoch: host.epoch,
      pid,
      conns: [],
      alive: true,
    };
    const rng = this.#rng;
    const groups = this.#groups.filter(() => rng.chance(0.6));
    if (groups.length === 0) groups.push(rng.pick(this.#groups));
    this.#stats.clients++;
    host.clients.push(client);
    this.#log(host.id, `client ${key} starts, groups [${groups}]`);
    for (const group of groups) {
      const conn = this.#nextConn++;
      const record: ConnRecord = {
        key: `${key}${group}`,
        node: host.id,
        pid,
        group,
        events: [],
        accepted: [],
        end: "alive",
        state: "unjoined",
      };
      const sc: SimConn = { conn, record, counter: 0 };
      client.conns.push(sc);
      this.#conns.push(record);
      this.#connById.set(conn, sc);
      this.#step(host, {
        type: "ipc_open",
        conn,
        service: SERVICE_ID.CPG,
        pid,
      });
    }
    this.#queue.push(this.#nextThink(), { kind: "client", client });
  }

  #nextThink(): number {
    const u = this.#rng.float();
    return this.clock.nowMs - Math.log(1 - u) * this.#clientIntervalMs;
  }

  #endClient(client: SimClient, how: "closed" | "crashed"): void {
    client.alive = false;
    for (const sc of client.conns) {
      if (sc.record.end === "alive") sc.record.end = how;
    }
  }

  #clientTick(client: SimClient): void {
    const host = this.#host(client.node);
    if (!client.alive || host.epoch !== client.epoch || !host.up) return;
    const now = this.clock.nowMs;
    if (now >= this.submitStopMs) return;
    if (host.paused) {
      this.#queue.push(this.#nextThink(), { kind: "client", client });
      return;
    }
    const rng = this.#rng;
    const sc = rng.pick(client.conns);
    const r = rng.float();
    switch (sc.record.state) {
      case "unjoined":
        if (
          this.#request(host, sc, {
            fn: "join",
            flags: 0,
            group: sc.record.group,
          }) === CsError.OK
        ) {
          sc.record.state = "joining";
        }
        break;
      case "joining":
        if (r < 0.3) this.#mcast(host, sc);
        break;
      case "joined":
        if (r < 0.006) {
          this.#die(host, client);
          return;
        }
        if (r < 0.05) {
          if (this.#request(host, sc, { fn: "leave" }) === CsError.OK) {
            sc.record.state = "leaving";
          }
        } else if (r < 0.06) {
          // A query on the way: must not disturb anything.
          this.#request(host, sc, {
            fn: "membership_get",
            group: sc.record.group,
          });
        } else {
          this.#mcast(host, sc);
        }
        break;
      case "leaving":
        break;
    }
    this.#queue.push(this.#nextThink(), { kind: "client", client });
  }

  #mcast(host: SimNode, sc: SimConn): void {
    const id = `${sc.record.key}#${sc.counter + 1}`;
    const pad = this.#rng.int(40);
    const text = new TextEncoder().encode(id);
    const message = new Uint8Array(1 + text.length + pad);
    message[0] = text.length;
    message.set(text, 1);
    const guarantee = this.#rng.chance(0.2) ? "safe" : "agreed";
    const status = this.#request(host, sc, { fn: "mcast", guarantee, message });
    if (status === CsError.OK) {
      sc.counter++;
      sc.record.accepted.push(id);
      this.#stats.accepted++;
    }
  }

  #die(host: SimNode, client: SimClient): void {
    this.#log(host.id, `client ${client.key} dies`);
    this.#endClient(client, "closed");
    host.clients = host.clients.filter((c) => c !== client);
    for (const sc of client.conns) {
      this.#step(host, { type: "ipc_close", conn: sc.conn });
    }
    this.#queue.push(this.clock.nowMs + 100 + this.#rng.float() * 900, {
      kind: "spawn",
      node: host.id,
      epoch: host.epoch,
    });
  }

  /** Sends one request; returns the reply status (replies are synchronous here). */
  #request(host: SimNode, sc: SimConn, req: CpgRequest): number {
    const requestId = this.#nextRequest++;
    this.#step(host, {
      type: "ipc_request",
      conn: sc.conn,
      requestId,
      fn: CPG_REQUEST_FN[req.fn],
      payload: encodeCpgRequest(req),
    });
    const status = this.#replies.get(requestId);
    this.#replies.delete(requestId);
    assert(
      status !== undefined || host.stack === null,
      `no reply to request ${requestId}`,
    );
    if (status === CsError.TRY_AGAIN) this.#stats.tryAgain++;
    return status ?? CsError.LIBRARY;
  }

  #onClientEvent(host: SimNode, conn: number, payload: Uint8Array): void {
    const sc = this.#connById.get(conn);
    assert(sc !== undefined, `event for unknown conn ${conn}`);
    const rec = sc.record;
    if (rec.end !== "alive") return;
    const d = decodeCpgCallback(payload);
    assert(d.ok, `undecodable callback: ${!d.ok && d.detail}`);
    const cb = d.value;
    const me = `${rec.node}:${rec.pid}`;
    const tag = host.currentTag;
    switch (cb.kind) {
      case "deliver": {
        this.#stats.deliveries++;
        const m = cb.message;
        const msg = m.length >= 1 && m[0] + 1 <= m.length
          ? new TextDecoder().decode(m.subarray(1, 1 + m[0]))
          : null;
        rec.events.push({
          kind: "deliver",
          tag,
          seg: host.segment,
          msg,
          sender: `${cb.nodeId}:${cb.pid}`,
        });
        break;
      }
      case "confchg": {
        this.#stats.views++;
        const members = cb.members.map((p) => `${p.nodeId}:${p.pid}`).sort(
          compareMember,
        );
        const left = cb.left.map((p) => `${p.nodeId}:${p.pid}/${p.reason}`);
        const joined = cb.joined.map((p) => `${p.nodeId}:${p.pid}/${p.reason}`);
        const last: ClientEvent | undefined = rec.events[rec.events.length - 1];
        if (last !== undefined && last.kind === "view" && last.tag === tag) {
          const merged: ViewEvent = {
            kind: "view",
            tag,
            seg: host.segment,
            members,
            left: [...last.left, ...left],
            joined: [...last.joined, ...joined],
          };
          rec.events[rec.events.length - 1] = merged;
        } else {
          rec.events.push({
            kind: "view",
            tag,
            seg: host.segment,
            members,
            left,
            joined,
          });
        }
        if (cb.joined.some((p) => `${p.nodeId}:${p.pid}` === me)) {
          if (rec.state !== "joining") {
            this.#online.push({
              property: "CM",
              message: `${rec.key} saw itself join while ${rec.state} (${tag})`,
            });
          }
          rec.state = "joined";
        }
        const selfLeft = cb.left.find((p) => `${p.nodeId}:${p.pid}` === me);
        if (selfLeft !== undefined) {
          if (rec.state !== "leaving" || selfLeft.reason !== CpgReason.LEAVE) {
            this.#online.push({
              property: "CM",
              message:
                `${rec.key} saw itself leave (reason ${selfLeft.reason}) while ${rec.state} (${tag})`,
            });
          }
          rec.state = "unjoined";
        } else if (rec.state === "joined" && !members.includes(me)) {
          this.#online.push({
            property: "CM",
            message: `${rec.key} is not in its own view ${tag} [${members}]`,
          });
        }
        break;
      }
      case "totem_confchg":
        break;
      default:
        unreachable(cb);
    }
  }
}

/** Wraps an engine so `onActivate(ring)` runs right after its sync activation. */
function observeActivation(
  engine: Engine,
  onActivate: (ring: string) => void,
): Engine {
  let ring = "";
  return {
    name: engine.name,
    serviceId: engine.serviceId,
    priority: engine.priority,
    init: (api) => engine.init(api),
    requests: engine.requests,
    messages: engine.messages,
    confChange: (change) => engine.confChange(change),
    sync: {
      init: (trans, members, ringId) => {
        ring = ringIdText(ringId);
        engine.sync.init(trans, members, ringId);
      },
      process: () => engine.sync.process(),
      activate: () => {
        engine.sync.activate();
        onActivate(ring);
      },
      abort: () => engine.sync.abort(),
    },
    connOpen: (conn, pid) => engine.connOpen?.(conn, pid),
    connClose: (conn) => engine.connClose?.(conn),
  };
}

/** A CPG engine's process list as one comparable string. */
export function processInfoText(cpg: CpgEngine): string {
  return cpg.processInfo().map((e) => `${e.group}@${e.nodeId}:${e.pid}`).join(
    " ",
  );
}

/** Runs one CPG simulation and checks it. */
export function simulateCpg(options: CpgSimOptions): CpgSimResult {
  return new CpgSimulation(options).run();
}

/** Seed, violations and trace as report lines. */
export function describeCpgResult(r: CpgSimResult, limit = 8): string[] {
  const lines = [`seed ${r.seed}: ${r.violations.length} violation(s)`];
  for (const v of r.violations.slice(0, limit)) {
    lines.push(`  ${v.property} ${v.message}`);
  }
  if (r.trace.length > 0) {
    lines.push("  trace:");
    for (const t of r.trace) lines.push(`    ${t}`);
  }
  return lines;
}

export type { SimConnState };
