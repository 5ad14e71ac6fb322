import assert from "node:assert/strict";
import {
  CMAP_REQUEST_FN,
  CMAP_TYPE_CODE,
  CmapEngine,
  type CmapValue,
  encodeCmapRequest,
  valueToBytes,
} from "../../../engines/cmap/mod.ts";
import {
  bindLoggingKeys,
  publishTotemConfig,
} from "../../../src/daemon/cmap_runtime.ts";
import { CsError } from "../../../src/exec/cs_error.ts";
import type { EngineApi } from "../../../src/exec/engine.ts";
import { Logger } from "../../../src/log/logger.ts";
import { resolveTotemConfig } from "../../../src/totem/config.ts";

const API: EngineApi = {
  nodeId: 1,
  mcast: () => {},
  reply: () => {},
  event: () => true,
  disconnect: () => {},
  log: () => {},
};

function setup(): CmapEngine {
  const cmap = new CmapEngine();
  cmap.init(API);
  return cmap;
}

function set(cmap: CmapEngine, key: string, v: CmapValue | null): number {
  const h = Object.values(cmap.requests).find((x) =>
    x.fn === CMAP_REQUEST_FN[v === null ? "delete" : "set"]
  )!;
  const payload = encodeCmapRequest(
    v === null ? { fn: "delete", key } : {
      fn: "set",
      key,
      value: { typeCode: CMAP_TYPE_CODE[v.type], bytes: valueToBytes(v) },
    },
  );
  return (h.handle({ conn: 1, requestId: 1, payload }) as { status: number })
    .status;
}

const str = (value: string): CmapValue => ({ type: "string", value });

Deno.test("publishTotemConfig() writes the effective totem values as uint32", () => {
  const cmap = setup();
  const config = resolveTotemConfig({ tokenMs: 1000 }, 5);
  publishTotemConfig(cmap, config);
  // token_coefficient 650 lengthens the token by 3 × 650 for 5 nodes.
  assert.deepEqual(cmap.getValue("runtime.config.totem.token"), {
    type: "uint32",
    value: 2950,
  });
  assert.deepEqual(cmap.getValue("runtime.config.totem.consensus"), {
    type: "uint32",
    value: config.consensusMs,
  });
  assert.deepEqual(
    cmap.getValue("runtime.config.totem.token_retransmits_before_loss_const"),
    { type: "uint32", value: 4 },
  );
  assert.deepEqual(
    cmap.getValue("runtime.config.totem.cancel_token_hold_on_retransmit"),
    { type: "uint32", value: 0 },
  );
  assert.equal(
    set(cmap, "runtime.config.totem.token", { type: "uint32", value: 1 }),
    CsError.ACCESS,
  );
});

Deno.test("bindLoggingKeys() changes the logger on writes and refuses bad values", () => {
  const cmap = setup();
  const logger = new Logger({
    toStderr: false,
    debug: "off",
    timestamp: false,
  });
  bindLoggingKeys(cmap, logger);
  assert.equal(logger.enabled("debug", "TOTEM"), false);
  assert.equal(set(cmap, "logging.debug", str("on")), CsError.OK);
  assert.equal(logger.enabled("debug", "TOTEM"), true);
  assert.equal(logger.enabled("trace", "TOTEM"), false);
  assert.equal(set(cmap, "logging.debug", str("loud")), CsError.INVALID_PARAM);
  assert.equal(
    set(cmap, "logging.debug", { type: "uint8", value: 1 }),
    CsError.INVALID_PARAM,
  );
  assert.equal(logger.debugLevel(), "on");
  assert.deepEqual(cmap.getValue("logging.debug"), str("on"));

  assert.equal(
    set(cmap, "logging.logger_subsys.CPG.debug", str("trace")),
    CsError.OK,
  );
  assert.equal(logger.enabled("trace", "CPG"), true);
  assert.equal(logger.enabled("trace", "TOTEM"), false);
  assert.equal(set(cmap, "logging.logger_subsys.CPG.debug", null), CsError.OK);
  assert.equal(logger.debugLevel("CPG"), "on");
  assert.equal(set(cmap, "logging.debug", null), CsError.OK);
  assert.equal(logger.enabled("debug", "TOTEM"), false);

  assert.equal(
    set(cmap, "logging.to_stderr", str("maybe")),
    CsError.INVALID_PARAM,
  );
  assert.equal(set(cmap, "logging.to_stderr", str("no")), CsError.OK);
  assert.equal(set(cmap, "logging.other", str("x")), CsError.OK);
});
