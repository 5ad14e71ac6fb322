import assert from "node:assert/strict";
import { findLocalNode } from "../../../src/config/local_node.ts";
import {
  buildDaemonConfig,
  type DaemonConfig,
} from "../../../src/config/daemon_config.ts";
import { parseCorosyncConf } from "../../../src/config/corosync_conf.ts";
import { ConfigError } from "../../../src/config/config_error.ts";

function config(text: string): DaemonConfig {
  return buildDaemonConfig(parseCorosyncConf(text, "t.conf")).config;
}

const THREE = config(
  "nodelist {\n" +
    " node {\n  nodeid: 1\n  ring0_addr: 10.0.0.1\n  ring1_addr: 10.1.0.1\n }\n" +
    " node {\n  nodeid: 2\n  ring0_addr: 10.0.0.2\n  ring1_addr: 10.1.0.2\n }\n" +
    " node {\n  nodeid: 3\n  ring0_addr: 10.0.0.3\n  ring1_addr: 10.1.0.3\n }\n" +
    "}\n",
);

Deno.test("findLocalNode() prefers --nodeid", () => {
  const me = findLocalNode(THREE, { nodeId: 3, localAddresses: ["10.0.0.1"] });
  assert.equal(me.nodeId, 3);
  assert.equal(me.pos, 2);
  assert.equal(me.via, "nodeid");
  assert.deepEqual(me.ringAddrs, ["10.0.0.3", "10.1.0.3"]);
});

Deno.test("findLocalNode() uses nodelist.local_node_pos without --nodeid", () => {
  const cfg = config(
    "nodelist {\n local_node_pos: 1\n node {\n  ring0_addr: 10.0.0.1\n }\n node {\n  ring0_addr: 10.0.0.2\n }\n}\n",
  );
  const me = findLocalNode(cfg, { localAddresses: [] });
  assert.equal(me.pos, 1);
  assert.equal(me.via, "local_node_pos");
});

Deno.test("findLocalNode() finds the one node with a local ring0_addr", () => {
  const me = findLocalNode(THREE, {
    localAddresses: ["127.0.0.1", "::1", "10.0.0.2/24", "fe80::5%eth0"],
  });
  assert.equal(me.nodeId, 2);
  assert.equal(me.via, "address");
  assert.equal(me.node?.ringAddrs[1], "10.1.0.2");
});

Deno.test("findLocalNode() compares IPv6 addresses canonically", () => {
  const cfg = config(
    "totem {\n ip_version: ipv6\n}\nnodelist {\n node {\n  nodeid: 5\n  ring0_addr: fd00::5\n }\n}\n",
  );
  assert.equal(
    findLocalNode(cfg, { localAddresses: ["FD00:0:0:0:0:0:0:5"] }).nodeId,
    5,
  );
});

Deno.test("findLocalNode() explains what to do when it cannot decide", () => {
  const cases: [
    DaemonConfig,
    { nodeId?: number; localAddresses: string[] },
    RegExp,
  ][] = [
    [
      THREE,
      { nodeId: 9, localAddresses: [] },
      /--nodeid 9 is not in the nodelist \(node ids: 1, 2, 3\)/,
    ],
    [
      THREE,
      { localAddresses: ["192.168.0.1"] },
      /no node's ring0_addr is an address of this host .*pass --nodeid/,
    ],
    [
      config(
        "nodelist {\n node {\n  nodeid: 1\n  ring0_addr: 127.0.0.1\n }\n node {\n  nodeid: 2\n  ring0_addr: 127.0.0.2\n }\n}\n",
      ),
      { localAddresses: ["127.0.0.1", "127.0.0.2"] },
      /nodes 1, 2 all have a ring0_addr of this host; pass --nodeid/,
    ],
  ];
  for (const [cfg, options, reason] of cases) {
    assert.throws(
      () => findLocalNode(cfg, options),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError, String(error));
        assert.match(error.message, /^t\.conf(:\d+)?: /);
        assert.match(error.reason, reason);
        return true;
      },
    );
  }
});

const MCAST = config(
  "totem {\n transport: udp\n clear_node_high_bit: yes\n interface {\n  bindnetaddr: 192.168.50.0\n  mcastaddr: 239.255.1.1\n }\n}\n",
);

Deno.test("findLocalNode() derives the id for udp without a nodelist", () => {
  const me = findLocalNode(MCAST, {
    localAddresses: ["127.0.0.1/8", "192.168.50.7/24"],
  });
  // 192.168.50.7 = 0xC0A83207, high bit cleared.
  assert.equal(me.nodeId, 0x40a83207);
  assert.deepEqual(me.ringAddrs, ["192.168.50.7"]);
  assert.equal(me.pos, undefined);
  assert.equal(
    findLocalNode(MCAST, { nodeId: 4, localAddresses: ["192.168.50.7/24"] })
      .nodeId,
    4,
  );
  assert.throws(
    () => findLocalNode(MCAST, { localAddresses: ["10.0.0.1/8"] }),
    /no address of this host is in the network of totem\.interface\.0\.bindnetaddr 192\.168\.50\.0/,
  );
});
