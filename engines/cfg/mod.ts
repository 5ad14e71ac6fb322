/**
 * cfg registration (STYLE.md section 3): operators steer the node and the
 * cluster (status, kill, shutdown with client vetoes, cluster-wide reload,
 * log reopen), like Corosync's cfg service. The engine logic is in cfg.ts,
 * its IPC payloads in ipc.ts and its ordered messages in wire.ts.
 *
 * The engine reaches the daemon through `EngineApi.control` (the node
 * control port) and reads/writes cmap keys through the cmap engine that
 * `createEngines` hands it (`linkCfg`).
 *
 * @module
 */
import {
  type Engine,
  type EngineDescriptor,
  SERVICE_ID,
} from "../../src/exec/engine.ts";
import { cmapOf } from "../cmap/mod.ts";
import { CfgEngine } from "./cfg.ts";

export * from "./cfg.ts";
export * from "./ipc.ts";
export * from "./wire.ts";

/** The cfg engine's registry entry. */
export const cfg: EngineDescriptor = {
  name: "cfg",
  serviceId: SERVICE_ID.CFG,
  priority: 5,
  create: () => new CfgEngine(),
};

/** The cfg engine among `engines`, or null. */
export function cfgOf(engines: readonly Engine[]): CfgEngine | null {
  for (const e of engines) if (e instanceof CfgEngine) return e;
  return null;
}

/** Hands the cfg engine among `engines` the cmap engine among them. */
export function linkCfg(engines: readonly Engine[]): void {
  cfgOf(engines)?.useCmap(cmapOf(engines));
}
