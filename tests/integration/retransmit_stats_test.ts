// Statistics under real loss: node 3 loses every datagram for a moment while
// node 1 streams CPG messages; the ring survives (the cut is shorter than
// the token timeout), node 3 catches up through retransmissions, and
// stats.srp.mcast_retx counts them.
import { assert, assertEquals } from "./_assert.ts";
import { TestCluster, waitFor } from "./_cluster.ts";
import { CmapClient } from "../../src/client/cmap.ts";
import { CpgClient } from "../../src/client/cpg.ts";

const OPTS = { sanitizeResources: false, sanitizeOps: false };

async function retx(clients: CmapClient[]): Promise<number> {
  let sum = 0;
  for (const c of clients) {
    sum += Number((await c.get("stats.srp.mcast_retx")).value);
  }
  return sum;
}

Deno.test({
  name: "stats.srp.mcast_retx counts retransmissions after a short cut",
  ...OPTS,
  fn: async () => {
    const c = await TestCluster.create({
      nodes: 3,
      tokenMs: 3000,
      consensusMs: 3600,
    });
    const cmaps: CmapClient[] = [];
    let sender: CpgClient | null = null;
    let receiver: CpgClient | null = null;
    try {
      const blockFile = `${c.root}/block3.json`;
      await Deno.writeTextFile(blockFile, "[]");
      c.start(1);
      c.start(2);
      c.start(3, c.conf, { DENOSYNC_TEST_BLOCK_LINKS_FILE: blockFile });
      const [before] = await c.waitRing([1, 2, 3]);
      for (const id of [1, 2, 3]) {
        cmaps.push(
          await CmapClient.initialize({
            socketPath: `${c.node(id).dir}/denosync.sock`,
          }),
        );
      }
      // The publisher fills stats.* within a second of start.
      await waitFor(async () => {
        try {
          return (await retx(cmaps)) >= 0;
        } catch {
          return false;
        }
      }, { timeoutMs: 10_000, what: "stats.srp.mcast_retx on every node" });
      const retxBefore = await retx(cmaps);

      let delivered3 = 0;
      receiver = await CpgClient.initialize({
        socketPath: `${c.node(3).dir}/denosync.sock`,
        onEvent: (ev) => {
          if (ev.type === "deliver") delivered3++;
        },
      });
      await receiver.join("retx");
      sender = await CpgClient.initialize({
        socketPath: `${c.node(1).dir}/denosync.sock`,
      });
      await sender.join("retx");
      const msg = new Uint8Array(512);
      let sent = 0;
      let sending = true;
      // A steady stream: whatever node 1 multicasts on the token's last
      // rotation before the cut never reaches node 3. At most IN_FLIGHT
      // messages ahead of node 3's receiver: this one test process runs
      // both clients, and on a loaded machine an unbounded sender would let
      // node 3 queue deliveries until the receiver counts as stuck.
      const IN_FLIGHT = 1000;
      const stream = (async () => {
        while (sending) {
          if (sent - delivered3 >= IN_FLIGHT) {
            await new Promise((r) => setTimeout(r, 2));
            continue;
          }
          await sender!.mcastRetry(msg);
          sent++;
        }
      })();
      await waitFor(() => delivered3 >= 200, {
        timeoutMs: 10_000,
        what: "node 3 to deliver the first messages",
      });
      // A cut may fall where node 1 had nothing in flight: cut again (up to
      // three times) until a retransmission was needed.
      const dropped = async () => {
        try {
          return Number(
            (await cmaps[2].get("stats.knet.tx_dropped.blocked")).value,
          );
        } catch {
          return 0;
        }
      };
      for (let attempt = 1; attempt <= 3; attempt++) {
        const droppedBefore = await dropped();
        await Deno.writeTextFile(blockFile, "[0]");
        // Blocked once node 3 drops its own sends (heartbeats at least).
        await waitFor(async () => (await dropped()) > droppedBefore, {
          timeoutMs: 5000,
          what: "node 3 to drop sends on its blocked link",
        });
        await Deno.writeTextFile(blockFile, "[]");
        const upTo = sent + 200;
        await waitFor(() => sent >= upTo, {
          timeoutMs: 15_000,
          what: "the stream to go on after the cut",
        });
        const grew = await waitFor(
          async () => (await retx(cmaps)) > retxBefore,
          { timeoutMs: 3000, what: "stats.srp.mcast_retx to grow" },
        ).then(() => true, () => false);
        if (grew) break;
      }
      sending = false;
      await stream;
      await waitFor(() => delivered3 >= sent, {
        timeoutMs: 15_000,
        what: `node 3 to deliver all ${sent} messages`,
      });
      assertEquals(delivered3, sent);
      await waitFor(async () => (await retx(cmaps)) > retxBefore, {
        timeoutMs: 5000,
        what: "stats.srp.mcast_retx to grow",
      });
      const after = await c.waitRing([1, 2, 3]);
      // Same ring: the cut was repaired by retransmission, not membership.
      assertEquals(after[0].ringId, before.ringId);
      assert((await retx(cmaps)) > retxBefore);
    } catch (e) {
      throw new Error(`${(e as Error).stack}\n${c.logs([1, 2, 3])}`);
    } finally {
      await sender?.finalize().catch(() => {});
      await receiver?.finalize().catch(() => {});
      for (const m of cmaps) await m.finalize().catch(() => {});
      await c.stop();
    }
  },
});
