import assert from "node:assert/strict";
import {
  buildDaemonConfig,
  clusterMcastAddr,
  type DaemonConfig,
  nodeIdFromIpv4,
  toTotemOptions,
} from "../../../src/config/daemon_config.ts";
import { parseCorosyncConf } from "../../../src/config/corosync_conf.ts";
import {
  ConfigError,
  type ConfigWarning,
} from "../../../src/config/config_error.ts";
import { resolveTotemConfig } from "../../../src/totem/config.ts";

const FIXTURES = new URL("../../fixtures/config/", import.meta.url);

function fromFixture(
  name: string,
): { config: DaemonConfig; warnings: ConfigWarning[] } {
  const text = Deno.readTextFileSync(new URL(name, FIXTURES));
  return buildDaemonConfig(parseCorosyncConf(text, name));
}

function build(
  text: string,
): { config: DaemonConfig; warnings: ConfigWarning[] } {
  return buildDaemonConfig(parseCorosyncConf(text, "t.conf"));
}

const ONE_NODE = "nodelist {\n node {\n  ring0_addr: 10.0.0.1\n }\n}\n";

Deno.test("buildDaemonConfig() reads the Debian-style default config", () => {
  const { config, warnings } = fromFixture("debian_default.conf");
  assert.deepEqual(warnings, []);
  assert.equal(config.clusterName, "debian");
  assert.equal(config.totem.transport, "udpu");
  // No transport line: Corosync would pick knet, we pick udpu (same nodelist).
  assert.equal(config.totem.transportSetting, "udpu");
  assert.equal(config.totem.ipVersion, "ipv4");
  assert.equal(config.totem.crypto, "none");
  assert.equal(config.totem.cryptoCipher, "none");
  assert.equal(config.totem.keyfile, "/etc/corosync/authkey");
  assert.deepEqual(config.nodelist, [{
    pos: 0,
    nodeid: 1,
    nodeidDerived: false,
    name: "node1",
    ringAddrs: ["127.0.0.1"],
    quorumVotes: 1,
    file: "debian_default.conf",
    line: 44,
  }]);
  assert.deepEqual(config.totem.interfaces, [{
    linknumber: 0,
    mcastport: 5405,
    broadcast: false,
    ttl: 1,
    knetLinkPriority: 1,
    knetTransport: "udp",
  }]);
  assert.equal(config.quorum.provider, "corosync_votequorum");
  assert.equal(config.logging.toLogfile, true);
  assert.equal(config.logging.logfile, "/var/log/corosync/corosync.log");
  assert.equal(config.logging.timestamp, "on");
  assert.equal(config.logging.toStderr, true);
  assert.deepEqual(config.logging.subsys, { QUORUM: { debug: "off" } });
  assert.deepEqual(toTotemOptions(config), {});
});

Deno.test("buildDaemonConfig() reads the two-node example", () => {
  const { config, warnings } = fromFixture("two_node.conf");
  assert.deepEqual(warnings, []);
  assert.equal(config.totem.transportSetting, "udpu");
  assert.equal(config.totem.ipVersion, "ipv4");
  assert.equal(config.quorum.twoNode, true);
  assert.equal(config.quorum.waitForAll, true, "wait_for_all follows two_node");
  assert.deepEqual(
    config.nodelist.map((n) => [n.name, n.nodeid, n.ringAddrs]),
    [
      ["alpha", 1, ["192.168.100.11"]],
      ["beta", 2, ["192.168.100.12"]],
    ],
  );
  assert.equal(config.logging.toStderr, false);
  assert.deepEqual(toTotemOptions(config), { tokenMs: 5000 });
});

Deno.test("buildDaemonConfig() reads the multi-link example", () => {
  const { config, warnings } = fromFixture("multi_link.conf");
  assert.deepEqual(warnings, []);
  assert.equal(config.totem.linkMode, "passive");
  assert.deepEqual(config.totem.interfaces, [
    {
      linknumber: 0,
      mcastport: 5405,
      broadcast: false,
      ttl: 1,
      knetLinkPriority: 5,
      knetTransport: "udp",
    },
    {
      linknumber: 1,
      mcastport: 5406,
      broadcast: false,
      ttl: 1,
      knetLinkPriority: 20,
      knetTransport: "udp",
      knetPingIntervalMs: 500,
      knetPingTimeoutMs: 2000,
    },
  ]);
  assert.deepEqual(config.nodelist.map((n) => n.ringAddrs), [
    ["10.0.0.1", "10.1.0.1"],
    ["10.0.0.2", "10.1.0.2"],
    ["10.0.0.3", "10.1.0.3"],
  ]);
  assert.deepEqual(config.quorum, {
    provider: "corosync_votequorum",
    twoNode: false,
    waitForAll: true,
    lastManStanding: true,
    lastManStandingWindowMs: 20_000,
    autoTieBreaker: true,
    autoTieBreakerNode: [1, 3],
    allowDownscale: false,
    expectedVotesTracking: false,
  });
  const options = toTotemOptions(config);
  assert.deepEqual(options, {
    tokenMs: 3000,
    tokenCoefficientMs: 650,
    joinMs: 60,
    consensusMs: 4800,
    windowSize: 60,
    maxMessages: 20,
    netmtu: 1400,
  });
  // token_coefficient lengthens the token for the third node.
  assert.equal(
    resolveTotemConfig(options, config.nodelist.length).tokenMs,
    3650,
  );
});

Deno.test("buildDaemonConfig() reads the crypto example", () => {
  const { config } = fromFixture("crypto.conf");
  assert.equal(config.totem.crypto, "aead");
  assert.equal(config.totem.cryptoCipher, "aes256");
  assert.equal(config.totem.cryptoHash, "sha256");
  assert.equal(config.totem.keyfile, "/etc/corosync/authkey");
  // udpu derives nothing here: every node has an explicit nodeid.
  assert.deepEqual(config.nodelist.map((n) => n.nodeidDerived), [
    false,
    false,
    false,
  ]);
});

Deno.test("buildDaemonConfig() reads the logging example", () => {
  const { config, warnings } = fromFixture("logging_subsys.conf");
  assert.deepEqual(warnings, []);
  const { subsys, ...logging } = config.logging;
  assert.deepEqual(logging, {
    toStderr: false,
    toLogfile: true,
    toSyslog: true,
    logfile: "/var/log/cluster/denosync.log",
    logfilePriority: "notice",
    syslogFacility: "local4",
    syslogPriority: "warning",
    debug: "off",
    timestamp: "hires",
    fileline: true,
    functionName: true,
    blackbox: true,
  });
  assert.deepEqual(subsys, {
    QUORUM: { debug: "on" },
    CPG: { debug: "trace", toSyslog: false },
  });
  assert.deepEqual(config.uidgid, {
    uids: ["hacluster", "monitor"],
    gids: ["haclient"],
  });
  assert.deepEqual(config.system, {
    stateDir: "/var/lib/denosync",
    runDir: "/run/denosync",
    schedRr: false,
    priority: "-10",
  });
  assert.deepEqual(config.resources, {
    watchdog_device: "off",
    "system.memory_used.warning": "90",
    "system.memory_used.poll_period": "10000",
  });
  // No nodeid: derived from ring0_addr as Corosync does for udpu.
  assert.deepEqual(
    config.nodelist.map((n) => [n.nodeid, n.nodeidDerived]),
    [[169082881, true], [169082882, true]],
  );
});

Deno.test("buildDaemonConfig() reads the udp multicast example", () => {
  const { config, warnings } = fromFixture("udp_multicast.conf");
  assert.deepEqual(warnings, []);
  assert.equal(config.totem.transport, "udp");
  assert.deepEqual(config.nodelist, []);
  assert.equal(config.totem.clearNodeHighBit, true);
  assert.deepEqual(config.totem.interfaces, [{
    linknumber: 0,
    bindnetaddr: "192.168.50.0",
    mcastaddr: "239.255.1.1",
    mcastport: 5405,
    broadcast: false,
    ttl: 1,
    knetLinkPriority: 1,
    knetTransport: "udp",
  }]);
  assert.equal(config.quorum.expectedVotes, 3);
});

Deno.test("nodeIdFromIpv4() is the big-endian address, top bit optional", () => {
  assert.equal(nodeIdFromIpv4("192.168.1.1"), 3232235777);
  assert.equal(nodeIdFromIpv4("192.168.1.1", true), 1084752129);
  assert.equal(nodeIdFromIpv4("10.20.0.1", true), 169082881);
  assert.equal(nodeIdFromIpv4("fe80::1"), undefined);
});

Deno.test("clusterMcastAddr() matches Corosync's derivation", () => {
  assert.equal(clusterMcastAddr("mcast", 0, 4), "239.192.12.210");
  assert.equal(clusterMcastAddr("mcast", 1, 4), "239.192.12.211");
  assert.equal(clusterMcastAddr("pair", 0, 6), "ff15::648");
});

Deno.test("buildDaemonConfig() derives udp mcastaddr from the cluster name", () => {
  const { config } = build(
    "totem {\n transport: udp\n cluster_name: mcast\n}\n" + ONE_NODE,
  );
  assert.equal(config.totem.interfaces[0].mcastaddr, "239.192.12.210");
});

Deno.test("buildDaemonConfig() maps secauth: on to aes256 + sha256", () => {
  const { config } = build("totem {\n secauth: on\n}\n" + ONE_NODE);
  assert.equal(config.totem.cryptoCipher, "aes256");
  assert.equal(config.totem.cryptoHash, "sha256");
  assert.equal(config.totem.crypto, "aead");
});

Deno.test("buildDaemonConfig() resolves localhost and canonicalises IPv6", () => {
  const local = build("nodelist {\n node {\n  ring0_addr: localhost\n }\n}\n");
  assert.deepEqual(local.config.nodelist[0].ringAddrs, ["127.0.0.1"]);
  assert.equal(local.config.nodelist[0].nodeid, 2130706433);
  const v6 = build(
    "totem {\n ip_version: ipv6\n}\nnodelist {\n node {\n  ring0_addr: FE80:0:0::0:1\n  nodeid: 9\n }\n" +
      " node {\n  ring0_addr: localhost\n  nodeid: 10\n }\n}\n",
  );
  assert.deepEqual(v6.config.nodelist.map((n) => n.ringAddrs[0]), [
    "fe80::1",
    "::1",
  ]);
});

Deno.test("buildDaemonConfig() warns on unknown and ineffective keys", () => {
  const { warnings } = build(
    "totem {\n tokne: 1000\n ip_dscp: 8\n frobnicate: 1\n}\n" +
      "nodelist {\n node {\n  ring0_adr: 10.0.0.2\n  ring0_addr: 10.0.0.1\n }\n}\n",
  );
  assert.deepEqual(warnings.map((w) => [w.line, w.message]), [
    [2, "unknown key totem.tokne (ignored); did you mean totem.token?"],
    [
      3,
      "totem.ip_dscp has no effect in denosync: it is specific to Corosync's implementation",
    ],
    [4, "unknown key totem.frobnicate (ignored)"],
    [
      8,
      "unknown key nodelist.node.0.ring0_adr (ignored); did you mean nodelist.node.0.ring0_addr?",
    ],
  ]);
});

Deno.test("buildDaemonConfig() warns about settings the nodelist overrides", () => {
  const { config, warnings } = build(
    "totem {\n interface {\n  bindnetaddr: 10.0.0.0\n }\n interface {\n  linknumber: 3\n  mcastport: 7000\n }\n}\n" +
      ONE_NODE,
  );
  assert.equal(config.totem.interfaces.length, 1);
  assert.deepEqual(warnings.map((w) => w.line), [3, 5]);
  assert.match(warnings[0].message, /bindnetaddr is ignored/);
  assert.match(warnings[1].message, /no ring3_addr in the nodelist/);
});

Deno.test("buildDaemonConfig() rejects invalid values with file:line", () => {
  const cases: [string, number, RegExp][] = [
    [
      "totem {\n token: 20\n}\n" + ONE_NODE,
      2,
      /totem\.token must be between 30 and/,
    ],
    ["totem {\n token: -5\n}\n" + ONE_NODE, 2, /between 30 and 4294967295/],
    [
      "totem {\n max_messages: 80\n}\n" + ONE_NODE,
      2,
      /max_messages \(80\) must not exceed/,
    ],
    ["totem {\n netmtu: 100\n}\n" + ONE_NODE, 2, /netmtu must be between 576/],
    [
      "totem {\n crypto_cipher: 3des\n}\n" + ONE_NODE,
      2,
      /3des is no longer supported/,
    ],
    [
      "totem {\n secauth: on\n key: short\n}\n" + ONE_NODE,
      3,
      /totem\.key is 5 bytes/,
    ],
    [
      "totem {\n ip_version: ipv6\n}\n" + ONE_NODE,
      6,
      /IPv4 address but totem\.ip_version is ipv6/,
    ],
    ["totem {\n transport: udp\n}\n" + ONE_NODE, 1, /needs mcastaddr/],
    [
      "totem {\n transport: udp\n interface {\n  mcastaddr: 10.1.1.1\n }\n}\n" +
      ONE_NODE,
      4,
      /not a multicast address/,
    ],
    [
      "totem {\n transport: udp\n interface {\n  mcastaddr: 239.1.1.1\n }\n}\n",
      3,
      /needs bindnetaddr/,
    ],
    ["totem {\n transport: udp\n}\n", 1, /needs an interface/],
    [
      "totem {\n interface {\n  knet_transport: sctp\n }\n}\n" + ONE_NODE,
      3,
      /sctp is not supported/,
    ],
    [
      "totem {\n interface {\n  mcastport: 0\n }\n}\n" + ONE_NODE,
      3,
      /mcastport must be between 1 and 65535/,
    ],
    [
      "totem {\n ip_version: ipv4-6\n}\nnodelist {\n node {\n  ring0_addr: fe80::1\n }\n}\n",
      6,
      /IPv6 network requires an explicit nodeid/,
    ],
    ["nodelist {\n node {\n  nodeid: 1\n }\n}\n", 2, /has no ring0_addr/],
    [
      "nodelist {\n node {\n  ring0_addr: 10.0.0.1\n }\n node {\n  ring0_addr: 10.0.0.1\n  nodeid: 7\n }\n}\n",
      6,
      /10\.0\.0\.1 is also the ring0_addr of node 0/,
    ],
    [
      "totem {\n ip_version: ipv4-6\n}\nnodelist {\n node {\n  ring0_addr: 10.0.0.1\n }\n node {\n  ring0_addr: ::1\n  nodeid: 7\n }\n}\n",
      9,
      /mix IP families/,
    ],
    [
      "nodelist {\n local_node_pos: 4\n node {\n  ring0_addr: 10.0.0.1\n }\n}\n",
      2,
      /local_node_pos is 4/,
    ],
    [
      "quorum {\n provider: other\n}\n" + ONE_NODE,
      2,
      /quorum\.provider must be one of corosync_votequorum/,
    ],
    [
      "quorum {\n two_node: yes\n}\n" + ONE_NODE,
      2,
      /quorum\.two_node must be a whole number/,
    ],
    [
      "quorum {\n auto_tie_breaker_node: first\n}\n" + ONE_NODE,
      2,
      /lowest, highest or a list/,
    ],
    ["logging {\n to_logfile: yes\n}\n" + ONE_NODE, 2, /logfile is not set/],
    [
      "logging {\n syslog_priority: loud\n}\n" + ONE_NODE,
      2,
      /syslog_priority must be one of/,
    ],
    [
      "logging {\n logger_subsys {\n  subsys: CPG\n  debug: max\n }\n}\n" +
      ONE_NODE,
      4,
      /logger_subsys\.CPG\.debug must be one of off, on, trace/,
    ],
    [
      "system {\n priority: high\n}\n" + ONE_NODE,
      2,
      /system\.priority must be max, min/,
    ],
  ];
  for (const [text, line, reason] of cases) {
    assert.throws(
      () => build(text),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError, String(error));
        assert.equal(
          error.line,
          line,
          `${JSON.stringify(text)}: ${error.message}`,
        );
        assert.match(error.message, new RegExp(`^t\\.conf:${line}: `));
        assert.match(error.reason, reason, error.message);
        return true;
      },
    );
  }
});
