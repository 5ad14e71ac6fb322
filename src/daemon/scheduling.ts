/**
 * The daemon's CPU scheduling (`system.sched_rr`, `system.priority`).
 *
 * Corosync asks for round-robin realtime scheduling by default so that no
 * application on the machine can delay a token visit. We do not, and ignore
 * `sched_rr: yes` with a warning, because measured here it makes things
 * worse (side-by-side benchmark, 2 cores, 3 nodes): realtime on the
 * JavaScript thread alone starves the runtime's own helper threads (garbage
 * collection, the blocking pool) that the thread then waits for, and 64 KiB
 * throughput fell from about 1250 to about 100 messages/s; realtime on every
 * thread of the daemon still cost a third of the throughput, the local
 * clients starving instead, with no better latency. `priority` (a nice
 * value, `max` is -20, `min` 19) is applied: it shares the CPU instead of
 * taking it.
 *
 * The nice value applies to the calling thread, Deno's JavaScript thread
 * (event loop, Totem, sockets). It needs root or CAP_SYS_NICE to go below
 * 0; where it is refused the daemon runs on and says why. Calls go through
 * libc over FFI (socket_buffer.ts `dlopenLibc`, the same permission).
 *
 * @module
 */
import type { SystemConfig } from "../config/daemon_config.ts";
import { dlopenLibc } from "../net/socket_buffer.ts";

const PRIO_PROCESS = 0;
const EPERM = 1;

/** Nice values `system.priority` accepts, and what `max`/`min` mean. */
export const NICE_MAX_PRIORITY = -20;
export const NICE_MIN_PRIORITY = 19;

/** Why `sched_rr: yes` is not applied (the module comment has the numbers). */
export const SCHED_RR_IGNORED =
  "system.sched_rr: yes is ignored: realtime scheduling starves the runtime's helper threads and the local clients (measured here: up to 10x slower); use system.priority for a nice value";

/** What to ask the kernel for, and what to warn about. */
export interface SchedulingPlan {
  /** A nice value to set, or null to leave scheduling alone. */
  nice: number | null;
  warning: string | null;
}

/** What happened, in words for the log. */
export interface SchedulingResult {
  ok: boolean;
  message: string;
}

/** The request `system` makes. */
export function schedulingPlan(system: SystemConfig): SchedulingPlan {
  return {
    nice: system.priority === undefined ? null : niceValue(system.priority),
    warning: system.schedRr === true ? SCHED_RR_IGNORED : null,
  };
}

/** `max`, `min` or a number (validated by the config reader). */
export function niceValue(priority: string): number {
  if (priority === "max") return NICE_MAX_PRIORITY;
  if (priority === "min") return NICE_MIN_PRIORITY;
  const n = Number(priority);
  if (
    !Number.isInteger(n) || n < NICE_MAX_PRIORITY || n > NICE_MIN_PRIORITY
  ) {
    throw new RangeError(
      `priority "${priority}" is not max, min or a nice value ${NICE_MAX_PRIORITY}..${NICE_MIN_PRIORITY}`,
    );
  }
  return n;
}

interface SchedLib {
  setNice(nice: number): number;
  errno(): number;
}

let lib: SchedLib | { reason: string } | undefined;

function openSchedLib(): SchedLib | { reason: string } {
  if (lib !== undefined) return lib;
  const dl = dlopenLibc({
    setpriority: { parameters: ["i32", "u32", "i32"], result: "i32" },
    __errno_location: { parameters: [], result: "pointer" },
  });
  if ("reason" in dl) {
    lib = dl;
    return lib;
  }
  const s = dl.symbols;
  lib = {
    setNice: (nice) => s.setpriority(PRIO_PROCESS, 0, nice),
    errno: () => {
      const p = s.__errno_location();
      return p === null ? 0 : new Deno.UnsafePointerView(p).getInt32();
    },
  };
  return lib;
}

/**
 * Sets the calling thread's nice value when `plan` has one. Never throws:
 * a refusal is a result to log, and the daemon runs on as it was.
 */
export function applyScheduling(plan: SchedulingPlan): SchedulingResult {
  if (plan.nice === null) {
    return { ok: true, message: "normal scheduling (system.priority unset)" };
  }
  const libc = openSchedLib();
  if ("reason" in libc) {
    return {
      ok: false,
      message: `system.priority ${plan.nice} not applied: ${libc.reason}`,
    };
  }
  if (libc.setNice(plan.nice) !== 0) {
    const errno = libc.errno();
    return {
      ok: false,
      message: errno === EPERM
        ? `system.priority ${plan.nice} was refused: below 0 needs root or CAP_SYS_NICE`
        : `system.priority ${plan.nice} failed (errno ${errno})`,
    };
  }
  return { ok: true, message: `nice ${plan.nice} (system.priority)` };
}
