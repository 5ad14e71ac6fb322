/**
 * The cmap engine: this node's typed key/value database, like Corosync's
 * `exec/cmap.c` over `icmap`. Node-local: no ordered messages and nothing
 * to synchronise. Pure: it changes state on IPC requests, configuration
 * changes and calls from the daemon (`load`, `setInternal`), and reaches
 * clients through `EngineApi.event` (track callbacks).
 *
 * Rules:
 * - Key names: 3..255 characters of `[A-Za-z0-9._/:-]` (INVALID_PARAM).
 * - Values: the twelve `CmapType`s, at most 16 KiB (TOO_BIG).
 * - `runtime.*` and `stats.*` are read-only to clients (ACCESS), except
 *   the prefixes in `CMAP_CLIENT_WRITABLE` (`stats.clear.`). The daemon
 *   writes them with `setInternal`.
 * - `stats.clear.<what>` keys are write-only, as in Corosync's stats map:
 *   a set calls the handler given to `setStatsClearHandler` (which zeroes
 *   the counters) and stores nothing, so get answers NOT_EXIST; a `what`
 *   the handler does not know, or no handler, answers NOT_SUPPORTED.
 * - Write hooks (`addWriteHook`) let the daemon act on writable keys with
 *   effect (`logging.debug`) or refuse values it cannot apply.
 * - Unknown keys: NOT_EXIST. inc/dec on a non-integer: INVALID_PARAM.
 * - inc/dec wrap around in two's complement, as `icmap_adjust_int` does in
 *   C: uint8 255 + 1 = 0, int8 127 + 1 = -128, uint32 0 - 1 = 4294967295.
 * - Tracking: a client tracks one key, or every key under a prefix
 *   (flag PREFIX), for any of ADD, DELETE, MODIFY; a set that stores the
 *   same type and bytes notifies nobody. Every change, by a client or by
 *   the daemon, is notified, in the order it happened.
 *
 * Runtime keys kept by the engine itself (on every regular configuration):
 * `runtime.members.<id>.status` ("joined" / "left"),
 * `runtime.members.<id>.join_count` (uint32), `runtime.totem.ring_id`
 * (string "rep.seq"), `runtime.totem.member_count` (uint32), and
 * `runtime.local_node_id` (uint32, at init).
 *
 * @module
 */
import { CsError, type CsStatus } from "../../src/exec/cs_error.ts";
import {
  type ConnId,
  type Engine,
  type EngineApi,
  type EngineRequest,
  NO_SYNC,
  type RequestHandler,
  type RequestResult,
  SERVICE_ID,
  type SyncHooks,
} from "../../src/exec/engine.ts";
import { assert } from "../../src/lib/assert.ts";
import type { ConfChange } from "../../src/totem/types.ts";
import {
  CMAP_REQUEST_FN,
  CMAP_TRACK,
  type CmapRequest,
  decodeCmapRequest,
  encodeCmapU32,
  encodeIterPage,
  encodeRawValue,
  encodeTrackCallback,
  type RawEntry,
  type RawValue,
} from "./ipc.ts";
import {
  adjustInt,
  CMAP_TYPE_CODE,
  CMAP_VALUE_BYTES_MAX,
  cmapTypeOf,
  type CmapValue,
  keyNameProblem,
  prefixProblem,
  valueFromBytes,
  valueProblem,
  valueToBytes,
} from "./values.ts";
import { configValue } from "./config_types.ts";

/** Prefixes clients may not write. */
export const CMAP_READ_ONLY_PREFIXES: readonly string[] = [
  "runtime.",
  "stats.",
];
/** Write-only keys that clear statistics (`stats.clear.all` …). */
export const CMAP_STATS_CLEAR_PREFIX = "stats.clear.";
/** Exceptions to `CMAP_READ_ONLY_PREFIXES`. */
export const CMAP_CLIENT_WRITABLE: readonly string[] = [
  CMAP_STATS_CLEAR_PREFIX,
];

/**
 * Zeroes the statistics named by `what` (the key after `stats.clear.`);
 * false when `what` names nothing clearable.
 */
export type CmapStatsClearHandler = (what: string) => boolean;

/**
 * Sees a client's change of a key under the hook's prefix before it is
 * applied: `value` is the new value, or null for a delete. Answers OK to
 * let the change happen (the hook has applied its effect), or the status a
 * refused change gets (INVALID_PARAM for a value it cannot apply).
 */
export type CmapWriteHook = (key: string, value: CmapValue | null) => CsStatus;
/** Most keys in the map (NO_RESOURCES beyond). */
export const CMAP_KEYS_MAX = 65_536;
/** Most tracks one connection may hold (NO_RESOURCES beyond). */
export const CMAP_TRACKS_PER_CONN_MAX = 1024;
/** Byte budget of one iter reply page (a page always holds one entry). */
export const CMAP_ITER_PAGE_BYTES = 64 * 1024;

interface Track {
  readonly conn: ConnId;
  readonly flags: number;
  readonly key: string;
}

/** Counters. */
export interface CmapStats {
  /** Requests that did not decode. */
  rejected: number;
  /** Track callbacks sent. */
  notifications: number;
}

/** True when clients may not write `key`. */
export function isReadOnlyKey(key: string): boolean {
  return CMAP_READ_ONLY_PREFIXES.some((p) => key.startsWith(p)) &&
    !CMAP_CLIENT_WRITABLE.some((p) => key.startsWith(p));
}

function sameRaw(a: RawValue, b: RawValue): boolean {
  if (a.typeCode !== b.typeCode || a.bytes.length !== b.bytes.length) {
    return false;
  }
  for (let i = 0; i < a.bytes.length; i++) {
    if (a.bytes[i] !== b.bytes[i]) return false;
  }
  return true;
}

function toRaw(v: CmapValue): RawValue {
  return { typeCode: CMAP_TYPE_CODE[v.type], bytes: valueToBytes(v) };
}

const err = (status: CsStatus): RequestResult => ({ status });

/** The cmap engine of one node. */
export class CmapEngine implements Engine {
  readonly name = "cmap";
  readonly serviceId = SERVICE_ID.CMAP;
  readonly priority = 0;
  readonly messages = {};
  readonly sync: SyncHooks = NO_SYNC;
  readonly requests: Readonly<Record<string, RequestHandler>>;
  readonly stats: CmapStats = { rejected: 0, notifications: 0 };

  #api: EngineApi | null = null;
  #map = new Map<string, RawValue>();
  #sorted: string[] | null = null;
  #tracks = new Map<number, Track>();
  #nextHandle = 1;
  #joinCounts = new Map<number, number>();
  #clearHandler: CmapStatsClearHandler | null = null;
  #writeHooks: { prefix: string; hook: CmapWriteHook }[] = [];
  #readHooks: { prefix: string; hook: () => void }[] = [];

  constructor() {
    const handlers: Record<string, RequestHandler> = {};
    for (const [name, fn] of Object.entries(CMAP_REQUEST_FN)) {
      handlers[name] = {
        fn,
        flowControl: false,
        handle: (r) => this.#request(r, fn),
      };
    }
    this.requests = handlers;
  }

  init(api: EngineApi): void {
    this.#api = api;
    this.setInternal("runtime.local_node_id", {
      type: "uint32",
      value: api.nodeId,
    });
  }

  /**
   * Loads the configuration (`flatToRecord`), each key with its Corosync
   * type (config_types.ts: `totem.token` uint32, strings otherwise). Keys
   * with an invalid name are skipped and returned (a bug in the caller's
   * config checks, but never a crash of the daemon).
   */
  load(record: Readonly<Record<string, string>>): string[] {
    const skipped: string[] = [];
    for (const [key, value] of Object.entries(record)) {
      if (keyNameProblem(key) !== null) {
        skipped.push(key);
        continue;
      }
      this.setInternal(key, configValue(key, value));
    }
    return skipped;
  }

  /** Sets (or with null removes) what `stats.clear.<what>` writes do. */
  setStatsClearHandler(handler: CmapStatsClearHandler | null): void {
    this.#clearHandler = handler;
  }

  /**
   * Calls `hook` before every client set, delete, inc or dec of a key that
   * starts with `prefix` (read-only keys are refused before any hook).
   */
  addWriteHook(prefix: string, hook: CmapWriteHook): void {
    this.#writeHooks.push({ prefix, hook });
  }

  /**
   * Calls `hook` before every client get, iteration or track_add that can
   * see keys under `prefix` (the key or prefix asked for lies under it, or
   * it lies under what was asked), so the daemon can refresh keys it keeps
   * only on demand (the statistics).
   */
  addReadHook(prefix: string, hook: () => void): void {
    this.#readHooks.push({ prefix, hook });
  }

  #beforeRead(keyOrPrefix: string): void {
    for (const { prefix, hook } of this.#readHooks) {
      if (overlaps(keyOrPrefix, prefix)) hook();
    }
  }

  /** True while some client tracks a key or prefix overlapping `prefix`. */
  hasTracksOverlapping(prefix: string): boolean {
    for (const t of this.#tracks.values()) {
      if (overlaps(t.key, prefix)) return true;
    }
    return false;
  }

  /** OK, or the status of the first hook refusing this change. */
  #hooksAllow(key: string, value: CmapValue | null): CsStatus {
    for (const { prefix, hook } of this.#writeHooks) {
      if (!key.startsWith(prefix)) continue;
      const status = hook(key, value);
      if (status !== CsError.OK) return status;
    }
    return CsError.OK;
  }

  /**
   * Sets a key on behalf of the daemon (read-only keys included) and
   * notifies trackers. Asserts a valid name and value.
   */
  setInternal(key: string, value: CmapValue): void {
    const problem = keyNameProblem(key) ?? valueProblem(value);
    assert(problem === null, `cmap setInternal ${key}: ${problem}`);
    const raw = toRaw(value);
    assert(raw.bytes.length <= CMAP_VALUE_BYTES_MAX, `cmap ${key}: too big`);
    this.#store(key, raw);
  }

  /** Deletes a key on behalf of the daemon; false when it did not exist. */
  deleteInternal(key: string): boolean {
    return this.#remove(key);
  }

  /** The value of `key`, or null. */
  getValue(key: string): CmapValue | null {
    const raw = this.#map.get(key);
    if (raw === undefined) return null;
    const d = valueFromBytes(cmapTypeOf(raw.typeCode)!, raw.bytes);
    assert(d.ok, `cmap ${key}: stored value does not decode`);
    return d.value;
  }

  /** Every key, sorted. */
  keys(): readonly string[] {
    if (this.#sorted === null) this.#sorted = [...this.#map.keys()].sort();
    return this.#sorted;
  }

  /** Number of tracks held (all connections). */
  get trackCount(): number {
    return this.#tracks.size;
  }

  confChange(change: ConfChange): void {
    if (change.kind !== "regular") return;
    for (const id of change.left) {
      this.setInternal(`runtime.members.${id}.status`, {
        type: "string",
        value: "left",
      });
    }
    for (const id of change.members) {
      const status = this.getValue(`runtime.members.${id}.status`);
      if (status !== null && status.value === "joined") continue;
      const count = (this.#joinCounts.get(id) ?? 0) + 1;
      this.#joinCounts.set(id, count);
      this.setInternal(`runtime.members.${id}.join_count`, {
        type: "uint32",
        value: Math.min(count, 0xffff_ffff),
      });
      this.setInternal(`runtime.members.${id}.status`, {
        type: "string",
        value: "joined",
      });
    }
    this.setInternal("runtime.totem.ring_id", {
      type: "string",
      value: `${change.ringId.rep}.${change.ringId.seq}`,
    });
    this.setInternal("runtime.totem.member_count", {
      type: "uint32",
      value: change.members.length,
    });
  }

  connClose(conn: ConnId): void {
    for (const [h, t] of this.#tracks) {
      if (t.conn === conn) this.#tracks.delete(h);
    }
  }

  #request(r: EngineRequest, fn: number): RequestResult {
    const d = decodeCmapRequest(fn, r.payload);
    if (!d.ok) {
      this.stats.rejected++;
      return err(CsError.INVALID_PARAM);
    }
    const req: CmapRequest = d.value;
    switch (req.fn) {
      case "set":
        return this.#reqSet(req.key, req.value);
      case "delete": {
        if (keyNameProblem(req.key) !== null) return err(CsError.INVALID_PARAM);
        if (!this.#map.has(req.key)) return err(CsError.NOT_EXIST);
        if (isReadOnlyKey(req.key)) return err(CsError.ACCESS);
        const allowed = this.#hooksAllow(req.key, null);
        if (allowed !== CsError.OK) return err(allowed);
        this.#remove(req.key);
        return err(CsError.OK);
      }
      case "get": {
        if (keyNameProblem(req.key) !== null) return err(CsError.INVALID_PARAM);
        this.#beforeRead(req.key);
        const raw = this.#map.get(req.key);
        if (raw === undefined) return err(CsError.NOT_EXIST);
        return { status: CsError.OK, payload: encodeRawValue(raw) };
      }
      case "inc":
      case "dec": {
        if (keyNameProblem(req.key) !== null) return err(CsError.INVALID_PARAM);
        const v = this.getValue(req.key);
        if (v === null) return err(CsError.NOT_EXIST);
        if (isReadOnlyKey(req.key)) return err(CsError.ACCESS);
        const next = adjustInt(v, req.fn === "inc" ? 1 : -1);
        if (next === null) return err(CsError.INVALID_PARAM);
        const allowed = this.#hooksAllow(req.key, next);
        if (allowed !== CsError.OK) return err(allowed);
        const raw = toRaw(next);
        this.#store(req.key, raw);
        return { status: CsError.OK, payload: encodeRawValue(raw) };
      }
      case "iter":
        if (prefixProblem(req.prefix) === null) this.#beforeRead(req.prefix);
        return this.#reqIter(req.prefix, req.after);
      case "track_add": {
        if (prefixProblem(req.key) !== null) return err(CsError.INVALID_PARAM);
        const events = CMAP_TRACK.ADD | CMAP_TRACK.DELETE | CMAP_TRACK.MODIFY;
        const all = events | CMAP_TRACK.PREFIX;
        if ((req.flags & ~all) !== 0 || (req.flags & events) === 0) {
          return err(CsError.INVALID_PARAM);
        }
        if (
          (req.flags & CMAP_TRACK.PREFIX) === 0 &&
          keyNameProblem(req.key) !== null
        ) return err(CsError.INVALID_PARAM);
        let mine = 0;
        for (const t of this.#tracks.values()) if (t.conn === r.conn) mine++;
        if (mine >= CMAP_TRACKS_PER_CONN_MAX) {
          return err(CsError.NO_RESOURCES);
        }
        // The tracker's baseline is the current values.
        this.#beforeRead(req.key);
        const handle = this.#allocHandle();
        this.#tracks.set(handle, {
          conn: r.conn,
          flags: req.flags,
          key: req.key,
        });
        return { status: CsError.OK, payload: encodeCmapU32(handle) };
      }
      case "track_delete": {
        const t = this.#tracks.get(req.handle);
        if (t === undefined || t.conn !== r.conn) {
          return err(CsError.NOT_EXIST);
        }
        this.#tracks.delete(req.handle);
        return err(CsError.OK);
      }
    }
  }

  #allocHandle(): number {
    for (;;) {
      const h = this.#nextHandle;
      this.#nextHandle = h >= 0xffff_ffff ? 1 : h + 1;
      if (!this.#tracks.has(h)) return h;
    }
  }

  #reqSet(key: string, value: RawValue): RequestResult {
    if (keyNameProblem(key) !== null) return err(CsError.INVALID_PARAM);
    const type = cmapTypeOf(value.typeCode);
    if (type === null) return err(CsError.INVALID_PARAM);
    if (value.bytes.length > CMAP_VALUE_BYTES_MAX) return err(CsError.TOO_BIG);
    const decoded = valueFromBytes(type, value.bytes);
    if (!decoded.ok) return err(CsError.INVALID_PARAM);
    if (isReadOnlyKey(key)) return err(CsError.ACCESS);
    if (key.startsWith(CMAP_STATS_CLEAR_PREFIX)) {
      // Write-only: the write is the command, nothing is stored.
      const what = key.slice(CMAP_STATS_CLEAR_PREFIX.length);
      const handler = this.#clearHandler;
      return err(
        handler !== null && handler(what) ? CsError.OK : CsError.NOT_SUPPORTED,
      );
    }
    if (!this.#map.has(key) && this.#map.size >= CMAP_KEYS_MAX) {
      return err(CsError.NO_RESOURCES);
    }
    const allowed = this.#hooksAllow(key, decoded.value);
    if (allowed !== CsError.OK) return err(allowed);
    this.#store(key, { typeCode: value.typeCode, bytes: value.bytes.slice() });
    return err(CsError.OK);
  }

  #reqIter(prefix: string, after: string): RequestResult {
    if (prefixProblem(prefix) !== null || prefixProblem(after) !== null) {
      return err(CsError.INVALID_PARAM);
    }
    const keys = this.keys();
    // First key greater than `after` (binary search), then scan the prefix.
    let lo = 0;
    let hi = keys.length;
    const start = after === "" ? prefix : after;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (keys[mid] < start || (after !== "" && keys[mid] === after)) {
        lo = mid + 1;
      } else hi = mid;
    }
    const entries: RawEntry[] = [];
    let bytes = 0;
    let more = false;
    for (let i = lo; i < keys.length; i++) {
      const key = keys[i];
      if (!key.startsWith(prefix)) {
        if (key > prefix) break;
        continue;
      }
      const value = this.#map.get(key)!;
      const size = 7 + key.length + value.bytes.length;
      if (entries.length > 0 && bytes + size > CMAP_ITER_PAGE_BYTES) {
        more = true;
        break;
      }
      entries.push({ key, value });
      bytes += size;
    }
    return { status: CsError.OK, payload: encodeIterPage({ more, entries }) };
  }

  #store(key: string, raw: RawValue): void {
    const old = this.#map.get(key) ?? null;
    if (old !== null && sameRaw(old, raw)) return;
    this.#map.set(key, raw);
    if (old === null) this.#sorted = null;
    this.#notify(
      key,
      old === null ? CMAP_TRACK.ADD : CMAP_TRACK.MODIFY,
      old,
      raw,
    );
  }

  #remove(key: string): boolean {
    const old = this.#map.get(key);
    if (old === undefined) return false;
    this.#map.delete(key);
    this.#sorted = null;
    this.#notify(key, CMAP_TRACK.DELETE, old, null);
    return true;
  }

  #notify(
    key: string,
    event: number,
    oldValue: RawValue | null,
    newValue: RawValue | null,
  ): void {
    const api = this.#api;
    if (api === null || this.#tracks.size === 0) return;
    for (const [handle, t] of this.#tracks) {
      if ((t.flags & event) === 0) continue;
      const match = (t.flags & CMAP_TRACK.PREFIX) !== 0
        ? key.startsWith(t.key)
        : key === t.key;
      if (!match) continue;
      this.stats.notifications++;
      api.event(
        t.conn,
        encodeTrackCallback({ handle, event, key, oldValue, newValue }),
      );
    }
  }
}

/** True when a key or prefix `a` and a prefix `b` can name a common key. */
function overlaps(a: string, b: string): boolean {
  return a.startsWith(b) || b.startsWith(a);
}
