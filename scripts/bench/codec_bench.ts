/**
 * Wire codec micro-benchmarks: `deno bench -A scripts/bench/codec_bench.ts`.
 * The reference point is Corosync at ~23k 1 KiB messages/s end to end; the
 * codec should cost a small fraction of one core at many times that rate.
 */
import {
  decodeFrame,
  encodeFrame,
  encodeMcast,
} from "../../src/totem/codec.ts";
import type { RingId, TokenMsg } from "../../src/totem/types.ts";

const RING: RingId = { rep: 1, seq: 1_000_004 };
const PAYLOAD = new Uint8Array(1024).fill(0x42);
const MCAST_FRAME = encodeMcast(3, RING, 12_345, "agreed", false, PAYLOAD);
const TOKEN: TokenMsg = {
  type: "token",
  sender: 3,
  ringId: RING,
  tokenSeq: 9_001,
  seq: 12_345,
  aru: 12_300,
  aruAddr: 2,
  fcc: 40,
  backlog: 120,
  retransFlg: false,
  rtr: Array.from(
    { length: 10 },
    (_, i) => ({ ringId: RING, seq: 12_301 + i }),
  ),
};
const TOKEN_FRAME = encodeFrame(TOKEN);

// Keeps results alive so the optimizer cannot drop the work.
let sink = 0;

// Floor: allocating the frame buffer alone (V8 ArrayBuffer backing store)
// costs most of an encode; the rest is the codec's own work.
Deno.bench("mcast 1 KiB: allocation floor", { group: "mcast" }, () => {
  sink ^= new Uint8Array(MCAST_FRAME.length).length;
});

Deno.bench("mcast 1 KiB: encodeMcast", { group: "mcast" }, () => {
  sink ^= encodeMcast(3, RING, 12_345, "agreed", false, PAYLOAD).length;
});

Deno.bench("mcast 1 KiB: decodeFrame", { group: "mcast" }, () => {
  const d = decodeFrame(MCAST_FRAME);
  if (d.ok) sink ^= d.value.sender;
});

Deno.bench(
  "mcast 1 KiB: encode + decode",
  { group: "mcast", baseline: true },
  () => {
    const d = decodeFrame(
      encodeMcast(3, RING, 12_345, "agreed", false, PAYLOAD),
    );
    if (d.ok) sink ^= d.value.sender;
  },
);

Deno.bench("token 10 rtr: allocation floor", { group: "token" }, () => {
  sink ^= new Uint8Array(TOKEN_FRAME.length).length;
});

Deno.bench("token 10 rtr: encodeFrame", { group: "token" }, () => {
  sink ^= encodeFrame(TOKEN).length;
});

Deno.bench("token 10 rtr: decodeFrame", { group: "token" }, () => {
  const d = decodeFrame(TOKEN_FRAME);
  if (d.ok) sink ^= d.value.sender;
});

Deno.bench(
  "token 10 rtr: encode + decode",
  { group: "token", baseline: true },
  () => {
    const d = decodeFrame(encodeFrame(TOKEN));
    if (d.ok) sink ^= d.value.sender;
  },
);
