import assert from "node:assert/strict";
import { openDirectSender, sockaddrFor } from "../../../src/net/direct_send.ts";

Deno.test("sockaddrFor() lays out sockaddr_in and sockaddr_in6 for sendto", () => {
  assert.deepEqual(
    sockaddrFor("127.0.0.2", 5405),
    new Uint8Array([2, 0, 0x15, 0x1d, 127, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0]),
  );
  const v6 = sockaddrFor("::1", 5405)!;
  assert.equal(v6.length, 28);
  assert.deepEqual([...v6.subarray(0, 4)], [10, 0, 0x15, 0x1d]);
  assert.equal(v6[23], 1); // last address byte
  assert.deepEqual([...v6.subarray(24)], [0, 0, 0, 0]); // scope id
  assert.equal(sockaddrFor("node1.example", 5405), null);
});

Deno.test("openDirectSender() sends from the Deno socket's own address, in call order", async () => {
  const from = Deno.listenDatagram({
    transport: "udp",
    hostname: "127.0.0.1",
    port: 0,
  });
  const to = Deno.listenDatagram({
    transport: "udp",
    hostname: "127.0.0.1",
    port: 0,
  });
  try {
    const fromAddr = from.addr as Deno.NetAddr;
    const toAddr = to.addr as Deno.NetAddr;
    const sender = openDirectSender(fromAddr.hostname, fromAddr.port);
    assert.ok(!("reason" in sender), JSON.stringify(sender));
    const dst = sockaddrFor(toAddr.hostname, toAddr.port)!;
    for (let i = 0; i < 5; i++) {
      assert.equal(sender.send(new Uint8Array([i, 42]), dst), "sent");
    }
    // The whole count comes back for a frame near the largest we send.
    const large = new Uint8Array(60_000).fill(7);
    assert.equal(sender.send(large, dst), "sent");
    // Refused by the kernel (UDP port 0 is EINVAL): named from errno, so
    // the transport counts it instead of retrying it.
    assert.deepEqual(
      sender.send(new Uint8Array([9]), sockaddrFor(toAddr.hostname, 0)!),
      { error: "EINVAL" },
    );
    const buf = new Uint8Array(65_536);
    for (let i = 0; i < 5; i++) {
      const [bytes, source] = await to.receive(buf);
      assert.deepEqual([...bytes], [i, 42]);
      assert.equal((source as Deno.NetAddr).port, fromAddr.port);
    }
    const [bytes] = await to.receive(buf);
    assert.equal(bytes.length, large.length);
    assert.ok(bytes.every((b) => b === 7));
  } finally {
    from.close();
    to.close();
  }
});

Deno.test("openDirectSender() names why there is no socket to send on", () => {
  const result = openDirectSender("127.0.0.1", 1);
  assert.ok("reason" in result);
  assert.match(
    result.reason,
    /no socket of this process bound to 127\.0\.0\.1:1/,
  );
  const named = openDirectSender("localhost", 5405);
  assert.ok("reason" in named);
  assert.match(named.reason, /not an IP literal/);
});
