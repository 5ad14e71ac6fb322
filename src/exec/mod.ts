/**
 * The executive (ARCHITECTURE.md): engine interface, routing, service sync
 * barrier, and the pure per-node stack that joins it to the Totem core.
 *
 * @module
 */
export * from "./cs_error.ts";
export * from "./engine.ts";
export * from "./executive.ts";
export * from "./service_stack.ts";
export {
  decodeEngineMessage,
  decodeSyncMessage,
  encodeEngineHeader,
  encodeEngineMessage,
  encodeSyncMessage,
  ENGINE_GROUP,
  SYNC_GROUP,
  type SyncMessage,
} from "./wire.ts";
