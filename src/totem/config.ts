/**
 * Totem timers and constants (TOTEM.md section 4) with Corosync 3 defaults
 * (`exec/totemconfig.c`). Every value is configurable; `resolveTotemConfig`
 * derives the dependent ones the way Corosync does.
 */
import { assert } from "../lib/assert.ts";

/** Effective protocol parameters, all times in milliseconds. */
export interface TotemConfig {
  tokenMs: number;
  tokenCoefficientMs: number;
  tokenWarningPercent: number;
  tokenRetransmitsBeforeLossConst: number;
  tokenRetransmitMs: number;
  holdMs: number;
  joinMs: number;
  sendJoinMs: number;
  consensusMs: number;
  mergeMs: number;
  downcheckMs: number;
  failRecvConst: number;
  seqnoUnchangedConst: number;
  windowSize: number;
  maxMessages: number;
  missCountConst: number;
  heartbeatFailuresAllowed: number;
  maxNetworkDelayMs: number;
  netmtu: number;
  cancelTokenHoldOnRetransmit: boolean;
  /**
   * Failing unreachable nodes at once in GATHER (denosync addition, config
   * file `totem.unreachable_fails_fast`, default on). Once the token is
   * lost, Corosync waits the whole consensus timeout for every member's
   * join, also for one the link layer already knows to be gone (every link
   * to it timed out its heartbeats). With this on, such a node is put in
   * the fail set as soon as GATHER starts, or as soon as its last link goes
   * down during GATHER, unless its join already arrived: the survivors
   * re-form one consensus timeout sooner after a crash. Nothing changes in
   * OPERATIONAL (the token timeout stays the failure detector), and a node
   * failed this way merges back like one failed by the consensus timeout.
   */
  unreachableFailsFast: boolean;
  /**
   * Fast token retransmission (denosync addition, no Corosync key; config
   * file `totem.fast_token_retransmit_min`, 0 turns it off). While the ring
   * carries traffic, the token we forwarded is retransmitted after
   * `fastTokenRetransmitFactor` times the smoothed rotation time (EWMA of
   * the intervals between accepted tokens), at least this many ms and at
   * most `tokenRetransmitMs`; each further retransmit of the same token
   * doubles the delay up to `tokenRetransmitMs`. An idle ring (token held)
   * keeps Corosync's timing. Default 5 ms.
   */
  fastTokenRetransmitMinMs: number;
  /** Rotations to wait before a fast token retransmit (default 3). */
  fastTokenRetransmitFactor: number;
  /** Frames the send queue holds before senders get TRY_AGAIN. */
  sendQueueFramesMax: number;
  /** First message seq of every ring minus one (tests use values near wrap). */
  seqnoStart: number;
}

/** Options as an operator writes them; anything missing is derived. */
export type TotemOptions = Partial<TotemConfig>;

/** Sort-queue window (`QUEUE_RTR_ITEMS_SIZE_MAX`). */
export const SORT_QUEUE_SLOTS = 16384;
/** At most this many retransmission requests ride on a token. */
export const RTR_ENTRIES_MAX = 30;
/** Largest membership Corosync supports (`PROCESSOR_COUNT_MAX`). */
export const PROCESSOR_COUNT_MAX = 384;
/** Minimum for every timeout: three ticks of a 100 Hz kernel. */
export const TIMEOUT_MIN_MS = 30;
/** Consecutive consensus expiries before the firewall diagnostic. */
export const MAX_NO_CONT_GATHER = 3;
/** Largest application message the send path accepts. */
export const MESSAGE_BYTES_MAX = 1024 * 1024;

/**
 * Fills in derived values. `nodeCount` is the size of the configured
 * nodelist: Corosync lengthens the token by `token_coefficient` per node above
 * two.
 */
export function resolveTotemConfig(
  options: TotemOptions = {},
  nodeCount = 2,
): TotemConfig {
  const baseToken = options.tokenMs ?? 3000;
  const coefficient = options.tokenCoefficientMs ?? 650;
  const tokenMs = nodeCount >= 3
    ? baseToken + (nodeCount - 2) * coefficient
    : baseToken;
  const retransmitsConst = options.tokenRetransmitsBeforeLossConst ?? 4;
  const tokenRetransmitMs = options.tokenRetransmitMs ??
    Math.max(TIMEOUT_MIN_MS, Math.floor(tokenMs / (retransmitsConst + 0.2)));
  const holdMs = options.holdMs ??
    Math.max(14, Math.floor(tokenRetransmitMs * 0.8 - 10));
  const netmtu = options.netmtu ?? 1500;
  const config: TotemConfig = {
    tokenMs,
    tokenCoefficientMs: coefficient,
    tokenWarningPercent: options.tokenWarningPercent ?? 75,
    tokenRetransmitsBeforeLossConst: retransmitsConst,
    tokenRetransmitMs,
    holdMs,
    joinMs: options.joinMs ?? 50,
    sendJoinMs: options.sendJoinMs ?? 0,
    consensusMs: options.consensusMs ?? Math.floor(1.2 * tokenMs),
    mergeMs: options.mergeMs ?? 200,
    downcheckMs: options.downcheckMs ?? 1000,
    failRecvConst: options.failRecvConst ?? 2500,
    seqnoUnchangedConst: options.seqnoUnchangedConst ?? 30,
    windowSize: options.windowSize ?? 50,
    maxMessages: options.maxMessages ?? 17,
    missCountConst: options.missCountConst ?? 5,
    heartbeatFailuresAllowed: options.heartbeatFailuresAllowed ?? 0,
    maxNetworkDelayMs: options.maxNetworkDelayMs ?? 50,
    netmtu,
    cancelTokenHoldOnRetransmit: options.cancelTokenHoldOnRetransmit ?? false,
    unreachableFailsFast: options.unreachableFailsFast ?? true,
    fastTokenRetransmitMinMs: options.fastTokenRetransmitMinMs ?? 5,
    fastTokenRetransmitFactor: options.fastTokenRetransmitFactor ?? 3,
    sendQueueFramesMax: options.sendQueueFramesMax ??
      Math.floor((4 * MESSAGE_BYTES_MAX) / netmtu),
    seqnoStart: options.seqnoStart ?? 0,
  };
  validateTotemConfig(config);
  return config;
}

/** Rejects combinations the protocol cannot run with; messages name the key. */
export function validateTotemConfig(c: TotemConfig): void {
  const positive: [keyof TotemConfig, string][] = [
    ["tokenMs", "totem.token"],
    ["tokenRetransmitMs", "totem.token_retransmit"],
    ["holdMs", "totem.hold"],
    ["joinMs", "totem.join"],
    ["consensusMs", "totem.consensus"],
    ["mergeMs", "totem.merge"],
    ["windowSize", "totem.window_size"],
    ["maxMessages", "totem.max_messages"],
    ["failRecvConst", "totem.fail_recv_const"],
    ["sendQueueFramesMax", "send queue size"],
  ];
  for (const [key, name] of positive) {
    const v = c[key] as number;
    if (!Number.isInteger(v) || v <= 0) {
      throw new RangeError(`${name} must be a positive integer, got ${v}`);
    }
  }
  if (c.consensusMs < c.joinMs) {
    throw new RangeError(
      `totem.consensus (${c.consensusMs} ms) must be at least totem.join (${c.joinMs} ms)`,
    );
  }
  if (c.maxMessages > c.windowSize) {
    throw new RangeError(
      `totem.max_messages (${c.maxMessages}) must not exceed totem.window_size (${c.windowSize})`,
    );
  }
  if (c.windowSize > SORT_QUEUE_SLOTS / 4) {
    throw new RangeError(
      `totem.window_size (${c.windowSize}) must be at most ${
        SORT_QUEUE_SLOTS / 4
      }`,
    );
  }
  assert(c.missCountConst >= 0, "miss_count_const must not be negative");
  if (
    !Number.isInteger(c.fastTokenRetransmitMinMs) ||
    c.fastTokenRetransmitMinMs < 0
  ) {
    throw new RangeError(
      `totem.fast_token_retransmit_min must be a non-negative integer, got ${c.fastTokenRetransmitMinMs}`,
    );
  }
  if (!(c.fastTokenRetransmitFactor >= 1)) {
    throw new RangeError(
      `totem.fast_token_retransmit_factor must be at least 1, got ${c.fastTokenRetransmitFactor}`,
    );
  }
}
