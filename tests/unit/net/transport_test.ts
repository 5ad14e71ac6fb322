import assert from "node:assert/strict";
import { AssertionError } from "../../../src/lib/assert.ts";
import { Prng } from "../../../src/lib/prng.ts";
import { FrameOpener, FrameSealer } from "../../../src/net/crypto.ts";
import type { LinkChange } from "../../../src/net/links.ts";
import {
  canonicalHost,
  parseBlockRules,
  Transport,
  type TransportCrypto,
  TransportError,
  type TransportNode,
  type TransportOptions,
} from "../../../src/net/transport.ts";
import {
  decodePacket,
  decodePingBody,
  encodePacket,
  encodePingBody,
  type PacketHeader,
  WIRE_HEADER_BYTES,
  WIRE_MAGIC,
  WIRE_VERSION,
} from "../../../src/net/wire.ts";

// Every address here is loopback: node n sits on 127.0.<link>.<n>, which
// Linux routes to lo without configuration.

const PING_INTERVAL_MS = 25;
const PING_TIMEOUT_MS = 250;
const WAIT_MS = 3000;
const UTF8 = new TextEncoder();
const TEXT = new TextDecoder();

interface Received {
  from: number;
  text: string;
}

/** One open transport with what it delivered and reported. */
interface Member {
  nodeId: number;
  transport: Transport;
  frames: Received[];
  changes: LinkChange[];
  rejects: string[];
}

function loopbackNodes(count: number, links: number): TransportNode[] {
  return Array.from({ length: count }, (_, i) => ({
    nodeId: i + 1,
    addrs: Array.from({ length: links }, (_, l) => `127.0.${l}.${i + 1}`),
  }));
}

function randomPort(): number {
  // Below the Linux ephemeral range (32768..60999).
  return 20_000 + Math.floor(Math.random() * 12_000);
}

function isAddrInUse(e: unknown): boolean {
  return e instanceof TransportError &&
    e.cause instanceof Deno.errors.AddrInUse;
}

type ClusterOptions =
  & Omit<TransportOptions, "nodeId" | "port" | "onFrame">
  & { open?: number[] };

/**
 * Opens the nodes listed in `open` (default: all) on one random port per
 * link, retrying with other ports while one is in use.
 */
async function openCluster(
  links: number,
  options: ClusterOptions,
  perNode: (nodeId: number) => Partial<TransportOptions> = () => ({}),
): Promise<{ members: Member[]; port: number[] }> {
  const ids = options.open ?? options.nodes.map((n) => n.nodeId);
  for (let attempt = 0;; attempt++) {
    const base = randomPort();
    const port = Array.from({ length: links }, (_, l) => base + l);
    const members: Member[] = [];
    try {
      for (const nodeId of ids) {
        const m: Member = {
          nodeId,
          transport: undefined as unknown as Transport,
          frames: [],
          changes: [],
          rejects: [],
        };
        m.transport = await Transport.open({
          pingIntervalMs: PING_INTERVAL_MS,
          pingTimeoutMs: PING_TIMEOUT_MS,
          ...options,
          nodeId,
          port,
          onFrame: (bytes, from) =>
            m.frames.push({ from, text: TEXT.decode(bytes) }),
          onLinkChange: (c) => m.changes.push(c),
          onReject: (reason) => m.rejects.push(reason),
          ...perNode(nodeId),
        });
        members.push(m);
      }
      return { members, port };
    } catch (e) {
      await closeAll(members);
      if (!isAddrInUse(e) || attempt >= 10) throw e;
    }
  }
}

/** Two nodes on one udpu link, passive, with the link up both ways. */
async function openPair(
  extra: Partial<ClusterOptions> = {},
): Promise<{ members: Member[]; a: Member; b: Member }> {
  const { members } = await openCluster(1, {
    nodes: loopbackNodes(2, 1),
    mode: "udpu",
    linkMode: "passive",
    ...extra,
  });
  try {
    await waitFor(() => allUp(members), "every link up");
  } catch (e) {
    await closeAll(members);
    throw e;
  }
  return { members, a: members[0], b: members[1] };
}

async function closeAll(members: readonly Member[]): Promise<void> {
  await Promise.all(members.map((m) => m.transport.close()));
}

async function waitFor(
  check: () => boolean,
  what: string,
  timeoutMs = WAIT_MS,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function connected(m: Member, peer: number, link: number): boolean {
  return m.transport.linkStatus().some((s) =>
    s.nodeId === peer && s.link === link && s.connected
  );
}

function allUp(members: readonly Member[]): boolean {
  return members.every((m) =>
    m.transport.linkStatus().every((s) => s.connected)
  );
}

function texts(m: Member, from?: number): string[] {
  return m.frames.filter((f) => from === undefined || f.from === from).map((
    f,
  ) => f.text);
}

/** Sends raw bytes from a socket bound to `hostname:port`. */
async function sendRaw(
  from: { hostname: string; port: number },
  to: { hostname: string; port: number },
  datagrams: readonly Uint8Array[],
): Promise<void> {
  const sock = Deno.listenDatagram({ transport: "udp", ...from });
  try {
    for (const d of datagrams) {
      await sock.send(d, { transport: "udp", ...to });
    }
  } finally {
    sock.close();
  }
}

function header(overrides: Partial<PacketHeader> = {}): PacketHeader {
  return { kind: "data", link: 0, sender: 2, dst: 1, ...overrides };
}

// ---------------------------------------------------------------------------
// wire.ts

Deno.test("encodePacket()/decodePacket() round-trip every kind", () => {
  const cases: [PacketHeader, Uint8Array][] = [
    [header(), UTF8.encode("frame")],
    [header({ dst: 0, link: 7, sender: 0xffff_ffff }), new Uint8Array(0)],
    [header({ kind: "ping", dst: 3 }), encodePingBody(0xdead_beef)],
    [header({ kind: "pong" }), encodePingBody(0)],
  ];
  for (const [h, body] of cases) {
    const bytes = encodePacket(h, body);
    assert.equal(bytes.length, WIRE_HEADER_BYTES + body.length);
    const decoded = decodePacket(bytes);
    assert.ok(decoded.ok);
    assert.deepEqual(decoded.value.header, h);
    assert.deepEqual(decoded.value.body, body);
  }
  assert.equal(decodePingBody(encodePingBody(0xdead_beef)), 0xdead_beef);
});

Deno.test("decodePacket() names what is wrong", () => {
  const good = encodePacket(header(), UTF8.encode("x"));
  const mutate = (at: number, value: number) => {
    const b = good.slice();
    b[at] = value;
    return b;
  };
  const cases: [Uint8Array, string][] = [
    [good.subarray(0, WIRE_HEADER_BYTES - 1), "truncated"],
    [mutate(0, WIRE_MAGIC ^ 1), "bad_magic"],
    [mutate(1, WIRE_VERSION + 1), "bad_version"],
    [mutate(2, 3), "bad_kind"],
    [mutate(3, 8), "bad_link"],
    [encodePacket(header(), UTF8.encode("x")).fill(0, 4, 8), "bad_sender"],
    [
      encodePacket(header({ kind: "ping" }), encodePingBody(1)).subarray(
        0,
        WIRE_HEADER_BYTES + 3,
      ),
      "bad_ping_length",
    ],
  ];
  for (const [bytes, reason] of cases) {
    assert.deepEqual(decodePacket(bytes), { ok: false, reason });
  }
});

Deno.test("decodePacket() never throws on random or mutated bytes", () => {
  const rng = new Prng(7);
  const good = encodePacket(header({ kind: "pong" }), encodePingBody(5));
  for (let i = 0; i < 5000; i++) {
    const bytes = i % 2 === 0
      ? Uint8Array.from({ length: rng.int(40) }, () => rng.int(256))
      : good.slice();
    if (i % 2 === 1) bytes[rng.int(bytes.length)] = rng.int(256);
    const decoded = decodePacket(bytes);
    if (decoded.ok) {
      assert.deepEqual(
        encodePacket(decoded.value.header, decoded.value.body),
        bytes,
      );
    }
  }
});

Deno.test("encodePacket() asserts on values that cannot be encoded", () => {
  assert.throws(
    () => encodePacket(header({ link: 8 }), new Uint8Array(1)),
    AssertionError,
  );
  assert.throws(
    () => encodePacket(header({ sender: 0 }), new Uint8Array(1)),
    AssertionError,
  );
  assert.throws(
    () => encodePacket(header({ kind: "ping" }), new Uint8Array(3)),
    AssertionError,
  );
});

Deno.test("canonicalHost() gives one spelling per address", () => {
  const same: [string, string][] = [
    ["::1", "0:0:0:0:0:0:0:1"],
    ["FD00::0001", "fd00:0:0:0:0:0:0:1"],
    ["[::1]", "::1"],
    ["::ffff:127.0.0.1", "::ffff:7f00:1"],
    ["fe80::1%lo", "fe80:0::1%lo"],
  ];
  for (const [a, b] of same) assert.equal(canonicalHost(a), canonicalHost(b));
  assert.equal(canonicalHost("127.0.0.1"), "127.0.0.1");
  assert.notEqual(canonicalHost("::1"), canonicalHost("::2"));
  for (const bad of [":::", "1::2::3", "12345::", "1:2:3:4:5:6:7", "::1.2.3"]) {
    assert.equal(typeof canonicalHost(bad), "string");
  }
});

// ---------------------------------------------------------------------------
// Transport over loopback

Deno.test("Transport exchanges unicast and 'all' frames on two links", async () => {
  const nodes = loopbackNodes(3, 2);
  const { members } = await openCluster(2, {
    nodes,
    mode: "udpu",
    linkMode: "passive",
  });
  try {
    const [a, b, c] = members;
    await waitFor(() => allUp(members), "every link up");
    a.transport.send(2, UTF8.encode("a->b"));
    b.transport.send("all", UTF8.encode("b->all"));
    c.transport.send(1, UTF8.encode("c->a"));
    await waitFor(
      () =>
        a.frames.length === 2 && b.frames.length === 1 && c.frames.length === 1,
      "frames",
    );
    assert.deepEqual(texts(b), ["a->b"]);
    assert.deepEqual(texts(c), ["b->all"]);
    assert.deepEqual(texts(a).sort(), ["b->all", "c->a"]);
    assert.deepEqual(a.frames.find((f) => f.text === "c->a")?.from, 3);

    const status = a.transport.linkStatus();
    assert.deepEqual(status.map((s) => [s.nodeId, s.link]), [
      [2, 0],
      [2, 1],
      [3, 0],
      [3, 1],
    ]);
    assert.match(status[0].src, /^127\.0\.0\.1:\d+$/);
    assert.match(status[1].src, /^127\.0\.1\.1:\d+$/);
    assert.match(status[3].dst, /^127\.0\.1\.3:\d+$/);
    for (const s of status) {
      assert.equal(s.enabled, true);
      assert.equal(s.upCount, 1);
      assert.ok(s.rttMs !== undefined && s.rttMs >= 0);
      assert.ok(s.txPackets > 0 && s.rxPackets > 0);
    }
    const stats = a.transport.stats;
    assert.ok(stats.rxPackets > 0 && stats.txPackets > 0);
    assert.deepEqual(stats.rejected, {});
    assert.ok(
      a.changes.every((ch) => ch.up && ch.reason === "pong"),
      "only up transitions",
    );
  } finally {
    await closeAll(members);
  }
});

const CRYPTO_MASTER = Uint8Array.from({ length: 32 }, (_, i) => i + 1);
const CRYPTO_CLUSTER = "test";

/** Sealing for one node of a test cluster of nodes 1..3. */
function cryptoFor(
  nodeId: number,
  key = CRYPTO_MASTER,
): { crypto: TransportCrypto } {
  const sealer = new FrameSealer({
    master: key,
    clusterName: CRYPTO_CLUSTER,
    nodeId,
    epoch: 1,
  });
  const opener = new FrameOpener({
    master: key,
    clusterName: CRYPTO_CLUSTER,
    allowedNodeIds: new Set([1, 2, 3]),
  });
  return {
    crypto: {
      seal: (p: Uint8Array) => sealer.seal(p),
      open: (b: Uint8Array) => opener.open(b),
    },
  };
}

for (const sealed of [false, true]) {
  Deno.test(
    `Transport hands on frames that later receives never overwrite, large or small${
      sealed ? ", sealed" : ""
    }`,
    async () => {
      const kept: Uint8Array[] = [];
      const { members } = await openCluster(
        1,
        { nodes: loopbackNodes(2, 1), mode: "udpu", linkMode: "passive" },
        (nodeId) => ({
          ...(sealed ? cryptoFor(nodeId) : {}),
          ...(nodeId === 2 ? { onFrame: (bytes) => kept.push(bytes) } : {}),
        }),
      );
      try {
        const [a] = members;
        await waitFor(() => allUp(members), "link up");
        // Large frames keep their receive buffer, small ones are copied out of
        // it: either way each must still hold its own bytes at the end.
        const sizes = [40_000, 100, 60_000, 20_000, 16_383, 16_384, 7];
        sizes.forEach((n, i) =>
          a.transport.send(2, new Uint8Array(n).fill(i + 1))
        );
        await waitFor(() => kept.length === sizes.length, "every frame");
        const seen = kept.map((f) => [f.length, f[0]]).sort((x, y) =>
          x[1] - y[1]
        );
        assert.deepEqual(seen, sizes.map((n, i) => [n, i + 1]));
        for (const f of kept) assert.ok(f.every((b) => b === f[0]), "intact");
      } finally {
        await closeAll(members);
      }
    },
  );
}

Deno.test("Transport in active mode sends one copy per up link", async () => {
  const nodes = loopbackNodes(2, 2);
  const { members } = await openCluster(2, {
    nodes,
    mode: "udpu",
    linkMode: "active",
  });
  try {
    const [a, b] = members;
    await waitFor(() => allUp(members), "every link up");
    a.transport.send(2, UTF8.encode("twice"));
    await waitFor(() => b.frames.length === 2, "one copy per link");
    // Totem filters the duplicate; the transport hands both on.
    assert.deepEqual(texts(b), ["twice", "twice"]);
  } finally {
    await closeAll(members);
  }
});

Deno.test("Transport sends on every configured link while none is up", async () => {
  // Node 2 does not run: raw sockets on its two addresses see what node 1
  // sends before any pong could have brought a link up.
  const nodes = loopbackNodes(2, 2);
  const { members, port } = await openCluster(2, {
    nodes,
    mode: "udpu",
    linkMode: "passive",
    open: [1],
  });
  const sinks = [0, 1].map((l) =>
    Deno.listenDatagram({
      transport: "udp",
      hostname: `127.0.${l}.2`,
      port: port[l],
    })
  );
  try {
    members[0].transport.send(2, UTF8.encode("bootstrap"));
    for (const [l, sink] of sinks.entries()) {
      for (;;) {
        const [bytes] = await sink.receive();
        const decoded = decodePacket(bytes);
        assert.ok(decoded.ok);
        if (decoded.value.header.kind !== "data") continue; // a ping
        assert.deepEqual(decoded.value.header, {
          kind: "data",
          link: l,
          sender: 1,
          dst: 2,
        });
        assert.equal(TEXT.decode(decoded.value.body), "bootstrap");
        break;
      }
    }
  } finally {
    for (const sink of sinks) sink.close();
    await closeAll(members);
  }
});

Deno.test("Transport fails over when the test hook blocks a link, and recovers", async () => {
  const blockFile = await Deno.makeTempFile({ suffix: ".json" });
  let members: Member[] = [];
  try {
    const nodes = loopbackNodes(2, 2);
    ({ members } = await openCluster(
      2,
      { nodes, mode: "udpu", linkMode: "passive", linkPriorities: [2, 1] },
      (nodeId) => nodeId === 1 ? { testBlockFile: blockFile } : {},
    ));
    const [a, b] = members;
    await waitFor(() => allUp(members), "every link up");
    a.transport.send(2, UTF8.encode("on link 0"));
    await waitFor(() => b.frames.length === 1, "first frame");
    const link0 = b.transport.linkStatus().find((s) => s.link === 0)!;
    assert.ok(link0.rxPackets > 0);

    await Deno.writeTextFile(blockFile, "[0]");
    await waitFor(
      () => !connected(a, 2, 0) && !connected(b, 1, 0),
      "link 0 down on both sides",
    );
    assert.deepEqual(a.transport.blockedLinks, [0]);
    assert.equal(
      a.transport.linkStatus().find((s) => s.link === 0)?.enabled,
      false,
    );
    assert.ok(connected(a, 2, 1) && connected(b, 1, 1), "link 1 stays up");
    for (const m of members) {
      assert.ok(
        m.changes.every((ch) => ch.link === 0 || ch.up),
        `node ${m.nodeId}: link 1 never went down`,
      );
      assert.ok(
        m.changes.some((ch) =>
          ch.link === 0 && !ch.up && ch.reason === "timeout"
        ),
      );
    }
    a.transport.send(2, UTF8.encode("a via link 1"));
    b.transport.send(1, UTF8.encode("b via link 1"));
    b.transport.send("all", UTF8.encode("b all via link 1"));
    await waitFor(
      () => b.frames.length === 2 && a.frames.length === 2,
      "frames over link 1",
    );
    assert.deepEqual(texts(a), ["b via link 1", "b all via link 1"]);
    assert.ok(a.transport.stats.rxBlocked > 0);

    await Deno.writeTextFile(blockFile, "not json yet"); // keeps [0]
    await Deno.writeTextFile(blockFile, "[]");
    await waitFor(() => allUp(members), "link 0 back up");
    assert.deepEqual(a.transport.blockedLinks, []);
  } finally {
    await closeAll(members);
    await Deno.remove(blockFile);
  }
});

Deno.test("Transport applies a block file that exists before open()", async () => {
  const blockFile = await Deno.makeTempFile({ suffix: ".json" });
  let members: Member[] = [];
  try {
    await Deno.writeTextFile(blockFile, "[1]");
    ({ members } = await openCluster(2, {
      nodes: loopbackNodes(2, 2),
      mode: "udpu",
      linkMode: "passive",
      testBlockFile: blockFile,
      open: [1],
    }));
    const t = members[0].transport;
    assert.deepEqual(t.blockedLinks, [1]);
    // The first heartbeat went out on link 0 only.
    assert.deepEqual(t.stats.txDropped, { blocked: 1 });
    t.send(2, UTF8.encode("x"));
    assert.deepEqual(t.stats.txDropped, { blocked: 2 });
  } finally {
    await closeAll(members);
    await Deno.remove(blockFile);
  }
});

Deno.test("parseBlockRules() reads link lists and receive-drop rules, refuses the rest", () => {
  const list = parseBlockRules([0, 2]);
  assert.deepEqual([...list!.links], [0, 2]);
  assert.equal(list!.dropReceived.links.size, 0);
  const rules = parseBlockRules({
    links: [1],
    dropReceived: { links: [0], frames: ["mcast"], every: 3 },
  });
  assert.deepEqual([...rules!.links], [1]);
  assert.deepEqual([...rules!.dropReceived.links], [0]);
  assert.deepEqual([...rules!.dropReceived.frames], ["mcast"]);
  assert.equal(rules!.dropReceived.every, 3);
  assert.equal(
    parseBlockRules({ dropReceived: { links: [0], frames: ["x"] } })!
      .dropReceived.every,
    1,
  );
  for (
    const bad of [
      null,
      "0",
      [-1],
      [0.5],
      [8],
      { links: "0" },
      { dropReceived: [0] },
      { dropReceived: { links: [0] } },
      { dropReceived: { links: [0], frames: [1] } },
      { dropReceived: { links: [0], frames: ["mcast"], every: 0 } },
    ]
  ) {
    assert.equal(parseBlockRules(bad), null, JSON.stringify(bad));
  }
});

Deno.test("Transport drops every Nth received frame of a named kind on request", async () => {
  const blockFile = await Deno.makeTempFile({ suffix: ".json" });
  let members: Member[] = [];
  try {
    await Deno.writeTextFile(
      blockFile,
      JSON.stringify({
        dropReceived: { links: [0], frames: ["lossy"], every: 2 },
      }),
    );
    ({ members } = await openCluster(
      1,
      { nodes: loopbackNodes(2, 1), mode: "udpu", linkMode: "passive" },
      (nodeId) =>
        nodeId === 2
          ? {
            testBlockFile: blockFile,
            testFrameKind: (f) => TEXT.decode(f).split(" ")[0],
          }
          : {},
    ));
    const [a, b] = members;
    await waitFor(() => allUp(members), "link up");
    for (let i = 1; i <= 6; i++) a.transport.send(2, UTF8.encode(`lossy ${i}`));
    a.transport.send(2, UTF8.encode("kept 7"));
    await waitFor(() => texts(b).includes("kept 7"), "the last frame");
    // The 2nd, 4th and 6th lossy frame were dropped; other kinds all pass.
    assert.deepEqual(texts(b), ["lossy 1", "lossy 3", "lossy 5", "kept 7"]);
    assert.equal(b.transport.stats.rxBlocked, 3);
    assert.deepEqual(b.transport.blockedLinks, []);
  } finally {
    await closeAll(members);
    await Deno.remove(blockFile);
  }
});

Deno.test("Transport counts and drops spoofed and malformed datagrams", async () => {
  // Nodes 2 and 3 are configured but only node 1 runs: the test speaks for
  // them from their addresses, and for strangers from 127.0.0.9.
  const nodes = loopbackNodes(3, 2);
  const { members, port } = await openCluster(2, {
    nodes,
    mode: "udpu",
    linkMode: "passive",
    open: [1],
  });
  try {
    const [a] = members;
    const to = { hostname: "127.0.0.1", port: port[0] };
    const node2 = { hostname: "127.0.0.2", port: port[0] };
    const node3 = { hostname: "127.0.0.3", port: port[0] };
    const frame = (h: Partial<PacketHeader>) =>
      encodePacket(header(h), UTF8.encode("evil"));
    await sendRaw(
      { hostname: "127.0.0.9", port: port[0] },
      to,
      [frame({})],
    );
    await sendRaw({ hostname: "127.0.0.2", port: port[0] + 5 }, to, [
      frame({}),
    ]);
    await sendRaw(node3, to, [
      frame({ sender: 2 }), // node 3 claims to be node 2
      frame({ sender: 1, dst: 1 }), // or us
      frame({ sender: 9 }), // or a stranger
      UTF8.encode("garbage that is long enough"),
      new Uint8Array(3),
    ]);
    await sendRaw(node2, to, [
      frame({ sender: 2, link: 1 }), // link 1 header on link 0
      frame({ sender: 2, dst: 3 }), // for someone else
      encodePacket(header({ kind: "ping" }), encodePingBody(1)).subarray(
        0,
        WIRE_HEADER_BYTES + 2,
      ),
      encodePacket(header({ kind: "pong" }), encodePingBody(12345)),
      frame({ sender: 2, dst: 0 }), // the only good one
    ]);
    await waitFor(() => a.frames.length === 1, "the good frame");
    await waitFor(
      () =>
        Object.values(a.transport.stats.rejected).reduce((x, y) => x + y) ===
          10,
      "ten rejections",
    );
    assert.deepEqual(a.transport.stats.rejected, {
      net_unlisted_source: 2,
      net_sender_mismatch: 1,
      net_unknown_sender: 2,
      net_bad_magic: 1,
      net_truncated: 1,
      net_link_mismatch: 1,
      net_wrong_destination: 1,
      net_bad_ping_length: 1,
    });
    assert.equal(a.transport.stats.stalePongs, 1);
    assert.equal(a.rejects.length, 10);
    assert.deepEqual(a.frames, [{ from: 2, text: "evil" }]);
  } finally {
    await closeAll(members);
  }
});

Deno.test("Transport hands frames sent to itself back asynchronously", async () => {
  const nodes = loopbackNodes(1, 1);
  const { members } = await openCluster(1, {
    nodes,
    mode: "udpu",
    linkMode: "passive",
  });
  try {
    const [a] = members;
    const bytes = UTF8.encode("token");
    a.transport.send(1, bytes);
    a.transport.send("all", UTF8.encode("nobody else"));
    bytes.fill(0); // the transport copied it
    assert.equal(a.frames.length, 0, "not delivered synchronously");
    await Promise.resolve();
    assert.deepEqual(a.frames, [{ from: 1, text: "token" }]);
    assert.equal(a.transport.stats.loopback, 1);
    assert.equal(a.transport.stats.txPackets, 0);
    a.transport.send(7, UTF8.encode("unknown"));
    assert.deepEqual(a.transport.stats.txDropped, { no_route: 1 });
  } finally {
    await closeAll(members);
  }
});

Deno.test("Transport works over IPv6 ::1", async () => {
  // ::1 is the only IPv6 loopback address: the nodes share it and differ by
  // port.
  let members: Member[] = [];
  for (let attempt = 0; members.length === 0; attempt++) {
    const base = randomPort();
    const nodes: TransportNode[] = [1, 2].map((nodeId) => ({
      nodeId,
      addrs: ["::1"],
      ports: [base + nodeId],
    }));
    try {
      ({ members } = await openCluster(1, {
        nodes,
        mode: "udpu",
        linkMode: "passive",
      }));
    } catch (e) {
      if (!isAddrInUse(e) || attempt >= 10) throw e;
    }
  }
  try {
    const [a, b] = members;
    await waitFor(() => allUp(members), "link up over ::1");
    a.transport.send(2, UTF8.encode("v6"));
    b.transport.send("all", UTF8.encode("v6 all"));
    await waitFor(
      () => a.frames.length === 1 && b.frames.length === 1,
      "frames",
    );
    assert.deepEqual(texts(b), ["v6"]);
    assert.deepEqual(texts(a), ["v6 all"]);
    const s = a.transport.linkStatus()[0];
    assert.match(s.src, /^\[::1\]:\d+$/);
    assert.match(s.dst, /^\[::1\]:\d+$/);
  } finally {
    await closeAll(members);
  }
});

Deno.test("Transport with crypto seals every datagram and drops what fails to open", async () => {
  const otherKey = Uint8Array.from({ length: 32 }, (_, i) => 100 + i);
  const nodes = loopbackNodes(3, 1);
  const { members, port } = await openCluster(1, {
    nodes,
    mode: "udpu",
    linkMode: "passive",
    open: [1, 2],
  }, (nodeId) => cryptoFor(nodeId));
  try {
    const [a, b] = members;
    await waitFor(
      () => connected(a, 2, 0) && connected(b, 1, 0),
      "links up with sealed heartbeats",
    );
    a.transport.send(2, UTF8.encode("secret"));
    await waitFor(() => b.frames.length === 1, "sealed frame");
    assert.deepEqual(b.frames, [{ from: 1, text: "secret" }]);

    // Node 3's address, but a wrong key, a clear frame, and a frame sealed by
    // node 3 that claims to come from node 2.
    const node3 = { hostname: "127.0.0.3", port: port[0] };
    const to = { hostname: "127.0.0.1", port: port[0] };
    const clear = encodePacket(
      header({ sender: 3 }),
      UTF8.encode("long enough to pass for sealed: 34 bytes at least"),
    );
    const wrongKey = cryptoFor(3, otherKey).crypto.seal(clear);
    const liar = cryptoFor(3).crypto.seal(
      encodePacket(header({ sender: 2 }), UTF8.encode("x")),
    );
    await sendRaw(node3, to, [wrongKey, clear, liar]);
    await waitFor(
      () => Object.keys(a.transport.stats.rejected).length === 3,
      "three rejections",
    );
    assert.deepEqual(a.transport.stats.rejected, {
      crypto_auth_failed: 1,
      crypto_bad_version: 1,
      net_sender_mismatch: 1,
    });
    assert.equal(a.frames.length, 0);
  } finally {
    await closeAll(members);
  }
});

Deno.test("Transport in udp mode multicasts 'all' on loopback", async () => {
  const nodes = loopbackNodes(3, 1);
  // Administratively scoped group; Linux sends it out of lo because the
  // sockets are bound to 127.0.0.x (never out of another interface).
  const group = `239.255.${Math.floor(Math.random() * 250)}.${
    1 + Math.floor(Math.random() * 250)
  }`;
  let members: Member[];
  try {
    ({ members } = await openCluster(1, {
      nodes,
      mode: "udp",
      mcastAddr: group,
      linkMode: "passive",
    }));
  } catch (e) {
    if (!(e instanceof TransportError) || !/multicast/.test(e.message)) {
      throw e;
    }
    console.warn(
      `skipped: loopback multicast is unavailable here (${e.message})`,
    );
    return;
  }
  try {
    const [a, b, c] = members;
    await waitFor(() => allUp(members), "unicast heartbeats");
    a.transport.send("all", UTF8.encode("to the group"));
    await waitFor(
      () => b.frames.length === 1 && c.frames.length === 1,
      "multicast frame",
    );
    assert.deepEqual(texts(b), ["to the group"]);
    assert.deepEqual(texts(c), ["to the group"]);
    b.transport.send(3, UTF8.encode("token"));
    await waitFor(() => c.frames.length === 2, "unicast frame");
    await waitFor(() => a.transport.stats.ownEchoes >= 1, "own echo");
    assert.equal(a.frames.length, 0, "own multicast is not delivered");
    assert.deepEqual(a.transport.stats.rejected, {});
  } finally {
    await closeAll(members);
  }
});

for (const directSend of [true, false]) {
  Deno.test(
    `Transport sends a unicast only after the broadcast frames queued before it (${
      directSend ? "sendto" : "Deno send"
    })`,
    async () => {
      const nodes = loopbackNodes(3, 1);
      const { members } = await openCluster(1, {
        nodes,
        mode: "udpu",
        linkMode: "passive",
        directSend,
      });
      try {
        const [a, b, c] = members;
        // The tests run with FFI allowed, so libc's sendto is there.
        assert.deepEqual(
          a.transport.directSend,
          [{
            link: 0,
            reason: directSend ? null : "turned off (directSend: false)",
          }],
        );
        await waitFor(() => allUp(members), "every link up");
        for (let round = 0; round < 5; round++) {
          // One token visit: a run of frames to all, then the token.
          for (let i = 0; i < 20; i++) {
            a.transport.send("all", UTF8.encode(`r${round}f${i}`));
          }
          a.transport.send(2, UTF8.encode(`r${round}token`));
        }
        await waitFor(
          () => b.frames.length === 105 && c.frames.length === 100,
          "every frame",
        );
        const got = texts(b, 1);
        for (let round = 0; round < 5; round++) {
          const token = got.indexOf(`r${round}token`);
          for (let i = 0; i < 20; i++) {
            assert.ok(
              got.indexOf(`r${round}f${i}`) < token,
              `frame ${i} of round ${round} after its token`,
            );
          }
        }
        assert.deepEqual(
          texts(c, 1).sort(),
          got.filter((t) => !t.endsWith("token")).sort(),
        );
        if (directSend) {
          // Sent in call order, so received in it too on loopback.
          assert.deepEqual(
            texts(c, 1),
            Array.from(
              { length: 100 },
              (_, k) => `r${Math.floor(k / 20)}f${k % 20}`,
            ),
          );
        }
      } finally {
        await closeAll(members);
      }
    },
  );
}

Deno.test("Transport.flush() sends this turn's datagrams before returning, in order", async () => {
  const { members, a, b } = await openPair();
  try {
    const before = a.transport.stats.txPackets;
    for (let i = 0; i < 3; i++) a.transport.send(2, UTF8.encode(`f${i}`));
    // Deferred until the turn's microtasks have run...
    assert.equal(a.transport.stats.txPackets, before);
    a.transport.flush();
    // ...unless flushed: then sent by sendto before flush() returns.
    assert.equal(a.transport.stats.txPackets, before + 3);
    a.transport.flush(); // nothing left: a no-op
    await waitFor(() => b.frames.length === 3, "every frame");
    assert.deepEqual(texts(b, 1), ["f0", "f1", "f2"]);
  } finally {
    await closeAll(members);
  }
});

Deno.test("Transport.close() still sends what this turn queued (a clean leave)", async () => {
  const { members, a, b } = await openPair();
  try {
    a.transport.send(2, UTF8.encode("leave"));
    await a.transport.close();
    await waitFor(() => b.frames.length === 1, "the frame sent before close");
    assert.deepEqual(texts(b, 1), ["leave"]);
    // Nothing goes out on a closed transport, by sendto or otherwise.
    const sent = a.transport.stats.txPackets;
    a.transport.send(2, UTF8.encode("late"));
    a.transport.flush();
    assert.equal(a.transport.stats.txPackets, sent);
    assert.equal(a.transport.stats.txDropped.closed, 1);
  } finally {
    await closeAll(members);
  }
});

Deno.test("Transport bounds its send queue and drains it on close", async () => {
  const { members, a, b } = await openPair({
    sendQueueMax: 4,
    // sendto would send at once: the queue under test is Deno's send path.
    directSend: false,
  });
  try {
    for (let i = 0; i < 50; i++) a.transport.send(2, UTF8.encode(`m${i}`));
    const dropped = a.transport.stats.txDropped.queue_full ?? 0;
    assert.ok(dropped >= 40, `dropped ${dropped}`);
    await a.transport.close();
    // Whatever was queued went out before the socket closed.
    await waitFor(() => b.frames.length === 50 - dropped, "queued frames");
    a.transport.send(2, UTF8.encode("late"));
    assert.equal(a.transport.stats.txDropped.closed, 1);
  } finally {
    await closeAll(members);
    await a.transport.close(); // idempotent
  }
});

Deno.test("Transport.open() refuses bad configurations and leaks nothing", async () => {
  const nodes = loopbackNodes(2, 2);
  const base: TransportOptions = {
    nodeId: 1,
    nodes,
    port: randomPort(),
    mode: "udpu",
    linkMode: "passive",
    onFrame: () => {},
  };
  await assert.rejects(
    Transport.open({ ...base, nodeId: 5 }),
    /this node \(nodeid 5\) is not in it/,
  );
  await assert.rejects(
    Transport.open({ ...base, nodes: [...nodes, nodes[1]] }),
    /nodeid 2 appears twice/,
  );
  await assert.rejects(
    Transport.open({ ...base, port: [base.port as number] }),
    /link 1: node 1 needs a UDP port/,
  );
  await assert.rejects(
    Transport.open({ ...base, mode: "udp" }),
    /link 0: transport udp needs a multicast address/,
  );
  await assert.rejects(
    Transport.open({ ...base, mode: "udp", mcastAddr: "ff15::1" }),
    /different IP families/,
  );
  await assert.rejects(
    Transport.open({ ...base, pingIntervalMs: 100, pingTimeoutMs: 100 }),
    /knet_ping_timeout \(100 ms\) must exceed knet_ping_interval \(100 ms\)/,
  );
  await assert.rejects(
    Transport.open({ ...base, sendQueueMax: 0 }),
    /sendQueueMax must be a positive integer, got 0/,
  );
  await assert.rejects(
    Transport.open({ ...base, pongCount: 0 }),
    /knet_pong_count must be a positive integer, got 0/,
  );
  // Link 1's address is taken: link 0's socket must be closed again.
  const { members } = await openCluster(2, {
    nodes,
    mode: "udpu",
    linkMode: "passive",
    open: [1],
  });
  try {
    const taken = members[0].transport.linkStatus()[0].src.split(":")[1];
    const err = await Transport.open({
      ...base,
      nodeId: 1,
      nodes: [{ nodeId: 1, addrs: ["127.0.0.77", "127.0.1.1"] }],
      port: [Number(taken) + 7, Number(taken) + 1],
    }).then(() => null, (e: unknown) => e);
    assert.ok(isAddrInUse(err), String(err));
    assert.match(
      (err as Error).message,
      /^link 1 \(127\.0\.1\.1:\d+\): cannot bind/,
    );
    // The port of link 0 is free again.
    const probe = Deno.listenDatagram({
      transport: "udp",
      hostname: "127.0.0.77",
      port: Number(taken) + 7,
    });
    probe.close();
  } finally {
    await closeAll(members);
  }
});
