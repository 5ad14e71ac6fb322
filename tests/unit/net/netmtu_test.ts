import assert from "node:assert/strict";
import {
  DEFAULT_NETMTU,
  effectiveNetmtu,
  isLoopbackAddress,
  KNET_NETMTU,
  LARGE_FRAME_BUFFER_BYTES,
  LARGE_NETMTU,
  LOOPBACK_NETMTU,
} from "../../../src/net/netmtu.ts";
import { frameBytesForMtu } from "../../../src/totem/pg/totem_pg.ts";
import { WIRE_HEADER_BYTES } from "../../../src/net/wire.ts";
import { CRYPTO_OVERHEAD_BYTES } from "../../../src/net/crypto.ts";

Deno.test("isLoopbackAddress() accepts 127/8 and ::1 only", () => {
  const cases: [string, boolean][] = [
    ["127.0.0.1", true],
    ["127.0.1.3", true],
    ["127.255.255.254", true],
    ["::1", true],
    ["::ffff:127.0.0.2", true],
    ["10.0.0.1", false],
    ["128.0.0.1", false],
    ["::", false],
    ["fe80::1", false],
    ["::ffff:10.0.0.1", false],
  ];
  for (const [addr, want] of cases) {
    assert.equal(isLoopbackAddress(addr), want, addr);
  }
});

Deno.test("effectiveNetmtu() keeps a configured value and picks the loopback size only for all-loopback rings", () => {
  const lo = [["127.0.0.1", "127.0.1.1"], ["127.0.0.2", "127.0.1.2"]];
  const mixed = [["127.0.0.1"], ["10.0.0.2"]];
  assert.equal(effectiveNetmtu(undefined, lo), LOOPBACK_NETMTU);
  assert.equal(effectiveNetmtu(undefined, [["::1"]]), LOOPBACK_NETMTU);
  assert.equal(effectiveNetmtu(undefined, mixed), DEFAULT_NETMTU);
  assert.equal(effectiveNetmtu(undefined, []), DEFAULT_NETMTU);
  assert.equal(effectiveNetmtu(1500, lo), 1500);
  assert.equal(effectiveNetmtu(9000, mixed), 9000);
});

Deno.test("effectiveNetmtu() gives knet off loopback frames of six full 1500-byte fragments", () => {
  const net = [["10.0.0.1"], ["10.0.0.2"]];
  assert.equal(KNET_NETMTU, 8900);
  // IP payload of the frame: six fragments of 1480 bytes each.
  assert.equal((KNET_NETMTU - 20) % 1480, 0);
  assert.equal(effectiveNetmtu(undefined, net, "knet"), KNET_NETMTU);
  assert.equal(effectiveNetmtu(undefined, net, "udpu"), DEFAULT_NETMTU);
  assert.equal(effectiveNetmtu(undefined, net, "udp"), DEFAULT_NETMTU);
  // Loopback keeps its own bound, and a configured value always wins.
  assert.equal(
    effectiveNetmtu(undefined, [["127.0.0.1"]], "knet"),
    LOOPBACK_NETMTU,
  );
  assert.equal(effectiveNetmtu(1500, net, "knet"), 1500);
});

Deno.test("effectiveNetmtu() uses large frames for loopback and knet only when the receive buffers can take them", () => {
  const lo = [["127.0.0.1"], ["127.0.0.2"]];
  const net = [["10.0.0.1"], ["10.0.0.2"]];
  const root = 16 * 1024 * 1024; // 8 MiB forced, reported doubled
  const small = 425_984; // SO_RCVBUF capped at the default rmem_max
  assert.equal(effectiveNetmtu(undefined, lo, "udpu", root), LARGE_NETMTU);
  assert.equal(effectiveNetmtu(undefined, lo, "knet", root), LARGE_NETMTU);
  assert.equal(effectiveNetmtu(undefined, net, "knet", root), LARGE_NETMTU);
  assert.equal(
    effectiveNetmtu(undefined, lo, "udpu", LARGE_FRAME_BUFFER_BYTES),
    LARGE_NETMTU,
  );
  assert.equal(effectiveNetmtu(undefined, lo, "udpu", small), LOOPBACK_NETMTU);
  assert.equal(effectiveNetmtu(undefined, net, "knet", small), KNET_NETMTU);
  assert.equal(effectiveNetmtu(undefined, net, "knet", null), KNET_NETMTU);
  // udpu on a network keeps unfragmented frames; configured values win.
  assert.equal(effectiveNetmtu(undefined, net, "udpu", root), DEFAULT_NETMTU);
  assert.equal(effectiveNetmtu(1500, lo, "udpu", root), 1500);
  // A large frame, headers and crypto included, is one UDP datagram.
  const overhead = WIRE_HEADER_BYTES + CRYPTO_OVERHEAD_BYTES;
  assert.ok(LARGE_NETMTU - 28 <= 65_507);
  assert.ok(frameBytesForMtu(LARGE_NETMTU, overhead) > 59_000);
});

Deno.test("LOOPBACK_NETMTU datagrams stay under the 8 KiB slab the kernel charges", () => {
  // Largest datagram payload is netmtu minus IP/UDP headers; measured on
  // Linux 6.x: up to 7810 bytes a datagram costs 8.5 KiB of receive buffer.
  for (const crypto of [0, CRYPTO_OVERHEAD_BYTES]) {
    const overhead = WIRE_HEADER_BYTES + crypto;
    assert.ok(frameBytesForMtu(LOOPBACK_NETMTU, overhead) > 7_000);
  }
  assert.ok(LOOPBACK_NETMTU - 28 <= 7_700);
});
