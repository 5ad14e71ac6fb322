import assert from "node:assert/strict";
import { AssertionError } from "../../../src/lib/assert.ts";
import { Prng } from "../../../src/lib/prng.ts";
import {
  chooseBackend,
  GCM_TAG_BYTES,
  type GcmBackend,
  knownAnswerFailure,
  LIBCRYPTO_PATHS,
  nodeBackend,
  opensslBackend,
} from "../../../src/net/aes_gcm.ts";

function bytes(rng: Prng, length: number): Uint8Array<ArrayBuffer> {
  return Uint8Array.from({ length }, () => rng.int(256));
}

const hasLibcrypto = LIBCRYPTO_PATHS.some((p) => {
  try {
    return Deno.statSync(p).isFile;
  } catch {
    return false;
  }
});

function openssl(): GcmBackend {
  const b = opensslBackend();
  if ("reason" in b) throw new Error(`libcrypto unavailable: ${b.reason}`);
  return b;
}

/** Both backends, or only node:crypto where no libcrypto is installed. */
function backends(): GcmBackend[] {
  return hasLibcrypto ? [openssl(), nodeBackend()] : [nodeBackend()];
}

Deno.test({
  name: "libcrypto is found and passes its self-test (with FFI permission)",
  ignore: !hasLibcrypto,
  fn() {
    const b = openssl();
    assert.equal(b.name, "openssl");
    assert.match(b.describe, /OpenSSL \(\/.*libcrypto\.so\.3\)/);
    assert.equal(knownAnswerFailure(b), null);
    assert.equal(chooseBackend(() => undefined).name, "openssl");
  },
});

Deno.test("the OpenSSL and node:crypto backends seal the same bytes and open each other's", () => {
  const all = backends();
  const rng = new Prng(3);
  for (const size of [0, 1, 15, 16, 17, 1400, 9000, 65_000]) {
    const raw = bytes(rng, 32);
    const nonce = bytes(rng, 12);
    const aad = bytes(rng, 18);
    const plaintext = bytes(rng, size);
    const keys = all.map((b) => b.importKey(raw));
    const sealed = keys.map((k) => {
      const out = new Uint8Array(size + GCM_TAG_BYTES);
      k.seal(nonce, aad, plaintext, out);
      return out;
    });
    for (const s of sealed) assert.deepEqual(s, sealed[0], `size ${size}`);
    for (const k of keys) {
      const out = new Uint8Array(size);
      const ct = sealed[0].subarray(0, size);
      const tag = sealed[0].subarray(size);
      assert.ok(k.open(nonce, aad, ct, tag, out), `size ${size}`);
      assert.deepEqual(out, plaintext);
      k.dispose();
    }
  }
});

Deno.test("both backends refuse a changed byte anywhere, a wrong nonce and a short tag", () => {
  const rng = new Prng(4);
  const raw = bytes(rng, 32);
  const nonce = bytes(rng, 12);
  const aad = bytes(rng, 18);
  const plaintext = bytes(rng, 40);
  for (const b of backends()) {
    const k = b.importKey(raw);
    const sealed = new Uint8Array(plaintext.length + GCM_TAG_BYTES);
    k.seal(nonce, aad, plaintext, sealed);
    const out = new Uint8Array(plaintext.length);
    const tryOpen = (n: Uint8Array, a: Uint8Array, s: Uint8Array) =>
      k.open(n, a, s.subarray(0, 40), s.subarray(40), out);
    assert.ok(tryOpen(nonce, aad, sealed), b.name);
    for (let at = 0; at < sealed.length; at++) {
      const bad = sealed.slice();
      bad[at] ^= 0x10;
      assert.equal(tryOpen(nonce, aad, bad), false, `${b.name} byte ${at}`);
    }
    for (let at = 0; at < aad.length; at++) {
      const bad = aad.slice();
      bad[at] ^= 1;
      assert.equal(tryOpen(nonce, bad, sealed), false, `${b.name} aad ${at}`);
    }
    const otherNonce = nonce.slice();
    otherNonce[11] ^= 1;
    assert.equal(tryOpen(otherNonce, aad, sealed), false, b.name);
    // A truncated tag must not be checked on its first bytes only.
    const short = k.open(
      nonce,
      aad,
      sealed.subarray(0, 40),
      sealed.subarray(40, 52),
      out,
    );
    assert.equal(short, false, `${b.name} 12-byte tag`);
    // Still usable after all the refusals.
    assert.ok(tryOpen(nonce, aad, sealed), b.name);
    k.dispose();
  }
});

Deno.test("both backends decrypt in place", () => {
  const rng = new Prng(5);
  const raw = bytes(rng, 32);
  const nonce = bytes(rng, 12);
  const plaintext = bytes(rng, 3000);
  for (const b of backends()) {
    const k = b.importKey(raw);
    const sealed = new Uint8Array(plaintext.length + GCM_TAG_BYTES);
    k.seal(nonce, new Uint8Array(0), plaintext, sealed);
    const body = sealed.subarray(0, plaintext.length);
    assert.ok(
      k.open(nonce, new Uint8Array(0), body, sealed.subarray(3000), body),
    );
    assert.deepEqual(body, plaintext, b.name);
    k.dispose();
  }
});

Deno.test("a disposed key refuses to work; keys must be 32 bytes", () => {
  for (const b of backends()) {
    assert.throws(() => b.importKey(new Uint8Array(16)), AssertionError);
    if (b.name === "node") continue; // node:crypto keeps no native state
    const k = b.importKey(new Uint8Array(32));
    k.dispose();
    assert.throws(
      () =>
        k.seal(
          new Uint8Array(12),
          new Uint8Array(0),
          new Uint8Array(1),
          new Uint8Array(17),
        ),
      AssertionError,
    );
  }
});

Deno.test("DENOSYNC_CRYPTO_BACKEND=node picks node:crypto and says why", () => {
  const b = chooseBackend((name) =>
    name === "DENOSYNC_CRYPTO_BACKEND" ? "node" : undefined
  );
  assert.equal(b.name, "node");
  assert.match(b.describe, /node:crypto \(DENOSYNC_CRYPTO_BACKEND=node\)/);
  assert.equal(knownAnswerFailure(b), null);
});

Deno.test("without FFI permission the process falls back to node:crypto and says why", async () => {
  const module = new URL("../../../src/net/aes_gcm.ts", import.meta.url).href;
  const script = `
    const { gcmBackend } = await import(${JSON.stringify(module)});
    const b = gcmBackend();
    console.log(JSON.stringify({ name: b.name, describe: b.describe }));
  `;
  const dir = await Deno.makeTempDir();
  const file = `${dir}/probe.ts`;
  await Deno.writeTextFile(file, script);
  // deno eval would grant everything: run the probe with reads only.
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-check", "--allow-read", file],
    stdout: "piped",
    stderr: "piped",
  }).output().finally(() => Deno.remove(dir, { recursive: true }));
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const got = JSON.parse(new TextDecoder().decode(out.stdout));
  assert.equal(got.name, "node");
  assert.match(got.describe, /no FFI permission for libcrypto/);
});
