/**
 * The executive's messages on the ring, inside the packing layer's group
 * multiplexing (TOTEM.md 5.3). All little-endian; decoders never throw.
 *
 * Group "a", every engine message, Corosync's request header:
 *
 * ```
 * u32 id = serviceId << 16 | fn | u32 size (header included) | payload
 * ```
 *
 * Group "sync", the sync protocol (TOTEM.md 8.1, Corosync `exec/sync.c`
 * numbering):
 *
 * ```
 * BARRIER        u16 type = 0 | u32 ring rep | u64 ring seq | u16 serviceId
 * SERVICE_BUILD  u16 type = 1 | u32 ring rep | u64 ring seq | u16 count | u16 serviceIds[count]
 * ```
 *
 * BARRIER names the service it closes (Corosync's does not): a barrier of
 * an aborted round can then never be counted for another service.
 *
 * @module
 */
import { assert } from "../lib/assert.ts";
import type { Decoded, RingId } from "../totem/types.ts";
import { ByteReader, ByteWriter, finishDecode } from "./bytes.ts";
import { FN_MAX, SERVICE_ID_MAX } from "./engine.ts";

/** Group of every engine message. */
export const ENGINE_GROUP = "a";
/** Group of the sync protocol. */
export const SYNC_GROUP = "sync";
/** Bytes of the engine message header. */
export const ENGINE_HEADER_BYTES = 8;
/** Most services one SERVICE_BUILD may list. */
export const SERVICE_COUNT_MAX = 256;

/** A decoded engine message; `payload` shares memory with the input. */
export interface EngineMessage {
  readonly serviceId: number;
  readonly fn: number;
  readonly payload: Uint8Array;
}

/** Prefixes an engine message with its header. */
export function encodeEngineMessage(
  serviceId: number,
  fn: number,
  payload: Uint8Array,
): Uint8Array {
  const out = new Uint8Array(ENGINE_HEADER_BYTES + payload.length);
  out.set(encodeEngineHeader(serviceId, fn, payload.length));
  out.set(payload, ENGINE_HEADER_BYTES);
  return out;
}

/**
 * The header alone, for callers that gather it with the payload into a
 * larger buffer (one copy of a large message instead of two).
 */
export function encodeEngineHeader(
  serviceId: number,
  fn: number,
  payloadBytes: number,
): Uint8Array {
  assert(serviceId >= 0 && serviceId <= SERVICE_ID_MAX, `service ${serviceId}`);
  assert(fn >= 0 && fn <= FN_MAX, `fn ${fn}`);
  return ByteWriter.transient(ENGINE_HEADER_BYTES)
    .u32(((serviceId << 16) | fn) >>> 0)
    .u32(ENGINE_HEADER_BYTES + payloadBytes)
    .finish();
}

/** Splits an engine message into header fields and payload. Never throws. */
export function decodeEngineMessage(bytes: Uint8Array): Decoded<EngineMessage> {
  const r = new ByteReader(bytes);
  const id = r.u32("message id");
  const size = r.u32("message size");
  if (r.ok && size !== bytes.length) {
    r.fail(`message size ${size} but ${bytes.length} bytes`);
  }
  const payload = r.rest();
  return finishDecode(r, { serviceId: id >>> 16, fn: id & 0xffff, payload });
}

/** A sync protocol message. */
export type SyncMessage =
  | {
    readonly type: "barrier";
    readonly ringId: RingId;
    readonly serviceId: number;
  }
  | {
    readonly type: "service_build";
    readonly ringId: RingId;
    readonly serviceIds: readonly number[];
  };

const SYNC_BARRIER = 0;
const SYNC_SERVICE_BUILD = 1;

/** Encodes a sync protocol message. */
export function encodeSyncMessage(m: SyncMessage): Uint8Array {
  const w = new ByteWriter(32);
  switch (m.type) {
    case "barrier":
      w.u16(SYNC_BARRIER).ringId(m.ringId).u16(m.serviceId);
      break;
    case "service_build":
      assert(m.serviceIds.length <= SERVICE_COUNT_MAX, "too many services");
      w.u16(SYNC_SERVICE_BUILD).ringId(m.ringId).u16(m.serviceIds.length);
      for (const id of m.serviceIds) w.u16(id);
      break;
  }
  return w.finish();
}

/** Decodes a sync protocol message. Never throws. */
export function decodeSyncMessage(bytes: Uint8Array): Decoded<SyncMessage> {
  const r = new ByteReader(bytes);
  const type = r.u16("sync type");
  const ringId = r.ringId();
  if (!r.ok) {
    return finishDecode<SyncMessage>(r, {
      type: "barrier",
      ringId,
      serviceId: 0,
    });
  }
  if (type === SYNC_BARRIER) {
    const serviceId = r.u16("service id");
    return finishDecode<SyncMessage>(r, { type: "barrier", ringId, serviceId });
  }
  if (type === SYNC_SERVICE_BUILD) {
    const count = r.u16("service count");
    if (r.ok && count > SERVICE_COUNT_MAX) {
      r.fail(`service count ${count} above ${SERVICE_COUNT_MAX}`);
    }
    const serviceIds: number[] = [];
    for (let i = 0; i < count && r.ok; i++) {
      serviceIds.push(r.u16("service id"));
    }
    if (r.ok && new Set(serviceIds).size !== serviceIds.length) {
      r.fail("duplicate service id");
    }
    return finishDecode<SyncMessage>(r, {
      type: "service_build",
      ringId,
      serviceIds,
    });
  }
  r.fail(`unknown sync type ${type}`);
  return finishDecode<SyncMessage>(r, {
    type: "barrier",
    ringId,
    serviceId: 0,
  });
}
