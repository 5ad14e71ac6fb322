/**
 * Datagram encryption and authentication (TOTEM.md section 7.2).
 *
 * Every datagram, tokens and joins included, is sealed with AES-256-GCM:
 *
 * | Off | Field              | Notes                                        |
 * |-----|--------------------|----------------------------------------------|
 * | 0   | u8 version         | `CRYPTO_VERSION`                             |
 * | 1   | u8 keyId           | key slot, for online rotation                |
 * | 2   | u32 senderNodeid   | little-endian, non-zero                      |
 * | 6   | u32 epoch          | sender's boot counter (`nextEpoch`)          |
 * | 10  | u64 counter        | per-packet counter within the epoch          |
 * | 18  | ciphertext         | same length as the plaintext                 |
 * | end | 16-byte GCM tag    |                                              |
 *
 * The 18-byte header travels in clear but is the GCM additional data, so a
 * frame whose sender, epoch or counter was altered fails authentication.
 *
 * Keys: `K = HKDF-SHA256(master, salt = clusterName (UTF-8), info =
 * "totem/v1/" + keyId (decimal))`, then per sender and boot
 * `K_s = HKDF-SHA256(K, salt = "", info = u32le nodeid || u32le epoch)`. The
 * nonce is the counter's eight header bytes followed by four zero bytes.
 * Because the epoch is bumped and fsynced before a node's first send, a
 * (K_s, nonce) pair is never reused even across crashes; random 96-bit nonces
 * under one long-lived key would risk a collision (NIST SP 800-38D 8.3).
 *
 * Corosync/knet instead use AES-CBC with a random IV plus an HMAC trailer and
 * have no replay protection (TOTEM.md 7.1). AES-GCM itself comes from
 * `aes_gcm.ts`: OpenSSL's libcrypto when it may be loaded, else node:crypto.
 * Both are synchronous, which keeps the transport free of awaits (WebCrypto
 * is async and slower still, DENO_NOTES.md section 2).
 *
 * Opening never throws: every bad datagram yields an `OpenRejectReason` that
 * the transport counts and drops (STYLE.md section 6).
 *
 * @module
 */
import { hkdfSync } from "node:crypto";
import { assert } from "../lib/assert.ts";
import { smallBytes } from "../lib/small_bytes.ts";
import { type GcmBackend, gcmBackend, type GcmKey } from "./aes_gcm.ts";
import { REPLAY_WINDOW_DEFAULT, ReplayWindow } from "./replay_window.ts";

/** Version byte of the sealed-frame format; others get "bad_version". */
export const CRYPTO_VERSION = 1;
/** Bytes of the clear, authenticated header. */
export const CRYPTO_HEADER_BYTES = 18;
/** Bytes of the AES-GCM authentication tag. */
export const CRYPTO_TAG_BYTES = 16;
/** What sealing adds to every datagram: subtract it from the MTU budget. */
export const CRYPTO_OVERHEAD_BYTES = CRYPTO_HEADER_BYTES + CRYPTO_TAG_BYTES;
/** Smallest accepted authkey: 256 bits of key material. */
export const AUTHKEY_BYTES_MIN = 32;
/** Largest accepted authkey (knet's limit). */
export const AUTHKEY_BYTES_MAX = 4096;
/** Key slots that may be installed at once (knet's online key change). */
export const KEY_SLOTS_MAX = 2;

const NONCE_BYTES = 12;
const KEY_BYTES = 32;
const U32_MAX = 0xffff_ffff;
/** `Number.MAX_SAFE_INTEGER >> 32`: counters stay exact JS integers. */
const COUNTER_HIGH_MAX = 0x1f_ffff;
const EMPTY = new Uint8Array(0);
const UTF8 = new TextEncoder();

assert(CRYPTO_OVERHEAD_BYTES === 34); // the budget other layers assume

/** Why `FrameOpener.open` dropped a datagram. */
export type OpenRejectReason =
  | "truncated"
  | "bad_version"
  | "unknown_key"
  | "unknown_sender"
  | "auth_failed"
  | "replay"
  | "old_epoch";

/** Result of opening one datagram. `plaintext` may share memory with the input. */
export type OpenResult =
  | {
    ok: true;
    sender: number;
    epoch: number;
    keyId: number;
    counter: number;
    plaintext: Uint8Array;
  }
  | { ok: false; reason: OpenRejectReason };

/** Which sender nodeids may talk to us: a set or a predicate. */
export type AllowedNodeIds =
  | ReadonlySet<number>
  | ((nodeId: number) => boolean);

/**
 * An authkey the daemon refuses to start with (operator error, exit 2). The
 * message leads with where the key came from.
 */
export class AuthKeyError extends Error {
  override name = "AuthKeyError";
}

/** The epoch file is unreadable, corrupt or exhausted (operator error). */
export class EpochError extends Error {
  override name = "EpochError";
}

/**
 * Throws an `AuthKeyError` unless `master` is 32..4096 bytes. `source` names
 * the key in the message, e.g. the keyfile path.
 */
export function validateAuthKey(
  master: Uint8Array,
  source = "authkey",
): void {
  if (
    master.length < AUTHKEY_BYTES_MIN || master.length > AUTHKEY_BYTES_MAX
  ) {
    throw new AuthKeyError(
      `${source}: authkey must be ${AUTHKEY_BYTES_MIN}..${AUTHKEY_BYTES_MAX} bytes, got ${master.length} (create one with "denosync keygen")`,
    );
  }
}

/** Reads and validates an authkey file (default Corosync path: /etc/corosync/authkey). */
export async function loadAuthKey(path: string): Promise<Uint8Array> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new AuthKeyError(
      `${path}: cannot read authkey: ${
        e instanceof Error ? e.message : String(e)
      }`,
    );
  }
  validateAuthKey(bytes, path);
  return bytes;
}

/**
 * `K` for one key slot: HKDF-SHA256(master, salt = cluster name, info =
 * "totem/v1/" + keyId). Binding the cluster name keeps two clusters that
 * share an authkey from accepting each other's frames.
 */
export function deriveClusterKey(
  master: Uint8Array,
  clusterName: string,
  keyId: number,
): Uint8Array {
  validateAuthKey(master);
  assertKeyId(keyId);
  return new Uint8Array(
    hkdfSync(
      "sha256",
      master,
      UTF8.encode(clusterName),
      UTF8.encode(`totem/v1/${keyId}`),
      KEY_BYTES,
    ),
  );
}

/** `K_s` for one sender boot: HKDF-SHA256(K, salt = "", info = u32le nodeid || u32le epoch). */
export function deriveSenderKey(
  clusterKey: Uint8Array,
  nodeId: number,
  epoch: number,
): Uint8Array {
  const info = new Uint8Array(8);
  writeU32(info, 0, nodeId);
  writeU32(info, 4, epoch);
  return new Uint8Array(hkdfSync("sha256", clusterKey, EMPTY, info, KEY_BYTES));
}

/** Options of `FrameSealer`. */
export interface FrameSealerOptions {
  /** The authkey file bytes (32..4096). */
  master: Uint8Array;
  /** `totem.cluster_name`; part of the key derivation. */
  clusterName: string;
  /** This node's nodeid (1..2^32-1). */
  nodeId: number;
  /** This boot's epoch, from `nextEpoch` (fsynced before the first send). */
  epoch: number;
  /** Key slot to send with; default 0. */
  keyId?: number;
  /** Where AES-GCM comes from; default `gcmBackend()`. */
  backend?: GcmBackend;
}

/**
 * Seals this node's outgoing datagrams. One sealer per boot: the counter
 * starts at 0 and only ever grows, which is what makes nonces unique.
 */
export class FrameSealer {
  readonly nodeId: number;
  readonly epoch: number;
  readonly #clusterName: string;
  readonly #backend: GcmBackend;
  #keyId: number;
  #key: GcmKey;
  #counter = 0;
  // Scratch nonce: the cipher consumes it before returning.
  readonly #nonce = new Uint8Array(NONCE_BYTES);

  constructor(options: FrameSealerOptions) {
    assertNodeId(options.nodeId);
    assertEpoch(options.epoch);
    this.nodeId = options.nodeId;
    this.epoch = options.epoch;
    this.#clusterName = options.clusterName;
    this.#keyId = options.keyId ?? 0;
    this.#backend = options.backend ?? gcmBackend();
    this.#key = this.#senderKey(options.master, this.#keyId);
  }

  /** Key slot used for new frames. */
  get keyId(): number {
    return this.#keyId;
  }

  /** Counter the next frame will carry. */
  get counter(): number {
    return this.#counter;
  }

  /**
   * Switches sending to another key slot (rotation: only once every node has
   * installed it). The counter keeps growing, so the replay windows of the
   * receivers need no reset.
   */
  useKey(keyId: number, master: Uint8Array): void {
    const key = this.#senderKey(master, keyId);
    this.#key.dispose();
    this.#key = key;
    this.#keyId = keyId;
  }

  /**
   * Returns header || ciphertext || tag for one datagram in a buffer of its
   * own, or a view of a shared chunk when small.
   */
  seal(plaintext: Uint8Array): Uint8Array<ArrayBuffer> {
    const counter = this.#counter;
    // 2^53 frames: 285 years at a million frames a second.
    assert(counter < Number.MAX_SAFE_INTEGER, "frame counter exhausted");
    this.#counter = counter + 1;

    // Small datagrams (tokens, heartbeats) from a shared chunk.
    const out = smallBytes(CRYPTO_OVERHEAD_BYTES + plaintext.length);
    out[0] = CRYPTO_VERSION;
    out[1] = this.#keyId;
    writeU32(out, 2, this.nodeId);
    writeU32(out, 6, this.epoch);
    writeU32(out, 10, counter >>> 0);
    writeU32(out, 14, Math.floor(counter / 0x1_0000_0000));

    const nonce = this.#nonce;
    for (let i = 0; i < 8; i++) nonce[i] = out[10 + i];
    this.#key.seal(
      nonce,
      out.subarray(0, CRYPTO_HEADER_BYTES),
      plaintext,
      out.subarray(CRYPTO_HEADER_BYTES),
    );
    return out;
  }

  #senderKey(master: Uint8Array, keyId: number): GcmKey {
    const k = deriveClusterKey(master, this.#clusterName, keyId);
    return this.#backend.importKey(deriveSenderKey(k, this.nodeId, this.epoch));
  }
}

/** Options of `FrameOpener`. */
export interface FrameOpenerOptions {
  /** The authkey file bytes (32..4096), installed in slot `keyId`. */
  master: Uint8Array;
  /** `totem.cluster_name`; part of the key derivation. */
  clusterName: string;
  /** Configured nodeids; frames from anyone else are "unknown_sender". */
  allowedNodeIds: AllowedNodeIds;
  /** Replay window in counters per sender; default 1024. */
  windowSize?: number;
  /** Slot of `master`; default 0. */
  keyId?: number;
  /** Where AES-GCM comes from; default `gcmBackend()`. */
  backend?: GcmBackend;
}

/** One installed key. Cache entries compare slots by identity. */
interface KeySlot {
  readonly keyId: number;
  readonly clusterKey: Uint8Array;
}

/** Derived K_s for one sender, key slot and epoch. */
interface CachedKey {
  readonly slot: KeySlot;
  readonly epoch: number;
  readonly key: GcmKey;
}

interface SenderState {
  readonly window: ReplayWindow;
  /** By keyId; holds the newest epoch that authenticated. */
  readonly keys: Map<number, CachedKey>;
}

/**
 * Opens datagrams from the configured nodes: checks the header, the sender,
 * replay and the GCM tag, in that order (cheap checks first). State changes
 * only after a frame authenticated, so forged frames cannot move a replay
 * window or poison the key cache.
 */
export class FrameOpener {
  readonly windowSize: number;
  readonly #clusterName: string;
  #allowed: (nodeId: number) => boolean;
  readonly #slots = new Map<number, KeySlot>();
  readonly #senders = new Map<number, SenderState>();
  readonly #backend: GcmBackend;
  // Scratch nonce: the cipher consumes it before returning.
  readonly #nonce = new Uint8Array(NONCE_BYTES);

  constructor(options: FrameOpenerOptions) {
    this.windowSize = options.windowSize ?? REPLAY_WINDOW_DEFAULT;
    // Validate now rather than on the first frame.
    new ReplayWindow(this.windowSize);
    this.#clusterName = options.clusterName;
    this.#allowed = toPredicate(options.allowedNodeIds);
    this.#backend = options.backend ?? gcmBackend();
    this.installKey(options.keyId ?? 0, options.master);
  }

  /**
   * Installs (or replaces) the key in slot `keyId`. At most `KEY_SLOTS_MAX`
   * slots are installed at once: remove the old one after a rotation.
   */
  installKey(keyId: number, master: Uint8Array): void {
    assertKeyId(keyId);
    assert(
      this.#slots.has(keyId) || this.#slots.size < KEY_SLOTS_MAX,
      `at most ${KEY_SLOTS_MAX} key slots may be installed`,
    );
    // Replacing a slot orphans its cached K_s (entries compare slots by
    // identity): free them now rather than when a sender next authenticates.
    if (this.#slots.has(keyId)) this.#disposeCached(keyId);
    this.#slots.set(keyId, {
      keyId,
      clusterKey: deriveClusterKey(master, this.#clusterName, keyId),
    });
  }

  /** Stops accepting frames sealed with slot `keyId`; true if it was installed. */
  removeKey(keyId: number): boolean {
    this.#disposeCached(keyId);
    return this.#slots.delete(keyId);
  }

  #disposeCached(keyId: number): void {
    for (const state of this.#senders.values()) {
      state.keys.get(keyId)?.key.dispose();
      state.keys.delete(keyId);
    }
  }

  /** Installed key slots, ascending. */
  keyIds(): number[] {
    return [...this.#slots.keys()].sort((a, b) => a - b);
  }

  /** Replaces the configured node set (configuration reload). */
  setAllowedNodeIds(allowed: AllowedNodeIds): void {
    this.#allowed = toPredicate(allowed);
    for (const id of [...this.#senders.keys()]) {
      if (!this.#allowed(id)) this.forgetSender(id);
    }
  }

  /** Forgets a sender's replay state and keys (it left the configuration). */
  forgetSender(nodeId: number): void {
    const state = this.#senders.get(nodeId);
    if (state === undefined) return;
    for (const cached of state.keys.values()) cached.key.dispose();
    this.#senders.delete(nodeId);
  }

  /**
   * Authenticates and decrypts one datagram. Never throws. Decrypts in place:
   * `bytes` no longer holds the ciphertext afterwards (whether or not it
   * authenticated), and an accepted frame's `plaintext` is a view of it.
   */
  open(bytes: Uint8Array): OpenResult {
    if (bytes.length < CRYPTO_OVERHEAD_BYTES) return reject("truncated");
    if (bytes[0] !== CRYPTO_VERSION) return reject("bad_version");
    const keyId = bytes[1];
    const slot = this.#slots.get(keyId);
    if (slot === undefined) return reject("unknown_key");

    const sender = readU32(bytes, 2);
    if (sender === 0 || !this.#callAllowed(sender)) {
      return reject("unknown_sender");
    }
    const epoch = readU32(bytes, 6);
    const counterHigh = readU32(bytes, 14);
    // No sealer of ours ever reaches 2^53 (FrameSealer asserts it).
    if (counterHigh > COUNTER_HIGH_MAX) return reject("auth_failed");
    const counter = counterHigh * 0x1_0000_0000 + readU32(bytes, 10);

    const state = this.#senders.get(sender);
    if (state !== undefined) {
      const verdict = state.window.check(epoch, counter);
      if (verdict !== "fresh") return reject(verdict);
    }

    const cached = state?.keys.get(keyId);
    const key = cached !== undefined && cached.slot === slot &&
        cached.epoch === epoch
      ? cached.key
      : this.#backend.importKey(
        deriveSenderKey(slot.clusterKey, sender, epoch),
      );

    const plaintext = this.#decrypt(key, bytes);
    if (plaintext === null) {
      if (key !== cached?.key) key.dispose();
      return reject("auth_failed");
    }

    // Authentic: now, and only now, update state.
    let s = state;
    if (s === undefined) {
      s = { window: new ReplayWindow(this.windowSize), keys: new Map() };
      this.#senders.set(sender, s);
    }
    s.window.commit(epoch, counter);
    if (key !== cached?.key) {
      cached?.key.dispose();
      s.keys.set(keyId, { slot, epoch, key });
    }
    return { ok: true, sender, epoch, keyId, counter, plaintext };
  }

  #callAllowed(sender: number): boolean {
    // A throwing predicate is the caller's bug, but open() promises never to
    // throw on network input; treat it as "not allowed".
    try {
      return this.#allowed(sender) === true;
    } catch {
      return false;
    }
  }

  #decrypt(key: GcmKey, bytes: Uint8Array): Uint8Array | null {
    const tagAt = bytes.length - CRYPTO_TAG_BYTES;
    const nonce = this.#nonce;
    for (let i = 0; i < 8; i++) nonce[i] = bytes[10 + i];
    const body = bytes.subarray(CRYPTO_HEADER_BYTES, tagAt);
    const ok = key.open(
      nonce,
      bytes.subarray(0, CRYPTO_HEADER_BYTES),
      body,
      bytes.subarray(tagAt),
      body,
    );
    return ok ? body : null;
  }
}

/**
 * Returns this boot's epoch for `nodeId`: reads `<stateDir>/epoch_<nodeId>`
 * (0 when missing), adds one, writes it back atomically (temp file, fsync,
 * rename, fsync of the directory) and only then returns. Call it once per
 * boot, before the first sealed send.
 *
 * Never delete the file while keeping the authkey: the next boot would reuse
 * epochs, hence GCM nonces. If it is lost, rotate the authkey.
 */
export async function nextEpoch(
  stateDir: string,
  nodeId: number,
): Promise<number> {
  assertNodeId(nodeId);
  const path = `${stateDir}/epoch_${nodeId}`;
  let previous = 0;
  try {
    const text = await Deno.readTextFile(path);
    const trimmed = text.trim();
    if (!/^[0-9]{1,10}$/.test(trimmed)) {
      throw new EpochError(
        `${path}: expected a decimal epoch, got ${
          JSON.stringify(trimmed.slice(0, 40))
        } (restore it or rotate the authkey, then delete it)`,
      );
    }
    previous = Number(trimmed);
  } catch (e) {
    if (e instanceof EpochError) throw e;
    if (!(e instanceof Deno.errors.NotFound)) {
      throw new EpochError(`${path}: cannot read epoch: ${errorText(e)}`);
    }
  }
  if (previous >= U32_MAX) {
    throw new EpochError(
      `${path}: epoch ${previous} is exhausted (rotate the authkey, then delete the file)`,
    );
  }
  const epoch = previous + 1;
  try {
    await Deno.mkdir(stateDir, { recursive: true });
    await writeDurably(path, UTF8.encode(`${epoch}\n`));
  } catch (e) {
    throw new EpochError(`${path}: cannot write epoch: ${errorText(e)}`);
  }
  return epoch;
}

/** Writes `path` via a temp file in the same directory, fsync and rename. */
async function writeDurably(path: string, data: Uint8Array): Promise<void> {
  const tmp = `${path}.${Deno.pid}.tmp`;
  const file = await Deno.open(tmp, {
    write: true,
    create: true,
    truncate: true,
    mode: 0o600,
  });
  try {
    let written = 0;
    while (written < data.length) {
      written += await file.write(data.subarray(written));
    }
    await file.sync();
  } finally {
    file.close();
  }
  await Deno.rename(tmp, path);
  // The rename itself is durable only once the directory is synced.
  const dir = await Deno.open(dirname(path), { read: true });
  try {
    await dir.sync();
  } finally {
    dir.close();
  }
}

function dirname(path: string): string {
  const at = path.lastIndexOf("/");
  if (at < 0) return ".";
  return at === 0 ? "/" : path.slice(0, at);
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function reject(reason: OpenRejectReason): OpenResult {
  return { ok: false, reason };
}

function toPredicate(allowed: AllowedNodeIds): (nodeId: number) => boolean {
  if (typeof allowed === "function") return allowed;
  return (nodeId) => allowed.has(nodeId);
}

function writeU32(out: Uint8Array, at: number, value: number): void {
  out[at] = value;
  out[at + 1] = value >>> 8;
  out[at + 2] = value >>> 16;
  out[at + 3] = value >>> 24;
}

function readU32(bytes: Uint8Array, at: number): number {
  return (bytes[at] | (bytes[at + 1] << 8) | (bytes[at + 2] << 16) |
    (bytes[at + 3] << 24)) >>> 0;
}

function assertNodeId(nodeId: number): void {
  assert(
    Number.isInteger(nodeId) && nodeId >= 1 && nodeId <= U32_MAX,
    `nodeid must be 1..${U32_MAX}, got ${nodeId}`,
  );
}

function assertEpoch(epoch: number): void {
  assert(
    Number.isInteger(epoch) && epoch >= 0 && epoch <= U32_MAX,
    `epoch must be 0..${U32_MAX}, got ${epoch}`,
  );
}

function assertKeyId(keyId: number): void {
  assert(
    Number.isInteger(keyId) && keyId >= 0 && keyId <= 255,
    `keyId must be 0..255, got ${keyId}`,
  );
}
