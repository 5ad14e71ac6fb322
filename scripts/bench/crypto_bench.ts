/**
 * Frame crypto micro-benchmarks: `deno bench -A scripts/bench/crypto_bench.ts`.
 * A 1400-byte datagram is sealed by the sender and opened by every receiver;
 * Corosync's reference point is ~23k 1 KiB messages/s end to end, so one
 * seal+open should stay far below 40 µs. The WebCrypto rows show why the
 * packet path uses node:crypto (DENO_NOTES.md section 2).
 */
import { FrameOpener, FrameSealer } from "../../src/net/crypto.ts";

const MASTER = new Uint8Array(256).fill(0x5a);
const PAYLOAD = new Uint8Array(1400).fill(0x42);
const CLUSTER = "bench";

const sealer = new FrameSealer({
  master: MASTER,
  clusterName: CLUSTER,
  nodeId: 1,
  epoch: 1,
});
const opener = new FrameOpener({
  master: MASTER,
  clusterName: CLUSTER,
  allowedNodeIds: new Set([1]),
});
const SEALED = sealer.seal(PAYLOAD);
const FORGED = SEALED.slice();
FORGED[FORGED.length - 1] ^= 1;

// Keeps results alive so the optimizer cannot drop the work.
let sink = 0;

Deno.bench("seal 1400 B", { group: "frame", baseline: true }, () => {
  sink ^= sealer.seal(PAYLOAD).length;
});

Deno.bench("seal + open 1400 B", { group: "frame" }, () => {
  const r = opener.open(sealer.seal(PAYLOAD));
  if (!r.ok) throw new Error(r.reason);
  sink ^= r.plaintext.length;
});

Deno.bench("open 1400 B, replay (rejected before AES)", {
  group: "frame",
}, () => {
  sink ^= opener.open(SEALED).ok ? 1 : 0;
});

// Forged frames never move the window, so the same one is never a replay.
const victim = new FrameOpener({
  master: MASTER,
  clusterName: CLUSTER,
  allowedNodeIds: new Set([1]),
});
Deno.bench("open 1400 B, forged tag (auth_failed)", { group: "frame" }, () => {
  const r = victim.open(FORGED);
  if (r.ok || r.reason !== "auth_failed") throw new Error("forgery accepted");
  sink ^= 1;
});

const WEB_KEY = await crypto.subtle.importKey(
  "raw",
  new Uint8Array(32),
  "AES-GCM",
  false,
  ["encrypt", "decrypt"],
);
const IV = new Uint8Array(12);

Deno.bench("WebCrypto encrypt 1400 B (reference)", {
  group: "webcrypto",
}, async () => {
  const ct = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv: IV },
    WEB_KEY,
    PAYLOAD,
  );
  sink ^= ct.byteLength;
});

addEventListener("unload", () => {
  if (sink === 0x7fff_ffff) console.log(sink);
});
