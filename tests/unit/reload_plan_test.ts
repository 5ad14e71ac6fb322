import assert from "node:assert/strict";
import { CmapEngine } from "../../engines/cmap/cmap.ts";
import { loadConfigFile } from "../../src/config/load.ts";
import {
  nonReloadableReason,
  planReload,
  ReloadError,
  reloadPlanner,
  type RunningNode,
} from "../../src/daemon/reload.ts";
import {
  resolveTotemConfig,
  type TotemConfig,
} from "../../src/totem/config.ts";
import type { TransportNode } from "../../src/net/transport.ts";

const KEY = "0123456789abcdef0123456789abcdef";

interface ConfOptions {
  /** Node ids; node n is at 127.0.0.n (and 127.0.1.n on link 1). */
  nodes?: number[];
  links?: number;
  /** Lines added inside totem {}. */
  totem?: string[];
  /** Lines added inside logging {}. */
  logging?: string[];
  /** Whole sections appended. */
  sections?: string;
  /** Replaces the address of node n on link 0. */
  addr?: Record<number, string>;
  /** Replaces the nodeid of the node at 127.0.0.n. */
  nodeid?: Record<number, number>;
  /** Leaves out the inline `totem.key`. */
  noKey?: boolean;
}

function conf(o: ConfOptions = {}): string {
  const links = o.links ?? 1;
  const nodes = (o.nodes ?? [1, 2, 3]).map((n) => {
    const addrs = Array.from(
      { length: links },
      (_, l) =>
        `    ring${l}_addr: ${
          l === 0 && o.addr?.[n] !== undefined ? o.addr[n] : `127.0.${l}.${n}`
        }`,
    );
    return `  node {\n    nodeid: ${o.nodeid?.[n] ?? n}\n${
      addrs.join("\n")
    }\n  }`;
  });
  return `totem {
  version: 2
  cluster_name: unit
  transport: udpu
${o.noKey ? "" : `  key: ${KEY}`}
  token: 1000
${(o.totem ?? []).map((l) => `  ${l}`).join("\n")}
  interface {
    linknumber: 0
    mcastport: 25405
  }
}
nodelist {
${nodes.join("\n")}
}
logging {
  to_stderr: yes
${(o.logging ?? []).map((l) => `  ${l}`).join("\n")}
}
${o.sections ?? ""}
`;
}

/** A running node's stand-ins that record what a reload does to them. */
interface Fakes {
  running: RunningNode;
  calls: string[];
  peers: TransportNode[][];
  srpConfig: () => TotemConfig;
  cmap: CmapEngine;
}

async function start(dir: string, text: string, nodeId = 1): Promise<Fakes> {
  const file = `${dir}/corosync.conf`;
  await Deno.writeTextFile(file, text);
  const loaded = await loadConfigFile(file);
  const calls: string[] = [];
  const peers: TransportNode[][] = [];
  let config = resolveTotemConfig(
    { tokenMs: loaded.config.totem.tokenMs },
    loaded.config.nodelist.length,
  );
  const cmap = new CmapEngine();
  const record: Record<string, string> = {};
  for (const [k, v] of loaded.flat.entries) record[k] = v.value;
  cmap.load(record);
  const running: RunningNode = {
    loaded,
    nodeId,
    localNode: { nodeId, localAddresses: [] },
    srp: {
      get config() {
        return config;
      },
      setNodes: (ids) => void calls.push(`setNodes ${ids.join(",")}`),
      reconfigure: (c) => {
        calls.push(`reconfigure token=${c.tokenMs}`);
        config = c;
      },
    },
    transport: {
      setPeers: (nodes) => {
        calls.push("setPeers");
        peers.push([...nodes]);
        return [];
      },
    },
    opener: {
      setAllowedNodeIds: (ids) =>
        void calls.push(
          `allowed ${
            [...(ids as Set<number>)].sort((a, b) => a - b).join(",")
          }`,
        ),
    },
    logger: {
      log: () => {},
      setDebug: (level, subsys) =>
        void calls.push(`debug ${subsys ?? "*"}=${level}`),
      clearSubsysDebug: (subsys) => void calls.push(`clear ${subsys}`),
      setToStderr: (on) => void calls.push(`stderr ${on}`),
    },
    cmap,
  };
  return { running, calls, peers, srpConfig: () => config, cmap };
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "denosync-reload-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Plans a reload from `before` to `after` (node 1's view). */
async function plan(
  before: string,
  after: string,
  nodeId = 1,
): Promise<
  { changes: readonly string[]; fakes: Fakes; apply(): Promise<void> }
> {
  let out;
  await withDir(async (dir) => {
    const fakes = await start(dir, before, nodeId);
    await Deno.writeTextFile(`${dir}/corosync.conf`, after);
    const p = await planReload(`${dir}/corosync.conf`, fakes.running);
    out = { changes: p.changes, fakes, apply: () => p.apply() };
  });
  return out!;
}

async function refused(
  before: string,
  after: string,
  nodeId = 1,
): Promise<ReloadError> {
  let caught: unknown;
  try {
    await plan(before, after, nodeId);
  } catch (e) {
    caught = e;
  }
  assert.ok(
    caught instanceof ReloadError,
    `expected a ReloadError, got ${caught}`,
  );
  return caught;
}

Deno.test("planReload() finds nothing to change in the same file", async () => {
  const { changes } = await plan(conf(), conf());
  assert.deepEqual(changes, []);
});

Deno.test("planReload() lists an added node and the longer token", async () => {
  const { changes } = await plan(conf(), conf({ nodes: [1, 2, 3, 4] }));
  assert.deepEqual(changes.slice(0, 1), [
    "node 4 added (ring0_addr 127.0.0.4)",
  ]);
  // token_coefficient 650 per node above two (Corosync): 1650 -> 2300.
  assert.ok(
    changes.includes("runtime.config.totem.token: 1650 -> 2300"),
    changes.join("\n"),
  );
});

Deno.test("planReload() lists a removed node", async () => {
  const { changes } = await plan(conf({ nodes: [1, 2, 3, 4] }), conf());
  assert.equal(changes[0], "node 4 removed");
});

Deno.test("planReload() lists a removed node whose successors move up", async () => {
  const { changes } = await plan(conf(), conf({ nodes: [1, 3] }));
  // Node 3 moves from position 2 to 1: that is no change of node 3.
  assert.deepEqual(changes.filter((c) => c.startsWith("node")), [
    "node 2 removed",
  ]);
});

Deno.test("planReload() lists another node's new link address", async () => {
  const { changes } = await plan(conf(), conf({ addr: { 3: "127.0.0.33" } }));
  assert.deepEqual(changes, ["node 3 link 0 address 127.0.0.3 -> 127.0.0.33"]);
});

const TIMERS: readonly [string, string][] = [
  ["token", "2000"],
  ["token_coefficient", "100"],
  ["token_retransmits_before_loss_const", "6"],
  ["consensus", "3000"],
  ["join", "100"],
  ["merge", "300"],
  ["hold", "100"],
  ["fail_recv_const", "500"],
  ["seqno_unchanged_const", "40"],
  ["send_join", "10"],
  ["max_messages", "20"],
  ["window_size", "60"],
  ["downcheck", "2000"],
  ["miss_count_const", "7"],
  ["heartbeat_failures_allowed", "2"],
  ["max_network_delay", "60"],
  ["token_warning", "50"],
  ["config_version", "2"],
];

for (const [key, value] of TIMERS) {
  Deno.test(`planReload() accepts a new totem.${key}`, async () => {
    const before = conf();
    const after = key === "token"
      ? before.replace("token: 1000", `token: ${value}`)
      : conf({ totem: [`${key}: ${value}`] });
    const { changes } = await plan(before, after);
    const from = key === "token" ? `"1000"` : "(unset)";
    assert.ok(
      changes.includes(`totem.${key}: ${from} -> "${value}"`),
      changes.join("\n"),
    );
  });
}

Deno.test("planReload() accepts logging.debug and a subsystem's debug", async () => {
  const { changes } = await plan(
    conf(),
    conf({
      logging: [
        "debug: on",
        "logger_subsys {\n    subsys: TOTEM\n    debug: trace\n  }",
      ],
    }),
  );
  assert.ok(changes.includes(`logging.debug: (unset) -> "on"`));
  assert.ok(
    changes.includes(`logging.logger_subsys.TOTEM.debug: (unset) -> "trace"`),
    changes.join("\n"),
  );
});

// [what, file after, refused key]
const REFUSED: readonly [string, string, string][] = [
  [
    "cluster_name",
    conf().replace("cluster_name: unit", "cluster_name: other"),
    "totem.cluster_name",
  ],
  [
    "transport",
    conf().replace("transport: udpu", "transport: knet"),
    "totem.transport",
  ],
  [
    "crypto_cipher",
    conf({ totem: ["crypto_cipher: aes256", "crypto_hash: sha256"] }),
    "totem.crypto_cipher",
  ],
  ["secauth", conf({ totem: ["secauth: on"] }), "totem.secauth"],
  ["the inline key", conf().replace(KEY, KEY.toUpperCase()), "totem.key"],
  ["ip_version", conf({ totem: ["ip_version: ipv4"] }), "totem.ip_version"],
  ["netmtu", conf({ totem: ["netmtu: 1400"] }), "totem.netmtu"],
  ["link_mode", conf({ totem: ["link_mode: active"] }), "totem.link_mode"],
  [
    "a link's port",
    conf().replace("mcastport: 25405", "mcastport: 25407"),
    "totem.interface.0.mcastport",
  ],
  [
    "block_unlisted_ips",
    conf({ totem: ["block_unlisted_ips: no"] }),
    "totem.block_unlisted_ips",
  ],
  [
    "logging.logfile",
    conf({ logging: ["to_logfile: yes", "logfile: /tmp/x.log"] }),
    "logging.logfile",
  ],
  [
    "logging.timestamp",
    conf({ logging: ["timestamp: off"] }),
    "logging.timestamp",
  ],
  [
    "quorum.provider",
    conf({ sections: "quorum {\n  provider: corosync_votequorum\n}" }),
    "quorum.provider",
  ],
  [
    "system.state_dir",
    conf({ sections: "system {\n  state_dir: /tmp/x\n}" }),
    "system.state_dir",
  ],
  [
    "uidgid",
    conf({ sections: "uidgid {\n  gid: 100\n}" }),
    "uidgid.gid.100",
  ],
  [
    "the local node's nodeid",
    conf({ nodeid: { 1: 7 } }),
    "nodelist.node.0",
  ],
  [
    "the local node's address",
    conf({ addr: { 1: "127.0.0.11" } }),
    "nodelist.node.0.ring0_addr",
  ],
  ["removing the local node", conf({ nodes: [2, 3] }), "nodelist.node.0"],
  ["the number of links", conf({ links: 2 }), "nodelist.node.0.ring1_addr"],
];

for (const [what, after, key] of REFUSED) {
  Deno.test(`planReload() refuses a change of ${what}, naming ${key}`, async () => {
    const e = await refused(conf(), after);
    assert.equal(e.key, key, e.message);
    assert.match(e.message, /nothing was changed/);
    assert.ok(e.message.includes(key), e.message);
  });
}

Deno.test("planReload() points a removed local node at the nodelist", async () => {
  await withDir(async (dir) => {
    const fakes = await start(dir, conf());
    const file = `${dir}/corosync.conf`;
    await Deno.writeTextFile(file, conf({ nodes: [2, 3] }));
    const line = conf().split("\n").indexOf("nodelist {") + 1;
    await assert.rejects(
      planReload(file, fakes.running),
      (e: unknown) =>
        e instanceof ReloadError && e.where === `${file}:${line}` &&
        /no longer has the local node 1: a node cannot remove itself/.test(
          e.message,
        ),
    );
  });
});

Deno.test("planReload() refuses a local nodeid change found by address", async () => {
  await withDir(async (dir) => {
    const fakes = await start(dir, conf());
    // Found by its address, as without --nodeid.
    const running = {
      ...fakes.running,
      localNode: { localAddresses: ["127.0.0.1/8"] },
    };
    await Deno.writeTextFile(
      `${dir}/corosync.conf`,
      conf({ nodeid: { 1: 9 } }),
    );
    await assert.rejects(
      planReload(`${dir}/corosync.conf`, running),
      (e: unknown) =>
        e instanceof ReloadError && e.key === "nodelist.node.0.nodeid" &&
        /nodeid cannot change at runtime \(1 -> 9\)/.test(e.message),
    );
  });
});

Deno.test("planReload() never shows the inline cluster key", async () => {
  const e = await refused(conf(), conf().replace(KEY, KEY.toUpperCase()));
  assert.equal(e.key, "totem.key");
  assert.match(e.message, /value hidden/);
  assert.ok(!e.message.includes(KEY), e.message);
  assert.ok(!e.message.includes(KEY.toUpperCase()), e.message);
});

Deno.test("planReload() refuses a new cluster key file content", async () => {
  await withDir(async (dir) => {
    const keyfile = `${dir}/authkey`;
    await Deno.writeFile(keyfile, new Uint8Array(32).fill(1));
    const text = conf({
      noKey: true,
      totem: [
        "crypto_cipher: aes256",
        "crypto_hash: sha256",
        `keyfile: ${keyfile}`,
      ],
    });
    const fakes = await start(dir, text);
    const file = `${dir}/corosync.conf`;
    assert.deepEqual((await planReload(file, fakes.running)).changes, []);
    await Deno.writeFile(keyfile, new Uint8Array(32).fill(2));
    await assert.rejects(
      planReload(file, fakes.running),
      (e: unknown) =>
        e instanceof ReloadError && e.key === "totem.keyfile" &&
        e.message.includes(`the cluster key in ${keyfile} changed`),
    );
  });
});

Deno.test("planReload() names every refused key, the first in .key", async () => {
  const e = await refused(
    conf(),
    conf({ totem: ["netmtu: 1400", "link_mode: rr"] }).replace(
      "cluster_name: unit",
      "cluster_name: x",
    ),
  );
  assert.equal(e.key, "totem.cluster_name");
  assert.deepEqual(e.keys, [
    "totem.cluster_name",
    "totem.link_mode",
    "totem.netmtu",
  ]);
  assert.match(e.message, /also refused: totem\.link_mode, totem\.netmtu/);
});

Deno.test("planReload() points a syntax error at its file and line", async () => {
  await withDir(async (dir) => {
    const fakes = await start(dir, conf());
    const file = `${dir}/corosync.conf`;
    await Deno.writeTextFile(file, "totem {\n  version: 2\n  token 3000\n}\n");
    await assert.rejects(
      planReload(file, fakes.running),
      (e: unknown) =>
        e instanceof ReloadError && e.where === `${file}:3` &&
        e.key === undefined && e.message.startsWith(`${file}:3: `),
    );
  });
});

Deno.test("planReload() points an invalid value at its file and line", async () => {
  await withDir(async (dir) => {
    const fakes = await start(dir, conf());
    const file = `${dir}/corosync.conf`;
    const text = conf().replace("token: 1000", "token: 3s");
    await Deno.writeTextFile(file, text);
    const line = text.split("\n").findIndex((l) => l.includes("token: 3s")) +
      1;
    await assert.rejects(
      planReload(file, fakes.running),
      (e: unknown) =>
        e instanceof ReloadError && e.where === `${file}:${line}` &&
        /totem\.token must be a whole number/.test(e.message),
    );
  });
});

Deno.test("planReload() refuses an unreadable file, naming it", async () => {
  await withDir(async (dir) => {
    const fakes = await start(dir, conf());
    await assert.rejects(
      planReload(`${dir}/missing.conf`, fakes.running),
      (e: unknown) =>
        e instanceof ReloadError && e.where === `${dir}/missing.conf` &&
        /cannot read the configuration file: no such file/.test(e.message),
    );
  });
});

Deno.test("ReloadPlan.apply() adds a node to the transport, Totem, crypto and cmap", async () => {
  const { fakes, apply } = await plan(conf(), conf({ nodes: [1, 2, 3, 4] }));
  await apply();
  assert.deepEqual(fakes.calls, [
    "setPeers",
    "allowed 1,2,3,4",
    "setNodes 1,2,3,4",
    "reconfigure token=2300",
  ]);
  assert.deepEqual(fakes.peers[0].map((n) => [n.nodeId, [...n.addrs]]), [
    [1, ["127.0.0.1"]],
    [2, ["127.0.0.2"]],
    [3, ["127.0.0.3"]],
    [4, ["127.0.0.4"]],
  ]);
  assert.deepEqual(fakes.cmap.getValue("nodelist.node.3.ring0_addr"), {
    type: "string",
    value: "127.0.0.4",
  });
  assert.deepEqual(fakes.cmap.getValue("runtime.config.totem.token"), {
    type: "uint32",
    value: 2300,
  });
  assert.equal(fakes.running.loaded.config.nodelist.length, 4);
});

Deno.test("ReloadPlan.apply() removes a node's cmap keys and moves local_node_pos", async () => {
  const { fakes, apply } = await plan(
    conf({ nodes: [1, 2, 3] }),
    conf({ nodes: [2, 3] }),
    3,
  );
  await apply();
  assert.ok(fakes.calls.includes("setNodes 2,3"));
  assert.equal(fakes.cmap.getValue("nodelist.node.2.ring0_addr"), null);
  assert.equal(fakes.cmap.getValue("nodelist.node.2.nodeid"), null);
  assert.deepEqual(fakes.cmap.getValue("nodelist.node.1.nodeid"), {
    type: "uint32",
    value: 3,
  });
  assert.deepEqual(fakes.cmap.getValue("nodelist.local_node_pos"), {
    type: "uint32",
    value: 1,
  });
});

Deno.test("ReloadPlan.apply() changes debug logging at once", async () => {
  const { fakes, apply } = await plan(
    conf({
      logging: ["logger_subsys {\n    subsys: CPG\n    debug: on\n  }"],
    }),
    conf({
      logging: [
        "debug: trace",
        "to_stderr: no",
        "logger_subsys {\n    subsys: TOTEM\n    debug: on\n  }",
      ],
    }),
  );
  await apply();
  assert.deepEqual(
    fakes.calls.filter((c) => !/^(setPeers|allowed|setNodes|reconf)/.test(c))
      .sort(),
    ["clear CPG", "debug *=trace", "debug TOTEM=on", "stderr false"],
  );
  assert.deepEqual(fakes.cmap.getValue("logging.debug"), {
    type: "string",
    value: "trace",
  });
  assert.equal(fakes.cmap.getValue("logging.logger_subsys.CPG.debug"), null);
});

Deno.test("ReloadPlan.apply() refuses a second apply and a stale plan", async () => {
  await withDir(async (dir) => {
    const fakes = await start(dir, conf());
    const file = `${dir}/corosync.conf`;
    await Deno.writeTextFile(file, conf({ nodes: [1, 2, 3, 4] }));
    const first = await planReload(file, fakes.running);
    const second = await planReload(file, fakes.running);
    await first.apply();
    await assert.rejects(first.apply(), /already applied/);
    await assert.rejects(second.apply(), /plan it again/);
    assert.equal(fakes.calls.filter((c) => c === "setPeers").length, 1);
  });
});

Deno.test("nonReloadableReason() allows timers, quorum and resources only", () => {
  assert.equal(nonReloadableReason("totem.token"), null);
  assert.equal(nonReloadableReason("quorum.expected_votes"), null);
  assert.equal(nonReloadableReason("resources.watchdog_timeout"), null);
  assert.equal(nonReloadableReason("logging.fileline"), null);
  assert.match(nonReloadableReason("totem.threads")!, /only at start/);
  assert.match(nonReloadableReason("totem.interface.1.ttl")!, /bound sockets/);
  assert.match(nonReloadableReason("system.sched_rr")!, /at start/);
});

Deno.test("reloadPlanner() answers refusals and a starting node as text", async () => {
  await withDir(async (dir) => {
    const fakes = await start(dir, conf());
    const file = `${dir}/corosync.conf`;
    assert.deepEqual(await reloadPlanner(file, () => null)(), {
      ok: false,
      error: "this node is still starting; reload again once it runs",
    });
    const planner = reloadPlanner(file, () => fakes.running);
    const same = await planner();
    assert.ok(same.ok && same.plan.changes.length === 0);
    await Deno.writeTextFile(file, conf().replace("unit", "other"));
    const refusedAnswer = await planner();
    assert.ok(!refusedAnswer.ok);
    assert.match(refusedAnswer.error, /totem\.cluster_name cannot be changed/);
  });
});
