/**
 * `DENOSYNC_BENCH_TOTEM="window_size: 100; max_messages: 40"`: totem
 * settings a benchmark adds to denosync's configuration, to try other values
 * than the defaults (scripts/bench_local.ts, scripts/bench/side_by_side.ts).
 */

/** The settings as indented `key: value` lines of a totem section, or "". */
export function totemLinesFromEnv(
  value = Deno.env.get("DENOSYNC_BENCH_TOTEM"),
): string {
  if (value === undefined) return "";
  return value.split(";").map((l) => l.trim()).filter((l) => l !== "")
    .map((l) => `    ${l}\n`).join("");
}
