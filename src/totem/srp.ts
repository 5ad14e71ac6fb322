/**
 * Totem Single-Ring Ordering and Membership protocol (TOTEM.md sections 2
 * and 3), as a pure state machine: `step(event, nowMs)` consumes one event and
 * returns the actions the driver must perform, in order. No sockets, timers,
 * clocks or global randomness live here, so the daemon and the deterministic
 * simulator run exactly the same code.
 *
 * Structure follows Corosync's `exec/totemsrp.c` so that reviewers can map
 * each handler to its original; deviations are commented where they happen.
 */
import { assert, unreachable } from "../lib/assert.ts";
import { Fifo } from "../lib/fifo.ts";
import type { Prng } from "../lib/prng.ts";
import { seqAdd, seqLt, seqLte, seqMin } from "../lib/seqno.ts";
import { decodeFrame, encodeFrame } from "./codec.ts";
import {
  MAX_NO_CONT_GATHER,
  RTR_ENTRIES_MAX,
  SORT_QUEUE_SLOTS,
  type TotemConfig,
  validateTotemConfig,
} from "./config.ts";
import { SortQueue } from "./sort_queue.ts";
import {
  type CommitEntry,
  type CommitTokenMsg,
  type ConfChange,
  type Guarantee,
  type JoinMsg,
  type McastMsg,
  type MergeDetectMsg,
  type NodeId,
  type RingId,
  ringIdText,
  type RtrEntry,
  sameRing,
  type SrpAction,
  type SrpEvent,
  type SrpState,
  type TimerName,
  type TokenHoldCancelMsg,
  type TokenMsg,
  type TransitionReason,
} from "./types.ts";

/** Construction parameters of one SRP instance. */
export interface SrpOptions {
  /** This node's id (non-zero, member of `nodes`). */
  nodeId: NodeId;
  /** Every configured node (the nodelist); multicasts go to all of them. */
  nodes: readonly NodeId[];
  config: TotemConfig;
  rng: Prng;
  /** Ring seq from stable storage (last committed ring), or null if none. */
  storedRingSeq: number | null;
  /**
   * Wall-clock (or virtual) milliseconds at start; without a stored ring
   * sequence the first ring sequence derives from it (default 0).
   */
  bootTimeMs?: number;
  /**
   * Hold application frames after every ring change until `sync_done`
   * (TOTEM.md 8.1 waitingTransAck); only `sync` frames go out meanwhile.
   * Off when no service synchronisation runs above the core.
   */
  syncBarrier?: boolean;
}

/**
 * Token receptions averaged by `SrpStats.mttRxTokenMs` (Corosync's
 * TOTEM_TOKEN_STATS_MAX).
 */
export const TOKEN_RX_SAMPLES_MAX = 100;

/**
 * Counters kept by the core, published as `stats.srp.*` by the daemon
 * (src/daemon/stats_feed.ts maps them to Corosync's names). Times come from
 * the `nowMs` of `step`, so the core stays pure.
 */
export interface SrpStats {
  /** Frames sent in token order [mcast_tx]. */
  ordersTx: number;
  /** Messages delivered to the layer above. */
  ordersRx: number;
  /** Messages accepted into the send queues. */
  mcastTx: number;
  /** Multicast frames received in the current ring [mcast_rx]. */
  mcastRx: number;
  mcastRetx: number;
  /** Tokens received [orf_token_rx]. */
  tokensRx: number;
  /**
   * Tokens sent, retransmissions and a held token's release included, as
   * Corosync counts them [orf_token_tx].
   */
  tokensTx: number;
  /** Of those, resends of the last token (timer or hold release). */
  tokenRetransmits: number;
  membJoinTx: number;
  membJoinRx: number;
  membCommitTokenTx: number;
  membCommitTokenRx: number;
  membMergeDetectTx: number;
  membMergeDetectRx: number;
  tokenHoldCancelTx: number;
  tokenHoldCancelRx: number;
  /**
   * Mean time between the last `TOKEN_RX_SAMPLES_MAX` accepted tokens
   * (duplicates and retransmitted copies excluded) [mtt_rx_token]; 0
   * before two.
   */
  mttRxTokenMs: number;
  /** `nowMs` of the last token received; -1 before the first. */
  lastTokenRxMs: number;
  gatherEntered: number;
  gatherTokenLost: number;
  commitEntered: number;
  commitTokenLost: number;
  recoveryEntered: number;
  recoveryTokenLost: number;
  operationalEntered: number;
  operationalTokenLost: number;
  consensusTimeouts: number;
  /** Members failed in GATHER because the link layer called them unreachable. */
  unreachableFailed: number;
  rxMsgDropped: number;
  continuousGather: number;
  rejected: number;
}

interface PendingMsg {
  payload: Uint8Array;
  guarantee: Guarantee;
}

interface SavedToken {
  to: NodeId;
  bytes: Uint8Array;
}

const NO_NODE = 0;

/** Sorted copy without duplicates. */
function sortedSet(ids: Iterable<NodeId>): NodeId[] {
  return [...new Set(ids)].sort((a, b) => a - b);
}

function setEqual(a: readonly NodeId[], b: readonly NodeId[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function isSubset(a: readonly NodeId[], b: readonly NodeId[]): boolean {
  for (const x of a) if (!b.includes(x)) return false;
  return true;
}

function subtract(a: readonly NodeId[], b: readonly NodeId[]): NodeId[] {
  return a.filter((x) => !b.includes(x));
}

/** One Totem SRP processor. */
export class Srp {
  readonly nodeId: NodeId;
  /** Effective protocol parameters; replaced only by `reconfigure`. */
  #config: TotemConfig;
  readonly stats: SrpStats = {
    ordersTx: 0,
    ordersRx: 0,
    mcastTx: 0,
    mcastRx: 0,
    mcastRetx: 0,
    tokensRx: 0,
    tokensTx: 0,
    tokenRetransmits: 0,
    membJoinTx: 0,
    membJoinRx: 0,
    membCommitTokenTx: 0,
    membCommitTokenRx: 0,
    membMergeDetectTx: 0,
    membMergeDetectRx: 0,
    tokenHoldCancelTx: 0,
    tokenHoldCancelRx: 0,
    mttRxTokenMs: 0,
    lastTokenRxMs: -1,
    gatherEntered: 0,
    gatherTokenLost: 0,
    commitEntered: 0,
    commitTokenLost: 0,
    recoveryEntered: 0,
    recoveryTokenLost: 0,
    operationalEntered: 0,
    operationalTokenLost: 0,
    consensusTimeouts: 0,
    unreachableFailed: 0,
    rxMsgDropped: 0,
    continuousGather: 0,
    rejected: 0,
  };

  #nodes: NodeId[];
  #rng: Prng;
  #out: SrpAction[] = [];
  #now = 0;
  #started = false;
  #stopped = false;

  #state: SrpState = "gather";
  #ringId: RingId;
  #oldRingId: RingId;
  /** Members of the installed ring (empty before the first ring). */
  #memb: NodeId[] = [];
  #newMemb: NodeId[] = [];
  #transMemb: NodeId[] = [];
  #deliverMemb: NodeId[] = [];
  #procSet: NodeId[];
  #failSet: NodeId[] = [];
  #consensus = new Set<NodeId>();
  /** Peers the link layer reports down on every link (see #onReachability). */
  #unreachable = new Set<NodeId>();
  #tokenRingIdSeq: number;
  #gatherReason: TransitionReason = "start";
  #failedToRecv = false;

  #regular: SortQueue;
  #recovery: SortQueue;
  #myAru: number;
  #myHighSeqReceived: number;
  #myHighDelivered: number;
  #myLastAru: number;
  #myTokenSeq = 0;
  #lastReleased: number;
  #safeUpTo: number;

  #newMsgQueue = new Fifo<PendingMsg>();
  /** Sync frames: the only ones sent while `#waitingTransAck`. */
  #transMsgQueue = new Fifo<PendingMsg>();
  #syncBarrier: boolean;
  #waitingTransAck = false;
  #retransQueue: McastMsg[] = [];
  #retransHead = 0;

  #myTrc = 0;
  #myPbl = 0;
  #myCbl = 0;
  #myLastSeq = 0;
  #seqUnchanged = 0;
  #tokenHeld = false;
  #aruCount = 0;
  #orfTokenDiscard = true;
  #originatedOrfToken = false;
  #savedToken: SavedToken | null = null;
  #mergeDetectArmed = false;

  // Old-ring state is saved once per membership round (TOTEM.md 3.11-1).
  #oldRingStateSaved = false;
  #oldRingStateAru = 0;
  #oldRingStateHighSeqReceived = 0;
  #myReceivedFlg = true;
  #setRetransFlg = false;
  #retransFlgCount = 0;
  #installSeq = 0;
  #rotationCounter = 0;
  /** `nowMs` of recent accepted tokens (ring buffer), for `mttRxTokenMs`. */
  #tokenRxTimes: number[] = [];
  #tokenRxNext = 0;
  /**
   * Fast token retransmission (TOTEM.md 2.8, a denosync addition): smoothed
   * rotation time (ms, EWMA over accepted tokens; -1 until measured), the
   * `#now` of the last accepted token, and the delay of the next retransmit
   * of the token we forwarded (doubles per retransmit, reset on a token).
   */
  #rotationEwmaMs = -1;
  #lastTokenAcceptMs = -1;
  #tokenRetransmitDelayMs = 0;

  constructor(options: SrpOptions) {
    const { nodeId, nodes, config, rng, storedRingSeq } = options;
    assert(
      Number.isInteger(nodeId) && nodeId > 0 && nodeId <= 0xffff_ffff,
      "node id must be a non-zero u32",
    );
    this.nodeId = nodeId;
    this.#nodes = sortedSet(nodes);
    assert(
      this.#nodes.includes(nodeId),
      `node ${nodeId} missing from the nodelist`,
    );
    this.#config = config;
    this.#rng = rng;
    // Restart with the same node id (TOTEM.md 3.9): the stored seq is that
    // of the last committed ring; +1 makes our joins not stale and our
    // singleton ring id fresh even when we are the lowest id.
    // Without a stored ring sequence (first start or lost storage) this
    // node cannot know which ring ids it used before. Starting from the
    // boot time keeps a new ring from taking an id an earlier incarnation
    // used, whose delayed frames would otherwise pass as this ring's (CPG
    // sim sweep, seed 75): ring sequences grow by 4 per membership change,
    // far slower than 4 per millisecond.
    const seq = storedRingSeq === null
      ? 1 + 4 * Math.floor(Math.max(0, options.bootTimeMs ?? 0))
      : storedRingSeq + 1;
    this.#ringId = { rep: nodeId, seq };
    this.#oldRingId = this.#ringId;
    this.#tokenRingIdSeq = seq;
    this.#procSet = [nodeId];
    this.#syncBarrier = options.syncBarrier ?? false;
    const start = config.seqnoStart >>> 0;
    this.#regular = new SortQueue(start);
    this.#recovery = new SortQueue(start);
    this.#myAru = start;
    this.#myHighSeqReceived = start;
    this.#myHighDelivered = start;
    this.#myLastAru = start;
    this.#lastReleased = start;
    this.#safeUpTo = start;
    this.#myLastSeq = start;
  }

  /** Effective protocol parameters (TOTEM.md section 4). */
  get config(): TotemConfig {
    return this.#config;
  }

  /**
   * Replaces the timers and flow-control constants (configuration reload,
   * as Corosync's `totempg_put_config` of the volatile values). A timer
   * already armed keeps its old duration; the next arming uses the new
   * value, which is what Corosync does too. `netmtu`, the send queue size
   * and `seqnoStart` shape frames and queues that already exist, so they
   * must not change here.
   */
  reconfigure(config: TotemConfig): void {
    validateTotemConfig(config);
    assert(
      config.netmtu === this.#config.netmtu,
      `netmtu cannot change at runtime (${this.#config.netmtu} -> ${config.netmtu})`,
    );
    assert(
      config.sendQueueFramesMax === this.#config.sendQueueFramesMax,
      "the send queue size cannot change at runtime",
    );
    assert(
      config.seqnoStart === this.#config.seqnoStart,
      "seqnoStart cannot change at runtime",
    );
    this.#config = { ...config };
  }

  /** Current membership state. */
  get state(): SrpState {
    return this.#state;
  }

  /** Ring this node currently belongs to (or is forming). */
  get ringId(): RingId {
    return this.#ringId;
  }

  /** Members of the installed ring, ascending. */
  get members(): readonly NodeId[] {
    return this.#memb;
  }

  /** Application frames waiting for the token. */
  get sendQueueLength(): number {
    return this.#newMsgQueue.length;
  }

  /** Free slots in the sync send queue. */
  get syncQueueFree(): number {
    return this.config.sendQueueFramesMax - this.#transMsgQueue.length;
  }

  /** True while a sync barrier holds application frames back. */
  get waitingTransAck(): boolean {
    return this.#waitingTransAck;
  }

  /** Free slots in the send queue (senders get TRY_AGAIN at zero). */
  get sendQueueFree(): number {
    return this.config.sendQueueFramesMax - this.sendQueueLength;
  }

  /** The configured nodelist. */
  get nodes(): readonly NodeId[] {
    return this.#nodes;
  }

  /** True once `shutdown` was processed. */
  get stopped(): boolean {
    return this.#stopped;
  }

  /** Applies one event at `nowMs`. Never blocks, never does I/O. */
  step(event: SrpEvent, nowMs: number): SrpAction[] {
    this.#now = nowMs;
    const out: SrpAction[] = [];
    this.#out = out;
    if (this.#stopped) return out;
    switch (event.type) {
      case "start":
        assert(!this.#started, "start delivered twice");
        this.#started = true;
        this.#gatherEnter("start");
        break;
      case "frame":
        if (this.#started) this.#onFrame(event.bytes);
        break;
      case "timer":
        if (this.#started) this.#onTimer(event.timer);
        break;
      case "send":
        this.#onSend(event.payload, event.guarantee, event.sync === true);
        break;
      case "sync_done":
        this.#waitingTransAck = false;
        break;
      case "reachability":
        this.#onReachability(event.node, event.reachable);
        break;
      case "shutdown":
        this.#onShutdown();
        break;
      default:
        unreachable(event);
    }
    return out;
  }

  /** Replaces the configured nodelist (runtime reload). */
  setNodes(nodes: readonly NodeId[]): void {
    const next = sortedSet(nodes);
    assert(
      next.includes(this.nodeId),
      "the local node cannot be removed from the nodelist",
    );
    this.#nodes = next;
  }

  /**
   * Zeroes the counters (cmap `stats.clear.totem`, as Corosync's
   * `totemsrp_stats_clear`). `continuousGather` stays: it describes the
   * current membership round, not history, and drives the firewall warning.
   */
  clearStats(): void {
    const keep = this.stats.continuousGather;
    const s = this.stats as unknown as Record<string, number>;
    for (const key of Object.keys(s)) s[key] = 0;
    this.stats.continuousGather = keep;
    this.stats.lastTokenRxMs = -1;
    this.#tokenRxTimes = [];
    this.#tokenRxNext = 0;
  }

  // ---------------------------------------------------------------- outputs

  #emit(action: SrpAction): void {
    this.#out.push(action);
  }

  #arm(timer: TimerName, afterMs: number): void {
    if (timer === "token_retransmit") this.#tokenRetransmitDelayMs = afterMs;
    this.#emit({ type: "arm", timer, afterMs });
  }

  #cancel(timer: TimerName): void {
    this.#emit({ type: "cancel", timer });
  }

  #log(level: "debug" | "info" | "warn", message: string): void {
    this.#emit({ type: "log", level, message });
  }

  #setState(to: SrpState, reason: TransitionReason): void {
    const from = this.#state;
    this.#state = to;
    this.#emit({ type: "state", from, to, reason });
  }

  #transmitAll(bytes: Uint8Array): void {
    this.#emit({ type: "transmit", to: "all", bytes });
  }

  // ----------------------------------------------------------------- events

  #onFrame(bytes: Uint8Array): void {
    const decoded = decodeFrame(bytes);
    if (!decoded.ok) {
      this.stats.rejected++;
      this.#emit({ type: "rejected", reason: decoded.reason });
      return;
    }
    const msg = decoded.value;
    if (!this.#nodes.includes(msg.sender)) {
      this.stats.rejected++;
      this.#emit({ type: "rejected", reason: "not_member" });
      return;
    }
    // Heard from it directly: the link layer's "unreachable" is out of date
    // (a restarted node's join can beat its first heartbeat round trip).
    // Mcast and commit senders are not evidence: others forward those.
    if (
      this.#unreachable.size > 0 && msg.type !== "mcast" &&
      msg.type !== "commit"
    ) {
      this.#unreachable.delete(msg.sender);
    }
    switch (msg.type) {
      case "token":
        this.#onToken(msg);
        break;
      case "mcast":
        this.#onMcast(msg, bytes);
        break;
      case "join":
        this.stats.membJoinRx++;
        this.#onJoin(msg);
        break;
      case "commit":
        this.stats.membCommitTokenRx++;
        this.#onCommitToken(msg);
        break;
      case "merge_detect":
        this.stats.membMergeDetectRx++;
        this.#onMergeDetect(msg);
        break;
      case "token_hold_cancel":
        this.stats.tokenHoldCancelRx++;
        this.#onTokenHoldCancel(msg);
        break;
      default:
        unreachable(msg);
    }
  }

  #onTimer(timer: TimerName): void {
    switch (timer) {
      case "token":
        this.#onTokenTimeout();
        break;
      case "token_retransmit":
        if (this.#state !== "gather") {
          this.#tokenRetransmit();
          this.#arm("token_retransmit", this.#nextRetransmitDelay());
        }
        break;
      case "hold":
        if (this.#state !== "gather") this.#tokenRetransmit();
        break;
      case "join":
        if (this.#state === "gather") {
          this.#sendJoin();
          this.#arm("join", this.#joinDelay());
          this.#selfJoin();
        }
        break;
      case "consensus":
        if (this.#state === "gather") this.#consensusTimeoutExpired();
        break;
      case "merge_detect":
        this.#mergeDetectArmed = false;
        if (this.#state === "operational" && this.#ringId.rep === this.nodeId) {
          const msg: MergeDetectMsg = {
            type: "merge_detect",
            sender: this.nodeId,
            ringId: this.#ringId,
          };
          this.stats.membMergeDetectTx++;
          this.#transmitAll(encodeFrame(msg));
        }
        break;
      case "heartbeat":
        // Expiry of the heartbeat acts like token loss (TOTEM.md 2.8).
        this.#onTokenTimeout();
        break;
      default:
        unreachable(timer);
    }
  }

  #onSend(payload: Uint8Array, guarantee: Guarantee, sync: boolean): void {
    const queue = sync ? this.#transMsgQueue : this.#newMsgQueue;
    if (queue.length >= this.config.sendQueueFramesMax) {
      this.#emit({ type: "try_again" });
      return;
    }
    queue.push({ payload, guarantee });
    this.stats.mcastTx++;
    // Wake an idle ring (TOTEM.md 2.9): the rep holds the token, so ask it to
    // release it at once instead of waiting for the hold timer.
    if (this.#tokenHeld && this.#state === "operational") {
      if (this.#ringId.rep === this.nodeId) {
        this.#seqUnchanged = 0;
        this.#releaseHeldToken();
      } else {
        const msg: TokenHoldCancelMsg = {
          type: "token_hold_cancel",
          sender: this.nodeId,
          ringId: this.#ringId,
        };
        this.stats.tokenHoldCancelTx++;
        this.#transmitAll(encodeFrame(msg));
      }
    }
  }

  #onShutdown(): void {
    if (this.#started) {
      // Leave (TOTEM.md 3.8): a join without me in the proc set and with me
      // in the fail set lets the others re-form at once.
      const leave: JoinMsg = {
        type: "join",
        sender: this.nodeId,
        ringId: this.#ringId,
        leave: true,
        procSet: subtract(this.#procSet, [this.nodeId]),
        failSet: sortedSet([...this.#failSet, this.nodeId]),
      };
      const bytes = encodeFrame(leave);
      this.stats.membJoinTx += 2;
      this.#transmitAll(bytes);
      this.#transmitAll(bytes);
    }
    for (
      const t of [
        "token",
        "token_retransmit",
        "hold",
        "join",
        "consensus",
        "merge_detect",
        "heartbeat",
      ] as const
    ) this.#cancel(t);
    this.#stopped = true;
    this.#emit({
      type: "state",
      from: this.#state,
      to: this.#state,
      reason: "shutdown",
    });
  }

  // -------------------------------------------------------------- ordering

  #onMcast(msg: McastMsg, bytes: Uint8Array): void {
    if (!sameRing(msg.ringId, this.#ringId)) {
      this.#onForeign(msg.sender, msg.ringId, "foreign_message");
      return;
    }
    this.stats.mcastRx++;
    const queue = msg.encapsulated ? this.#recovery : this.#regular;
    if (queue.inRange(msg.seq) && !queue.has(msg.seq)) {
      queue.add(msg.seq, { msg, bytes });
      if (seqLt(this.#myHighSeqReceived, msg.seq)) {
        this.#myHighSeqReceived = msg.seq;
      }
    }
    this.#updateAru();
    if (this.#state === "operational") {
      this.#deliverToApp(false, this.#myHighSeqReceived);
    }
  }

  /** A message from another ring: merge (TOTEM.md 3.7). */
  #onForeign(sender: NodeId, ringId: RingId, reason: TransitionReason): void {
    // Deviation from Corosync: a late frame from an older ring of a node that
    // is in our current ring is stale, not a sign of another ring. Acting on
    // it would only cause a needless membership round.
    if (this.#memb.includes(sender) && ringId.seq < this.#ringId.seq) {
      this.stats.rxMsgDropped++;
      return;
    }
    switch (this.#state) {
      case "operational":
        this.#procSet = sortedSet([...this.#procSet, sender]);
        this.#gatherEnter(reason);
        break;
      case "gather":
        if (!this.#procSet.includes(sender)) {
          this.#procSet = sortedSet([...this.#procSet, sender]);
          this.#gatherEnter(reason);
        }
        break;
      case "commit":
      case "recovery":
        this.stats.rxMsgDropped++;
        break;
      default:
        unreachable(this.#state);
    }
  }

  #onMergeDetect(msg: MergeDetectMsg): void {
    if (sameRing(msg.ringId, this.#ringId)) return;
    this.#onForeign(msg.sender, msg.ringId, "merge_detect");
  }

  #onTokenHoldCancel(msg: TokenHoldCancelMsg): void {
    if (!sameRing(msg.ringId, this.#ringId)) return;
    this.#seqUnchanged = 0;
    if (this.#ringId.rep === this.nodeId && this.#state !== "gather") {
      this.#releaseHeldToken();
    }
  }

  #releaseHeldToken(): void {
    this.#tokenRetransmit();
    this.#arm("token_retransmit", this.config.tokenRetransmitMs);
  }

  #updateAru(): void {
    const queue = this.#state === "recovery" ? this.#recovery : this.#regular;
    let aru = this.#myAru;
    const range = (this.#myHighSeqReceived - aru) >>> 0;
    if (range >= SORT_QUEUE_SLOTS) return;
    for (let i = 0; i < range; i++) {
      const next = seqAdd(aru, 1);
      if (!queue.has(next)) break;
      aru = next;
    }
    this.#myAru = aru;
  }

  /**
   * Delivers regular-queue messages after `myHighDelivered` up to `end`.
   * `skip` (transitional delivery, TOTEM.md 3.6 step 5) passes over holes and
   * keeps only senders in `deliverMemb`. A safe message waits until it is
   * stable on the ring (every member holds it), and agreed order makes every
   * later message wait too.
   */
  #deliverToApp(skip: boolean, end: number, safeUpTo?: number): void {
    const range = (end - this.#myHighDelivered) >>> 0;
    if (range === 0 || range >= 0x8000_0000) return;
    assert(
      range < SORT_QUEUE_SLOTS,
      `delivery range ${range} exceeds the sort queue`,
    );
    const stable = safeUpTo ?? this.#safeUpTo;
    // Messages before the first hole are delivered whoever sent them; after
    // it only those of senders that stay with us (TOTEM.md 3.6 step 5).
    let holeSeen = false;
    for (let i = 0; i < range; i++) {
      const seq = seqAdd(this.#myHighDelivered, 1);
      if (!this.#regular.inRange(seq)) break;
      const item = this.#regular.get(seq);
      if (item === undefined) {
        if (!skip) break;
        holeSeen = true;
        this.#myHighDelivered = seq;
        continue;
      }
      const msg = item.msg;
      if (!skip && msg.guarantee === "safe" && !seqLte(seq, stable)) break;
      this.#myHighDelivered = seq;
      if (holeSeen && !this.#deliverMemb.includes(msg.sender)) continue;
      this.stats.ordersRx++;
      this.#emit({
        type: "deliver",
        from: msg.sender,
        ringId: msg.ringId,
        seq,
        guarantee: msg.guarantee,
        payload: msg.payload,
      });
    }
  }

  #onToken(token: TokenMsg): void {
    if (this.#orfTokenDiscard) return;
    this.stats.tokensRx++;
    this.stats.lastTokenRxMs = this.#now;

    // Merge detection and hold bookkeeping (TOTEM.md 2.4 step 2).
    if (token.seq === this.#myLastSeq) {
      if (!this.#mergeDetectArmed) {
        this.#mergeDetectArmed = true;
        this.#arm("merge_detect", this.config.mergeMs);
      }
      this.#seqUnchanged++;
    } else {
      if (this.#mergeDetectArmed) {
        this.#mergeDetectArmed = false;
        this.#cancel("merge_detect");
      }
      this.#cancel("hold");
      this.#seqUnchanged = 0;
    }
    this.#myLastSeq = token.seq;

    const isRep = this.#ringId.rep === this.nodeId;
    this.#tokenHeld = isRep
      ? this.#seqUnchanged > this.config.seqnoUnchangedConst
      : this.#seqUnchanged >= this.config.seqnoUnchangedConst;
    let forward = !(isRep && this.#tokenHeld);

    switch (this.#state) {
      case "commit":
      case "gather":
        return;
      case "operational":
      case "recovery":
        break;
      default:
        unreachable(this.#state);
    }
    if (!sameRing(token.ringId, this.#ringId)) {
      this.#heartbeatTouch(forward);
      return;
    }
    // Retransmitted or duplicated tokens carry a token seq we already passed.
    if (seqLte(token.tokenSeq, this.#myTokenSeq)) return;
    this.#sampleTokenRx();

    // Free only on an accepted token: a retransmitted copy carries the aru
    // of a visit already counted, and freeing on it would count that visit
    // twice and release frames a member still lacks (Corosync frees before
    // its duplicate filter).
    if (this.#state === "operational") this.#messagesFree(token.aru);
    const lastAru = this.#myLastAru;
    this.#myLastAru = token.aru;
    // Safe delivery (TOTEM.md 2.6): stable once seen in the token aru on two
    // successive visits. RECOVERY tokens count the new ring's seqs, which
    // say nothing about the old ring's messages still awaiting delivery.
    if (this.#state === "operational") {
      this.#safeUpTo = seqMin(lastAru, token.aru);
    }

    let allowed = this.#fccCalculate(token);
    const retransmitted = this.#tokenRtr(token, allowed);
    allowed -= retransmitted;
    if (
      this.config.cancelTokenHoldOnRetransmit && this.#tokenHeld &&
      (token.rtr.length > 0 || retransmitted > 0)
    ) {
      this.#tokenHeld = false;
      forward = true;
    }
    // Never overrun the sort-queue window (TOTEM.md 2.4 step 11).
    const check = SORT_QUEUE_SLOTS - (allowed + this.config.windowSize);
    assert(check >= 0, "window larger than the sort queue");
    if (seqLt(seqAdd(this.#lastReleased, check), token.seq)) allowed = 0;
    const sent = this.#tokenMcast(token, allowed);
    this.#fccTokenUpdate(token, retransmitted + sent);

    if (
      seqLt(this.#myAru, token.aru) || token.aruAddr === this.nodeId ||
      token.aruAddr === NO_NODE
    ) {
      token.aru = this.#myAru;
      token.aruAddr = token.aru === token.seq ? NO_NODE : this.nodeId;
    }
    if (token.aru === lastAru && token.aruAddr !== NO_NODE) {
      this.#aruCount++;
    } else {
      this.#aruCount = 0;
    }

    // fail_to_recv (TOTEM.md 3.10): the lagging node detects itself.
    if (
      this.#aruCount > this.config.failRecvConst &&
      token.aruAddr === this.nodeId
    ) {
      this.#log(
        "warn",
        "failed to receive: leaving the ring to let it make progress",
      );
      this.#failedToRecv = true;
      this.#failSet = sortedSet([...this.#failSet, this.nodeId]);
      this.#gatherEnter("fail_to_recv");
      return;
    }

    this.#myTokenSeq = token.tokenSeq;
    token.tokenSeq = seqAdd(token.tokenSeq, 1);
    if (this.#state === "recovery") this.#recoveryTokenBookkeeping(token);

    token.sender = this.nodeId;
    this.#tokenSend(token, forward);

    if (this.#state === "operational") {
      this.#deliverToApp(false, this.#myHighSeqReceived);
    }
    this.#arm("token", this.config.tokenMs);
    this.#arm("token_retransmit", this.#fastRetransmitDelay(forward));
    if (isRep && this.#tokenHeld) this.#arm("hold", this.config.holdMs);
    this.#heartbeatTouch(forward);
  }

  /**
   * Delay before retransmitting the token just forwarded. Corosync waits
   * `token_retransmit` (token / (retransmits_before_loss + 0.2), 238 ms at
   * token 1000) whatever the ring's speed, so one lost token stalls a busy
   * ring for that long. With `fastTokenRetransmitMinMs` > 0, a ring that is
   * moving (the token we forwarded is not held for lack of traffic) retries
   * after `fastTokenRetransmitFactor` smoothed rotations instead, never
   * below the minimum nor above `tokenRetransmitMs`. A retransmitted copy
   * that was not needed is a duplicate the receiver drops by token seq, so
   * this trades a few spare token frames for latency; token loss detection
   * (`tokenMs`) is unchanged.
   */
  #fastRetransmitDelay(forward: boolean): number {
    const c = this.config;
    if (
      c.fastTokenRetransmitMinMs <= 0 || !forward || this.#tokenHeld ||
      this.#rotationEwmaMs < 0
    ) return c.tokenRetransmitMs;
    const d = Math.ceil(c.fastTokenRetransmitFactor * this.#rotationEwmaMs);
    return Math.min(
      c.tokenRetransmitMs,
      Math.max(c.fastTokenRetransmitMinMs, d),
    );
  }

  /** Exponential backoff of further retransmits of the same token. */
  #nextRetransmitDelay(): number {
    const max = this.config.tokenRetransmitMs;
    const d = this.#tokenRetransmitDelayMs;
    this.#tokenRetransmitDelayMs = d > 0 && d < max
      ? Math.min(max, d * 2)
      : max;
    return this.#tokenRetransmitDelayMs;
  }

  /** One accepted token at `#now`: updates the mean rotation time. */
  #sampleTokenRx(): void {
    if (this.#lastTokenAcceptMs >= 0) {
      // Clip idle (held-token) rotations so one pause does not disable the
      // fast path for long once traffic resumes.
      const sample = Math.min(
        this.#now - this.#lastTokenAcceptMs,
        this.config.tokenRetransmitMs,
      );
      this.#rotationEwmaMs = this.#rotationEwmaMs < 0
        ? sample
        : this.#rotationEwmaMs + (sample - this.#rotationEwmaMs) / 8;
    }
    this.#lastTokenAcceptMs = this.#now;
    const times = this.#tokenRxTimes;
    if (times.length < TOKEN_RX_SAMPLES_MAX) times.push(this.#now);
    else times[this.#tokenRxNext] = this.#now;
    this.#tokenRxNext = (this.#tokenRxNext + 1) % TOKEN_RX_SAMPLES_MAX;
    if (times.length < 2) return;
    // The oldest sample is the one the next write replaces.
    const oldest = times.length < TOKEN_RX_SAMPLES_MAX
      ? times[0]
      : times[this.#tokenRxNext];
    this.stats.mttRxTokenMs = (this.#now - oldest) / (times.length - 1);
  }

  #heartbeatTouch(forward: boolean): void {
    if (this.config.heartbeatFailuresAllowed <= 0) return;
    const timeoutMs =
      this.config.heartbeatFailuresAllowed * this.config.tokenRetransmitMs +
      this.config.maxNetworkDelayMs;
    if (timeoutMs >= this.config.tokenMs) return;
    if (forward) this.#arm("heartbeat", timeoutMs);
    else this.#cancel("heartbeat");
  }

  #recoveryTokenBookkeeping(token: TokenMsg): void {
    const retransPending = this.#retransHead < this.#retransQueue.length;
    if (retransPending) {
      if (!token.retransFlg) {
        token.retransFlg = true;
        this.#setRetransFlg = true;
      }
    } else if (token.retransFlg && this.#setRetransFlg) {
      token.retransFlg = false;
      this.#setRetransFlg = false;
    }
    this.#retransFlgCount = token.retransFlg ? 0 : this.#retransFlgCount + 1;
    if (this.#retransFlgCount === 2) this.#installSeq = token.seq;
    if (
      this.#retransFlgCount >= 2 && !this.#myReceivedFlg &&
      seqLte(this.#installSeq, this.#myAru)
    ) {
      this.#myReceivedFlg = true;
      this.#deliverMemb = this.#transMemb;
    }
    if (this.#retransFlgCount >= 3 && seqLte(this.#installSeq, token.aru)) {
      this.#rotationCounter++;
    } else {
      this.#rotationCounter = 0;
    }
    if (this.#rotationCounter === 2) {
      this.#operationalEnter();
      this.#rotationCounter = 0;
      this.#retransFlgCount = 0;
    }
  }

  /** Frees frames every member has (TOTEM.md 2.7). */
  #messagesFree(tokenAru: number): void {
    let releaseTo = tokenAru;
    if (seqLt(this.#myLastAru, releaseTo)) releaseTo = this.#myLastAru;
    if (seqLt(this.#myHighDelivered, releaseTo)) {
      releaseTo = this.#myHighDelivered;
    }
    if (seqLte(releaseTo, this.#lastReleased)) return;
    this.#regular.releaseTo(releaseTo);
    this.#lastReleased = releaseTo;
  }

  #fccCalculate(token: TokenMsg): number {
    let allowed = Math.min(
      this.config.maxMessages,
      Math.max(0, this.config.windowSize - token.fcc),
    );
    this.#myCbl = this.#backlog();
    const denom = token.backlog + this.#myCbl - this.#myPbl;
    if (denom > 0) {
      const share = Math.floor((this.config.windowSize * this.#myPbl) / denom);
      if (share > 0 && allowed > share) allowed = share;
    }
    return allowed;
  }

  #fccTokenUpdate(token: TokenMsg, transmitted: number): void {
    token.fcc = Math.max(0, token.fcc + transmitted - this.#myTrc);
    token.backlog = Math.max(0, token.backlog + this.#myCbl - this.#myPbl);
    this.#myTrc = transmitted;
    this.#myPbl = this.#myCbl;
  }

  #backlog(): number {
    if (this.#state === "recovery") {
      return this.#retransQueue.length - this.#retransHead;
    }
    return this.#waitingTransAck
      ? this.#transMsgQueue.length
      : this.#transMsgQueue.length + this.#newMsgQueue.length;
  }

  /** Answers retransmission requests, then adds our own (TOTEM.md 2.4 9-10). */
  #tokenRtr(token: TokenMsg, allowed: number): number {
    const queue = this.#state === "recovery" ? this.#recovery : this.#regular;
    let done = 0;
    if (token.rtr.length > 0) {
      const kept: RtrEntry[] = [];
      for (const entry of token.rtr) {
        if (done < allowed && sameRing(entry.ringId, this.#ringId)) {
          const item = queue.get(entry.seq);
          if (item !== undefined) {
            this.#transmitAll(item.bytes);
            this.stats.mcastRetx++;
            done++;
            continue;
          }
        }
        kept.push(entry);
      }
      token.rtr = kept;
    }
    const range = (token.seq - this.#myAru) >>> 0;
    if (range >= 0x8000_0000) return done;
    assert(
      range < SORT_QUEUE_SLOTS,
      `token seq ${token.seq} too far above aru ${this.#myAru}`,
    );
    for (let i = 1; token.rtr.length < RTR_ENTRIES_MAX && i <= range; i++) {
      const seq = seqAdd(this.#myAru, i);
      if (!queue.inRange(seq)) break;
      if (queue.has(seq)) continue;
      if (queue.bumpMiss(seq) < this.config.missCountConst) continue;
      if (
        token.rtr.some((e) => e.seq === seq && sameRing(e.ringId, this.#ringId))
      ) {
        continue;
      }
      token.rtr.push({ ringId: this.#ringId, seq });
    }
    return done;
  }

  /** Broadcasts new frames with fresh seqs (TOTEM.md 2.4 step 12). */
  #tokenMcast(token: TokenMsg, allowed: number): number {
    const recovering = this.#state === "recovery";
    const queue = recovering ? this.#recovery : this.#regular;
    let sent = 0;
    while (sent < allowed) {
      let msg: McastMsg;
      if (recovering) {
        if (this.#retransHead >= this.#retransQueue.length) break;
        msg = this.#retransQueue[this.#retransHead++];
        msg.ringId = this.#ringId;
      } else {
        // Sync frames first; application frames only once sync is done.
        const pending = this.#transMsgQueue.shift() ??
          (this.#waitingTransAck ? undefined : this.#newMsgQueue.shift());
        if (pending === undefined) break;
        msg = {
          type: "mcast",
          sender: this.nodeId,
          ringId: this.#ringId,
          seq: 0,
          encapsulated: false,
          guarantee: pending.guarantee,
          payload: pending.payload,
        };
      }
      token.seq = seqAdd(token.seq, 1);
      msg.seq = token.seq;
      const bytes = encodeFrame(msg);
      queue.add(msg.seq, { msg, bytes });
      this.#transmitAll(bytes);
      this.#myHighSeqReceived = token.seq;
      this.stats.ordersTx++;
      sent++;
    }
    this.#compactQueues();
    this.#updateAru();
    return sent;
  }

  #compactQueues(): void {
    if (
      this.#retransHead === this.#retransQueue.length && this.#retransHead > 0
    ) {
      this.#retransQueue = [];
      this.#retransHead = 0;
    }
  }

  #successor(members: readonly NodeId[]): NodeId {
    const i = members.indexOf(this.nodeId);
    assert(i >= 0, "token target asked outside the ring");
    return members[(i + 1) % members.length];
  }

  /** Sends the token on, keeping a copy for retransmission (TOTEM.md 2.8). */
  #tokenSend(token: TokenMsg, forward: boolean): void {
    const members = this.#state === "operational" ? this.#memb : this.#newMemb;
    const to = this.#successor(members);
    const bytes = encodeFrame(token);
    this.#savedToken = { to, bytes };
    if (forward) {
      this.stats.tokensTx++;
      this.#emit({ type: "transmit", to, bytes });
    }
  }

  #tokenRetransmit(): void {
    if (this.#savedToken === null) return;
    this.stats.tokensTx++;
    this.stats.tokenRetransmits++;
    this.#emit({
      type: "transmit",
      to: this.#savedToken.to,
      bytes: this.#savedToken.bytes,
    });
  }

  #onTokenTimeout(): void {
    switch (this.#state) {
      case "operational":
        this.stats.operationalTokenLost++;
        this.#log(
          "info",
          `token lost in OPERATIONAL on ring ${ringIdText(this.#ringId)}`,
        );
        this.#gatherEnter("token_lost");
        break;
      case "gather":
        this.stats.gatherTokenLost++;
        this.#consensusTimeoutExpired();
        break;
      case "commit":
        this.stats.commitTokenLost++;
        this.#log("info", "token lost in COMMIT");
        this.#gatherEnter("token_lost");
        break;
      case "recovery":
        this.stats.recoveryTokenLost++;
        this.#log("info", "token lost in RECOVERY");
        this.#recoveryTokenLoss("token_lost");
        break;
      default:
        unreachable(this.#state);
    }
  }

  #recoveryTokenLoss(reason: TransitionReason): void {
    this.#restoreOldRingState();
    this.#gatherEnter(reason);
  }

  /** Leaves a failed RECOVERY with the old ring's state (TOTEM.md 3.11-1). */
  #restoreOldRingState(): void {
    // Keep the old-ring frames this failed recovery brought us. Corosync
    // drops them with the recovery queue; but a member that completed the
    // recovery may already have installed the new ring and delivered them
    // there, so we must be able to deliver them in our own transition.
    this.#unwrapRecovered(this.#myHighSeqReceived);
    // Restore the old ring's counters so the next attempt recovers against
    // the original ring.
    this.#myAru = this.#oldRingStateAru;
    this.#myHighSeqReceived = this.#oldRingStateHighSeqReceived;
  }

  /**
   * Whether a join abandons the ring being committed or recovered: it comes
   * from a member of that ring, and is of this round (TOTEM.md 3.3) — or it
   * fails me. Deviation from Corosync: a member that failed me will never
   * pass the commit token on, however old its ring seq (one-way links,
   * TOTEM.md 9.3-4); waiting for the token timeout would only let it pull
   * the others into another round without me.
   */
  #joinAbortsNewRing(join: JoinMsg): boolean {
    if (!this.#newMemb.includes(join.sender)) return false;
    return join.ringId.seq >= this.#ringId.seq ||
      (!join.leave && join.failSet.includes(this.nodeId));
  }

  /**
   * Moves encapsulated frames of my old ring, held in the recovery queue up
   * to `to`, into the old regular queue at their old seqs, and raises the
   * saved old-ring aru and high seq accordingly.
   */
  #unwrapRecovered(to: number): void {
    const start = this.config.seqnoStart >>> 0;
    const range = (to - start) >>> 0;
    if (range >= 0x8000_0000) return;
    for (let i = 1; i <= range; i++) {
      const item = this.#recovery.get(seqAdd(start, i));
      if (item === undefined || !item.msg.encapsulated) continue;
      const inner = decodeFrame(item.msg.payload);
      if (!inner.ok || inner.value.type !== "mcast") {
        this.stats.rxMsgDropped++;
        continue;
      }
      const old = inner.value;
      if (!sameRing(old.ringId, this.#oldRingId)) continue;
      if (this.#regular.inRange(old.seq) && !this.#regular.has(old.seq)) {
        this.#regular.add(old.seq, { msg: old, bytes: item.msg.payload });
        if (seqLt(this.#oldRingStateHighSeqReceived, old.seq)) {
          this.#oldRingStateHighSeqReceived = old.seq;
        }
      }
    }
    let aru = this.#oldRingStateAru;
    while (
      aru !== this.#oldRingStateHighSeqReceived &&
      this.#regular.has(seqAdd(aru, 1))
    ) {
      aru = seqAdd(aru, 1);
    }
    this.#oldRingStateAru = aru;
  }

  // ------------------------------------------------------------ membership

  #joinDelay(): number {
    const jitter = this.config.sendJoinMs > 0
      ? this.#rng.int(this.config.sendJoinMs)
      : 0;
    return this.config.joinMs + jitter;
  }

  #sendJoin(): void {
    const join: JoinMsg = {
      type: "join",
      sender: this.nodeId,
      ringId: this.#ringId,
      leave: false,
      procSet: this.#procSet,
      failSet: this.#failSet,
    };
    this.stats.membJoinTx++;
    this.#transmitAll(encodeFrame(join));
  }

  #gatherEnter(reason: TransitionReason): void {
    this.#lastTokenAcceptMs = -1;
    this.#orfTokenDiscard = true;
    this.#originatedOrfToken = false;
    if (!this.#procSet.includes(this.nodeId)) {
      this.#procSet = sortedSet([...this.#procSet, this.nodeId]);
    }
    // A new round: nobody has agreed yet, so every unreachable member goes.
    this.#failUnreachable(this.#procSet.filter((id) => id !== this.nodeId));
    this.#sendJoin();
    this.#arm("join", this.#joinDelay());
    this.#arm("consensus", this.config.consensusMs);
    this.#cancel("token_retransmit");
    this.#cancel("token");
    this.#cancel("hold");
    this.#cancel("heartbeat");
    if (this.#mergeDetectArmed) {
      this.#mergeDetectArmed = false;
      this.#cancel("merge_detect");
    }
    this.#consensus.clear();
    this.#consensus.add(this.nodeId);
    // The reason a ring changed is what made us leave OPERATIONAL; a clean
    // leave seen later in the round is the better explanation for logs.
    if (this.#state === "operational" || reason === "node_left") {
      this.#gatherReason = reason;
    }
    this.stats.gatherEntered++;
    if (reason === "consensus_timeout") {
      this.stats.continuousGather++;
      if (this.stats.continuousGather === MAX_NO_CONT_GATHER + 1) {
        this.#log(
          "warn",
          "membership keeps failing to form: check the firewall and the network interface",
        );
      }
    }
    if (this.#state !== "gather" || reason !== "join") {
      this.#setState("gather", reason);
    }
    this.#selfJoin();
  }

  /**
   * Corosync receives its own join through the network loopback; that is
   * what lets a node whose candidate set is itself alone form a singleton
   * ring. We do not loop our multicasts back, so process it here.
   */
  #selfJoin(): void {
    if (this.#state === "gather") this.#commitIfAgreed();
  }

  /**
   * On full consensus the lowest candidate creates the commit token; a node
   * that failed to receive forms its singleton ring instead (TOTEM.md
   * 3.10). True when a commit token was created.
   */
  #commitIfAgreed(): boolean {
    if (!this.#consensusAgreed()) return false;
    if (this.#failedToRecv) {
      this.#failedToRecv = false;
      this.#procSet = [this.nodeId];
      this.#failSet = [];
    } else if (!this.#lowestInConfig()) {
      return false;
    }
    this.#commitTokenCreate();
    return true;
  }

  #consensusAgreed(): boolean {
    const candidates = subtract(this.#procSet, this.#failSet);
    for (const id of candidates) if (!this.#consensus.has(id)) return false;
    return true;
  }

  #consensusTimeoutExpired(): void {
    this.stats.consensusTimeouts++;
    if (this.#consensusAgreed()) {
      // Agreement but no commit token yet is not a failure (TOTEM.md 3.11-2).
      this.#consensus.clear();
      this.#consensus.add(this.nodeId);
      this.#arm("token", this.config.tokenMs);
      this.#gatherEnter("consensus_timeout");
      return;
    }
    const silent = this.#procSet.filter((id) => !this.#consensus.has(id));
    this.#failSet = sortedSet([...this.#failSet, ...silent]);
    this.#gatherEnter("consensus_timeout");
  }

  #onReachability(node: NodeId, reachable: boolean): void {
    if (node === this.nodeId) return;
    if (reachable) {
      this.#unreachable.delete(node);
      return;
    }
    this.#unreachable.add(node);
    if (!this.#started || this.#stopped || this.#state !== "gather") return;
    // Mid-round: a member whose join already arrived stays (it agreed).
    if (this.#consensus.has(node)) return;
    if (this.#failUnreachable([node])) this.#gatherEnter("unreachable");
  }

  /**
   * Adds the `candidates` the link layer reports unreachable to the fail
   * set instead of waiting for the consensus timeout to find them silent
   * (`TotemConfig.unreachableFailsFast`). True when the fail set grew.
   */
  #failUnreachable(candidates: readonly NodeId[]): boolean {
    if (!this.config.unreachableFailsFast || this.#unreachable.size === 0) {
      return false;
    }
    const gone = candidates.filter((id) =>
      this.#unreachable.has(id) && this.#procSet.includes(id) &&
      !this.#failSet.includes(id)
    );
    if (gone.length === 0) return false;
    assert(!gone.includes(this.nodeId), "never fail myself as unreachable");
    this.#log(
      "info",
      `failing unreachable node(s) ${
        gone.join(" ")
      } at once: every link to them is down`,
    );
    this.#failSet = sortedSet([...this.#failSet, ...gone]);
    this.stats.unreachableFailed += gone.length;
    return true;
  }

  #onJoin(join: JoinMsg): void {
    if (join.sender === this.nodeId) return;
    if (join.ringId.seq > this.#tokenRingIdSeq) {
      this.#tokenRingIdSeq = join.ringId.seq;
    }
    switch (this.#state) {
      case "operational":
        // Stale joins (TOTEM.md 3.11-3): from a node that failed me, or from
        // a member of my ring still talking about an older round.
        if (join.failSet.includes(this.nodeId) && !join.leave) return;
        if (
          this.#memb.includes(join.sender) && join.ringId.seq < this.#ringId.seq
        ) return;
        this.#joinProcess(join);
        break;
      case "gather":
        this.#joinProcess(join);
        break;
      case "commit":
        if (this.#joinAbortsNewRing(join)) {
          this.#joinProcess(join);
          if (this.#state === "commit") this.#gatherEnter("join");
        }
        break;
      case "recovery":
        if (this.#joinAbortsNewRing(join)) {
          // Restore first: the join may complete a new consensus at once,
          // and the next commit must recover against the original ring.
          this.#restoreOldRingState();
          if (sameRing(join.ringId, this.#ringId)) {
            // Its sender installed the ring we were recovering and moved
            // on: take the sets installation gives (TOTEM.md 3.6 step 7)
            // instead of keeping the previous round's fail set, which would
            // have the other members fail us again and again (a livelock
            // the CPG simulation found at 5 nodes).
            this.#procSet = [...this.#newMemb];
            this.#failSet = [];
          }
          this.#joinProcess(join);
          if (this.#state === "recovery") this.#gatherEnter("join");
        }
        break;
      default:
        unreachable(this.#state);
    }
  }

  /** `memb_join_process` (TOTEM.md 3.3). */
  #joinProcess(join: JoinMsg): void {
    let gatherEntered = false;
    if (
      setEqual(join.procSet, this.#procSet) &&
      setEqual(join.failSet, this.#failSet)
    ) {
      if (!join.leave) this.#consensus.add(join.sender);
      if (this.#commitIfAgreed()) return;
    } else if (
      isSubset(join.procSet, this.#procSet) &&
      isSubset(join.failSet, this.#failSet)
    ) {
      // Nothing new in it.
    } else if (this.#failSet.includes(join.sender)) {
      // Joins from nodes I failed cannot change my sets.
    } else {
      const procBefore = this.#procSet;
      const failBefore = this.#failSet;
      this.#procSet = sortedSet([...this.#procSet, ...join.procSet]);
      if (join.failSet.includes(this.nodeId)) {
        // Symmetric exclusion: two sides that cannot talk end in disjoint
        // rings instead of fighting.
        this.#failSet = sortedSet([...this.#failSet, join.sender]);
      } else if (this.#memb.includes(join.sender)) {
        // Only members of my ring may make me fail somebody.
        this.#failSet = sortedSet([...this.#failSet, ...join.failSet]);
      }
      // Deviation from Corosync: re-enter GATHER (and announce) only when
      // our sets changed. Answering every join that cannot change them makes
      // nodes with irreconcilable views echo joins at network speed (a storm
      // that also keeps restarting the consensus timer that would end it).
      if (
        !setEqual(procBefore, this.#procSet) ||
        !setEqual(failBefore, this.#failSet)
      ) {
        this.#gatherEnter(join.leave ? "node_left" : "join");
        gatherEntered = true;
      }
    }
    if (!gatherEntered && this.#state === "operational") {
      this.#gatherEnter(join.leave ? "node_left" : "join");
    }
  }

  #lowestInConfig(): boolean {
    const candidates = subtract(this.#procSet, this.#failSet);
    return candidates.length > 0 && candidates[0] === this.nodeId;
  }

  #commitTokenCreate(): void {
    const members = subtract(this.#procSet, this.#failSet);
    assert(members.includes(this.nodeId), "commit token without its creator");
    const token: CommitTokenMsg = {
      type: "commit",
      sender: this.nodeId,
      ringId: { rep: this.nodeId, seq: this.#tokenRingIdSeq + 4 },
      tokenSeq: 0,
      retransFlg: false,
      membIndex: 0,
      members,
      entries: members.map(() => ({
        oldRingId: { rep: 0, seq: 0 },
        aru: 0,
        highDelivered: 0,
        receivedFlg: false,
      })),
    };
    this.#log(
      "debug",
      `creating commit token for ring ${ringIdText(token.ringId)}`,
    );
    this.#commitEnter(token);
  }

  #onCommitToken(token: CommitTokenMsg): void {
    switch (this.#state) {
      case "operational":
        return;
      case "gather": {
        const candidates = subtract(this.#procSet, this.#failSet);
        if (
          setEqual(token.members, candidates) &&
          token.ringId.seq > this.#ringId.seq &&
          // A late copy from the second rotation (index n), or one meant
          // for another member, is not ours to fill.
          token.membIndex < token.members.length &&
          token.members[token.membIndex] === this.nodeId
        ) {
          this.#commitEnter(token);
        }
        return;
      }
      case "commit":
        // Retransmitted first-rotation tokens are filtered by memb_index.
        if (
          token.ringId.seq === this.#ringId.seq &&
          sameRing(token.ringId, this.#ringId) &&
          token.membIndex === token.members.length
        ) {
          this.#recoveryEnter(token);
        }
        return;
      case "recovery":
        if (
          sameRing(token.ringId, this.#ringId) &&
          this.#newMemb[0] === this.nodeId &&
          !this.#originatedOrfToken
        ) {
          this.#originatedOrfToken = true;
          this.#orfTokenSendInitial();
          this.#arm("token", this.config.tokenMs);
          this.#arm("token_retransmit", this.config.tokenRetransmitMs);
        }
        return;
      default:
        unreachable(this.#state);
    }
  }

  /** `memb_state_commit_enter` (TOTEM.md 3.4). */
  #commitEnter(token: CommitTokenMsg): void {
    if (!this.#oldRingStateSaved) {
      this.#oldRingStateSaved = true;
      this.#oldRingStateAru = this.#myAru;
      this.#oldRingStateHighSeqReceived = this.#myHighSeqReceived;
    }
    const n = token.members.length;
    const index = token.membIndex;
    assert(index < n, "commit token already complete");
    assert(
      token.members[index] === this.nodeId,
      "commit token reached the wrong member",
    );
    this.#newMemb = [...token.members];
    const entries: CommitEntry[] = token.entries.map((e) => ({ ...e }));
    this.#myReceivedFlg =
      this.#oldRingStateAru === this.#oldRingStateHighSeqReceived;
    entries[index] = {
      oldRingId: this.#oldRingId,
      aru: this.#oldRingStateAru,
      highDelivered: this.#myHighDelivered,
      receivedFlg: this.#myReceivedFlg,
    };
    // Members of my old ring below its highest aru miss messages that
    // others hold (TOTEM.md 3.4).
    let highAru = this.#oldRingStateAru;
    for (let i = 0; i <= index; i++) {
      if (
        sameRing(entries[i].oldRingId, this.#oldRingId) &&
        seqLt(highAru, entries[i].aru)
      ) {
        highAru = entries[i].aru;
      }
    }
    for (let i = 0; i <= index; i++) {
      if (
        sameRing(entries[i].oldRingId, this.#oldRingId) &&
        seqLt(entries[i].aru, highAru)
      ) {
        entries[i].receivedFlg = false;
        if (i === index) this.#myReceivedFlg = false;
      }
    }
    const next: CommitTokenMsg = {
      ...token,
      sender: this.nodeId,
      membIndex: index + 1,
      entries,
      members: this.#newMemb,
    };
    this.#ringId = next.ringId;
    this.#tokenRingIdSeq = next.ringId.seq;
    // Durable before the commit token leaves (TOTEM.md 9.1 S4).
    this.#emit({ type: "persist_ring_seq", ringSeq: next.ringId.seq });
    this.#cancel("join");
    this.#cancel("consensus");
    const to = this.#newMemb[(index + 1) % n];
    const bytes = encodeFrame(next);
    this.#savedToken = { to, bytes };
    this.stats.membCommitTokenTx++;
    this.#emit({ type: "transmit", to, bytes });
    this.stats.commitEntered++;
    this.#setState("commit", "commit_token");
    this.#arm("token", this.config.tokenMs);
    this.#arm("token_retransmit", this.config.tokenRetransmitMs);
  }

  /** `memb_state_recovery_enter` (TOTEM.md 3.5). */
  #recoveryEnter(token: CommitTokenMsg): void {
    const n = token.members.length;
    this.#orfTokenDiscard = false;
    this.#recovery.reinit(this.config.seqnoStart);
    this.#retransQueue = [];
    this.#retransHead = 0;

    // Second rotation: forward the completed commit token.
    const forwarded: CommitTokenMsg = {
      ...token,
      sender: this.nodeId,
      tokenSeq: seqAdd(token.tokenSeq, 1),
    };
    const to = this.#successor(this.#newMemb);
    const bytes = encodeFrame(forwarded);
    this.#savedToken = { to, bytes };
    this.stats.membCommitTokenTx++;
    this.#emit({ type: "transmit", to, bytes });
    this.#myTokenSeq = seqAdd(this.config.seqnoStart, -1);

    // Transitional membership: new members that were in my old ring with
    // the same old ring id.
    this.#transMemb = token.members.filter((id, i) =>
      this.#memb.includes(id) &&
      sameRing(token.entries[i].oldRingId, this.#oldRingId)
    );
    this.#deliverMemb = this.#transMemb;
    let needRecovery = false;
    for (let i = 0; i < n; i++) {
      if (
        this.#transMemb.includes(token.members[i]) &&
        !token.entries[i].receivedFlg
      ) {
        needRecovery = true;
        break;
      }
    }
    let originated = 0;
    if (needRecovery) {
      let lowRingAru = this.#oldRingStateHighSeqReceived;
      for (let i = 0; i < n; i++) {
        const e = token.entries[i];
        if (
          this.#deliverMemb.includes(token.members[i]) &&
          sameRing(e.oldRingId, this.#oldRingId) && seqLt(e.aru, lowRingAru)
        ) {
          lowRingAru = e.aru;
        }
      }
      const range = (this.#oldRingStateHighSeqReceived - lowRingAru) >>> 0;
      assert(
        range < SORT_QUEUE_SLOTS,
        `recovery range ${range} exceeds the sort queue`,
      );
      for (let i = 1; i <= range; i++) {
        const item = this.#regular.get(seqAdd(lowRingAru, i));
        if (item === undefined) continue;
        this.#retransQueue.push({
          type: "mcast",
          sender: this.nodeId,
          ringId: this.#ringId,
          seq: 0,
          encapsulated: true,
          guarantee: "agreed",
          payload: item.bytes,
        });
        originated++;
      }
    }
    this.#log(
      "debug",
      `entering RECOVERY for ring ${
        ringIdText(this.#ringId)
      }: ${originated} old-ring messages to re-send; ` +
        token.members.map((m, i) => {
          const e = token.entries[i];
          return `${m}: old ${
            ringIdText(e.oldRingId)
          } aru ${e.aru} delivered ${e.highDelivered} ${
            e.receivedFlg ? "complete" : "missing"
          }`;
        }).join(", "),
    );
    const start = this.config.seqnoStart >>> 0;
    this.#myAru = start;
    this.#aruCount = 0;
    this.#seqUnchanged = 0;
    this.#myHighSeqReceived = start;
    this.#installSeq = start;
    this.#lastReleased = start;
    this.#setRetransFlg = false;
    this.#retransFlgCount = 0;
    this.#rotationCounter = 0;
    this.#myTrc = 0;
    this.#myPbl = 0;
    this.#myCbl = 0;
    this.stats.recoveryEntered++;
    this.#setState("recovery", "commit_token");
    this.#arm("token", this.config.tokenMs);
    this.#arm("token_retransmit", this.config.tokenRetransmitMs);
  }

  #orfTokenSendInitial(): void {
    const start = this.config.seqnoStart >>> 0;
    const retransPending = this.#retransHead < this.#retransQueue.length;
    this.#setRetransFlg = retransPending;
    const token: TokenMsg = {
      type: "token",
      sender: this.nodeId,
      ringId: this.#ringId,
      tokenSeq: start,
      seq: start,
      aru: seqAdd(start, -1),
      aruAddr: this.nodeId,
      fcc: 0,
      backlog: 0,
      retransFlg: retransPending,
      rtr: [],
    };
    this.#tokenSend(token, true);
  }

  /** `memb_state_operational_enter` (TOTEM.md 3.6). */
  #operationalEnter(): void {
    this.#consensus.clear();
    this.#oldRingStateSaved = false;

    // 1. Unwrap recovered old-ring frames into the old regular queue.
    this.#unwrapRecovered(this.#myAru);
    const oldHigh = this.#oldRingStateHighSeqReceived;

    this.#log(
      "debug",
      `installing ring ${ringIdText(this.#ringId)}: old ring ${
        ringIdText(this.#oldRingId)
      } ` +
        `aru ${this.#oldRingStateAru} high ${oldHigh} delivered ${this.#myHighDelivered} ` +
        `safe ${this.#safeUpTo} trans [${this.#transMemb}]`,
    );
    // 2. Old-ring messages deliverable without holes, still in the old
    // regular configuration. Safe ones wait unless known stable.
    this.#deliverToApp(false, oldHigh);

    // 3. Transitional configuration.
    const left = subtract(this.#memb, this.#transMemb);
    const joined = subtract(this.#newMemb, this.#transMemb);
    const reason = this.#gatherReason;
    this.#emitConfChg({
      kind: "transitional",
      ringId: this.#ringId,
      members: this.#transMemb,
      left,
      joined: [],
    }, reason);

    // 4. Application frames wait for service sync above us (TOTEM.md 8.1).
    if (this.#syncBarrier) this.#waitingTransAck = true;

    // 5. The rest of the old ring's messages, skipping holes, and after a
    // hole only from senders that stay with us. Every transitional member
    // holds the same set after recovery, so safe messages are safe here.
    this.#deliverToApp(true, oldHigh);

    // 6. Regular configuration.
    this.#memb = [...this.#newMemb];
    this.#emitConfChg({
      kind: "regular",
      ringId: this.#ringId,
      members: this.#memb,
      left: [],
      joined,
    }, reason);

    // 7. The recovery queue becomes the regular queue.
    const swap = this.#regular;
    this.#regular = this.#recovery;
    this.#recovery = swap;
    this.#recovery.reinit(this.config.seqnoStart);
    this.#lastReleased = this.#regular.base;
    this.#myLastAru = this.config.seqnoStart >>> 0;
    this.#safeUpTo = this.#myLastAru;
    this.#myHighDelivered = this.#myHighSeqReceived;
    this.#procSet = [...this.#memb];
    this.#failSet = [];
    this.#oldRingId = this.#ringId;
    this.#myReceivedFlg = true;
    this.stats.operationalEntered++;
    this.stats.continuousGather = 0;
    this.#setState("operational", "recovery_done");
  }

  #emitConfChg(change: ConfChange, reason: TransitionReason): void {
    this.#emit({ type: "confchg", change, reason });
  }
}
