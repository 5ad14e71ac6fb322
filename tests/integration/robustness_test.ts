// Real daemons under hostile or broken conditions: encryption with a wrong
// key, garbage datagrams, a dead link, a bad configuration file.
import { assert, assertEquals } from "./_assert.ts";
import { TestCluster, waitFor } from "./_cluster.ts";
import { Prng } from "../../src/lib/prng.ts";
import { opensslBackend } from "../../src/net/aes_gcm.ts";
import { encodePacket } from "../../src/net/wire.ts";
import { encodeFrame } from "../../src/totem/codec.ts";

const OPTS = { sanitizeResources: false, sanitizeOps: false };

async function writeKey(path: string, seed: number): Promise<void> {
  const rng = new Prng(seed);
  const key = new Uint8Array(256).map(() => rng.int(256));
  await Deno.writeFile(path, key, { mode: 0o400 });
}

Deno.test({
  ...OPTS,
  name:
    "encrypted ring forms across both AES-GCM backends; a node with the wrong key never joins",
  fn: async () => {
    const c = await TestCluster.create({
      nodes: 3,
      extraNodes: 1,
      totemExtra:
        "    crypto_cipher: aes256\n    crypto_hash: sha256\n    keyfile: KEYFILE",
    });
    try {
      const text = await Deno.readTextFile(c.conf);
      await writeKey(`${c.root}/authkey`, 1);
      await writeKey(`${c.root}/wrongkey`, 2);
      await Deno.writeTextFile(
        c.conf,
        text.replace("KEYFILE", `${c.root}/authkey`),
      );
      const wrongConf = `${c.root}/wrong.conf`;
      await Deno.writeTextFile(
        wrongConf,
        text.replace("KEYFILE", `${c.root}/wrongkey`),
      );
      // Node 3 seals with node:crypto, the others with libcrypto where the
      // machine has it: the frames must be the same.
      c.start(1);
      c.start(2);
      c.start(3, c.conf, { DENOSYNC_CRYPTO_BACKEND: "node" });
      await c.waitRing([1, 2, 3]);
      const backendOf = (id: number) =>
        /frame crypto: AES-256-GCM from (OpenSSL|node:crypto)/.exec(
          c.node(id).log.join(""),
        )?.[1];
      assertEquals(backendOf(3), "node:crypto");
      const libcrypto = opensslBackend();
      assertEquals(
        backendOf(1),
        "reason" in libcrypto ? "node:crypto" : "OpenSSL",
      );
      c.start(4, wrongConf);
      const rejected = await waitFor(async () => {
        const s = await c.status(1);
        const n = s?.rejected["crypto_auth_failed"] ?? 0;
        return n >= 20 ? n : undefined;
      }, { timeoutMs: 10_000, what: "auth failures counted at node 1" });
      assert(rejected >= 20);
      // It keeps knocking for a while and never gets in.
      await new Promise((r) => setTimeout(r, 2500));
      const st = await c.waitRing([1, 2, 3], 2000);
      assertEquals(st[0].members, [1, 2, 3]);
      const s4 = await c.status(4);
      assert(
        s4 !== null && !s4.members.includes(1),
        `node 4 joined: ${JSON.stringify(s4)}`,
      );
    } finally {
      await c.stop();
    }
  },
});

Deno.test({
  ...OPTS,
  name:
    "thousands of random and mutated datagrams neither crash a daemon nor disturb the ring",
  fn: async () => {
    const c = await TestCluster.create({ nodes: 3, extraNodes: 1 });
    try {
      const before = await c.startRing([1, 2, 3]);
      // Send from node 4's configured address so datagrams pass the source
      // check and reach the header, crypto and Totem decoders.
      const sock = Deno.listenDatagram({
        transport: "udp",
        hostname: "127.0.0.4",
        port: c.port,
      });
      try {
        const rng = new Prng(99);
        const frame = encodeFrame({
          type: "token_hold_cancel",
          sender: 4,
          ringId: { rep: 9, seq: 1 },
        });
        const valid = encodePacket(
          { kind: "data", link: 0, sender: 4, dst: 1 },
          frame,
        );
        for (let i = 0; i < 3000; i++) {
          let bytes: Uint8Array;
          if (i % 2 === 0) {
            bytes = new Uint8Array(rng.int(200)).map(() => rng.int(256));
          } else {
            bytes = valid.slice();
            const flips = 1 + rng.int(4);
            for (let k = 0; k < flips; k++) {
              bytes[rng.int(bytes.length)] ^= 1 << rng.int(8);
            }
            if (rng.chance(0.3)) {
              bytes = bytes.subarray(0, rng.int(bytes.length));
            }
          }
          await sock.send(bytes, {
            transport: "udp",
            hostname: "127.0.0.1",
            port: c.port,
          });
        }
      } finally {
        sock.close();
      }
      const s1 = await waitFor(async () => {
        const s = await c.status(1);
        const total = Object.values(s?.rejected ?? {}).reduce(
          (a, b) => a + b,
          0,
        );
        return s !== null && total >= 1000 ? s : undefined;
      }, { timeoutMs: 10_000, what: "rejections counted" });
      assert(c.node(1).child !== null);
      const after = await c.waitRing([1, 2, 3], 3000);
      assertEquals(
        after[0].ringId,
        before[0].ringId,
        JSON.stringify(s1.rejected),
      );
    } finally {
      await c.stop();
    }
  },
});

Deno.test({
  ...OPTS,
  name:
    "losing one of two links keeps the membership; losing both removes the node",
  fn: async () => {
    const c = await TestCluster.create({
      nodes: 3,
      links: 2,
      tokenMs: 2000,
      consensusMs: 2400,
    });
    try {
      const blockFile = `${c.root}/block3.json`;
      await Deno.writeTextFile(blockFile, "[]");
      c.start(1);
      c.start(2);
      c.start(3, c.conf, { DENOSYNC_TEST_BLOCK_LINKS_FILE: blockFile });
      const before = await c.waitRing([1, 2, 3]);
      await Deno.writeTextFile(blockFile, "[0]");
      await waitFor(async () => {
        const s = await c.status(1);
        return s?.links.some((l) =>
          l.nodeId === 3 && l.link === 0 && !l.connected
        );
      }, { timeoutMs: 5000, what: "node 1 sees link 0 to node 3 down" });
      // Longer than token + consensus: a membership change would show.
      await new Promise((r) => setTimeout(r, 5000));
      const mid = await c.waitRing([1, 2, 3], 1000);
      assertEquals(mid[0].ringId, before[0].ringId);
      await Deno.writeTextFile(blockFile, "[0,1]");
      await c.waitRing([1, 2], 15_000);
    } finally {
      await c.stop();
    }
  },
});

Deno.test({
  ...OPTS,
  name:
    "denosync run refuses an invalid configuration with file:line and exit status 2",
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "denosync-it-" });
    try {
      const conf = `${dir}/bad.conf`;
      await Deno.writeTextFile(
        conf,
        "totem {\n    version: 2\n    token: soon\n}\nnodelist {\n    node {\n        nodeid: 1\n        ring0_addr: 127.0.0.1\n    }\n}\n",
      );
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          new URL("../../main.ts", import.meta.url).href,
          "run",
          "-c",
          conf,
          "--run-dir",
          dir,
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const err = new TextDecoder().decode(out.stderr);
      assertEquals(out.code, 2, err);
      assert(err.includes(`${conf}:3`), err);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
