/**
 * Fault schedules (TOTEM.md 9.2). A `FaultPlan` is plain data: timed network
 * rules, crashes (optionally at a chosen protocol point), restarts with stable
 * storage kept, lost or rolled back, process pauses, and verdicts of the
 * link layer that may be wrong (a live peer called unreachable: failing a
 * node is always safe, so EVS must hold whatever they say). `generateFaultPlan`
 * derives one from a seeded `Prng`, so a seed names a whole run.
 */
import type { Prng } from "../lib/prng.ts";
import type { TotemConfig } from "../totem/config.ts";
import type { NodeId } from "../totem/types.ts";
import type { LinkRule } from "./network.ts";

/** Fault families selectable with `--faults`. */
export type FaultKind =
  | "loss"
  | "dup"
  | "reorder"
  | "jitter"
  | "partition"
  | "oneway"
  | "crash"
  | "pause"
  | "tokenloss"
  | "unreachable";

/** Every fault kind, in the order `all` expands to. */
export const FAULT_KINDS: readonly FaultKind[] = [
  "loss",
  "dup",
  "reorder",
  "jitter",
  "partition",
  "oneway",
  "crash",
  "pause",
  "tokenloss",
  "unreachable",
];

/**
 * Where a crash strikes. "now": at the scheduled time. The others wait (at
 * most `CRASH_POINT_WAIT_MS`) for the node to reach the point, then crash it
 * before it performs the rest of that step's actions:
 * - "commit": on entering COMMIT, before forwarding the commit token;
 * - "recovery": on entering RECOVERY, mid second commit-token rotation;
 * - "mid_token": after multicasting, before forwarding the ORF token;
 * - "after_persist": right after persisting a new ring seq.
 */
export type CrashPoint =
  | "now"
  | "commit"
  | "recovery"
  | "mid_token"
  | "after_persist";

/** Longest wait for a crash point before crashing anyway. */
export const CRASH_POINT_WAIT_MS = 5000;

/** What a restarted node finds in stable storage. */
export type StorageOnRestart = "kept" | "lost" | "rolled_back";

/** One scheduled fault. */
export type FaultEvent =
  | {
    readonly atMs: number;
    readonly kind: "rule";
    /** Rules added under one key are removed together by `unrule`. */
    readonly key: string;
    readonly rule: LinkRule;
  }
  | { readonly atMs: number; readonly kind: "unrule"; readonly key: string }
  | {
    readonly atMs: number;
    readonly kind: "crash";
    readonly node: NodeId;
    readonly point: CrashPoint;
    /** Delay from the crash to the restart; null = stay down until the quiet phase. */
    readonly restartAfterMs: number | null;
    readonly storage: StorageOnRestart;
  }
  | {
    readonly atMs: number;
    readonly kind: "pause";
    readonly node: NodeId;
    readonly durationMs: number;
  }
  | {
    readonly atMs: number;
    /** `observer`'s link layer reports `peer` (un)reachable. */
    readonly kind: "reachability";
    readonly observer: NodeId;
    readonly peer: NodeId;
    readonly reachable: boolean;
  };

/** A whole fault schedule, ordered by time. */
export interface FaultPlan {
  readonly events: readonly FaultEvent[];
}

/** Parses `--faults`: a comma list of kinds, `all`, or `none`. */
export function parseFaults(text: string): FaultKind[] {
  const out: FaultKind[] = [];
  for (const raw of text.split(",")) {
    const word = raw.trim();
    if (word === "" || word === "none") continue;
    if (word === "all") {
      for (const k of FAULT_KINDS) if (!out.includes(k)) out.push(k);
      continue;
    }
    if (!(FAULT_KINDS as readonly string[]).includes(word)) {
      throw new RangeError(
        `--faults: unknown fault kind "${word}", expected all, none or a list of ${
          FAULT_KINDS.join(",")
        }`,
      );
    }
    if (!out.includes(word as FaultKind)) out.push(word as FaultKind);
  }
  return FAULT_KINDS.filter((k) => out.includes(k));
}

/** Inputs of `generateFaultPlan`. */
export interface FaultPlanOptions {
  readonly rng: Prng;
  readonly nodes: readonly NodeId[];
  readonly kinds: readonly FaultKind[];
  /** Length of the safety phase: every fault starts and ends within it. */
  readonly durationMs: number;
  readonly config: TotemConfig;
}

/** Rules that cut every link between different groups (symmetric partition). */
export function partitionRules(
  groups: readonly (readonly NodeId[])[],
): LinkRule[] {
  const rules: LinkRule[] = [];
  for (const g of groups) {
    const others = groups.filter((h) => h !== g).flat();
    if (g.length > 0 && others.length > 0) {
      rules.push({
        from: [...g],
        to: others,
        lossP: 1,
        label: `partition ${groups.map((x) => `[${x.join(",")}]`).join(" | ")}`,
      });
    }
  }
  return rules;
}

/** Generates a fault schedule for the selected kinds from `rng`. */
export function generateFaultPlan(options: FaultPlanOptions): FaultPlan {
  const { rng, nodes, kinds, durationMs: d, config } = options;
  const token = config.tokenMs;
  const events: FaultEvent[] = [];
  let keyCounter = 0;
  const key = (name: string): string => `${name}#${++keyCounter}`;
  const between = (lo: number, hi: number): number =>
    lo + rng.float() * (hi - lo);
  const startAt = (): number => Math.floor(between(200, d * 0.92));
  const window = (
    name: string,
    atMs: number,
    lengthMs: number,
    rules: LinkRule[],
  ): void => {
    const k = key(name);
    for (const rule of rules) events.push({ atMs, kind: "rule", key: k, rule });
    events.push({ atMs: Math.min(d, atMs + lengthMs), kind: "unrule", key: k });
  };
  // A random subject for a link fault: one directed link, all links of one
  // node (in, out or both), or the whole network.
  const subject = (): { from?: NodeId[]; to?: NodeId[]; text: string } => {
    const r = rng.float();
    const a = rng.pick(nodes);
    if (r < 0.4) {
      const b = rng.pick(nodes.filter((x) => x !== a));
      return { from: [a], to: [b], text: `${a}->${b}` };
    }
    if (r < 0.6) return { to: [a], text: `*->${a}` };
    if (r < 0.8) return { from: [a], text: `${a}->*` };
    return { text: "*->*" };
  };

  for (const kind of kinds) {
    switch (kind) {
      case "loss": {
        const lossP = between(0.002, 0.04);
        window("loss", 0, d, [{ lossP, label: `loss ${pct(lossP)}` }]);
        const bursts = 2 + rng.int(5);
        for (let b = 0; b < bursts; b++) {
          const s = subject();
          const p = rng.chance(0.5) ? 1 : between(0.3, 0.95);
          window("burst", startAt(), between(20, 1500), [{
            from: s.from,
            to: s.to,
            lossP: p,
            label: `loss burst ${s.text} ${pct(p)}`,
          }]);
        }
        break;
      }
      case "dup": {
        const dupP = between(0.01, 0.08);
        window("dup", 0, d, [{
          dupP,
          dupSpreadMs: between(0, 5),
          label: `dup ${pct(dupP)}`,
        }]);
        // Late duplicate tokens: the copy arrives after token_retransmit.
        const late = rng.int(3);
        for (let b = 0; b < late; b++) {
          const p = between(0.3, 1);
          window("late_dup", startAt(), between(300, 3000), [{
            types: ["token", "commit", "join"],
            dupP: p,
            dupSpreadMs: between(0.5, 2.5) * config.tokenRetransmitMs,
            label: `late duplicate tokens ${pct(p)}`,
          }]);
        }
        break;
      }
      case "reorder": {
        const p = between(0.1, 0.5);
        const hi = between(1, 8);
        window("reorder", 0, d, [{
          delayP: p,
          delayMs: [0, hi],
          label: `reorder ${pct(p)} up to ${hi.toFixed(1)}ms`,
        }]);
        break;
      }
      case "jitter": {
        const n = 2 + rng.int(4);
        for (let b = 0; b < n; b++) {
          const s = subject();
          const p = between(0.05, 0.5);
          const hi = between(0.5, 2) * token;
          window("jitter", startAt(), between(300, 4000), [{
            from: s.from,
            to: s.to,
            delayP: p,
            delayMs: [0, hi],
            label: `jitter ${s.text} ${pct(p)} up to ${Math.round(hi)}ms`,
          }]);
        }
        break;
      }
      case "partition": {
        const episodes = 1 + rng.int(3);
        for (let e = 0; e < episodes; e++) {
          let at = startAt();
          const flapping = rng.chance(0.3);
          const toggles = flapping ? 3 + rng.int(6) : 1;
          for (let f = 0; f < toggles && at < d; f++) {
            const groups = randomGroups(rng, nodes);
            const length = flapping ? between(100, 1500) : between(300, 8000);
            window("partition", at, length, partitionRules(groups));
            at += length + (flapping ? between(50, 1500) : 0);
          }
        }
        break;
      }
      case "oneway": {
        const episodes = 1 + rng.int(3);
        for (let e = 0; e < episodes; e++) {
          const links = 1 + rng.int(2);
          const rules: LinkRule[] = [];
          for (let l = 0; l < links; l++) {
            const a = rng.pick(nodes);
            const b = rng.pick(nodes.filter((x) => x !== a));
            rules.push({
              from: [a],
              to: [b],
              lossP: 1,
              label: `one-way cut ${a}->${b}`,
            });
          }
          window("oneway", startAt(), between(500, 8000), rules);
        }
        break;
      }
      case "crash": {
        const n = 1 + rng.int(4);
        for (let c = 0; c < n; c++) {
          const r = rng.float();
          const point: CrashPoint = r < 0.5
            ? "now"
            : rng.pick(["commit", "recovery", "mid_token", "after_persist"]);
          const q = rng.float();
          const restartAfterMs = q < 0.3
            ? Math.floor(between(50, 0.8 * token))
            : q < 0.8
            ? Math.floor(between(token, 8000))
            : null;
          const s = rng.float();
          const storage: StorageOnRestart = s < 0.7
            ? "kept"
            : s < 0.85
            ? "lost"
            : "rolled_back";
          events.push({
            atMs: startAt(),
            kind: "crash",
            node: rng.pick(nodes),
            point,
            restartAfterMs,
            storage,
          });
        }
        break;
      }
      case "pause": {
        const n = 1 + rng.int(3);
        for (let c = 0; c < n; c++) {
          const durationMs = rng.chance(0.7)
            ? Math.floor(between(1.2, 3) * token)
            : Math.floor(between(0.2, 0.9) * token);
          events.push({
            atMs: startAt(),
            kind: "pause",
            node: rng.pick(nodes),
            durationMs,
          });
        }
        break;
      }
      case "tokenloss": {
        const n = 3 + rng.int(8);
        for (let c = 0; c < n; c++) {
          const a = rng.pick(nodes);
          const types = rng.chance(0.5)
            ? ["token" as const]
            : ["token" as const, "commit" as const];
          if (rng.chance(0.6)) {
            const count = 1 + rng.int(3);
            window("tokenloss", startAt(), 3000, [{
              from: [a],
              types,
              lossP: 1,
              remaining: count,
              label: `drop next ${count} ${types.join("/")} from ${a}`,
            }]);
          } else {
            window("tokenloss", startAt(), between(50, 2 * token), [{
              from: [a],
              types,
              lossP: 1,
              label: `drop all ${types.join("/")} from ${a}`,
            }]);
          }
        }
        break;
      }
      case "unreachable": {
        // Verdicts independent of the network: often wrong on purpose.
        // Half the episodes have every other node give up on one peer (a
        // crash as the link layer sees it), the rest one observer alone.
        const n = 2 + rng.int(5);
        for (let c = 0; c < n; c++) {
          const peer = rng.pick(nodes);
          const observers = rng.chance(0.5)
            ? nodes.filter((x) => x !== peer)
            : [rng.pick(nodes.filter((x) => x !== peer))];
          const at = startAt();
          const back = Math.min(d, at + Math.floor(between(50, 3 * token)));
          for (const observer of observers) {
            events.push(
              {
                atMs: at,
                kind: "reachability",
                observer,
                peer,
                reachable: false,
              },
              {
                atMs: back,
                kind: "reachability",
                observer,
                peer,
                reachable: true,
              },
            );
          }
        }
        break;
      }
    }
  }
  // Stable sort by time: same-time events keep their generation order.
  const sorted = events
    .map((e, k) => ({ e, k }))
    .sort((x, y) => x.e.atMs - y.e.atMs || x.k - y.k)
    .map((x) => x.e);
  return { events: sorted };
}

/** Splits `nodes` into two or three non-empty groups. */
function randomGroups(rng: Prng, nodes: readonly NodeId[]): NodeId[][] {
  const count = nodes.length >= 4 && rng.chance(0.25) ? 3 : 2;
  while (true) {
    const groups: NodeId[][] = Array.from({ length: count }, () => []);
    for (const n of nodes) groups[rng.int(count)].push(n);
    if (groups.every((g) => g.length > 0)) return groups;
  }
}

function pct(p: number): string {
  return `${(p * 100).toFixed(1)}%`;
}

/** One-line description of a fault event, for narration and traces. */
export function describeFault(e: FaultEvent): string {
  switch (e.kind) {
    case "rule":
      return `${e.key}: ${e.rule.label ?? "rule"}`;
    case "unrule":
      return `${e.key}: over`;
    case "crash":
      return `crash node ${e.node}${
        e.point === "now" ? "" : ` at ${e.point}`
      }, ${
        e.restartAfterMs === null
          ? "down until the quiet phase"
          : `restart after ${e.restartAfterMs}ms`
      } (storage ${e.storage})`;
    case "pause":
      return `pause node ${e.node} for ${e.durationMs}ms`;
    case "reachability":
      return `node ${e.observer}: links to node ${e.peer} ${
        e.reachable ? "up" : "down"
      }`;
  }
}
