// Statistics under real loss: node 3 loses one multicast in five for a
// moment while node 1 streams CPG messages; the ring survives (tokens still
// pass), node 3 catches up through retransmissions, and stats.srp.mcast_retx
// counts them.
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
  name: "stats.srp.mcast_retx counts retransmissions under injected loss",
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
    let stopStream = async () => {};
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
      // At most IN_FLIGHT messages ahead of node 3's receiver: this one test
      // process runs both clients, and on a loaded machine an unbounded
      // sender would let node 3 queue deliveries until the receiver counts
      // as stuck. A failed send ends the stream and is rethrown below.
      const IN_FLIGHT = 1000;
      let streamError: unknown = null;
      const stream = (async () => {
        while (sending) {
          if (sent - delivered3 >= IN_FLIGHT) {
            await new Promise((r) => setTimeout(r, 2));
            continue;
          }
          await sender!.mcastRetry(msg);
          sent++;
        }
      })().catch((e) => {
        streamError = e;
      });
      stopStream = async () => {
        sending = false;
        await stream;
      };
      const streaming = () => {
        if (streamError !== null) throw streamError;
        return true;
      };
      await waitFor(() => streaming() && delivered3 >= 200, {
        timeoutMs: 10_000,
        what: "node 3 to deliver the first messages",
      });
      // Node 3 loses one multicast in five (tokens and heartbeats pass, so
      // the ring stays): it asks for the missing ones on the token and node
      // 1 retransmits them, counting each. Partial loss keeps node 3's aru
      // moving, so it never counts as failing to receive.
      await Deno.writeTextFile(
        blockFile,
        JSON.stringify({
          dropReceived: { links: [0], frames: ["mcast"], every: 5 },
        }),
      );
      await waitFor(
        async () => streaming() && (await retx(cmaps)) > retxBefore,
        { timeoutMs: 15_000, what: "stats.srp.mcast_retx to grow" },
      );
      await Deno.writeTextFile(blockFile, "[]");
      await stopStream();
      streaming();
      await waitFor(() => delivered3 >= sent, {
        timeoutMs: 15_000,
        what: `node 3 to deliver all ${sent} messages`,
      });
      assertEquals(delivered3, sent);
      const after = await c.waitRing([1, 2, 3]);
      // Same ring: the cut was repaired by retransmission, not membership.
      assertEquals(after[0].ringId, before.ringId);
      assert((await retx(cmaps)) > retxBefore);
    } catch (e) {
      throw new Error(`${(e as Error).stack}\n${c.logs([1, 2, 3])}`);
    } finally {
      await stopStream();
      await sender?.finalize().catch(() => {});
      await receiver?.finalize().catch(() => {});
      for (const m of cmaps) await m.finalize().catch(() => {});
      await c.stop();
    }
  },
});
