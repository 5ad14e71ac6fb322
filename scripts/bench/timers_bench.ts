/**
 * What a token visit's timer work costs the daemon: the Totem core re-arms
 * token and token_retransmit and the heartbeat, and cancels hold and
 * merge_detect, on every visit (srp.ts `#onToken`). Compares the runtime's
 * clearTimeout + setTimeout per re-arm (the driver before DeadlineTimers)
 * with `DeadlineTimers`, 1000 visits per iteration.
 *
 *   deno bench -A scripts/bench/timers_bench.ts
 *
 * @module
 */
import { DeadlineTimers } from "../../src/lib/deadline_timers.ts";

const VISITS = 1000;
const ARMS = [["token", 3650], ["token_retransmit", 20], [
  "heartbeat",
  1000,
]] as const;
const CANCELS = ["hold", "merge_detect"] as const;

Deno.bench("token visits: clearTimeout + setTimeout per re-arm", {
  group: "timers",
  baseline: true,
}, (b) => {
  const handles = new Map<string, ReturnType<typeof setTimeout>>();
  b.start();
  for (let v = 0; v < VISITS; v++) {
    for (const name of CANCELS) {
      const h = handles.get(name);
      if (h !== undefined) {
        clearTimeout(h);
        handles.delete(name);
      }
    }
    for (const [name, ms] of ARMS) {
      const old = handles.get(name);
      if (old !== undefined) clearTimeout(old);
      handles.set(name, setTimeout(() => {}, ms));
    }
  }
  b.end();
  for (const h of handles.values()) clearTimeout(h);
});

Deno.bench("token visits: DeadlineTimers", { group: "timers" }, (b) => {
  const timers = new DeadlineTimers<string>(() => {});
  b.start();
  for (let v = 0; v < VISITS; v++) {
    for (const name of CANCELS) timers.cancel(name);
    for (const [name, ms] of ARMS) timers.arm(name, ms);
  }
  b.end();
  timers.clear();
});
