/**
 * AES-256-GCM for the frame sealer and opener, from OpenSSL's libcrypto
 * when this process may load it, else from node:crypto.
 *
 * Why two: Deno's node:crypto builds a stream object per `createCipheriv`,
 * and its AES-GCM ran at about 6 ns per byte here: sealing a 1400-byte
 * datagram costs about 16 µs with it. libcrypto's EVP calls through FFI (AES-NI and carry-less
 * multiply; one cipher context per key, so a frame only sets its nonce) take
 * under 1 µs, 3.6 µs for a whole sealed frame with its header and buffer.
 * At 20k frames/s that is a third of a core saved on the sender and as much
 * on every receiver. `deno bench -A scripts/bench/crypto_bench.ts` compares
 * both.
 *
 * Both produce the same bytes (the GCM standard; a known-answer check runs
 * before libcrypto is trusted), so nodes using different backends
 * interoperate. libcrypto needs `--allow-ffi` for one of `LIBCRYPTO_PATHS`
 * (`deno task denosync` grants it). Without it, or with
 * `DENOSYNC_CRYPTO_BACKEND=node`, node:crypto is used: slower, same frames.
 *
 * @module
 */
import { createCipheriv, createDecipheriv } from "node:crypto";
import { assert } from "../lib/assert.ts";
import { dlopenFirst } from "../lib/dlopen_first.ts";

/** Where libcrypto (OpenSSL 3) lives on the Linux distributions we run on. */
export const LIBCRYPTO_PATHS: readonly string[] = [
  "/lib/x86_64-linux-gnu/libcrypto.so.3",
  "/lib/aarch64-linux-gnu/libcrypto.so.3",
  "/usr/lib/x86_64-linux-gnu/libcrypto.so.3",
  "/usr/lib/aarch64-linux-gnu/libcrypto.so.3",
  "/lib64/libcrypto.so.3",
  "/usr/lib64/libcrypto.so.3",
  "/usr/lib/libcrypto.so.3",
];

/** Bytes of an AES-256 key. */
export const GCM_KEY_BYTES = 32;
/** Bytes of the nonce (96 bits, the GCM default). */
export const GCM_NONCE_BYTES = 12;
/** Bytes of the authentication tag. */
export const GCM_TAG_BYTES = 16;

/** One AES-256-GCM key, ready to seal or open many datagrams. */
export interface GcmKey {
  /**
   * Encrypts `plaintext` with `nonce`, authenticating `aad` too, and writes
   * ciphertext (same length) then tag into `out` (`plaintext.length + 16`
   * bytes, not overlapping `plaintext`).
   */
  seal(
    nonce: Uint8Array,
    aad: Uint8Array,
    plaintext: Uint8Array,
    out: Uint8Array,
  ): void;
  /**
   * Decrypts `ciphertext` into `out` (same length; may be `ciphertext`
   * itself) and checks `tag`. False when the datagram does not authenticate;
   * `out` then holds garbage.
   */
  open(
    nonce: Uint8Array,
    aad: Uint8Array,
    ciphertext: Uint8Array,
    tag: Uint8Array,
    out: Uint8Array,
  ): boolean;
  /** Frees native state. The key must not be used afterwards. */
  dispose(): void;
}

/** Makes `GcmKey`s; `describe` says which implementation, for the log. */
export interface GcmBackend {
  readonly name: "openssl" | "node";
  readonly describe: string;
  importKey(raw: Uint8Array): GcmKey;
}

/** The backend chosen for this process (decided once). */
export function gcmBackend(): GcmBackend {
  chosen ??= chooseBackend(Deno.env.get.bind(Deno.env));
  return chosen;
}

let chosen: GcmBackend | undefined;

/** The choice `gcmBackend` makes, with the environment passed in (tests). */
export function chooseBackend(
  env: (name: string) => string | undefined,
): GcmBackend {
  let wanted: string | undefined;
  try {
    wanted = env("DENOSYNC_CRYPTO_BACKEND");
  } catch {
    wanted = undefined; // no --allow-env for it: the default
  }
  if (wanted === "node") {
    return nodeBackend("DENOSYNC_CRYPTO_BACKEND=node");
  }
  const openssl = opensslBackend();
  if ("reason" in openssl) return nodeBackend(openssl.reason);
  return openssl;
}

/** node:crypto's AES-256-GCM; `why` says why it is in use. */
export function nodeBackend(why = "chosen"): GcmBackend {
  return {
    name: "node",
    describe: `AES-256-GCM from node:crypto (${why})`,
    importKey(raw) {
      assertKey(raw);
      const key = raw.slice();
      return {
        seal(nonce, aad, plaintext, out) {
          const c = createCipheriv("aes-256-gcm", key, nonce);
          c.setAAD(aad);
          const body = c.update(plaintext);
          const tail = c.final();
          out.set(body);
          out.set(tail, body.length);
          assert(
            body.length + tail.length === plaintext.length,
            "GCM output length differs from input",
          );
          out.set(c.getAuthTag(), plaintext.length);
        },
        open(nonce, aad, ciphertext, tag, out) {
          try {
            const d = createDecipheriv("aes-256-gcm", key, nonce);
            d.setAAD(aad);
            d.setAuthTag(tag);
            const body = d.update(ciphertext);
            // final() throws when the tag does not match: the expected throw.
            const tail = d.final();
            out.set(body);
            out.set(tail, body.length);
            return true;
          } catch {
            return false;
          }
        },
        dispose() {
          key.fill(0);
        },
      };
    },
  };
}

const EVP_CTRL_GCM_GET_TAG = 0x10;
const EVP_CTRL_GCM_SET_TAG = 0x11;

const LIBCRYPTO_SYMBOLS = {
  EVP_aes_256_gcm: { parameters: [], result: "pointer" },
  EVP_CIPHER_CTX_new: { parameters: [], result: "pointer" },
  EVP_CIPHER_CTX_free: { parameters: ["pointer"], result: "void" },
  EVP_CipherInit_ex: {
    parameters: ["pointer", "pointer", "pointer", "buffer", "buffer", "i32"],
    result: "i32",
  },
  EVP_CipherUpdate: {
    parameters: ["pointer", "buffer", "buffer", "buffer", "i32"],
    result: "i32",
  },
  EVP_CipherFinal_ex: {
    parameters: ["pointer", "buffer", "buffer"],
    result: "i32",
  },
  EVP_CIPHER_CTX_ctrl: {
    parameters: ["pointer", "i32", "i32", "buffer"],
    result: "i32",
  },
} as const;

type Libcrypto = Deno.DynamicLibrary<typeof LIBCRYPTO_SYMBOLS>["symbols"];

/** libcrypto's AES-256-GCM, or why it cannot be used here. */
export function opensslBackend(): GcmBackend | { reason: string } {
  const opened = dlopenFirst("libcrypto", LIBCRYPTO_PATHS, LIBCRYPTO_SYMBOLS);
  if ("reason" in opened) return opened;
  const backend = opensslBackendFrom(opened.lib.symbols, opened.path);
  const failed = knownAnswerFailure(backend);
  if (failed !== null) {
    opened.lib.close();
    return {
      reason: `${opened.path} failed the AES-GCM self-test: ${failed}`,
    };
  }
  return backend;
}

function opensslBackendFrom(s: Libcrypto, path: string): GcmBackend {
  const cipher = s.EVP_aes_256_gcm();
  // Output length of each call; GCM is a stream mode, so we know it already.
  const outLen = new Uint8Array(4);
  // GCM's final step writes no bytes, but OpenSSL wants somewhere to put them.
  const finalOut = new Uint8Array(GCM_TAG_BYTES);
  // Frees the contexts of keys that were dropped without dispose().
  const leaked = new FinalizationRegistry<Deno.PointerValue>((ctx) =>
    s.EVP_CIPHER_CTX_free(ctx)
  );
  const track = (owner: GcmKey, ctx: Deno.PointerValue) => {
    leaked.register(owner, ctx, owner);
    return ctx;
  };

  function newContext(raw: Uint8Array, encrypt: boolean): Deno.PointerValue {
    const ctx = s.EVP_CIPHER_CTX_new();
    assert(ctx !== null, "EVP_CIPHER_CTX_new failed (out of memory)");
    if (
      s.EVP_CipherInit_ex(ctx, cipher, null, raw, null, encrypt ? 1 : 0) !== 1
    ) {
      s.EVP_CIPHER_CTX_free(ctx);
      throw new Error("EVP_CipherInit_ex rejected an AES-256-GCM key");
    }
    return ctx;
  }

  return {
    name: "openssl",
    describe: `AES-256-GCM from OpenSSL (${path})`,
    importKey(raw) {
      assertKey(raw);
      // The key schedule lives in the contexts, made on first use: a
      // sealer's keys only seal and an opener's only open.
      let key: Uint8Array | null = raw.slice();
      let enc: Deno.PointerValue = null;
      let dec: Deno.PointerValue = null;
      const gcmKey: GcmKey = {
        seal(nonce, aad, plaintext, out) {
          assert(key !== null, "GCM key used after dispose");
          assert(out.length === plaintext.length + GCM_TAG_BYTES);
          enc ??= track(gcmKey, newContext(key, true));
          const n = plaintext.length;
          const ok =
            s.EVP_CipherInit_ex(enc, null, null, null, nonce, 1) === 1 &&
            s.EVP_CipherUpdate(enc, null, outLen, aad, aad.length) === 1 &&
            s.EVP_CipherUpdate(enc, out, outLen, plaintext, n) === 1 &&
            s.EVP_CipherFinal_ex(enc, finalOut, outLen) === 1 &&
            s.EVP_CIPHER_CTX_ctrl(
                enc,
                EVP_CTRL_GCM_GET_TAG,
                GCM_TAG_BYTES,
                out.subarray(n),
              ) === 1;
          assert(ok, "OpenSSL AES-GCM encryption failed");
        },
        open(nonce, aad, ciphertext, tag, out) {
          assert(key !== null, "GCM key used after dispose");
          assert(out.length === ciphertext.length);
          // A shorter tag would be checked truncated by OpenSSL.
          if (tag.length !== GCM_TAG_BYTES) return false;
          dec ??= track(gcmKey, newContext(key, false));
          const n = ciphertext.length;
          return s.EVP_CipherInit_ex(dec, null, null, null, nonce, 0) === 1 &&
            s.EVP_CipherUpdate(dec, null, outLen, aad, aad.length) === 1 &&
            s.EVP_CipherUpdate(dec, out, outLen, ciphertext, n) === 1 &&
            s.EVP_CIPHER_CTX_ctrl(
                dec,
                EVP_CTRL_GCM_SET_TAG,
                GCM_TAG_BYTES,
                tag,
              ) ===
              1 &&
            s.EVP_CipherFinal_ex(dec, finalOut, outLen) === 1;
        },
        dispose() {
          leaked.unregister(gcmKey);
          if (enc !== null) s.EVP_CIPHER_CTX_free(enc);
          if (dec !== null) s.EVP_CIPHER_CTX_free(dec);
          enc = dec = null;
          key?.fill(0);
          key = null;
        },
      };
      return gcmKey;
    },
  };
}

/**
 * Seals and opens a fixed message with `backend` and with node:crypto and
 * compares: a libcrypto whose EVP calls misbehave must not carry frames.
 * Returns null when all agrees, else what differed.
 */
export function knownAnswerFailure(backend: GcmBackend): string | null {
  const raw = new Uint8Array(GCM_KEY_BYTES).map((_, i) => i * 7 + 1);
  const nonce = new Uint8Array(GCM_NONCE_BYTES).map((_, i) => 200 - i);
  const aad = new Uint8Array(18).map((_, i) => i);
  const plaintext = new Uint8Array(100).map((_, i) => (i * 31) & 0xff);
  const mine = backend.importKey(raw);
  const reference = nodeBackend().importKey(raw);
  try {
    const a = new Uint8Array(plaintext.length + GCM_TAG_BYTES);
    const b = new Uint8Array(plaintext.length + GCM_TAG_BYTES);
    mine.seal(nonce, aad, plaintext, a);
    reference.seal(nonce, aad, plaintext, b);
    if (!a.every((v, i) => v === b[i])) return "sealed bytes differ";
    const back = new Uint8Array(plaintext.length);
    const ct = a.subarray(0, plaintext.length);
    const tag = a.subarray(plaintext.length);
    if (!mine.open(nonce, aad, ct, tag, back)) return "rejected its own frame";
    if (!back.every((v, i) => v === plaintext[i])) return "opened bytes differ";
    a[3] ^= 1;
    if (mine.open(nonce, aad, ct, tag, back)) return "accepted a forged frame";
    return null;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  } finally {
    mine.dispose();
    reference.dispose();
  }
}

function assertKey(raw: Uint8Array): void {
  assert(
    raw.length === GCM_KEY_BYTES,
    `AES-256 key must be ${GCM_KEY_BYTES} bytes, got ${raw.length}`,
  );
}
