/**
 * Types shared by the Totem SRP core, its wire codec and its drivers (the
 * daemon and the simulator). The core consumes `SrpEvent`s and produces
 * `SrpAction`s; nothing here does I/O.
 */

/** A processor's identity: a non-zero u32 from the configuration. */
export type NodeId = number;

/**
 * Ring identifier (TOTEM.md 1.2): the representative (lowest member id) and a
 * sequence number that strictly increases at every node. Kept as a JS number:
 * rings advance by 4, so 2^53 is never reached; the codec rejects larger.
 */
export interface RingId {
  readonly rep: NodeId;
  readonly seq: number;
}

/** Delivery guarantee requested by the sender (TOTEM.md 2.6). */
export type Guarantee = "agreed" | "safe";

/** One retransmission request carried by the token. */
export interface RtrEntry {
  readonly ringId: RingId;
  readonly seq: number;
}

/** Regular (ORF) token, TOTEM.md 2.2. */
export interface TokenMsg {
  readonly type: "token";
  sender: NodeId;
  ringId: RingId;
  tokenSeq: number;
  seq: number;
  aru: number;
  aruAddr: NodeId;
  fcc: number;
  backlog: number;
  retransFlg: boolean;
  rtr: RtrEntry[];
}

/**
 * Ordered multicast. `encapsulated` frames are RECOVERY re-broadcasts whose
 * payload is a complete encoded old-ring mcast frame.
 */
export interface McastMsg {
  readonly type: "mcast";
  sender: NodeId;
  ringId: RingId;
  seq: number;
  encapsulated: boolean;
  guarantee: Guarantee;
  payload: Uint8Array;
}

/**
 * Membership join (TOTEM.md 3.3). `ringId` is the sender's current ring;
 * its seq is the join's `ring_seq`. A leave (3.8) is a join with `leave`.
 */
export interface JoinMsg {
  readonly type: "join";
  sender: NodeId;
  ringId: RingId;
  leave: boolean;
  procSet: NodeId[];
  failSet: NodeId[];
}

/** One member's slot in the commit token (TOTEM.md 3.4). */
export interface CommitEntry {
  oldRingId: RingId;
  aru: number;
  highDelivered: number;
  receivedFlg: boolean;
}

/** Commit token: rotates twice around the new ring before it is installed. */
export interface CommitTokenMsg {
  readonly type: "commit";
  sender: NodeId;
  ringId: RingId;
  tokenSeq: number;
  retransFlg: boolean;
  membIndex: number;
  members: NodeId[];
  /** Same length as `members`; unfilled entries have `oldRingId.rep === 0`. */
  entries: CommitEntry[];
}

/** Sent by an idle ring's representative to find other rings (TOTEM.md 3.7). */
export interface MergeDetectMsg {
  readonly type: "merge_detect";
  sender: NodeId;
  ringId: RingId;
}

/** Asks the representative to release a held token (TOTEM.md 2.9). */
export interface TokenHoldCancelMsg {
  readonly type: "token_hold_cancel";
  sender: NodeId;
  ringId: RingId;
}

/** Every Totem message. */
export type TotemMsg =
  | TokenMsg
  | McastMsg
  | JoinMsg
  | CommitTokenMsg
  | MergeDetectMsg
  | TokenHoldCancelMsg;

/** Why a byte string was not accepted as a frame. Counted, never thrown. */
export type RejectReason =
  | "truncated"
  | "bad_magic"
  | "bad_version"
  | "bad_type"
  | "bad_length"
  | "bad_field"
  | "too_many_entries"
  | "trailing_bytes";

/** Result of decoding untrusted bytes. */
export type Decoded<T> =
  | { ok: true; value: T }
  | { ok: false; reason: RejectReason; detail?: string };

/** Timers the core arms and cancels through actions (TOTEM.md section 4). */
export type TimerName =
  | "token"
  | "token_retransmit"
  | "hold"
  | "join"
  | "consensus"
  | "merge_detect"
  | "heartbeat";

/** Membership protocol states (TOTEM.md 3.1). */
export type SrpState = "gather" | "commit" | "recovery" | "operational";

/** Why the node left OPERATIONAL or re-entered GATHER. Ends up in logs. */
export type TransitionReason =
  | "start"
  | "token_lost"
  | "consensus_timeout"
  | "join"
  | "foreign_message"
  | "merge_detect"
  | "node_left"
  | "fail_to_recv"
  | "unreachable"
  | "commit_token"
  | "recovery_done"
  | "shutdown";

/** A configuration change delivered to the layer above (TOTEM.md 1.2). */
export interface ConfChange {
  readonly kind: "transitional" | "regular";
  readonly ringId: RingId;
  readonly members: readonly NodeId[];
  readonly left: readonly NodeId[];
  readonly joined: readonly NodeId[];
}

/** Inputs to the core. */
export type SrpEvent =
  | { type: "start" }
  | { type: "frame"; bytes: Uint8Array }
  | { type: "timer"; timer: TimerName }
  /**
   * An application frame; `sync` frames belong to service synchronisation
   * and are the only ones sent while a sync barrier holds the others.
   */
  | { type: "send"; payload: Uint8Array; guarantee: Guarantee; sync?: boolean }
  /** Service sync finished: release application frames (TOTEM.md 8.1). */
  | { type: "sync_done" }
  /**
   * The link layer's verdict on a peer: unreachable once every link to it
   * went down after being up (heartbeats timed out), reachable again when
   * one comes back up. See `TotemConfig.unreachableFailsFast`.
   */
  | { type: "reachability"; node: NodeId; reachable: boolean }
  | { type: "shutdown" };

/** Outputs of the core, to be performed by the driver in order. */
export type SrpAction =
  | { type: "transmit"; to: NodeId | "all"; bytes: Uint8Array }
  | { type: "arm"; timer: TimerName; afterMs: number }
  | { type: "cancel"; timer: TimerName }
  | {
    type: "deliver";
    from: NodeId;
    ringId: RingId;
    seq: number;
    guarantee: Guarantee;
    payload: Uint8Array;
  }
  | { type: "confchg"; change: ConfChange; reason: TransitionReason }
  /** Stable storage: must be durable before the next transmit is performed. */
  | { type: "persist_ring_seq"; ringSeq: number }
  | { type: "state"; from: SrpState; to: SrpState; reason: TransitionReason }
  /** The send queue is full: the caller must retry later (CS_ERR_TRY_AGAIN). */
  | { type: "try_again" }
  /** A frame was dropped before reaching the protocol; counted by drivers. */
  | { type: "rejected"; reason: RejectReason | "foreign_ring" | "not_member" }
  | { type: "log"; level: "debug" | "info" | "warn"; message: string };

/** True when two ring ids are the same ring. */
export function sameRing(a: RingId, b: RingId): boolean {
  return a.rep === b.rep && a.seq === b.seq;
}

/** `rep.seq`-style text for logs and traces. */
export function ringIdText(r: RingId): string {
  return `${r.rep}.${r.seq}`;
}
