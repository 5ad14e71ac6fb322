/**
 * Virtual UDPU network (TOTEM.md 1.1, 9.2): every datagram travels one
 * directed link `from -> to` with a fixed base latency, so links are FIFO
 * unless a fault rule adds delay. Fault rules match by directed link and by
 * Totem message type (tokens and mcasts can be treated differently) and can
 * drop, duplicate or delay. All randomness comes from the injected `Prng`.
 */
import { assert } from "../lib/assert.ts";
import type { Prng } from "../lib/prng.ts";
import { peekType } from "../totem/codec.ts";
import type { NodeId, TotemMsg } from "../totem/types.ts";

/** Type of a datagram as far as fault rules care; "invalid" if unparsable. */
export type FrameKind = TotemMsg["type"] | "invalid";

/** Every frame kind, for rule builders. */
export const FRAME_KINDS: readonly FrameKind[] = [
  "token",
  "mcast",
  "join",
  "commit",
  "merge_detect",
  "token_hold_cancel",
  "invalid",
];

/**
 * One fault rule. Omitted selectors match everything. A datagram is checked
 * against every active rule in the order the rules were added.
 */
export interface LinkRule {
  /** Senders the rule applies to (omitted: any). */
  readonly from?: readonly NodeId[];
  /** Receivers the rule applies to (omitted: any). */
  readonly to?: readonly NodeId[];
  /** Message types the rule applies to (omitted: any). */
  readonly types?: readonly FrameKind[];
  /** Probability of dropping the datagram; 1 cuts the link. */
  readonly lossP?: number;
  /** Probability of delivering one extra copy. */
  readonly dupP?: number;
  /** The duplicate arrives up to this much later than the original (default 2 ms). */
  readonly dupSpreadMs?: number;
  /** Extra delay range added with probability `delayP` (default 1). */
  readonly delayMs?: readonly [number, number];
  readonly delayP?: number;
  /** The rule expires after dropping this many datagrams. */
  readonly remaining?: number;
  /** Shown in traces. */
  readonly label?: string;
}

interface ActiveRule {
  readonly id: number;
  readonly rule: LinkRule;
  remaining: number;
}

/** Counters of the virtual network. */
export interface NetworkStats {
  datagrams: number;
  dropped: number;
  duplicated: number;
  delayed: number;
}

/** One copy of a datagram on its way to the receiver. */
export interface Arrival {
  readonly atMs: number;
  readonly bytes: Uint8Array;
}

/** Construction parameters of the virtual network. */
export interface NetworkOptions {
  readonly nodes: readonly NodeId[];
  readonly rng: Prng;
  /** Per-link base latency is drawn once from this range (default 0.2–0.8 ms). */
  readonly baseDelayMs?: readonly [number, number];
}

/** The simulated network: fixed per-link latency plus fault rules. */
export class Network {
  readonly nodes: readonly NodeId[];
  readonly stats: NetworkStats = {
    datagrams: 0,
    dropped: 0,
    duplicated: 0,
    delayed: 0,
  };
  #rng: Prng;
  #base = new Map<string, number>();
  #rules: ActiveRule[] = [];
  #nextRuleId = 1;

  constructor(options: NetworkOptions) {
    this.nodes = [...options.nodes].sort((a, b) => a - b);
    this.#rng = options.rng;
    const [lo, hi] = options.baseDelayMs ?? [0.2, 0.8];
    assert(lo > 0 && hi >= lo, "base delay must be positive");
    for (const a of this.nodes) {
      for (const b of this.nodes) {
        if (a !== b) {
          this.#base.set(linkKey(a, b), lo + this.#rng.float() * (hi - lo));
        }
      }
    }
  }

  /** Base latency of the directed link `from -> to`. */
  baseDelay(from: NodeId, to: NodeId): number {
    return this.#base.get(linkKey(from, to)) ?? 0.5;
  }

  /** Activates a rule; returns its id for `removeRule`. */
  addRule(rule: LinkRule): number {
    const id = this.#nextRuleId++;
    this.#rules.push({ id, rule, remaining: rule.remaining ?? Infinity });
    return id;
  }

  /** Deactivates a rule (no-op if it already expired). */
  removeRule(id: number): void {
    this.#rules = this.#rules.filter((r) => r.id !== id);
  }

  /** Removes every rule: the network becomes connected and clean. */
  clearRules(): void {
    this.#rules = [];
  }

  /** Active rules, oldest first. */
  get rules(): readonly LinkRule[] {
    return this.#rules.map((r) => r.rule);
  }

  /**
   * Receivers of a transmit action: a node id, or every configured node
   * except the sender for "all" (UDPU sends one unicast per member).
   */
  targets(from: NodeId, to: NodeId | "all"): NodeId[] {
    return to === "all" ? this.nodes.filter((n) => n !== from) : [to];
  }

  /** Decides the fate of one datagram on `from -> to` sent at `nowMs`. */
  route(
    from: NodeId,
    to: NodeId,
    bytes: Uint8Array,
    nowMs: number,
  ): Arrival[] {
    this.stats.datagrams++;
    const kind: FrameKind = peekType(bytes) ?? "invalid";
    let extra = 0;
    let copies = 1;
    let spread = 0;
    for (const active of this.#rules) {
      const rule = active.rule;
      if (rule.from !== undefined && !rule.from.includes(from)) continue;
      if (rule.to !== undefined && !rule.to.includes(to)) continue;
      if (rule.types !== undefined && !rule.types.includes(kind)) continue;
      const loss = rule.lossP ?? 0;
      if (loss >= 1 || (loss > 0 && this.#rng.chance(loss))) {
        this.stats.dropped++;
        active.remaining--;
        if (active.remaining <= 0) {
          this.#rules = this.#rules.filter((r) => r !== active);
        }
        return [];
      }
      if (
        rule.dupP !== undefined && copies === 1 && this.#rng.chance(rule.dupP)
      ) {
        copies = 2;
        spread = Math.max(spread, rule.dupSpreadMs ?? 2);
      }
      if (
        rule.delayMs !== undefined &&
        (rule.delayP === undefined || this.#rng.chance(rule.delayP))
      ) {
        const [lo, hi] = rule.delayMs;
        extra += lo + this.#rng.float() * (hi - lo);
        this.stats.delayed++;
      }
    }
    const atMs = nowMs + this.baseDelay(from, to) + extra;
    if (copies === 1) return [{ atMs, bytes }];
    this.stats.duplicated++;
    return [{ atMs, bytes }, {
      atMs: atMs + this.#rng.float() * spread,
      bytes,
    }];
  }
}

function linkKey(a: NodeId, b: NodeId): string {
  return `${a}>${b}`;
}
