/**
 * The CPG engine: closed process groups with virtually synchronous
 * membership and totally ordered delivery, per cpg_overview(3) and
 * Corosync `exec/cpg.c` (TOTEM.md 8.2). Pure: it changes state on ordered
 * messages and sync hooks and talks to the world through `EngineApi`.
 *
 * State: `processInfo` (every known process of every group, cluster-wide,
 * kept sorted by node id then pid), the local connections with their join
 * state, and `oldMembers`, the member list of the last completed sync.
 *
 * - PROCJOIN / PROCLEAVE / MCAST are ordered messages; a local process
 *   enters and leaves `processInfo` only when its own message is delivered,
 *   so every node applies the same changes at the same point. An MCAST
 *   from a process not known in its group is not delivered (Corosync checks
 *   the node only; checking the process is stricter and equivalent for
 *   well-behaved senders, whose MCASTs follow their PROCJOIN in FIFO order).
 * - Sync: `downlist = oldMembers \ trans`; `process` multicasts DOWNLIST
 *   (informational) then JOINLIST of local processes; `activate` (a) removes
 *   downlist nodes' processes (NODEDOWN), (b) adds joinlist entries of
 *   other nodes not yet known (NODEUP), (c) removes remote processes no
 *   joinlist confirmed (PROCDOWN: a node that was paused and came back),
 *   (d) sends the totem confchg callback to every client. After (c) every
 *   member holds exactly the union of the joinlists (TOTEM.md 9.1 S2).
 * - A client disconnecting while joined multicasts PROCLEAVE with reason
 *   PROCDOWN; others see it leave with that reason.
 *
 * Connection states follow Corosync's `cpd_state`: unjoined → join_started
 * (PROCJOIN sent) → join_completed (PROCJOIN delivered) → leave_started
 * (PROCLEAVE sent) → unjoined (PROCLEAVE delivered). One connection is in
 * at most one group, like one `cpg_handle_t`.
 *
 * @module
 */
import { CsError } from "../../src/exec/cs_error.ts";
import {
  type ConnId,
  type Engine,
  type EngineApi,
  type EngineRequest,
  type MessageHandler,
  type RequestHandler,
  type RequestResult,
  SERVICE_ID,
  type SyncHooks,
  type SyncProgress,
} from "../../src/exec/engine.ts";
import { assert } from "../../src/lib/assert.ts";
import type {
  ConfChange,
  Guarantee,
  NodeId,
  RingId,
} from "../../src/totem/types.ts";
import {
  CPG_JOIN_FLAG_INITIAL_TOTEM_CONF,
  CPG_REQUEST_FN,
  type CpgAddress,
  type CpgCallback,
  type CpgIterationItem,
  CpgIterationType,
  type CpgProcess,
  decodeCpgRequest,
  encodeCpgCallback,
  encodeCpgCallbackParts,
  encodeIterationItem,
  encodeMembership,
  encodeU32,
} from "./ipc.ts";
import {
  CPG_MESSAGE_BYTES_MAX,
  CPG_MESSAGE_FN,
  type CpgMessage,
  type CpgMessageName,
  CpgReason,
  type CpgReasonCode,
  decodeCpgMessage,
  encodeCpgMessageParts,
  type JoinListEntry,
} from "./wire.ts";

/** Most processes of this node in groups at once: keeps a JOINLIST well under 1 MiB. */
export const CPG_LOCAL_PROCESSES_MAX = 4096;
/** Most open iterations per connection. */
export const CPG_ITERATIONS_MAX = 64;

/** A connection's join state (Corosync `cpd_state`). */
export type CpgConnPhase =
  | "unjoined"
  | "join_started"
  | "join_completed"
  | "leave_started";

interface ConnState {
  readonly pid: number;
  phase: CpgConnPhase;
  group: string | null;
  flags: number;
  iterations: Map<number, CpgIterationItem[]>;
  nextIteration: number;
}

/** One known process, for tests and the S2 check. */
export interface ProcessInfoEntry {
  readonly group: string;
  readonly nodeId: NodeId;
  readonly pid: number;
}

/** Counters. */
export interface CpgStats {
  /** Ordered messages that did not decode. */
  rejected: number;
  /** MCASTs from a process not known in the group (not delivered). */
  unknownSender: number;
  /** PROCJOIN of a known process or PROCLEAVE of an unknown one. */
  redundant: number;
  /** JOINLIST/DOWNLIST of another round or from a non-member. */
  staleSync: number;
}

function compareProcess(a: CpgProcess, b: CpgProcess): number {
  return a.nodeId - b.nodeId || a.pid - b.pid;
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The CPG engine of one node. */
export class CpgEngine implements Engine {
  readonly name = "cpg";
  readonly serviceId = SERVICE_ID.CPG;
  readonly priority = 10;
  readonly stats: CpgStats = {
    rejected: 0,
    unknownSender: 0,
    redundant: 0,
    staleSync: 0,
  };
  readonly requests: Readonly<Record<string, RequestHandler>>;
  readonly messages: Readonly<Record<CpgMessageName, MessageHandler>>;
  readonly sync: SyncHooks;

  #api: EngineApi | null = null;
  /** processInfo by group; each list sorted by (nodeId, pid). */
  #groups = new Map<string, CpgProcess[]>();
  /** Local connections, in the order they opened (callback order). */
  #conns = new Map<ConnId, ConnState>();
  #oldMembers: NodeId[] = [];
  #ringId: RingId | null = null;
  #members: NodeId[] = [];
  // The sync round in progress (null outside one).
  #syncRing: RingId | null = null;
  #syncMembers: NodeId[] = [];
  #downlist: NodeId[] = [];
  #joinlists = new Map<NodeId, readonly JoinListEntry[]>();
  #syncSent = false;

  constructor() {
    const flow = (
      fn: number,
      handle: (r: EngineRequest) => RequestResult,
    ): RequestHandler => ({
      fn,
      flowControl: true,
      handle,
    });
    const query = (
      fn: number,
      handle: (r: EngineRequest) => RequestResult,
    ): RequestHandler => ({
      fn,
      flowControl: false,
      handle,
    });
    this.requests = {
      join: flow(CPG_REQUEST_FN.join, (r) => this.#reqJoin(r)),
      leave: flow(CPG_REQUEST_FN.leave, (r) => this.#reqLeave(r)),
      mcast: flow(CPG_REQUEST_FN.mcast, (r) => this.#reqMcast(r)),
      membership_get: query(
        CPG_REQUEST_FN.membership_get,
        (r) => this.#reqMembership(r),
      ),
      local_get: query(CPG_REQUEST_FN.local_get, () => ({
        status: CsError.OK,
        payload: encodeU32(this.#apiOrThrow().nodeId),
      })),
      iteration_initialize: query(
        CPG_REQUEST_FN.iteration_initialize,
        (r) => this.#reqIterInit(r),
      ),
      iteration_next: query(
        CPG_REQUEST_FN.iteration_next,
        (r) => this.#reqIterNext(r),
      ),
      iteration_finalize: query(
        CPG_REQUEST_FN.iteration_finalize,
        (r) => this.#reqIterFinalize(r),
      ),
    };
    const handler = (name: CpgMessageName): MessageHandler => ({
      fn: CPG_MESSAGE_FN[name],
      handle: (from, payload) => {
        const d = decodeCpgMessage(name, payload);
        if (!d.ok) {
          this.stats.rejected++;
          this.#apiOrThrow().log(
            "debug",
            `dropped ${name} from ${from}: ${d.detail ?? d.reason}`,
          );
          return;
        }
        this.#onMessage(from, d.value);
      },
    });
    this.messages = {
      procjoin: handler("procjoin"),
      procleave: handler("procleave"),
      joinlist: handler("joinlist"),
      mcast: handler("mcast"),
      downlist: handler("downlist"),
    };
    this.sync = {
      init: (trans, members, ringId) => this.#syncInit(trans, members, ringId),
      process: () => this.#syncProcess(),
      activate: () => this.#syncActivate(),
      abort: () => this.#syncAbort(),
    };
  }

  /** Receives the executive's API. */
  init(api: EngineApi): void {
    this.#api = api;
  }

  /** Every known process, sorted by group, node id, pid (S2 evidence). */
  processInfo(): ProcessInfoEntry[] {
    const out: ProcessInfoEntry[] = [];
    for (const group of [...this.#groups.keys()].sort(compareText)) {
      for (const p of this.#groups.get(group)!) {
        out.push({ group, nodeId: p.nodeId, pid: p.pid });
      }
    }
    return out;
  }

  /** Members of `group`, sorted by node id then pid. */
  groupMembers(group: string): readonly CpgProcess[] {
    return this.#groups.get(group) ?? [];
  }

  /** Join state of a local connection, or undefined if unknown. */
  connPhase(conn: ConnId): CpgConnPhase | undefined {
    return this.#conns.get(conn)?.phase;
  }

  /** Member list of the last completed sync. */
  get oldMembers(): readonly NodeId[] {
    return this.#oldMembers;
  }

  confChange(change: ConfChange): void {
    if (change.kind === "regular") {
      this.#ringId = change.ringId;
      this.#members = [...change.members].sort((a, b) => a - b);
    }
  }

  connOpen(conn: ConnId, pid: number): void {
    assert(!this.#conns.has(conn), `cpg connection ${conn} opened twice`);
    this.#conns.set(conn, {
      pid,
      phase: "unjoined",
      group: null,
      flags: 0,
      iterations: new Map(),
      nextIteration: 1,
    });
  }

  connClose(conn: ConnId): void {
    const c = this.#conns.get(conn);
    if (c === undefined) return;
    this.#conns.delete(conn);
    // Corosync `cpg_lib_exit_fn`: a process that dies while in a group
    // leaves it with reason PROCDOWN. Never refused: the executive holds it
    // through a sync round if needed.
    if (c.group !== null && c.phase !== "leave_started") {
      this.#send({
        type: "procleave",
        pid: c.pid,
        reason: CpgReason.PROCDOWN,
        group: c.group,
      });
    }
  }

  // ---- requests ----

  #reqJoin(r: EngineRequest): RequestResult {
    const c = this.#conn(r.conn);
    const d = decodeCpgRequest(CPG_REQUEST_FN.join, r.payload);
    if (!d.ok || d.value.fn !== "join") {
      return { status: CsError.INVALID_PARAM };
    }
    const { group, flags } = d.value;
    // One process joins a group once: among live connections, and among
    // known processes (its leave may not be delivered yet).
    for (const other of this.#conns.values()) {
      if (other.pid === c.pid && other.group === group) {
        return { status: CsError.EXIST };
      }
    }
    const self = this.#apiOrThrow().nodeId;
    if (this.#known(group, self, c.pid)) return { status: CsError.EXIST };
    switch (c.phase) {
      case "unjoined":
        break;
      case "leave_started":
        return { status: CsError.BUSY };
      case "join_started":
      case "join_completed":
        return { status: CsError.EXIST };
    }
    if (this.#localProcessCount() >= CPG_LOCAL_PROCESSES_MAX) {
      return { status: CsError.NO_RESOURCES };
    }
    c.phase = "join_started";
    c.group = group;
    c.flags = flags;
    this.#send({ type: "procjoin", pid: c.pid, reason: CpgReason.JOIN, group });
    return { status: CsError.OK };
  }

  #reqLeave(r: EngineRequest): RequestResult {
    const c = this.#conn(r.conn);
    const d = decodeCpgRequest(CPG_REQUEST_FN.leave, r.payload);
    if (!d.ok) return { status: CsError.INVALID_PARAM };
    switch (c.phase) {
      case "unjoined":
      case "leave_started":
        return { status: CsError.NOT_EXIST };
      case "join_started":
        return { status: CsError.BUSY };
      case "join_completed":
        break;
    }
    c.phase = "leave_started";
    this.#send({
      type: "procleave",
      pid: c.pid,
      reason: CpgReason.LEAVE,
      group: c.group!,
    });
    return { status: CsError.OK };
  }

  #reqMcast(r: EngineRequest): RequestResult {
    const c = this.#conn(r.conn);
    if (r.payload.length - 1 > CPG_MESSAGE_BYTES_MAX) {
      return { status: CsError.TOO_BIG };
    }
    const d = decodeCpgRequest(CPG_REQUEST_FN.mcast, r.payload);
    if (!d.ok || d.value.fn !== "mcast") {
      return { status: CsError.INVALID_PARAM };
    }
    if (c.phase === "unjoined" || c.phase === "leave_started") {
      return { status: CsError.NOT_EXIST };
    }
    // JOIN_STARTED is fine: the MCAST follows our PROCJOIN in FIFO order.
    this.#send(
      {
        type: "mcast",
        pid: c.pid,
        guarantee: d.value.guarantee,
        group: c.group!,
        message: d.value.message,
      },
      d.value.guarantee,
    );
    return { status: CsError.OK };
  }

  #reqMembership(r: EngineRequest): RequestResult {
    this.#conn(r.conn);
    const d = decodeCpgRequest(CPG_REQUEST_FN.membership_get, r.payload);
    if (!d.ok || d.value.fn !== "membership_get") {
      return { status: CsError.INVALID_PARAM };
    }
    return {
      status: CsError.OK,
      payload: encodeMembership(this.groupMembers(d.value.group)),
    };
  }

  #reqIterInit(r: EngineRequest): RequestResult {
    const c = this.#conn(r.conn);
    const d = decodeCpgRequest(CPG_REQUEST_FN.iteration_initialize, r.payload);
    if (!d.ok || d.value.fn !== "iteration_initialize") {
      return { status: CsError.INVALID_PARAM };
    }
    if (c.iterations.size >= CPG_ITERATIONS_MAX) {
      return { status: CsError.NO_RESOURCES };
    }
    const items: CpgIterationItem[] = [];
    const groups = [...this.#groups.keys()].sort(compareText);
    switch (d.value.iterationType) {
      case CpgIterationType.NAME_ONLY:
        for (const group of groups) items.push({ group, nodeId: 0, pid: 0 });
        break;
      case CpgIterationType.ONE_GROUP: {
        const group = d.value.group!;
        for (const p of this.groupMembers(group)) {
          items.push({ group, nodeId: p.nodeId, pid: p.pid });
        }
        break;
      }
      default:
        for (const e of this.processInfo()) items.push(e);
    }
    const handle = c.nextIteration++;
    c.iterations.set(handle, items);
    return { status: CsError.OK, payload: encodeU32(handle) };
  }

  #reqIterNext(r: EngineRequest): RequestResult {
    const c = this.#conn(r.conn);
    const d = decodeCpgRequest(CPG_REQUEST_FN.iteration_next, r.payload);
    if (!d.ok || d.value.fn !== "iteration_next") {
      return { status: CsError.INVALID_PARAM };
    }
    const items = c.iterations.get(d.value.handle);
    if (items === undefined) return { status: CsError.BAD_HANDLE };
    const item = items.shift();
    if (item === undefined) return { status: CsError.NO_SECTIONS };
    return { status: CsError.OK, payload: encodeIterationItem(item) };
  }

  #reqIterFinalize(r: EngineRequest): RequestResult {
    const c = this.#conn(r.conn);
    const d = decodeCpgRequest(CPG_REQUEST_FN.iteration_finalize, r.payload);
    if (!d.ok || d.value.fn !== "iteration_finalize") {
      return { status: CsError.INVALID_PARAM };
    }
    if (!c.iterations.delete(d.value.handle)) {
      return { status: CsError.BAD_HANDLE };
    }
    return { status: CsError.OK };
  }

  // ---- ordered messages ----

  #onMessage(from: NodeId, m: CpgMessage): void {
    switch (m.type) {
      case "procjoin": {
        if (this.#known(m.group, from, m.pid)) {
          this.stats.redundant++;
          return;
        }
        this.#insert(m.group, { nodeId: from, pid: m.pid });
        this.#notify(m.group, [], [{
          nodeId: from,
          pid: m.pid,
          reason: m.reason,
        }]);
        break;
      }
      case "procleave": {
        if (
          !this.#remove(m.group, (p) => p.nodeId === from && p.pid === m.pid)
        ) {
          this.stats.redundant++;
          return;
        }
        this.#notify(
          m.group,
          [{ nodeId: from, pid: m.pid, reason: m.reason }],
          [],
        );
        break;
      }
      case "mcast": {
        if (!this.#known(m.group, from, m.pid)) {
          this.stats.unknownSender++;
          return;
        }
        const payload = encodeCpgCallbackParts({
          kind: "deliver",
          group: m.group,
          nodeId: from,
          pid: m.pid,
          message: m.message,
        });
        for (const [conn, c] of this.#conns) {
          if (
            c.group === m.group &&
            (c.phase === "join_completed" || c.phase === "leave_started")
          ) {
            this.#apiOrThrow().event(conn, payload);
          }
        }
        break;
      }
      case "joinlist":
        if (!this.#currentRound(m.ringId, from)) return;
        this.#joinlists.set(from, m.entries);
        break;
      case "downlist":
        // Informational since Corosync 23e17953: each node trusts its own
        // downlist and the joinlists.
        if (!this.#currentRound(m.ringId, from)) return;
        break;
    }
  }

  #currentRound(ringId: RingId, from: NodeId): boolean {
    const ring = this.#syncRing;
    if (
      ring === null || ring.rep !== ringId.rep || ring.seq !== ringId.seq ||
      !this.#syncMembers.includes(from)
    ) {
      this.stats.staleSync++;
      return false;
    }
    return true;
  }

  // ---- sync ----

  #syncInit(
    trans: readonly NodeId[],
    members: readonly NodeId[],
    ringId: RingId,
  ): void {
    this.#syncRing = ringId;
    this.#syncMembers = [...members].sort((a, b) => a - b);
    this.#downlist = this.#oldMembers.filter((n) => !trans.includes(n));
    this.#joinlists.clear();
    this.#syncSent = false;
  }

  #syncProcess(): SyncProgress {
    const ring = this.#syncRing;
    assert(ring !== null, "cpg sync process outside a round");
    if (!this.#syncSent) {
      this.#syncSent = true;
      this.#send({
        type: "downlist",
        ringId: ring,
        oldMembers: this.#oldMembers.length,
        left: this.#downlist,
      });
      const self = this.#apiOrThrow().nodeId;
      const entries: JoinListEntry[] = [];
      for (const e of this.processInfo()) {
        if (e.nodeId === self) entries.push({ pid: e.pid, group: e.group });
      }
      this.#send({ type: "joinlist", ringId: ring, entries });
    }
    return "done";
  }

  #syncActivate(): void {
    const ring = this.#syncRing;
    assert(ring !== null, "cpg sync activate outside a round");
    const self = this.#apiOrThrow().nodeId;
    this.#oldMembers = [...this.#syncMembers];
    const groups = (): string[] => [...this.#groups.keys()].sort(compareText);

    // (a) Processes of nodes that left us: NODEDOWN, one callback per group.
    const down = new Set(this.#downlist);
    if (down.size > 0) {
      for (const group of groups()) {
        const left = this.#removeAll(group, (p) => down.has(p.nodeId));
        if (left.length > 0) {
          this.#notify(
            group,
            left.map((p) => ({ ...p, reason: CpgReason.NODEDOWN })),
            [],
          );
        }
      }
    }

    // (b) Processes the joinlists of other nodes name that we do not know: NODEUP.
    const joined = new Map<string, CpgProcess[]>();
    const confirmed = new Set<string>();
    for (const nodeId of [...this.#joinlists.keys()].sort((a, b) => a - b)) {
      if (nodeId === self) continue;
      for (const e of this.#joinlists.get(nodeId)!) {
        confirmed.add(processKey(e.group, nodeId, e.pid));
        if (this.#known(e.group, nodeId, e.pid)) continue;
        this.#insert(e.group, { nodeId, pid: e.pid });
        const list = joined.get(e.group) ?? [];
        list.push({ nodeId, pid: e.pid });
        joined.set(e.group, list);
      }
    }
    for (const group of [...joined.keys()].sort(compareText)) {
      const list = joined.get(group)!.sort(compareProcess);
      this.#notify(
        group,
        [],
        list.map((p) => ({ ...p, reason: CpgReason.NODEUP })),
      );
    }

    // (c) Remote processes no joinlist confirmed: PROCDOWN.
    for (const group of groups()) {
      const left = this.#removeAll(
        group,
        (p) =>
          p.nodeId !== self &&
          !confirmed.has(processKey(group, p.nodeId, p.pid)),
      );
      if (left.length > 0) {
        this.#notify(
          group,
          left.map((p) => ({ ...p, reason: CpgReason.PROCDOWN })),
          [],
        );
      }
    }

    // (d) The totem membership, to every client.
    const payload = encodeCpgCallback({
      kind: "totem_confchg",
      ringId: ring,
      members: this.#syncMembers,
    });
    for (const conn of this.#conns.keys()) {
      this.#apiOrThrow().event(conn, payload);
    }

    this.#syncRing = null;
    this.#joinlists.clear();
    this.#downlist = [];
  }

  #syncAbort(): void {
    this.#syncRing = null;
    this.#joinlists.clear();
    this.#downlist = [];
    this.#syncSent = false;
  }

  // ---- helpers ----

  /**
   * Sends a confchg callback for `group` to local clients in it, completing
   * a local join or leave it reports (Corosync `notify_lib_joinlist`).
   */
  #notify(
    group: string,
    left: readonly CpgAddress[],
    joined: readonly CpgAddress[],
  ): void {
    const api = this.#apiOrThrow();
    const self = api.nodeId;
    const members = this.groupMembers(group);
    const payload = encodeCpgCallback({
      kind: "confchg",
      group,
      members,
      left,
      joined,
    });
    for (const [conn, c] of this.#conns) {
      if (c.group !== group) continue;
      let initialTotem = false;
      if (
        c.phase === "join_started" &&
        joined.some((a) => a.nodeId === self && a.pid === c.pid)
      ) {
        c.phase = "join_completed";
        initialTotem = (c.flags & CPG_JOIN_FLAG_INITIAL_TOTEM_CONF) !== 0;
      }
      if (c.phase === "join_completed" || c.phase === "leave_started") {
        api.event(conn, payload);
      }
      if (initialTotem && this.#ringId !== null) {
        api.event(
          conn,
          encodeCpgCallback({
            kind: "totem_confchg",
            ringId: this.#ringId,
            members: this.#members,
          }),
        );
      }
      if (
        c.phase === "leave_started" &&
        left.some((a) =>
          a.nodeId === self && a.pid === c.pid && a.reason === CpgReason.LEAVE
        )
      ) {
        c.phase = "unjoined";
        c.group = null;
        c.flags = 0;
      }
    }
  }

  #send(m: CpgMessage, guarantee: Guarantee = "agreed"): void {
    this.#apiOrThrow().mcast(m.type, encodeCpgMessageParts(m), guarantee);
  }

  #known(group: string, nodeId: NodeId, pid: number): boolean {
    const list = this.#groups.get(group);
    return list !== undefined &&
      list.some((p) => p.nodeId === nodeId && p.pid === pid);
  }

  #insert(group: string, p: CpgProcess): void {
    const list = this.#groups.get(group) ?? [];
    let i = list.length;
    while (i > 0 && compareProcess(list[i - 1], p) > 0) i--;
    list.splice(i, 0, p);
    this.#groups.set(group, list);
  }

  /** Removes the first match; false if none. Empty groups disappear. */
  #remove(group: string, match: (p: CpgProcess) => boolean): boolean {
    const list = this.#groups.get(group);
    if (list === undefined) return false;
    const i = list.findIndex(match);
    if (i < 0) return false;
    list.splice(i, 1);
    if (list.length === 0) this.#groups.delete(group);
    return true;
  }

  /** Removes every match and returns them, in list order. */
  #removeAll(group: string, match: (p: CpgProcess) => boolean): CpgProcess[] {
    const list = this.#groups.get(group);
    if (list === undefined) return [];
    const removed = list.filter(match);
    if (removed.length === 0) return [];
    const kept = list.filter((p) => !match(p));
    if (kept.length === 0) this.#groups.delete(group);
    else this.#groups.set(group, kept);
    return removed;
  }

  #localProcessCount(): number {
    const self = this.#apiOrThrow().nodeId;
    let n = 0;
    for (const list of this.#groups.values()) {
      for (const p of list) if (p.nodeId === self) n++;
    }
    for (const c of this.#conns.values()) if (c.phase === "join_started") n++;
    return n;
  }

  #conn(conn: ConnId): ConnState {
    const c = this.#conns.get(conn);
    // The executive routes requests only for connections it opened here.
    assert(c !== undefined, `cpg request on unknown connection ${conn}`);
    return c;
  }

  #apiOrThrow(): EngineApi {
    assert(this.#api !== null, "cpg used before init");
    return this.#api;
  }
}

function processKey(group: string, nodeId: NodeId, pid: number): string {
  return `${nodeId}/${pid}/${group}`;
}

/** Reason name for logs and tools. */
export function reasonName(reason: CpgReasonCode): string {
  for (const [name, code] of Object.entries(CpgReason)) {
    if (code === reason) return name;
  }
  return `REASON_${reason}`;
}

export type { CpgCallback };
