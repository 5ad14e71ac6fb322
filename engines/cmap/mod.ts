/**
 * cmap registration (STYLE.md section 3): the node-local configuration and
 * statistics database, like Corosync's cmap. The engine logic is in
 * cmap.ts, its IPC payloads in ipc.ts and its value types in values.ts.
 *
 * The daemon fills the map after `createEngines()`:
 *
 * ```ts
 * const engines = createEngines();
 * seedCmap(engines, flatToRecord(loaded.flat)); // config keys, typed
 * cmapOf(engines)?.setInternal("stats.srp.orf_token_rx", { type: "uint64", value: 1n });
 * ```
 *
 * @module
 */
import {
  type Engine,
  type EngineDescriptor,
  SERVICE_ID,
} from "../../src/exec/engine.ts";
import { CmapEngine } from "./cmap.ts";

export * from "./cmap.ts";
export * from "./config_types.ts";
export * from "./ipc.ts";
export * from "./values.ts";

/** The cmap engine's registry entry. */
export const cmap: EngineDescriptor = {
  name: "cmap",
  serviceId: SERVICE_ID.CMAP,
  priority: 0,
  create: () => new CmapEngine(),
};

/** The cmap engine among `engines`, or null. */
export function cmapOf(engines: readonly Engine[]): CmapEngine | null {
  for (const e of engines) if (e instanceof CmapEngine) return e;
  return null;
}

/**
 * Loads `record` (e.g. `flatToRecord(loaded.flat)`) into the cmap engine
 * among `engines`, typed as Corosync types them (config_types.ts); returns the keys skipped for an invalid
 * name. Call before the executive starts.
 */
export function seedCmap(
  engines: readonly Engine[],
  record: Readonly<Record<string, string>>,
): string[] {
  const engine = cmapOf(engines);
  return engine === null ? Object.keys(record) : engine.load(record);
}
