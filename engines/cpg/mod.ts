/**
 * CPG registration (STYLE.md section 3): closed process groups,
 * cpg_overview(3). The engine logic is in cpg.ts, its ordered messages in
 * wire.ts and its IPC payloads in ipc.ts.
 *
 * @module
 */
import { type EngineDescriptor, SERVICE_ID } from "../../src/exec/engine.ts";
import { CpgEngine } from "./cpg.ts";

export { CpgEngine, type ProcessInfoEntry } from "./cpg.ts";
export * from "./ipc.ts";
export * from "./wire.ts";

/** The CPG engine's registry entry. */
export const cpg: EngineDescriptor = {
  name: "cpg",
  serviceId: SERVICE_ID.CPG,
  priority: 10,
  create: () => new CpgEngine(),
};
