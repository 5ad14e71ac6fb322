/**
 * CPG-level checks over the records of a CPG simulation (cpg_sim.ts):
 * what each simulated client saw (views and deliveries, each tagged with
 * the ordered Totem message that caused it) and what each node's
 * executive and CPG engine held when a sync round completed.
 *
 * Properties (TOTEM.md 9.1 S1/S2 and cpg_overview(3) virtual synchrony):
 * - CV  Same view: two clients that see a view change caused by the same
 *       ordered message see the same member list.
 * - CO  Order: events two clients of a group both saw occur in the same
 *       relative order.
 * - CS  Virtual synchrony: clients that are members of view V and both go
 *       from V straight to the same next view V', seeing the same members
 *       leave on the way, delivered the same messages, in the same order,
 *       between V and V'.
 * - CM  Membership: a client delivers only while it is a member, only
 *       messages from members of its current view, only messages some
 *       client of that group really sent, and each at most once.
 * - CD  Self delivery: a client alive at the end delivered every message
 *       it sent (accepted by the daemon).
 * - S1  Members of a ring that complete its sync activate the same
 *       services in the same order.
 * - S2  After sync completes in ring c all members of c have identical
 *       process lists.
 * - ST  No CPG message from clients was delivered while sync ran.
 * - CL  Liveness (runs with a quiet end): all nodes completed sync in one
 *       ring of all of them, every client still joined sees the same final
 *       view equal to the truth, and the same messages after it.
 *
 * @module
 */
import type { NodeId } from "../totem/types.ts";

/** A view change as one client saw it (consecutive callbacks of one message merged). */
export interface ViewEvent {
  readonly kind: "view";
  /** The ordered message that caused it. */
  readonly tag: string;
  /** The configuration it was delivered in (see `DeliverEvent.seg`). */
  readonly seg: string;
  /** Members after the change, "node:pid" sorted. */
  readonly members: readonly string[];
  readonly left: readonly string[];
  readonly joined: readonly string[];
}

/** One delivery as a client saw it. */
export interface DeliverEvent {
  readonly kind: "deliver";
  readonly tag: string;
  /**
   * The configuration the node delivered it in: "R" for the regular
   * configuration of its ring, or the transitional configuration ("T",
   * next ring, members). Nodes in the same configuration delivered the same
   * messages before it (EVS E7, E8); nodes in different transitional
   * configurations may not have (E12), so their views of it may differ.
   */
  readonly seg: string;
  /** Embedded message id, or null if the payload was not one of ours. */
  readonly msg: string | null;
  /** "node:pid" of the sender. */
  readonly sender: string;
}

/** A client event. */
export type ClientEvent = ViewEvent | DeliverEvent;

/** Everything recorded for one client connection. */
export interface ConnRecord {
  readonly key: string;
  readonly node: NodeId;
  readonly pid: number;
  readonly group: string;
  readonly events: ClientEvent[];
  /** Message ids the daemon accepted from this connection. */
  readonly accepted: string[];
  /** How the connection ended (or "alive"). */
  end: "alive" | "closed" | "crashed";
  /** Client-side join state at the end. */
  state: "unjoined" | "joining" | "joined" | "leaving";
}

/** A completed sync round at one node. */
export interface SyncRecord {
  readonly node: NodeId;
  readonly inc: number;
  readonly ring: string;
  readonly members: readonly NodeId[];
  readonly services: readonly number[];
  /** The CPG process list right after activation, one string. */
  readonly processInfo: string;
  readonly atMs: number;
}

/** What the checks read. */
export interface CpgRunRecord {
  readonly nodes: readonly NodeId[];
  readonly conns: readonly ConnRecord[];
  readonly syncs: readonly SyncRecord[];
  /** Violations the simulator found while running (ST, probe checks). */
  readonly online: readonly CpgViolation[];
  /** Final state, for the liveness checks (null: no quiet end). */
  readonly final: {
    /** Nodes up at the end. */
    readonly up: readonly NodeId[];
    /** Per node up: its CPG process list as a string. */
    readonly processInfo: ReadonlyMap<NodeId, string>;
  } | null;
}

/** One broken property. */
export interface CpgViolation {
  readonly property: string;
  readonly message: string;
}

/** Runs every check; `eventual` adds the liveness checks (CD, CL). */
export function checkCpg(
  run: CpgRunRecord,
  options: { eventual: boolean },
): CpgViolation[] {
  const out: CpgViolation[] = [...run.online];
  const push = (property: string, message: string): void => {
    if (out.length < 200) out.push({ property, message });
  };
  checkSyncs(run, push);
  const byGroup = new Map<string, ConnRecord[]>();
  for (const c of run.conns) {
    const list = byGroup.get(c.group) ?? [];
    list.push(c);
    byGroup.set(c.group, list);
  }
  const accepted = new Map<string, ConnRecord>();
  for (const c of run.conns) for (const m of c.accepted) accepted.set(m, c);
  for (
    const [group, conns] of [...byGroup].sort((a, b) => (a[0] < b[0] ? -1 : 1))
  ) {
    checkGroup(group, conns, accepted, push);
  }
  if (options.eventual) checkEventual(run, byGroup, push);
  return out;
}

type Push = (property: string, message: string) => void;

function checkSyncs(run: CpgRunRecord, push: Push): void {
  const byRing = new Map<string, SyncRecord>();
  for (const s of run.syncs) {
    const first = byRing.get(s.ring);
    if (first === undefined) {
      byRing.set(s.ring, s);
      continue;
    }
    if (first.services.join(",") !== s.services.join(",")) {
      push(
        "S1",
        `ring ${s.ring}: node ${first.node} activated [${first.services}] but node ${s.node} [${s.services}]`,
      );
    }
    if (first.members.join(",") !== s.members.join(",")) {
      push(
        "S1",
        `ring ${s.ring}: members [${first.members}] at ${first.node}, [${s.members}] at ${s.node}`,
      );
    }
    if (first.processInfo !== s.processInfo) {
      push(
        "S2",
        `ring ${s.ring}: node ${first.node} holds {${first.processInfo}} but node ${s.node} holds {${s.processInfo}}`,
      );
    }
  }
}

function selfId(c: ConnRecord): string {
  return `${c.node}:${c.pid}`;
}

function checkGroup(
  group: string,
  conns: readonly ConnRecord[],
  accepted: ReadonlyMap<string, ConnRecord>,
  push: Push,
): void {
  // CV: one member list per view tag.
  const viewMembers = new Map<string, { members: string; conn: string }>();
  // CS: one delivery sequence per (view, next view) pair of a member.
  const segments = new Map<string, { seq: string; conn: string }>();
  for (const c of conns) {
    const me = selfId(c);
    let current: ViewEvent | null = null;
    let segment: string[] = [];
    const seen = new Set<string>();
    for (const e of c.events) {
      if (e.kind === "view") {
        const members = e.members.join(",");
        const viewKey = `${e.tag}${e.seg}`;
        const prior = viewMembers.get(viewKey);
        if (prior === undefined) {
          viewMembers.set(viewKey, { members, conn: c.key });
        } else if (prior.members !== members) {
          push(
            "CV",
            `group ${group}: view ${viewKey} is [${prior.members}] at ${prior.conn} but [${members}] at ${c.key}`,
          );
        }
        if (current !== null && current.members.includes(me)) {
          // Members that left and came back inside one view change (a
          // node that fell into another transitional configuration) did
          // not move with us: compare only clients that saw the same
          // departures.
          const key = `${current.tag}${current.seg}>${viewKey}|${
            [...e.left].sort()
          }`;
          const seq = segment.join(" ");
          const other = segments.get(key);
          if (other === undefined) segments.set(key, { seq, conn: c.key });
          else if (other.seq !== seq) {
            push(
              "CS",
              `group ${group}: between views ${key} ${other.conn} delivered [${
                clip(other.seq)
              }] but ${c.key} [${clip(seq)}]`,
            );
          }
        }
        current = e;
        segment = [];
        continue;
      }
      // A delivery.
      segment.push(e.msg ?? `?${e.tag}`);
      if (current === null || !current.members.includes(me)) {
        push(
          "CM",
          `group ${group}: ${c.key} delivered ${e.msg} (${e.tag}) while not a member`,
        );
      } else if (!current.members.includes(e.sender)) {
        push(
          "CM",
          `group ${group}: ${c.key} delivered ${e.msg} from ${e.sender}, not in its view ${current.tag} [${current.members}]`,
        );
      }
      if (e.msg === null) {
        push(
          "CM",
          `group ${group}: ${c.key} delivered a message that is not a test message (${e.tag})`,
        );
        continue;
      }
      if (seen.has(e.msg)) {
        push("CM", `group ${group}: ${c.key} delivered ${e.msg} twice`);
      }
      seen.add(e.msg);
      const sender = accepted.get(e.msg);
      if (sender === undefined) {
        push(
          "CM",
          `group ${group}: ${c.key} delivered ${e.msg}, which no client sent`,
        );
      } else if (sender.group !== group || selfId(sender) !== e.sender) {
        push(
          "CM",
          `group ${group}: ${c.key} delivered ${e.msg} as from ${e.sender} but ${sender.key} sent it`,
        );
      }
    }
  }
  // CO: pairwise relative order of common events.
  const orders = conns.map((c) => {
    const tags: string[] = [];
    let last = "";
    for (const e of c.events) {
      const t = e.kind === "view" ? `v${e.tag}` : `d${e.tag}`;
      if (t !== last) tags.push(t);
      last = t;
    }
    return { key: c.key, tags, index: new Map(tags.map((t, i) => [t, i])) };
  });
  for (let i = 0; i < orders.length; i++) {
    for (let j = i + 1; j < orders.length; j++) {
      const p = orders[i];
      const q = orders[j];
      let lastQ = -1;
      let lastTag = "";
      for (const t of p.tags) {
        const k = q.index.get(t);
        if (k === undefined) continue;
        if (k < lastQ) {
          push(
            "CO",
            `group ${group}: ${p.key} saw ${lastTag} before ${t}, ${q.key} the other way round`,
          );
          break;
        }
        lastQ = k;
        lastTag = t;
      }
    }
  }
}

function checkEventual(
  run: CpgRunRecord,
  byGroup: Map<string, ConnRecord[]>,
  push: Push,
): void {
  const final = run.final;
  if (final === null) return;
  // CL: one ring of every node, synced everywhere.
  const lastSync = new Map<NodeId, SyncRecord>();
  for (const s of run.syncs) lastSync.set(s.node, s);
  const rings = new Set<string>();
  for (const n of final.up) {
    const s = lastSync.get(n);
    if (s === undefined) {
      push("CL", `node ${n} never completed a sync`);
      continue;
    }
    rings.add(s.ring);
    if (s.members.join(",") !== final.up.join(",")) {
      push(
        "CL",
        `node ${n} last synced ring ${s.ring} with [${s.members}], not all nodes [${final.up}]`,
      );
    }
  }
  if (rings.size > 1) {
    push(
      "CL",
      `nodes ended synced in different rings: ${[...rings].join(" ")}`,
    );
  }
  const infos = new Set(final.processInfo.values());
  if (infos.size > 1) {
    push(
      "CL",
      `nodes ended with different process lists: ${
        [...final.processInfo].map(([n, s]) => `${n}={${s}}`).join(" ")
      }`,
    );
  }
  for (const [group, conns] of byGroup) {
    const alive = conns.filter((c) => c.end === "alive");
    const truth = alive.filter((c) => c.state === "joined").map(selfId).sort(
      compareMember,
    ).join(",");
    const tails = new Map<string, { seq: string; conn: string }>();
    for (const c of alive) {
      // CD: every accepted message came back.
      const delivered = new Set<string>();
      for (const e of c.events) {
        if (e.kind === "deliver" && e.msg !== null) delivered.add(e.msg);
      }
      const missing = c.accepted.filter((m) => !delivered.has(m));
      if (missing.length > 0) {
        push(
          "CD",
          `group ${group}: ${c.key} never delivered its own ${
            missing.slice(0, 5).join(" ")
          }${missing.length > 5 ? ` (+${missing.length - 5})` : ""}`,
        );
      }
      if (c.state === "joining" || c.state === "leaving") {
        push("CL", `group ${group}: ${c.key} still ${c.state} at the end`);
      }
      if (c.state !== "joined") continue;
      let lastView: ViewEvent | null = null;
      let tail: string[] = [];
      for (const e of c.events) {
        if (e.kind === "view") {
          lastView = e;
          tail = [];
        } else tail.push(e.msg ?? "?");
      }
      const members = lastView?.members.join(",") ?? "";
      if (members !== truth) {
        push(
          "CL",
          `group ${group}: ${c.key} ends in view [${members}], but the joined clients are [${truth}]`,
        );
      }
      if (lastView !== null) {
        const key = `${lastView.tag}${lastView.seg}`;
        const other = tails.get(key);
        const seq = tail.join(" ");
        if (other === undefined) tails.set(key, { seq, conn: c.key });
        else if (other.seq !== seq) {
          push(
            "CL",
            `group ${group}: after the final view ${lastView.tag} ${other.conn} delivered [${
              clip(other.seq)
            }] but ${c.key} [${clip(seq)}]`,
          );
        }
      }
    }
    for (const [node, info] of final.processInfo) {
      const mine = info.split(" ").filter((e) => e.startsWith(`${group}@`)).map(
        (e) => e.slice(group.length + 1),
      );
      if (mine.join(",") !== truth) {
        push(
          "CL",
          `group ${group}: node ${node} ends with members [${mine}], but the joined clients are [${truth}]`,
        );
      }
    }
  }
}

/** Orders "node:pid" strings numerically. */
export function compareMember(a: string, b: string): number {
  const [an, ap] = a.split(":").map(Number);
  const [bn, bp] = b.split(":").map(Number);
  return an - bn || ap - bp;
}

function clip(s: string): string {
  return s.length > 300 ? `${s.slice(0, 300)}…` : s;
}
