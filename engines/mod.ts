/**
 * The engine registry (STYLE.md section 3): every service engine, in one
 * static list, with no dynamic loading. Empty until the first engines land
 * (cmap, cfg, cpg, votequorum, sam); the executive (src/exec) starts them in
 * priority order and routes IPC requests and Totem deliveries to them.
 *
 * @module
 */

// TODO(#5): type this as `readonly Engine[]` once src/exec defines Engine.
/** Every built-in engine. */
export const ENGINES = [] as const;
