import assert from "node:assert/strict";
import { buildDaemonConfig } from "../../../src/config/daemon_config.ts";
import { parseConfigText } from "../../../src/config/load.ts";
import {
  niceValue,
  SCHED_RR_IGNORED,
  schedulingPlan,
} from "../../../src/daemon/scheduling.ts";

Deno.test("schedulingPlan: a nice value from system.priority, a warning for sched_rr: yes", () => {
  assert.deepEqual(schedulingPlan({}), { nice: null, warning: null });
  assert.deepEqual(schedulingPlan({ schedRr: false, priority: "max" }), {
    nice: -20,
    warning: null,
  });
  assert.deepEqual(schedulingPlan({ schedRr: true, priority: "min" }), {
    nice: 19,
    warning: SCHED_RR_IGNORED,
  });
  assert.equal(niceValue("-5"), -5);
  assert.equal(niceValue("+3"), 3);
  assert.throws(() => niceValue("-21"), /nice value -20..19/);
});

/** Runs `applyScheduling` in a child: it changes the calling thread. */
async function applyInChild(system: string, ffi: boolean) {
  const module = new URL("../../../src/daemon/scheduling.ts", import.meta.url);
  const script = `
    import { applyScheduling, schedulingPlan } from "${module.href}";
    const r = applyScheduling(schedulingPlan(${system}));
    let nice = null, policy = null;
    if (${ffi}) {
      // Fields after the command name: nice is the 19th overall, policy the 41st.
      const stat = Deno.readTextFileSync("/proc/thread-self/stat");
      const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      nice = Number(rest[16]);
      policy = Number(rest[38]);
    }
    console.log(JSON.stringify({ ...r, nice, policy }));`;
  const file = await Deno.makeTempFile({ suffix: ".ts" });
  await Deno.writeTextFile(file, script);
  const root = module.pathname.replace(/\/src\/.*$/, "");
  const out = await new Deno.Command(Deno.execPath(), {
    // Deno reads /proc/thread-self only with --allow-all.
    args: ["run", ...(ffi ? ["-A"] : [`--allow-read=${root}`]), file],
    stdout: "piped",
    stderr: "piped",
  }).output().finally(() => Deno.remove(file));
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

Deno.test("applyScheduling sets the nice value of the calling thread, or says why not", async () => {
  // Lowering priority is allowed to anyone.
  const nice = await applyInChild(`{ priority: "7" }`, true);
  assert.ok(nice.ok, nice.message);
  assert.equal(nice.nice, 7);
  assert.equal(nice.policy, 0, "SCHED_OTHER");
  const raise = await applyInChild(`{ priority: "max" }`, true);
  if (Deno.uid() === 0) {
    assert.ok(raise.ok, raise.message);
    assert.equal(raise.nice, -20);
  } else {
    assert.match(raise.message, /refused: below 0 needs root/);
    assert.equal(raise.nice, 0);
  }
  const none = await applyInChild("{ schedRr: true }", true);
  assert.deepEqual([none.ok, none.nice, none.policy], [true, 0, 0]);
  const denied = await applyInChild(`{ priority: "3" }`, false);
  assert.equal(denied.ok, false);
  assert.match(denied.message, /not applied: no FFI permission for libc/);
});

Deno.test("system.priority outside -20..19 is a configuration error naming the key", () => {
  const conf = (priority: string) =>
    `totem {\n version: 2\n}\nnodelist {\n node {\n  nodeid: 1\n  ring0_addr: 127.0.0.1\n }\n}\nsystem {\n sched_rr: no\n priority: ${priority}\n}\n`;
  const build = (priority: string) =>
    buildDaemonConfig(parseConfigText(conf(priority), "corosync.conf"));
  assert.equal(build("-20").config.system.priority, "-20");
  assert.equal(build("max").config.system.priority, "max");
  assert.throws(
    () => build("-40"),
    /system.priority must be max, min or a nice value -20..19, got "-40"/,
  );
});
