import { ok as assert } from "node:assert/strict";
import { Logger } from "../../../src/log/logger.ts";

Deno.test("Logger writes timestamped lines to its file and honours per-subsystem debug", async () => {
  const dir = await Deno.makeTempDir({ prefix: "denosync-log-" });
  try {
    const logfile = `${dir}/node.log`;
    const logger = new Logger({
      toStderr: false,
      logfile,
      debug: "off",
      timestamp: true,
      subsys: { TOTEM: "on" },
      ident: "node 7",
    });
    await logger.open();
    logger.log("notice", "MAIN", "starting");
    logger.log("debug", "MAIN", "hidden: MAIN debug is off");
    logger.log("debug", "TOTEM", "shown: TOTEM debug is on");
    logger.setDebug("on", "MAIN");
    logger.log("debug", "MAIN", "shown after setDebug");
    logger.close();
    const text = await Deno.readTextFile(logfile);
    const lines = text.trim().split("\n");
    assert(lines.length === 3, text);
    assert(
      /^\d{4}-\d\d-\d\dT[\d:.]+Z notice \[node 7\] \[MAIN \] starting$/.test(
        lines[0],
      ),
      lines[0],
    );
    assert(lines[1].includes("[TOTEM] shown: TOTEM debug is on"), lines[1]);
    assert(lines[2].includes("[MAIN ] shown after setDebug"), lines[2]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
