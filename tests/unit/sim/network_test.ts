// Virtual network fault rules, the event queue, fault plans and payloads.
import {
  deepStrictEqual as assertEquals,
  ok as assert,
  throws as assertThrows,
} from "node:assert/strict";
import { Prng } from "../../../src/lib/prng.ts";
import { EventQueue } from "../../../src/sim/event_queue.ts";
import {
  FAULT_KINDS,
  generateFaultPlan,
  parseFaults,
  partitionRules,
} from "../../../src/sim/faults.ts";
import {
  decodeMsgPayload,
  encodeMsgPayload,
} from "../../../src/sim/history.ts";
import { Network } from "../../../src/sim/network.ts";
import { encodeFrame } from "../../../src/totem/codec.ts";
import { resolveTotemConfig } from "../../../src/totem/config.ts";

const RING = { rep: 1, seq: 4 };
const TOKEN = encodeFrame({
  type: "token",
  sender: 1,
  ringId: RING,
  tokenSeq: 1,
  seq: 0,
  aru: 0,
  aruAddr: 0,
  fcc: 0,
  backlog: 0,
  retransFlg: false,
  rtr: [],
});
const MCAST = encodeFrame({
  type: "mcast",
  sender: 1,
  ringId: RING,
  seq: 1,
  encapsulated: false,
  guarantee: "agreed",
  payload: new Uint8Array(8),
});

function net(): Network {
  return new Network({ nodes: [1, 2, 3], rng: new Prng(7) });
}

Deno.test("Network.route() keeps a link FIFO with a fixed base latency", () => {
  const n = net();
  const a = n.route(1, 2, MCAST, 0);
  const b = n.route(1, 2, MCAST, 0.01);
  assertEquals(a.length, 1);
  assert(b[0].atMs > a[0].atMs);
  assertEquals(a[0].atMs, n.baseDelay(1, 2));
});

Deno.test("Network.targets() sends 'all' to every node but the sender", () => {
  assertEquals(net().targets(2, "all"), [1, 3]);
  assertEquals(net().targets(2, 3), [3]);
});

Deno.test("Network rule with lossP 1 cuts one direction only (one-way link)", () => {
  const n = net();
  n.addRule({ from: [1], to: [2], lossP: 1 });
  assertEquals(n.route(1, 2, MCAST, 0), []);
  assertEquals(n.route(2, 1, MCAST, 0).length, 1);
  assertEquals(n.route(1, 3, MCAST, 0).length, 1);
  assertEquals(n.stats.dropped, 1);
});

Deno.test("Network rule matches by message type (drop tokens, pass mcasts)", () => {
  const n = net();
  n.addRule({ types: ["token"], lossP: 1 });
  assertEquals(n.route(1, 2, TOKEN, 0), []);
  assertEquals(n.route(1, 2, MCAST, 0).length, 1);
});

Deno.test("Network rule with `remaining` expires after that many drops", () => {
  const n = net();
  n.addRule({ from: [1], types: ["token"], lossP: 1, remaining: 2 });
  assertEquals(n.route(1, 2, TOKEN, 0), []);
  assertEquals(n.route(1, 3, TOKEN, 0), []);
  assertEquals(n.route(1, 2, TOKEN, 0).length, 1);
  assertEquals(n.rules.length, 0);
});

Deno.test("Network rule duplicates and delays", () => {
  const n = net();
  n.addRule({ dupP: 1, dupSpreadMs: 100 });
  const copies = n.route(1, 2, MCAST, 0);
  assertEquals(copies.length, 2);
  assert(
    copies[1].atMs >= copies[0].atMs && copies[1].atMs <= copies[0].atMs + 100,
  );
  const m = net();
  m.addRule({ delayMs: [500, 600] });
  const [late] = m.route(1, 2, MCAST, 0);
  assert(late.atMs >= 500 && late.atMs <= 601, `${late.atMs}`);
});

Deno.test("Network.removeRule() and clearRules() heal the network", () => {
  const n = net();
  const id = n.addRule({ lossP: 1 });
  assertEquals(n.route(1, 2, MCAST, 0), []);
  n.removeRule(id);
  assertEquals(n.route(1, 2, MCAST, 0).length, 1);
  n.addRule({ lossP: 1 });
  n.clearRules();
  assertEquals(n.route(1, 2, MCAST, 0).length, 1);
});

Deno.test("partitionRules() cuts both directions between groups only", () => {
  const n = new Network({ nodes: [1, 2, 3, 4], rng: new Prng(1) });
  for (const r of partitionRules([[1, 2], [3, 4]])) n.addRule(r);
  assertEquals(n.route(1, 2, MCAST, 0).length, 1);
  assertEquals(n.route(3, 4, MCAST, 0).length, 1);
  assertEquals(n.route(1, 3, MCAST, 0), []);
  assertEquals(n.route(4, 2, MCAST, 0), []);
});

Deno.test("EventQueue pops by time, then by insertion order", () => {
  const q = new EventQueue<string>();
  q.push(5, "c");
  q.push(1, "a");
  q.push(5, "d");
  q.push(1, "b");
  q.push(0, "z");
  const out: string[] = [];
  while (q.size > 0) out.push(q.pop()!.item);
  assertEquals(out, ["z", "a", "b", "c", "d"]);
  assertEquals(q.pop(), undefined);
});

Deno.test("EventQueue stays ordered under random pushes", () => {
  const q = new EventQueue<number>();
  const rng = new Prng(3);
  for (let k = 0; k < 2000; k++) q.push(rng.int(100), k);
  let last = -1;
  let lastOrder = -1;
  while (q.size > 0) {
    const t = q.peekTime();
    const { atMs, item } = q.pop()!;
    assertEquals(t, atMs);
    assert(atMs > last || (atMs === last && item > lastOrder));
    last = atMs;
    lastOrder = item;
  }
});

Deno.test("parseFaults() expands all, keeps order, rejects unknown kinds", () => {
  assertEquals(parseFaults("all"), [...FAULT_KINDS]);
  assertEquals(parseFaults("crash,loss,loss"), ["loss", "crash"]);
  assertEquals(parseFaults("none"), []);
  assertThrows(() => parseFaults("loss,meteor"), /meteor/);
});

Deno.test("generateFaultPlan() is deterministic, sorted and within the safety phase", () => {
  const config = resolveTotemConfig({ tokenMs: 1000, consensusMs: 1200 }, 5);
  const plan = (seed: number) =>
    generateFaultPlan({
      rng: new Prng(seed),
      nodes: [1, 2, 3, 4, 5],
      kinds: FAULT_KINDS,
      durationMs: 20000,
      config,
    });
  const a = plan(9);
  assertEquals(JSON.stringify(a), JSON.stringify(plan(9)));
  assert(JSON.stringify(a) !== JSON.stringify(plan(10)));
  for (let k = 1; k < a.events.length; k++) {
    assert(a.events[k - 1].atMs <= a.events[k].atMs);
  }
  for (const e of a.events) assert(e.atMs >= 0 && e.atMs <= 20000);
  const kinds = new Set(a.events.map((e) => e.kind));
  for (const k of ["rule", "unrule", "crash", "pause", "reachability"]) {
    assert(kinds.has(k as never), k);
  }
});

Deno.test("encodeMsgPayload() round-trips and detects corruption", () => {
  const id = { sender: 3, inc: 2, counter: 77 };
  const bytes = encodeMsgPayload(id, 20);
  assertEquals(decodeMsgPayload(bytes), id);
  bytes[15] ^= 1;
  assertEquals(decodeMsgPayload(bytes), null);
  assertEquals(decodeMsgPayload(new Uint8Array(5)), null);
});
