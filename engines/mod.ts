/**
 * The engine registry (STYLE.md section 3): every built-in engine, in one
 * static list, with no dynamic loading. Entries are descriptors with a
 * factory (`create`) rather than instances, because the simulator runs many
 * nodes in one process; the daemon calls `createEngines()` once. The
 * executive (src/exec) starts engines in priority order and synchronises
 * them in service id order.
 *
 * Priorities (lower starts first, stops last): cmap 0, cfg 5, cpg 10,
 * quorum/votequorum 20, sam 30.
 *
 * @module
 */
import type { Engine, EngineDescriptor } from "../src/exec/engine.ts";
import { assert } from "../src/lib/assert.ts";
import { cfg, linkCfg } from "./cfg/mod.ts";
import { cmap } from "./cmap/mod.ts";
import { cpg } from "./cpg/mod.ts";

// TODO(#5): votequorum/quorum and sam register here as they land.
/** Every built-in engine. */
export const ENGINES: readonly EngineDescriptor[] = [cmap, cfg, cpg];

/** Fresh instances of every built-in engine, for one node. */
export function createEngines(): Engine[] {
  const engines = ENGINES.map((d) => {
    const engine = d.create();
    assert(
      engine.serviceId === d.serviceId && engine.name === d.name,
      `engine ${d.name}: descriptor and instance disagree`,
    );
    return engine;
  });
  // cfg keeps its settings and results in this node's cmap.
  linkCfg(engines);
  return engines;
}
