/**
 * Packing-layer micro-benchmarks: `deno bench -A scripts/bench/pg_bench.ts`.
 * Frames are sized for a 1500-byte MTU: minus IP/UDP (28), the Totem mcast
 * header (assumed 40) and the crypto overhead (34). Each iteration handles a
 * batch of 1000 messages, so time/iter divided by 1000 is the cost per
 * message; Corosync's reference is ~23k 1 KiB messages/s end to end.
 */
import { CRYPTO_OVERHEAD_BYTES } from "../../src/net/crypto.ts";
import {
  encodeEngineHeader,
  encodeEngineMessage,
} from "../../src/exec/wire.ts";
import {
  Assembler,
  decodeGroupMessage,
  encodeGroupHeader,
  encodeGroupMessage,
  Packer,
} from "../../src/totem/pg/mod.ts";

const FRAME_BYTES = 1500 - 28 - 40 - CRYPTO_OVERHEAD_BYTES;
const BATCH = 1000;
const KIB = new Uint8Array(1024).fill(0x42);
const SMALL = new Uint8Array(64).fill(0x17);
const GROUP_A = encodeGroupHeader(["a"]);

function packBatch(message: Uint8Array): Uint8Array[] {
  const packer = new Packer({ frameBytesMax: FRAME_BYTES });
  const frames: Uint8Array[] = [];
  for (let i = 0; i < BATCH; i++) {
    for (const f of packer.add(message)) frames.push(f);
  }
  const tail = packer.flush();
  if (tail !== null) frames.push(tail);
  return frames;
}

const KIB_FRAMES = packBatch(KIB);
const SMALL_FRAMES = packBatch(SMALL);
const MIB = new Uint8Array(1024 * 1024).fill(0x33);
const MIB_FRAMES = (() => {
  const packer = new Packer({ frameBytesMax: FRAME_BYTES });
  const frames = packer.add(MIB);
  const tail = packer.flush();
  if (tail !== null) frames.push(tail);
  return frames;
})();
console.log(
  `frameBytesMax ${FRAME_BYTES}: ${BATCH} x 1 KiB -> ${KIB_FRAMES.length} frames, ` +
    `${BATCH} x 64 B -> ${SMALL_FRAMES.length} frames, 1 MiB -> ${MIB_FRAMES.length} frames`,
);

// Keeps results alive so the optimizer cannot drop the work.
let sink = 0;

function unpack(frames: Uint8Array[]): number {
  const assembler = new Assembler();
  let n = 0;
  for (const f of frames) {
    const r = assembler.push(1, f);
    if (!r.ok) throw new Error(r.reason);
    n += r.messages.length;
  }
  return n;
}

Deno.bench("pack 1000 x 1 KiB", { group: "1 KiB", baseline: true }, () => {
  sink ^= packBatch(KIB).length;
});

Deno.bench("unpack 1000 x 1 KiB", { group: "1 KiB" }, () => {
  sink ^= unpack(KIB_FRAMES);
});

Deno.bench("pack 1000 x 1 KiB, gathered [group header, payload]", {
  group: "1 KiB",
}, () => {
  const packer = new Packer({ frameBytesMax: FRAME_BYTES });
  const parts = [GROUP_A, KIB];
  for (let i = 0; i < BATCH; i++) sink ^= packer.add(parts).length;
  sink ^= packer.flush()?.length ?? 0;
});

Deno.bench("decodeGroupMessage 1000 x 1 KiB", { group: "1 KiB" }, () => {
  const m = new Uint8Array(GROUP_A.length + KIB.length);
  m.set(GROUP_A);
  for (let i = 0; i < BATCH; i++) {
    const r = decodeGroupMessage(m);
    sink ^= r.ok ? r.value.payload.length : 0;
  }
});

Deno.bench("pack 1000 x 64 B", { group: "64 B", baseline: true }, () => {
  sink ^= packBatch(SMALL).length;
});

Deno.bench("unpack 1000 x 64 B", { group: "64 B" }, () => {
  sink ^= unpack(SMALL_FRAMES);
});

Deno.bench("pack 1 MiB", { group: "1 MiB", baseline: true }, () => {
  const packer = new Packer({ frameBytesMax: FRAME_BYTES });
  sink ^= packer.add(MIB).length;
  sink ^= packer.flush()?.length ?? 0;
});

Deno.bench("unpack 1 MiB", { group: "1 MiB" }, () => {
  sink ^= unpack(MIB_FRAMES);
});

// The executive's engine mcast: group prefix + engine header + payload.
const KIB64 = new Uint8Array(64 * 1024).fill(0x5a);

Deno.bench("engine mcast 64 KiB: nested (two copies)", {
  group: "engine mcast 64 KiB",
  baseline: true,
}, () => {
  sink ^= encodeGroupMessage(["a"], encodeEngineMessage(2, 1, KIB64)).length;
});

Deno.bench("engine mcast 64 KiB: gathered (one copy)", {
  group: "engine mcast 64 KiB",
}, () => {
  sink ^= encodeGroupMessage(
    ["a"],
    encodeEngineHeader(2, 1, KIB64.length),
    KIB64,
  ).length;
});

addEventListener("unload", () => {
  if (sink === 0x7fff_ffff) console.log(sink);
});
