import assert from "node:assert/strict";
import type { InterfaceConfig } from "../../../src/config/daemon_config.ts";
import { knetHeartbeat } from "../../../src/daemon/node.ts";

function link(extra: Partial<InterfaceConfig> = {}): InterfaceConfig {
  return {
    linknumber: 0,
    mcastport: 5405,
    broadcast: false,
    ttl: 1,
    knetLinkPriority: 1,
    knetTransport: "udp",
    ...extra,
  };
}

Deno.test("knetHeartbeat derives Corosync's ping timing from the token", () => {
  // corosync.conf(5): interval = token / (pong_count * 2), timeout =
  // token / pong_count, pong_count 2 by default. Token 3650 on 3 nodes is
  // 4300 effective.
  assert.deepEqual(knetHeartbeat(link(), 4300), {
    pingIntervalMs: 1075,
    pingTimeoutMs: 2150,
  });
  assert.deepEqual(knetHeartbeat(undefined, 1000), {
    pingIntervalMs: 250,
    pingTimeoutMs: 500,
  });
  assert.deepEqual(knetHeartbeat(link({ knetPongCount: 1 }), 1000), {
    pingIntervalMs: 500,
    pingTimeoutMs: 1000,
    pongCount: 1,
  });
});

Deno.test("knetHeartbeat keeps configured values and a valid pair", () => {
  assert.deepEqual(
    knetHeartbeat(
      link({ knetPingIntervalMs: 100, knetPingTimeoutMs: 700 }),
      4300,
    ),
    { pingIntervalMs: 100, pingTimeoutMs: 700 },
  );
  // Only one of the pair set: the other still leaves timeout > interval.
  const onlyInterval = knetHeartbeat(link({ knetPingIntervalMs: 5000 }), 1000);
  assert.equal(onlyInterval.pingIntervalMs, 5000);
  assert.ok(onlyInterval.pingTimeoutMs > onlyInterval.pingIntervalMs);
  const onlyTimeout = knetHeartbeat(link({ knetPingTimeoutMs: 100 }), 4300);
  assert.equal(onlyTimeout.pingTimeoutMs, 100);
  assert.ok(onlyTimeout.pingIntervalMs < 100 && onlyTimeout.pingIntervalMs > 0);
});
