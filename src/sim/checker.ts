/**
 * Extended Virtual Synchrony checker (TOTEM.md 1.3, E1–E12 and L1). It reads
 * per-node histories only (history.ts), never the core's internals, so every
 * property can be tested with hand-made histories.
 *
 * Terms: an *incarnation* is a node's log from `start` to `crash` (or the end
 * of the run). A *configuration* is keyed by its ring id and member list, so a
 * ring id reused after stable storage was lost (allowed, TOTEM.md 3.9) does
 * not merge two different configurations. A delivery's *segment* is the
 * preceding confchg; its *origin configuration* is the REG in whose ring the
 * message got its seq.
 */
import { seqLt } from "../lib/seqno.ts";
import type { NodeId, RingId } from "../totem/types.ts";
import {
  type History,
  type HistoryEntry,
  parseMsgKey,
  type StorageFate,
} from "./history.ts";

/** Property names of TOTEM.md 1.3. */
export type Property =
  | "E1"
  | "E2"
  | "E3"
  | "E4"
  | "E5"
  | "E6"
  | "E7"
  | "E8"
  | "E9"
  | "E10"
  | "E11"
  | "E12"
  | "L1"
  /** The core (or the simulator) threw: an assertion failed. Reported by simulate.ts, never by checkHistory. */
  | "ASSERT";

/** Every property, in report order. */
export const PROPERTIES: readonly Property[] = [
  "E1",
  "E2",
  "E3",
  "E4",
  "E5",
  "E6",
  "E7",
  "E8",
  "E9",
  "E10",
  "E11",
  "E12",
  "L1",
  "ASSERT",
];

/** One broken invariant. */
export interface Violation {
  readonly property: Property;
  readonly message: string;
  /** Nodes whose logs show the problem, ascending. */
  readonly nodes: readonly NodeId[];
  /** History index where the problem shows (for traces), if there is one. */
  readonly atIndex: number | null;
  /** Message keys involved, if any. */
  readonly msgs: readonly string[];
}

/** Options of `checkHistory`. */
export interface CheckOptions {
  /** Report at most this many violations per property (default 5). */
  readonly maxPerProperty?: number;
  /** Check L1 (default: when the history has a quiet phase). */
  readonly liveness?: boolean;
  /**
   * Check the "eventually" parts, E9 and E11 (default: when the history has
   * a quiet phase, after which everything pending must have arrived).
   */
  readonly eventual?: boolean;
}

type ConfEntry = Extract<HistoryEntry, { kind: "confchg" }>;
type DeliverEntry = Extract<HistoryEntry, { kind: "deliver" }>;
type SubmitEntry = Extract<HistoryEntry, { kind: "submit" }>;

interface Incarnation {
  readonly node: NodeId;
  readonly inc: number;
  readonly storage: StorageFate;
  readonly startI: number;
  readonly entries: HistoryEntry[];
  crashI: number | null;
}

interface Segment {
  readonly conf: ConfEntry;
  /** Origin configuration of deliveries in this segment (REG itself, or the REG before a TRANS). */
  readonly origin: ConfEntry | null;
  readonly delivers: DeliverEntry[];
}

/** Key of a configuration: ring id plus member list. */
export function confKey(
  c: { ringId: RingId; members: readonly NodeId[] },
): string {
  return `${c.ringId.rep}.${c.ringId.seq}/${c.members.join(",")}`;
}

function ringText(r: RingId): string {
  return `${r.rep}.${r.seq}`;
}

function sameRingId(a: RingId, b: RingId): boolean {
  return a.rep === b.rep && a.seq === b.seq;
}

function ids(xs: readonly NodeId[]): string {
  return `[${xs.join(",")}]`;
}

function sortedUnique(xs: readonly NodeId[]): boolean {
  for (let k = 1; k < xs.length; k++) if (!(xs[k - 1] < xs[k])) return false;
  return true;
}

function sameSet(a: readonly NodeId[], b: readonly NodeId[]): boolean {
  if (a.length !== b.length) return false;
  const s = new Set(a);
  return b.every((x) => s.has(x));
}

function minus(a: readonly NodeId[], b: readonly NodeId[]): NodeId[] {
  const s = new Set(b);
  return a.filter((x) => !s.has(x)).sort((x, y) => x - y);
}

function incKey(node: NodeId, inc: number): string {
  return `${node}/${inc}`;
}

/**
 * Names configuration instances. Normally a REG's instance is its ring id and
 * member list. A node restarted without its ring-seq file may form a ring id
 * again (TOTEM.md 3.9), possibly with the same members; an installation of a
 * key by a different incarnation of a node that already installed it starts
 * a new instance (`key#g`), and later installations join the newest one.
 */
function instanceKeys(incs: readonly Incarnation[]): (c: ConfEntry) => string {
  const regs: { e: ConfEntry; inc: Incarnation }[] = [];
  for (const inc of incs) {
    for (const e of inc.entries) {
      if (e.kind === "confchg" && e.type === "REG") regs.push({ e, inc });
    }
  }
  regs.sort((a, b) => a.e.i - b.e.i);
  const gens = new Map<string, { g: number; incOf: Map<NodeId, number> }>();
  const out = new Map<ConfEntry, string>();
  for (const { e, inc } of regs) {
    const key = confKey(e);
    let gen = gens.get(key);
    if (gen === undefined) {
      gen = { g: 0, incOf: new Map() };
      gens.set(key, gen);
    }
    const seen = gen.incOf.get(inc.node);
    if (seen !== undefined && seen !== inc.inc) {
      gen.g++;
      gen.incOf = new Map();
    }
    gen.incOf.set(inc.node, inc.inc);
    out.set(e, gen.g === 0 ? key : `${key}#${gen.g}`);
  }
  return (c: ConfEntry): string => out.get(c) ?? confKey(c);
}

/** Splits each node's log into incarnations. */
function incarnationsOf(history: History): Incarnation[] {
  const out: Incarnation[] = [];
  for (const node of history.nodes) {
    let cur: Incarnation | null = null;
    for (const e of history.logs.get(node) ?? []) {
      if (e.kind === "start") {
        cur = {
          node,
          inc: e.inc,
          storage: e.storage,
          startI: e.i,
          entries: [],
          crashI: null,
        };
        out.push(cur);
      } else if (e.kind === "crash") {
        if (cur !== null) cur.crashI = e.i;
        cur = null;
      } else if (cur !== null) {
        cur.entries.push(e);
      }
    }
  }
  return out;
}

/**
 * Checks E1–E12 (and L1 when the run ended with a quiet connected phase)
 * over `history`; returns the violations found, grouped by property.
 */
export function checkHistory(
  history: History,
  options: CheckOptions = {},
): Violation[] {
  const maxPer = options.maxPerProperty ?? 5;
  const found = new Map<Property, Violation[]>();
  const counts = new Map<Property, number>();
  const report = (
    property: Property,
    message: string,
    nodes: Iterable<NodeId>,
    atIndex: number | null,
    msgs: readonly string[] = [],
  ): void => {
    counts.set(property, (counts.get(property) ?? 0) + 1);
    const list = found.get(property) ?? [];
    if (list.length < maxPer) {
      list.push({
        property,
        message,
        nodes: [...new Set(nodes)].sort((a, b) => a - b),
        atIndex,
        msgs,
      });
      found.set(property, list);
    }
  };

  const incs = incarnationsOf(history);
  const incByKey = new Map<string, Incarnation>();
  for (const inc of incs) incByKey.set(incKey(inc.node, inc.inc), inc);
  const ck = instanceKeys(incs);

  // ---- Per-incarnation structure: E1 (local), E2, E3; segments.
  const segmentsOf = new Map<Incarnation, Segment[]>();
  /** REG configurations installed by each incarnation. */
  const installed = new Map<Incarnation, Set<string>>();
  /** Members of each REG configuration key, and the first entry that installed it. */
  const regByRing = new Map<
    string,
    { members: readonly NodeId[]; node: NodeId; i: number; amnesiac: boolean }[]
  >();
  for (const inc of incs) {
    const segs: Segment[] = [];
    const mine = new Set<string>();
    let lastReg: ConfEntry | null = null;
    let lastConf: ConfEntry | null = null;
    let pendingTrans: ConfEntry | null = null;
    let firstTrans = true;
    for (const e of inc.entries) {
      if (e.kind === "confchg") {
        if (
          !sortedUnique(e.members) || !sortedUnique(e.left) ||
          !sortedUnique(e.joined)
        ) {
          report(
            "E3",
            `confchg ${e.type} ${ringText(e.ringId)} lists are not sorted sets`,
            [inc.node],
            e.i,
          );
        }
        if (e.type === "REG") {
          // E2: self inclusion.
          if (!e.members.includes(inc.node)) {
            report(
              "E2",
              `REG ${ringText(e.ringId)} ${
                ids(e.members)
              } does not contain node ${inc.node}`,
              [inc.node],
              e.i,
            );
          }
          // E1: per incarnation the ring seq strictly increases.
          if (lastReg !== null && !(e.ringId.seq > lastReg.ringId.seq)) {
            report(
              "E1",
              `ring seq does not increase: REG ${
                ringText(e.ringId)
              } after REG ${ringText(lastReg.ringId)} (incarnation ${inc.inc})`,
              [inc.node],
              e.i,
            );
          }
          // E3: REG follows a TRANS with the same ring id.
          if (pendingTrans === null) {
            report("E3", `REG ${ringText(e.ringId)} not preceded by a TRANS`, [
              inc.node,
            ], e.i);
          } else {
            if (!sameRingId(pendingTrans.ringId, e.ringId)) {
              report(
                "E3",
                `TRANS ring id ${
                  ringText(pendingTrans.ringId)
                } differs from the REG ${ringText(e.ringId)} it precedes`,
                [inc.node],
                e.i,
              );
            }
            const t = pendingTrans.members;
            const oldMembers = lastReg?.members ?? [];
            if (
              !t.every((x) => e.members.includes(x) && oldMembers.includes(x))
            ) {
              report(
                "E3",
                `TRANS members ${ids(t)} not within old ${
                  ids(oldMembers)
                } ∩ new ${ids(e.members)} (ring ${ringText(e.ringId)})`,
                [inc.node],
                pendingTrans.i,
              );
            }
            if (!sameSet(pendingTrans.left, minus(oldMembers, t))) {
              report(
                "E3",
                `TRANS left ${ids(pendingTrans.left)} != old ${
                  ids(oldMembers)
                } \\ T ${ids(t)} (ring ${ringText(e.ringId)})`,
                [inc.node],
                pendingTrans.i,
              );
            }
            if (pendingTrans.joined.length !== 0) {
              report(
                "E3",
                `TRANS ${ringText(e.ringId)} has joined ${
                  ids(pendingTrans.joined)
                }`,
                [inc.node],
                pendingTrans.i,
              );
            }
            if (!sameSet(e.joined, minus(e.members, t))) {
              report(
                "E3",
                `REG joined ${ids(e.joined)} != new ${ids(e.members)} \\ T ${
                  ids(t)
                } (ring ${ringText(e.ringId)})`,
                [inc.node],
                e.i,
              );
            }
            if (e.left.length !== 0) {
              report(
                "E3",
                `REG ${ringText(e.ringId)} has left ${ids(e.left)}`,
                [inc.node],
                e.i,
              );
            }
          }
          pendingTrans = null;
          lastReg = e;
          mine.add(ck(e));
          const rk = ringText(e.ringId);
          const list = regByRing.get(rk) ?? [];
          list.push({
            members: e.members,
            node: inc.node,
            i: e.i,
            amnesiac: inc.storage === "lost" || inc.storage === "rolled_back",
          });
          regByRing.set(rk, list);
          segs.push({ conf: e, origin: e, delivers: [] });
        } else {
          // TRANS: E2 (self inclusion, except the first after start).
          if (
            !e.members.includes(inc.node) &&
            !(firstTrans && e.members.length === 0)
          ) {
            report(
              "E2",
              `TRANS ${ringText(e.ringId)} ${
                ids(e.members)
              } does not contain node ${inc.node}`,
              [inc.node],
              e.i,
            );
          }
          if (
            pendingTrans !== null ||
            (lastConf !== null && lastConf.type === "TRANS")
          ) {
            report("E3", `two TRANS in a row (ring ${ringText(e.ringId)})`, [
              inc.node,
            ], e.i);
          }
          firstTrans = false;
          pendingTrans = e;
          segs.push({ conf: e, origin: lastReg, delivers: [] });
        }
        lastConf = e;
      } else if (e.kind === "deliver") {
        const seg = segs[segs.length - 1];
        if (seg === undefined) {
          report(
            "E3",
            `delivery of ${e.msg} before any configuration`,
            [inc.node],
            e.i,
            e.msg === null ? [] : [e.msg],
          );
          continue;
        }
        seg.delivers.push(e);
      }
    }
    segmentsOf.set(inc, segs);
    installed.set(inc, mine);
  }

  // ---- E1 (global): a ring id names one member set. A reuse is excused when
  // one of the installers restarted without its ring-seq file (TOTEM.md 3.9).
  for (const [rk, list] of regByRing) {
    const first = list[0];
    for (const other of list) {
      if (!sameSet(first.members, other.members)) {
        const excused = list.some((x) => x.amnesiac);
        if (!excused) {
          report(
            "E1",
            `ring ${rk} installed with different members: ${
              ids(first.members)
            } at node ${first.node}, ${
              ids(other.members)
            } at node ${other.node}`,
            [first.node, other.node],
            Math.max(first.i, other.i),
          );
        }
        break;
      }
    }
  }

  // ---- Submissions.
  const submits = new Map<string, { entry: SubmitEntry; inc: Incarnation }>();
  for (const inc of incs) {
    for (const e of inc.entries) {
      if (e.kind === "submit") submits.set(e.msg, { entry: e, inc });
    }
  }

  // ---- E4, E5, E6 (seq), per delivery.
  const originOf = new Map<string, { key: string; node: NodeId; i: number }>();
  const seqMap = new Map<
    string,
    Map<number, { msg: string; node: NodeId; i: number }>
  >();
  /** Delivery sequences per incarnation (all segments, in order). */
  const deliveredSeq = new Map<Incarnation, string[]>();
  for (const inc of incs) {
    const seen = new Set<string>();
    const order: string[] = [];
    const lastSeqInOrigin = new Map<string, number>();
    for (const seg of segmentsOf.get(inc)!) {
      for (const d of seg.delivers) {
        if (d.msg === null) {
          report(
            "E4",
            `node ${inc.node} delivered a corrupted or foreign payload (from ${d.sender}, seq ${d.seq})`,
            [inc.node],
            d.i,
          );
          continue;
        }
        const id = parseMsgKey(d.msg);
        // E4: at most once, and only what was submitted, after it was.
        if (seen.has(d.msg)) {
          report(
            "E4",
            `node ${inc.node} delivered ${d.msg} twice in incarnation ${inc.inc}`,
            [inc.node],
            d.i,
            [d.msg],
          );
          continue;
        }
        seen.add(d.msg);
        order.push(d.msg);
        const sub = submits.get(d.msg);
        if (sub === undefined) {
          report(
            "E4",
            `node ${inc.node} delivered ${d.msg}, which was never accepted from its sender`,
            [inc.node, id.sender],
            d.i,
            [d.msg],
          );
        } else if (sub.entry.i > d.i) {
          report(
            "E4",
            `node ${inc.node} delivered ${d.msg} before it was submitted`,
            [inc.node, id.sender],
            d.i,
            [d.msg],
          );
        }
        if (d.sender !== id.sender) {
          report(
            "E4",
            `node ${inc.node} delivered ${d.msg} with sender ${d.sender}`,
            [inc.node, id.sender],
            d.i,
            [d.msg],
          );
        }
        // E5: one origin configuration, containing the sender.
        const origin = seg.origin;
        if (origin === null) {
          report(
            "E5",
            `node ${inc.node} delivered ${d.msg} in the first TRANS after start`,
            [inc.node],
            d.i,
            [d.msg],
          );
          continue;
        }
        if (!sameRingId(origin.ringId, d.ringId)) {
          report(
            "E5",
            `node ${inc.node} delivered ${d.msg} of ring ${
              ringText(d.ringId)
            } in ${seg.conf.type} segment of ring ${
              ringText(seg.conf.ringId)
            } (origin should be ${ringText(origin.ringId)})`,
            [inc.node],
            d.i,
            [d.msg],
          );
          continue;
        }
        const key = ck(origin);
        const prev = originOf.get(d.msg);
        if (prev === undefined) {
          originOf.set(d.msg, { key, node: inc.node, i: d.i });
          if (!origin.members.includes(id.sender)) {
            report(
              "E5",
              `${d.msg} delivered in configuration ${key} that does not contain its sender`,
              [inc.node, id.sender],
              d.i,
              [d.msg],
            );
          }
          const senderInc = incByKey.get(incKey(id.sender, id.inc));
          if (senderInc !== undefined && !installed.get(senderInc)!.has(key)) {
            report(
              "E5",
              `${d.msg} got its seq in configuration ${key}, which its sender's incarnation never installed`,
              [inc.node, id.sender],
              d.i,
              [d.msg],
            );
          }
        } else if (prev.key !== key) {
          report(
            "E5",
            `${d.msg} delivered in configuration ${prev.key} at node ${prev.node} but in ${key} at node ${inc.node}`,
            [prev.node, inc.node],
            d.i,
            [d.msg],
          );
        }
        // E6: within a configuration, one message per seq, ascending seqs.
        let bySeq = seqMap.get(key);
        if (bySeq === undefined) {
          bySeq = new Map();
          seqMap.set(key, bySeq);
        }
        const other = bySeq.get(d.seq);
        if (other === undefined) {
          bySeq.set(d.seq, { msg: d.msg, node: inc.node, i: d.i });
        } else if (other.msg !== d.msg) {
          report(
            "E6",
            `seq ${d.seq} of configuration ${key} is ${other.msg} at node ${other.node} but ${d.msg} at node ${inc.node}`,
            [other.node, inc.node],
            d.i,
            [other.msg, d.msg],
          );
        }
        const last = lastSeqInOrigin.get(key);
        if (last !== undefined && !seqLt(last, d.seq)) {
          report(
            "E6",
            `node ${inc.node} delivered seq ${d.seq} after seq ${last} in configuration ${key}`,
            [inc.node],
            d.i,
            [d.msg],
          );
        }
        lastSeqInOrigin.set(key, d.seq);
      }
    }
    deliveredSeq.set(inc, order);
  }

  // ---- E6: the union of delivery orders is acyclic.
  checkAcyclic(incs, deliveredSeq, report);

  // ---- E7: REG segments are prefix-related and gap-free.
  const regSeqs = new Map<
    string,
    { inc: Incarnation; msgs: string[]; lastI: number }[]
  >();
  for (const inc of incs) {
    for (const seg of segmentsOf.get(inc)!) {
      if (seg.conf.type !== "REG") continue;
      const key = ck(seg.conf);
      const msgs: string[] = [];
      let prev: DeliverEntry | null = null;
      for (const d of seg.delivers) {
        if (d.msg === null) continue;
        if (
          prev !== null && ((prev.seq + 1) >>> 0) !== d.seq &&
          sameRingId(prev.ringId, d.ringId)
        ) {
          report(
            "E7",
            `node ${inc.node} skipped from seq ${prev.seq} to ${d.seq} in REG ${key}`,
            [inc.node],
            d.i,
            [d.msg],
          );
        }
        prev = d;
        msgs.push(d.msg);
      }
      const list = regSeqs.get(key) ?? [];
      list.push({
        inc,
        msgs,
        lastI: seg.delivers.length > 0
          ? seg.delivers[seg.delivers.length - 1].i
          : seg.conf.i,
      });
      regSeqs.set(key, list);
    }
  }
  for (const [key, list] of regSeqs) {
    let longest = list[0];
    for (const x of list) if (x.msgs.length > longest.msgs.length) longest = x;
    for (const x of list) {
      const k = firstMismatch(x.msgs, longest.msgs);
      if (k >= 0) {
        report(
          "E7",
          `REG ${key}: delivery ${k} is ${
            x.msgs[k]
          } at node ${x.inc.node} but ${
            longest.msgs[k]
          } at node ${longest.inc.node}`,
          [x.inc.node, longest.inc.node],
          Math.max(x.lastI, longest.lastI),
          [x.msgs[k], longest.msgs[k]],
        );
      }
    }
  }

  // ---- E8: same c, same c', both in T ⇒ identical REG(c)+TRANS(c→c').
  const transitions = new Map<
    string,
    { inc: Incarnation; t: readonly NodeId[]; msgs: string[]; i: number }[]
  >();
  for (const inc of incs) {
    const segs = segmentsOf.get(inc)!;
    for (let k = 0; k + 2 < segs.length; k++) {
      const [reg, trans, next] = [segs[k], segs[k + 1], segs[k + 2]];
      if (
        reg.conf.type !== "REG" || trans.conf.type !== "TRANS" ||
        next.conf.type !== "REG"
      ) continue;
      const key = `${ck(reg.conf)} -> ${ck(next.conf)}`;
      const msgs = [...reg.delivers, ...trans.delivers].flatMap((d) =>
        d.msg === null ? [] : [d.msg]
      );
      const list = transitions.get(key) ?? [];
      list.push({ inc, t: trans.conf.members, msgs, i: next.conf.i });
      transitions.set(key, list);
    }
  }
  for (const [key, list] of transitions) {
    const first = list[0];
    for (const x of list.slice(1)) {
      if (!sameSet(x.t, first.t)) {
        report(
          "E8",
          `transition ${key}: TRANS ${
            ids(first.t)
          } at node ${first.inc.node} but ${ids(x.t)} at node ${x.inc.node}`,
          [first.inc.node, x.inc.node],
          x.i,
        );
        continue;
      }
      if (!first.t.includes(x.inc.node) || !first.t.includes(first.inc.node)) {
        continue;
      }
      const k = firstMismatch(first.msgs, x.msgs);
      if (k >= 0 || first.msgs.length !== x.msgs.length) {
        const at = k >= 0 ? k : Math.min(first.msgs.length, x.msgs.length);
        report(
          "E8",
          `transition ${key}: nodes ${first.inc.node} and ${x.inc.node} delivered different sequences (${first.msgs.length} vs ${x.msgs.length} messages, first difference at ${at}: ${
            first.msgs[at] ?? "none"
          } vs ${x.msgs[at] ?? "none"})`,
          [first.inc.node, x.inc.node],
          Math.max(first.i, x.i),
          [first.msgs[at], x.msgs[at]].filter((m): m is string =>
            m !== undefined
          ),
        );
      }
    }
  }

  const eventual = options.eventual ?? history.quietStartMs !== null;

  // ---- E9: every accepted message of a surviving incarnation is self-delivered.
  for (const inc of eventual ? incs : []) {
    if (inc.crashI !== null) continue;
    const got = new Set(deliveredSeq.get(inc)!);
    for (const e of inc.entries) {
      if (e.kind === "submit" && !got.has(e.msg)) {
        report(
          "E9",
          `node ${inc.node} never delivered its own ${e.msg} (submitted at ${
            e.t.toFixed(1)
          }ms)`,
          [inc.node],
          e.i,
          [e.msg],
        );
      }
    }
  }

  // ---- E10: FIFO per sender incarnation, and causal order.
  checkFifoCausal(incs, deliveredSeq, report);

  // ---- E11: safe delivery.
  if (eventual) checkSafe(incs, segmentsOf, installed, ck, report);

  // ---- E12: after the first gap of a TRANS segment only T senders.
  const firstAppSeq = new Map<string, number>();
  for (const [key, bySeq] of seqMap) {
    let min: number | null = null;
    for (const s of bySeq.keys()) if (min === null || seqLt(s, min)) min = s;
    if (min !== null) firstAppSeq.set(key, min);
  }
  for (const inc of incs) {
    const segs = segmentsOf.get(inc)!;
    for (let k = 0; k < segs.length; k++) {
      const seg = segs[k];
      if (
        seg.conf.type !== "TRANS" || seg.origin === null ||
        seg.delivers.length === 0
      ) continue;
      const key = ck(seg.origin);
      const prevReg = segs[k - 1];
      const regDelivers = prevReg !== undefined && prevReg.conf === seg.origin
        ? prevReg.delivers
        : [];
      let expected: number | null = regDelivers.length > 0
        ? (regDelivers[regDelivers.length - 1].seq + 1) >>> 0
        : firstAppSeq.get(key) ?? null;
      let gap = false;
      for (const d of seg.delivers) {
        if (expected !== null && d.seq !== expected) gap = true;
        if (gap && !seg.conf.members.includes(d.sender)) {
          report(
            "E12",
            `node ${inc.node} delivered ${d.msg} (seq ${d.seq}, sender ${d.sender} not in T ${
              ids(seg.conf.members)
            }) after a gap in TRANS ${ringText(seg.conf.ringId)}`,
            [inc.node, d.sender],
            d.i,
            d.msg === null ? [] : [d.msg],
          );
        }
        expected = (d.seq + 1) >>> 0;
      }
    }
  }

  // ---- L1: liveness after the quiet phase.
  const liveness = options.liveness ?? history.quietStartMs !== null;
  if (liveness && history.quietStartMs !== null) {
    checkLiveness(history, incs, report);
  }

  const out: Violation[] = [];
  for (const p of PROPERTIES) {
    const list = found.get(p) ?? [];
    const total = counts.get(p) ?? 0;
    if (total > list.length && list.length > 0) {
      const last = list[list.length - 1];
      list[list.length - 1] = {
        ...last,
        message: `${last.message} (and ${
          total - list.length
        } more ${p} violations)`,
      };
    }
    out.push(...list);
  }
  return out;
}

type Reporter = (
  property: Property,
  message: string,
  nodes: Iterable<NodeId>,
  atIndex: number | null,
  msgs?: readonly string[],
) => void;

/** Index of the first position where `a` is not a prefix of `b`, or -1. */
function firstMismatch(a: readonly string[], b: readonly string[]): number {
  for (let k = 0; k < a.length; k++) {
    if (k >= b.length || a[k] !== b[k]) return k;
  }
  return -1;
}

function checkAcyclic(
  incs: readonly Incarnation[],
  deliveredSeq: Map<Incarnation, string[]>,
  report: Reporter,
): void {
  const succ = new Map<string, Set<string>>();
  const indeg = new Map<string, number>();
  const touch = (m: string): void => {
    if (!indeg.has(m)) indeg.set(m, 0);
  };
  for (const inc of incs) {
    const seq = deliveredSeq.get(inc)!;
    for (let k = 0; k < seq.length; k++) {
      touch(seq[k]);
      if (k === 0) continue;
      const a = seq[k - 1];
      const b = seq[k];
      let s = succ.get(a);
      if (s === undefined) {
        s = new Set();
        succ.set(a, s);
      }
      if (!s.has(b)) {
        s.add(b);
        indeg.set(b, (indeg.get(b) ?? 0) + 1);
      }
    }
  }
  const ready: string[] = [];
  for (const [m, d] of indeg) if (d === 0) ready.push(m);
  let done = 0;
  while (ready.length > 0) {
    const m = ready.pop()!;
    done++;
    for (const n of succ.get(m) ?? []) {
      const d = indeg.get(n)! - 1;
      indeg.set(n, d);
      if (d === 0) ready.push(n);
    }
  }
  if (done === indeg.size) return;
  const stuck = [...indeg].filter(([, d]) => d > 0).map(([m]) => m).sort();
  const nodes = new Set<NodeId>();
  let atIndex: number | null = null;
  for (const inc of incs) {
    if (deliveredSeq.get(inc)!.some((m) => stuck.includes(m))) {
      nodes.add(inc.node);
    }
  }
  for (const inc of incs) {
    for (const e of inc.entries) {
      if (e.kind === "deliver" && e.msg !== null && stuck.includes(e.msg)) {
        atIndex = Math.max(atIndex ?? 0, e.i);
      }
    }
  }
  report(
    "E6",
    `delivery orders of different nodes form a cycle over ${stuck.length} messages (e.g. ${
      stuck.slice(0, 4).join(", ")
    })`,
    nodes,
    atIndex,
    stuck.slice(0, 8),
  );
}

function checkFifoCausal(
  incs: readonly Incarnation[],
  deliveredSeq: Map<Incarnation, string[]>,
  report: Reporter,
): void {
  // FIFO: per receiver incarnation, per sender incarnation, counters ascend.
  for (const inc of incs) {
    const last = new Map<string, number>();
    for (const e of inc.entries) {
      if (e.kind !== "deliver" || e.msg === null) continue;
      const id = parseMsgKey(e.msg);
      const sk = incKey(id.sender, id.inc);
      const prev = last.get(sk);
      if (prev !== undefined && id.counter <= prev) {
        report(
          "E10",
          `node ${inc.node} delivered ${e.msg} after ${sk}/${prev} (not in submit order)`,
          [inc.node, id.sender],
          e.i,
          [e.msg],
        );
      }
      last.set(sk, Math.max(prev ?? 0, id.counter));
    }
  }
  // Causal: m1 delivered at the sender p before p submitted m2 ⇒ every node
  // delivering both delivers m1 first.
  const pos = new Map<Incarnation, Map<string, number>>();
  for (const inc of incs) {
    const m = new Map<string, number>();
    deliveredSeq.get(inc)!.forEach((msg, k) => m.set(msg, k));
    pos.set(inc, m);
  }
  for (const p of incs) {
    // Submissions of p with the number of deliveries p had seen before each.
    const subs: { msg: string; prefix: number; i: number }[] = [];
    let delivered = 0;
    const seen = new Set<string>();
    const dseq: string[] = [];
    for (const e of p.entries) {
      if (e.kind === "deliver" && e.msg !== null && !seen.has(e.msg)) {
        seen.add(e.msg);
        dseq.push(e.msg);
        delivered++;
      } else if (e.kind === "submit") {
        subs.push({ msg: e.msg, prefix: delivered, i: e.i });
      }
    }
    if (subs.length === 0 || dseq.length === 0) continue;
    for (const q of incs) {
      const posQ = pos.get(q)!;
      // prefMax[k] = max position at q of p's first k deliveries (-1: none).
      const prefMax = new Int32Array(dseq.length + 1);
      prefMax[0] = -1;
      for (let k = 0; k < dseq.length; k++) {
        const at = posQ.get(dseq[k]);
        prefMax[k + 1] = Math.max(prefMax[k], at ?? -1);
      }
      for (const s of subs) {
        const at2 = posQ.get(s.msg);
        if (at2 === undefined || s.prefix === 0) continue;
        if (prefMax[s.prefix] > at2) {
          const qSeq = deliveredSeq.get(q)!;
          const m1 = dseq.slice(0, s.prefix).find((m) =>
            (posQ.get(m) ?? -1) > at2
          ) ?? "?";
          report(
            "E10",
            `node ${p.node} submitted ${s.msg} after delivering ${m1}, but node ${q.node} delivered ${s.msg} before ${m1} (position ${at2} of ${qSeq.length})`,
            [p.node, q.node],
            s.i,
            [m1, s.msg],
          );
        }
      }
    }
  }
}

function checkSafe(
  incs: readonly Incarnation[],
  segmentsOf: Map<Incarnation, Segment[]>,
  installed: Map<Incarnation, Set<string>>,
  ck: (c: ConfEntry) => string,
  report: Reporter,
): void {
  // Who delivered what (any segment), per incarnation.
  const got = new Map<Incarnation, Set<string>>();
  for (const inc of incs) {
    const s = new Set<string>();
    for (const seg of segmentsOf.get(inc)!) {
      for (const d of seg.delivers) if (d.msg !== null) s.add(d.msg);
    }
    got.set(inc, s);
  }
  const incsOf = new Map<NodeId, Incarnation[]>();
  for (const inc of incs) {
    const list = incsOf.get(inc.node) ?? [];
    list.push(inc);
    incsOf.set(inc.node, list);
  }
  const checked = new Set<string>();
  for (const p of incs) {
    for (const seg of segmentsOf.get(p)!) {
      if (seg.origin === null) continue;
      const originKey = ck(seg.origin);
      for (const d of seg.delivers) {
        if (!d.safe || d.msg === null) continue;
        const required = seg.conf.type === "REG"
          ? seg.origin.members
          : seg.conf.members;
        const where = seg.conf.type === "REG"
          ? `REG ${originKey}`
          : `TRANS ${
            ids(seg.conf.members)
          } of ring ${seg.conf.ringId.rep}.${seg.conf.ringId.seq}`;
        const once = `${d.msg}|${seg.conf.type}|${ck(seg.conf)}`;
        if (checked.has(once)) continue;
        checked.add(once);
        for (const x of required) {
          // The incarnation of x that was in c; else the one alive at delivery.
          const cands = incsOf.get(x) ?? [];
          let member = cands.find((c) => installed.get(c)!.has(originKey)) ??
            null;
          let note = "";
          if (member === null) {
            member = cands.find((c) =>
              c.startI < d.i && (c.crashI === null || c.crashI > d.i)
            ) ?? null;
            note = " (it never installed that configuration)";
          }
          if (member === null || member.crashI !== null) continue; // it crashed
          // A transitional configuration binds only the members that install
          // the ring it leads to: a member whose recovery failed (token lost
          // in RECOVERY) never joins T from its own point of view and moves
          // on to another configuration; for it the others' ring is as if
          // it had failed (EVS paper, transitional configurations).
          if (
            seg.conf.type === "TRANS" &&
            ![...installed.get(member)!].some((k) =>
              k.startsWith(`${seg.conf.ringId.rep}.${seg.conf.ringId.seq}/`)
            )
          ) continue;
          if (!got.get(member)!.has(d.msg)) {
            report(
              "E11",
              `node ${p.node} delivered safe ${d.msg} in ${where}, but member ${x} never delivered it and did not crash${note}`,
              [p.node, x],
              d.i,
              [d.msg],
            );
          }
        }
      }
    }
  }
}

function checkLiveness(
  history: History,
  incs: readonly Incarnation[],
  report: Reporter,
): void {
  const deadline = history.l1DeadlineMs ?? history.endMs;
  const lastInc = new Map<NodeId, Incarnation>();
  for (const inc of incs) lastInc.set(inc.node, inc);
  const live: Incarnation[] = [];
  for (const node of history.nodes) {
    const inc = lastInc.get(node);
    if (inc !== undefined && inc.crashI === null) live.push(inc);
  }
  const liveIds = live.map((x) => x.node);
  if (live.length === 0) return;
  let firstKey: string | null = null;
  for (const inc of live) {
    let lastConf: ConfEntry | null = null;
    let lastState: Extract<HistoryEntry, { kind: "state" }> | null = null;
    for (const e of inc.entries) {
      if (e.kind === "confchg") lastConf = e;
      if (e.kind === "state") lastState = e;
    }
    const lastI = inc.entries.length > 0
      ? inc.entries[inc.entries.length - 1].i
      : inc.startI;
    if (lastConf === null || lastConf.type !== "REG") {
      report(
        "L1",
        `node ${inc.node} ends the run without a regular configuration`,
        [inc.node],
        lastI,
      );
      continue;
    }
    if (!sameSet(lastConf.members, liveIds)) {
      report(
        "L1",
        `node ${inc.node} ends in ${
          confKey(lastConf)
        }, not in one ring of all live nodes ${ids(liveIds)}`,
        [inc.node],
        lastConf.i,
      );
      continue;
    }
    if (lastConf.t > deadline) {
      report(
        "L1",
        `node ${inc.node} installed the final ring ${confKey(lastConf)} at ${
          lastConf.t.toFixed(1)
        }ms, after the L1 deadline ${
          deadline.toFixed(1)
        }ms (quiet since ${history.quietStartMs}ms)`,
        [inc.node],
        lastConf.i,
      );
    }
    if (lastState !== null && lastState.to !== "operational") {
      report(
        "L1",
        `node ${inc.node} ends in state ${lastState.to}`,
        [inc.node],
        lastState.i,
      );
    }
    const key = confKey(lastConf);
    if (firstKey === null) firstKey = key;
    else if (firstKey !== key) {
      report(
        "L1",
        `live nodes end in different configurations: ${firstKey} and ${key}`,
        liveIds,
        lastConf.i,
      );
    }
  }
}
