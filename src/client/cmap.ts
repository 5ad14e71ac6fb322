/**
 * `CmapClient`: the local daemon's cmap database for applications, like
 * Corosync's libcmap. Typed get/set/delete/inc/dec, listing by prefix, and
 * tracking changes of a key or of every key under a prefix.
 *
 * ```ts
 * const cmap = await CmapClient.initialize();
 * await cmap.set("my.key", { type: "uint32", value: 1 });
 * for (const e of await cmap.iter("totem.")) console.log(e.key, e.value);
 * const tracker = await cmap.track("my.", { prefix: true });
 * for await (const ch of tracker) console.log(ch.event, ch.key, ch.newValue);
 * ```
 *
 * @module
 */
import {
  CMAP_TRACK,
  type CmapRequest,
  cmapRequestFn,
  decodeCmapU32,
  decodeIterPage,
  decodeRawValue,
  decodeTrackCallback,
  encodeCmapRequest,
  type RawValue,
} from "../../engines/cmap/ipc.ts";
import {
  CMAP_TYPE_CODE,
  type CmapType,
  cmapTypeOf,
  type CmapValue,
  keyNameProblem,
  prefixProblem,
  valueFromBytes,
  valueProblem,
  valueToBytes,
} from "../../engines/cmap/values.ts";
import { CsError, csErrorName } from "../ipc/cs_error.ts";
import { defaultSocketPath } from "./cpg.ts";
import { IpcConnection } from "./ipc_connection.ts";

export type { CmapType, CmapValue };
export { defaultSocketPath };

/** What happened to a tracked key. */
export type CmapTrackEvent = "add" | "delete" | "modify";

/** One change seen by a tracker. */
export interface CmapChange {
  readonly event: CmapTrackEvent;
  readonly key: string;
  /** Type of the new value, or of the old one for a delete. */
  readonly type: CmapType;
  readonly oldValue: CmapValue | null;
  readonly newValue: CmapValue | null;
}

/** One key and its value. */
export interface CmapEntry {
  readonly key: string;
  readonly value: CmapValue;
}

/** Options of `track`: all three events by default. */
export interface CmapTrackOptions {
  /** Track every key starting with the given text. */
  prefix?: boolean;
  add?: boolean;
  delete?: boolean;
  modify?: boolean;
  /** Receives every change instead of the async iterator. */
  onChange?: (change: CmapChange) => void;
}

/** A failed cmap call, with Corosync's `cs_error_t` code. */
export class CmapError extends Error {
  override name = "CmapError";
  readonly code: number;
  constructor(call: string, code: number, detail?: string) {
    super(
      `cmap ${call}: ${csErrorName(code)}${
        detail === undefined ? "" : ` (${detail})`
      }`,
    );
    this.code = code;
  }
}

/** A live track: iterate its changes, or `stop()` it. */
export interface CmapTracker extends AsyncIterable<CmapChange> {
  readonly handle: number;
  stop(): Promise<void>;
}

interface TrackState {
  readonly onChange?: (c: CmapChange) => void;
  readonly queue: CmapChange[];
  wake: (() => void) | null;
  done: boolean;
}

/** One cmap handle. */
export class CmapClient {
  readonly #conn: IpcConnection;
  readonly #tracks = new Map<number, TrackState>();
  // Callbacks that arrive before track_add's reply was processed.
  readonly #early = new Map<number, CmapChange[]>();

  private constructor(conn: IpcConnection) {
    this.#conn = conn;
  }

  /** Connects to the local daemon (`cmap_initialize`). */
  static async initialize(
    options: { socketPath?: string } = {},
  ): Promise<CmapClient> {
    let client: CmapClient | null = null;
    const early: Uint8Array[] = [];
    const conn = await IpcConnection.connect({
      path: options.socketPath ?? defaultSocketPath(),
      service: "cmap",
      onEvent: (payload) => {
        if (client === null) early.push(payload);
        else client.#onEvent(payload);
      },
    });
    client = new CmapClient(conn);
    for (const p of early) client.#onEvent(p);
    return client;
  }

  /** Resolves when the connection to the daemon ends. */
  get closed(): Promise<unknown> {
    return this.#conn.closed;
  }

  /** The value of `key` (`cmap_get`); NOT_EXIST when unknown. */
  async get(key: string): Promise<CmapValue> {
    checkKey("get", key);
    return toValue("get", await this.#call({ fn: "get", key }));
  }

  /** Stores `value` under `key` (`cmap_set`). */
  async set(key: string, value: CmapValue): Promise<void> {
    checkKey("set", key);
    const problem = valueProblem(value);
    if (problem !== null) {
      throw new CmapError("set", CsError.INVALID_PARAM, problem);
    }
    await this.#call({
      fn: "set",
      key,
      value: {
        typeCode: CMAP_TYPE_CODE[value.type],
        bytes: valueToBytes(value),
      },
    });
  }

  /** Deletes `key` (`cmap_delete`). */
  async delete(key: string): Promise<void> {
    checkKey("delete", key);
    await this.#call({ fn: "delete", key });
  }

  /** Adds 1 to an integer key, wrapping around; resolves to the new value. */
  async inc(key: string): Promise<CmapValue> {
    checkKey("inc", key);
    return toValue("inc", await this.#call({ fn: "inc", key }));
  }

  /** Subtracts 1 from an integer key, wrapping around; the new value. */
  async dec(key: string): Promise<CmapValue> {
    checkKey("dec", key);
    return toValue("dec", await this.#call({ fn: "dec", key }));
  }

  /** Every key starting with `prefix` (all keys for ""), sorted by key. */
  async iter(prefix = ""): Promise<CmapEntry[]> {
    const problem = prefixProblem(prefix);
    if (problem !== null) {
      throw new CmapError("iter", CsError.INVALID_PARAM, problem);
    }
    const out: CmapEntry[] = [];
    let after = "";
    for (;;) {
      const d = decodeIterPage(
        await this.#call({ fn: "iter", prefix, after }),
      );
      if (!d.ok) throw new CmapError("iter", CsError.MESSAGE_ERROR);
      for (const e of d.value.entries) {
        out.push({ key: e.key, value: rawToValue("iter", e.value) });
      }
      if (!d.value.more || d.value.entries.length === 0) return out;
      after = d.value.entries.at(-1)!.key;
    }
  }

  /**
   * Tracks `keyOrPrefix` (`cmap_track_add`): changes arrive through
   * `options.onChange` or by iterating the returned tracker, until `stop()`.
   */
  async track(
    keyOrPrefix: string,
    options: CmapTrackOptions = {},
  ): Promise<CmapTracker> {
    const problem = options.prefix
      ? prefixProblem(keyOrPrefix)
      : keyNameProblem(keyOrPrefix);
    if (problem !== null) {
      throw new CmapError("track_add", CsError.INVALID_PARAM, problem);
    }
    const all = options.add === undefined && options.delete === undefined &&
      options.modify === undefined;
    const flags = (all || options.add ? CMAP_TRACK.ADD : 0) |
      (all || options.delete ? CMAP_TRACK.DELETE : 0) |
      (all || options.modify ? CMAP_TRACK.MODIFY : 0) |
      (options.prefix ? CMAP_TRACK.PREFIX : 0);
    const d = decodeCmapU32(
      await this.#call({ fn: "track_add", flags, key: keyOrPrefix }),
    );
    if (!d.ok) throw new CmapError("track_add", CsError.MESSAGE_ERROR);
    const handle = d.value;
    const state: TrackState = {
      onChange: options.onChange,
      queue: [],
      wake: null,
      done: false,
    };
    this.#tracks.set(handle, state);
    for (const c of this.#early.get(handle) ?? []) this.#push(state, c);
    this.#early.delete(handle);
    const stop = async (): Promise<void> => {
      if (state.done) return;
      state.done = true;
      state.wake?.();
      this.#tracks.delete(handle);
      await this.#call({ fn: "track_delete", handle }).catch(() => {});
    };
    const conn = this.#conn;
    return {
      handle,
      stop,
      async *[Symbol.asyncIterator](): AsyncGenerator<CmapChange> {
        let closed = false;
        conn.closed.then(() => {
          closed = true;
          state.wake?.();
        }, () => {
          closed = true;
          state.wake?.();
        });
        for (;;) {
          const next = state.queue.shift();
          if (next !== undefined) {
            yield next;
            continue;
          }
          if (state.done || closed) return;
          await new Promise<void>((r) => state.wake = r);
          state.wake = null;
        }
      },
    };
  }

  /** Disconnects (`cmap_finalize`); tracks end with the connection. */
  async finalize(): Promise<void> {
    for (const s of this.#tracks.values()) {
      s.done = true;
      s.wake?.();
    }
    this.#tracks.clear();
    await this.#conn.close();
  }

  #onEvent(payload: Uint8Array): void {
    const d = decodeTrackCallback(payload);
    if (!d.ok) return;
    const cb = d.value;
    const oldValue = cb.oldValue === null ? null : tryValue(cb.oldValue);
    const newValue = cb.newValue === null ? null : tryValue(cb.newValue);
    const shown = newValue ?? oldValue;
    if (shown === null) return;
    const change: CmapChange = {
      event: cb.event === CMAP_TRACK.ADD
        ? "add"
        : cb.event === CMAP_TRACK.DELETE
        ? "delete"
        : "modify",
      key: cb.key,
      type: shown.type,
      oldValue,
      newValue,
    };
    const state = this.#tracks.get(cb.handle);
    if (state === undefined) {
      const list = this.#early.get(cb.handle) ?? [];
      if (list.length < 4096) list.push(change);
      this.#early.set(cb.handle, list);
      return;
    }
    this.#push(state, change);
  }

  #push(state: TrackState, change: CmapChange): void {
    if (state.done) return;
    if (state.onChange !== undefined) {
      state.onChange(change);
      return;
    }
    state.queue.push(change);
    state.wake?.();
  }

  async #call(req: CmapRequest): Promise<Uint8Array> {
    const r = await this.#conn.request(
      cmapRequestFn(req),
      encodeCmapRequest(req),
    );
    if (r.status !== CsError.OK) throw new CmapError(req.fn, r.status);
    return r.payload;
  }
}

function checkKey(call: string, key: string): void {
  const problem = keyNameProblem(key);
  if (problem !== null) {
    throw new CmapError(call, CsError.INVALID_PARAM, `${key}: ${problem}`);
  }
}

function tryValue(raw: RawValue): CmapValue | null {
  const type = cmapTypeOf(raw.typeCode);
  if (type === null) return null;
  const d = valueFromBytes(type, raw.bytes);
  return d.ok ? d.value : null;
}

function rawToValue(call: string, raw: RawValue): CmapValue {
  const v = tryValue(raw);
  if (v === null) throw new CmapError(call, CsError.MESSAGE_ERROR);
  return v;
}

function toValue(call: string, payload: Uint8Array): CmapValue {
  const d = decodeRawValue(payload);
  if (!d.ok) throw new CmapError(call, CsError.MESSAGE_ERROR);
  return rawToValue(call, d.value);
}
