/**
 * Frame crypto micro-benchmarks: `deno bench -A scripts/bench/crypto_bench.ts`.
 * A datagram is sealed by the sender and opened by every receiver. Each
 * group compares the AES-GCM backends of `src/net/aes_gcm.ts` side by side:
 * OpenSSL's libcrypto through FFI (what the daemon uses when it may) and
 * node:crypto (the fallback). The WebCrypto row shows why the fallback is not
 * WebCrypto (DENO_NOTES.md section 2).
 */
import { FrameOpener, FrameSealer } from "../../src/net/crypto.ts";
import {
  type GcmBackend,
  nodeBackend,
  opensslBackend,
} from "../../src/net/aes_gcm.ts";

const MASTER = new Uint8Array(256).fill(0x5a);
const PAYLOAD = new Uint8Array(1400).fill(0x42);
const CLUSTER = "bench";

const libcrypto = opensslBackend();
const BACKENDS: GcmBackend[] = "reason" in libcrypto
  ? [nodeBackend()]
  : [libcrypto, nodeBackend()];
if ("reason" in libcrypto) {
  console.error(`libcrypto rows skipped: ${libcrypto.reason}`);
}

// Keeps results alive so the optimizer cannot drop the work.
let sink = 0;

for (const size of [1400, 60_000]) {
  const payload = new Uint8Array(size).fill(0x42);
  for (const backend of BACKENDS) {
    const sealer = new FrameSealer({
      master: MASTER,
      clusterName: CLUSTER,
      nodeId: 1,
      epoch: 1,
      backend,
    });
    const opener = new FrameOpener({
      master: MASTER,
      clusterName: CLUSTER,
      allowedNodeIds: new Set([1]),
      backend,
    });
    const group = `${size} B`;
    Deno.bench(`seal ${size} B, ${backend.name}`, {
      group,
      baseline: backend === BACKENDS[0],
    }, () => {
      sink ^= sealer.seal(payload).length;
    });
    Deno.bench(`seal + open ${size} B, ${backend.name}`, { group }, () => {
      const r = opener.open(sealer.seal(payload));
      if (!r.ok) throw new Error(r.reason);
      sink ^= r.plaintext.length;
    });
  }
}

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
opener.open(SEALED.slice());

Deno.bench("open 1400 B, replay (rejected before AES)", {
  group: "rejects",
}, () => {
  sink ^= opener.open(SEALED).ok ? 1 : 0;
});

// Forged frames never move the window, so the same one is never a replay.
const victim = new FrameOpener({
  master: MASTER,
  clusterName: CLUSTER,
  allowedNodeIds: new Set([1]),
});
Deno.bench(
  "open 1400 B, forged tag (auth_failed)",
  { group: "rejects" },
  () => {
    // open() decrypts in place: hand it a fresh copy each time.
    const r = victim.open(FORGED.slice());
    if (r.ok || r.reason !== "auth_failed") throw new Error("forgery accepted");
    sink ^= 1;
  },
);

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
