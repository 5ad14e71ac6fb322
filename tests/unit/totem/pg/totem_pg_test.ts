import {
  deepStrictEqual as assertEquals,
  ok as assert,
} from "node:assert/strict";
import { MiniNet } from "../_mini_net.ts";
import { Prng } from "../../../../src/lib/prng.ts";
import { frameBytesForMtu } from "../../../../src/totem/pg/totem_pg.ts";

Deno.test("TotemPg delivers packed and fragmented messages whole and in one order everywhere", () => {
  const net = new MiniNet([1, 2, 3], { tokenMs: 1000, consensusMs: 1200 });
  net.usePg = true;
  net.run(5000);
  const rng = new Prng(5);
  const sent: string[] = [];
  for (let i = 0; i < 200; i++) {
    const from = 1 + (i % 3);
    // Mostly small messages, some spanning many frames (up to 200 KiB).
    const size = rng.chance(0.05) ? rng.int(200_000) : rng.int(1500);
    const msg = new Uint8Array(size + 4);
    new DataView(msg.buffer).setUint32(0, i);
    msg.fill(i & 255, 4);
    assert(net.sendMessage(from, msg), `message ${i} refused`);
    sent.push(`${i}:${msg.length}`);
    if (i % 10 === 9) { for (const id of [1, 2, 3]) net.flush(id); }
  }
  for (const id of [1, 2, 3]) net.flush(id);
  net.run(60_000);
  const views = [...net.nodes.values()].map((n) =>
    n.delivered.map((d) => {
      const id = new DataView(d.payload.buffer, d.payload.byteOffset).getUint32(
        0,
      );
      assert(
        d.payload.subarray(4).every((b) => b === (id & 255)),
        `message ${id} corrupted`,
      );
      return `${id}:${d.payload.length}`;
    })
  );
  assertEquals(views[0].length, 200);
  assertEquals(views[1], views[0]);
  assertEquals(views[2], views[0]);
  assertEquals([...views[0]].sort(), [...sent].sort());
});

Deno.test("TotemPg refuses with TRY_AGAIN instead of overrunning the send queue", () => {
  const net = new MiniNet([1, 2], {
    tokenMs: 1000,
    consensusMs: 1200,
    sendQueueFramesMax: 8,
  });
  net.usePg = true;
  net.run(3000);
  let refused = 0;
  for (let i = 0; i < 20; i++) {
    if (!net.sendMessage(1, new Uint8Array(1300))) refused++;
  }
  assert(refused > 0, "the small queue should refuse some sends");
  assert(net.nodes.get(1)!.srp.sendQueueLength <= 8);
});

Deno.test("frameBytesForMtu() leaves room for two mcast headers and the transport", () => {
  assertEquals(frameBytesForMtu(1500, 46), 1500 - 28 - 46 - 64);
});
