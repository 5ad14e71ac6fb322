import assert from "node:assert/strict";
import type { CmapValue } from "../../../engines/cmap/values.ts";
import {
  StatsFeed,
  type StatsSources,
} from "../../../src/daemon/stats_feed.ts";
import type {
  IpcConnectionStats,
  IpcServerStats,
} from "../../../src/ipc/server.ts";
import type { LinkStatus, TransportStats } from "../../../src/net/transport.ts";
import type { SrpStats } from "../../../src/totem/srp.ts";

/** A cmap stand-in recording every write and delete. */
class FakeCmap {
  readonly map = new Map<string, CmapValue>();
  readonly writes: string[] = [];
  readonly deletes: string[] = [];
  setInternal(key: string, value: CmapValue): void {
    this.map.set(key, value);
    this.writes.push(key);
  }
  deleteInternal(key: string): boolean {
    this.deletes.push(key);
    return this.map.delete(key);
  }
  num(key: string): number | bigint | undefined {
    const v = this.map.get(key);
    return v === undefined ? undefined : v.value as number | bigint;
  }
}

function srpStats(): SrpStats {
  return {
    ordersTx: 0,
    ordersRx: 0,
    mcastTx: 0,
    mcastRx: 0,
    mcastRetx: 0,
    tokensRx: 0,
    tokensTx: 0,
    tokenRetransmits: 0,
    membJoinTx: 0,
    membJoinRx: 0,
    membCommitTokenTx: 0,
    membCommitTokenRx: 0,
    membMergeDetectTx: 0,
    membMergeDetectRx: 0,
    tokenHoldCancelTx: 0,
    tokenHoldCancelRx: 0,
    mttRxTokenMs: 0,
    lastTokenRxMs: -1,
    gatherEntered: 0,
    gatherTokenLost: 0,
    commitEntered: 0,
    commitTokenLost: 0,
    recoveryEntered: 0,
    recoveryTokenLost: 0,
    operationalEntered: 0,
    operationalTokenLost: 0,
    consensusTimeouts: 0,
    unreachableFailed: 0,
    rxMsgDropped: 0,
    continuousGather: 0,
    rejected: 0,
  };
}

function link(nodeId: number, linkNo: number): LinkStatus {
  return {
    nodeId,
    link: linkNo,
    priority: 1,
    connected: true,
    upCount: 1,
    downCount: 0,
    rttMs: 0.5,
    lastHeardMs: 0,
    pingsSent: 3,
    pongsReceived: 3,
    txPackets: 10,
    txBytes: 1000,
    rxPackets: 12,
    rxBytes: 1200,
    txDataPackets: 7,
    txDataBytes: 700,
    rxDataPackets: 9,
    rxDataBytes: 900,
    latency: { minMs: 0.25, maxMs: 1.5, sumMs: 3, samples: 4 },
    enabled: true,
    src: "127.0.0.1:5405",
    dst: `127.0.0.${nodeId}:5405`,
  };
}

function conn(id: number, requests: number): IpcConnectionStats {
  return {
    id,
    service: "cpg",
    pid: 4242,
    requests,
    responses: requests,
    dispatched: 2,
    eventsAcked: 0,
    bytesIn: 0,
    bytesOut: 0,
    flowControl: false,
    flowControlCount: 1,
    flowControlHits: 0,
    queuedFrames: 0,
    queuedBytes: 0,
    pendingBytes: 0,
    requestsInFlight: 0,
    invalidRequests: 0,
    requestsHeld: 3,
  };
}

class Fake {
  srp = { stats: srpStats(), sendQueueFree: 100, cleared: 0 };
  rejected = new Map<string, number>();
  nowMs = 0;
  transportStats: TransportStats = {
    rxPackets: 0,
    rxBytes: 0,
    txPackets: 0,
    txBytes: 0,
    loopback: 0,
    ownEchoes: 0,
    stalePongs: 0,
    rxBlocked: 0,
    heartbeatStalls: 0,
    txDropped: {},
    txErrors: {},
    txErrorsContinuous: 0,
    rxErrors: {},
    rejected: {},
  };
  links: LinkStatus[] = [link(2, 0), link(3, 0)];
  knetCleared = 0;
  conns: IpcConnectionStats[] = [];
  server: IpcServerStats = {
    connections: 0,
    accepted: 0,
    refused: 0,
    protocolErrors: 0,
    overloaded: 0,
  };

  sources(): StatsSources {
    // deno-lint-ignore no-this-alias
    const f = this;
    return {
      srp: {
        get stats() {
          return f.srp.stats;
        },
        get sendQueueFree() {
          return f.srp.sendQueueFree;
        },
        clearStats() {
          f.srp.cleared++;
          f.srp.stats = srpStats();
        },
      },
      srpRejected: f.rejected,
      now: () => f.nowMs,
      transport: {
        get stats() {
          return f.transportStats;
        },
        linkStatus: () => f.links,
        clearStats() {
          f.knetCleared++;
        },
      },
      ipc: {
        connectionStats: () => f.conns,
        stats: () => f.server,
      },
      procName: (pid) => pid === 4242 ? "corosync-test\n" : null,
    };
  }
}

Deno.test("StatsFeed.publish() writes Corosync's stats keys with their types", () => {
  const fake = new Fake();
  fake.srp.stats.tokensRx = 5;
  fake.srp.stats.mcastRetx = 2;
  fake.srp.stats.mttRxTokenMs = 12.4;
  fake.srp.stats.lastTokenRxMs = 100;
  fake.nowMs = 350;
  fake.rejected.set("bad_checksum", 3);
  const cmap = new FakeCmap();
  new StatsFeed(cmap, fake.sources()).publish();
  assert.deepEqual(cmap.map.get("stats.srp.orf_token_rx"), {
    type: "uint64",
    value: 5n,
  });
  assert.equal(cmap.num("stats.srp.mcast_retx"), 2n);
  assert.deepEqual(cmap.map.get("stats.srp.mtt_rx_token"), {
    type: "uint32",
    value: 12,
  });
  assert.equal(cmap.num("stats.srp.time_since_token_last_received"), 250n);
  assert.equal(cmap.num("stats.srp.rejected.bad_checksum"), 3n);
  assert.deepEqual(cmap.map.get("stats.srp.firewall_enabled_or_nic_failure"), {
    type: "uint8",
    value: 0,
  });
  assert.equal(cmap.num("stats.pg.msg_queue_avail"), 100);
  assert.deepEqual(cmap.map.get("stats.knet.node2.link0.connected"), {
    type: "uint8",
    value: 1,
  });
  // Latency in microseconds, as knet.
  assert.equal(cmap.num("stats.knet.node3.link0.latency_min"), 250);
  assert.equal(cmap.num("stats.knet.node3.link0.latency_max"), 1500);
  assert.equal(cmap.num("stats.knet.node3.link0.latency_ave"), 750);
  assert.equal(cmap.num("stats.knet.node3.link0.tx_data_packets"), 7n);
  assert.equal(cmap.num("stats.knet.node3.link0.rx_total_bytes"), 1200n);
  assert.equal(cmap.num("stats.ipcs.global.active"), 0n);
});

Deno.test("StatsFeed.publish() writes only the values that changed", () => {
  const fake = new Fake();
  const cmap = new FakeCmap();
  const feed = new StatsFeed(cmap, fake.sources());
  feed.publish();
  const first = cmap.writes.length;
  assert.ok(first > 40, `only ${first} keys written`);
  feed.publish();
  assert.equal(cmap.writes.length, first, "an idle pass wrote keys");
  fake.srp.stats.tokensRx = 1;
  fake.links[0] = { ...fake.links[0], connected: false, downCount: 1 };
  feed.publish();
  assert.deepEqual(cmap.writes.slice(first).sort(), [
    "stats.knet.node2.link0.connected",
    "stats.knet.node2.link0.down_count",
    "stats.srp.orf_token_rx",
  ]);
  assert.equal(cmap.num("stats.knet.node2.link0.connected"), 0);
  assert.equal(cmap.num("stats.knet.node2.link0.down_count"), 1);
});

Deno.test("StatsFeed.publish() adds an IPC connection's keys and deletes them when it closes", () => {
  const fake = new Fake();
  const cmap = new FakeCmap();
  const feed = new StatsFeed(cmap, fake.sources());
  fake.conns = [conn(7, 4)];
  fake.server = { ...fake.server, connections: 1, accepted: 1 };
  feed.publish();
  const p = "stats.ipcs.service2.4242.7.";
  assert.equal(cmap.num(p + "requests"), 4n);
  assert.deepEqual(cmap.map.get(p + "procname"), {
    type: "string",
    value: "corosync-test",
  });
  assert.equal(cmap.num("stats.ipcs.global.active"), 1n);
  fake.conns = [];
  fake.server = { ...fake.server, connections: 0 };
  feed.publish();
  assert.equal([...cmap.map.keys()].filter((k) => k.startsWith(p)).length, 0);
  assert.ok(cmap.deletes.includes(p + "requests"));
  assert.equal(cmap.num("stats.ipcs.global.active"), 0n);
  assert.equal(cmap.num("stats.ipcs.global.closed"), 1n);
});

Deno.test("StatsFeed.clear() zeroes the named counters and refuses unknown names", () => {
  const fake = new Fake();
  const cmap = new FakeCmap();
  const feed = new StatsFeed(cmap, fake.sources());
  fake.srp.stats.tokensRx = 9;
  fake.rejected.set("truncated", 1);
  fake.conns = [conn(1, 10)];
  fake.server = { ...fake.server, connections: 2, accepted: 5 };
  feed.publish();
  assert.equal(cmap.num("stats.ipcs.service2.4242.1.requests"), 10n);
  assert.equal(cmap.num("stats.ipcs.service2.4242.1.requests_held"), 3n);
  assert.equal(cmap.num("stats.ipcs.global.closed"), 3n);

  assert.equal(feed.clear("bogus"), false);
  assert.equal(fake.srp.cleared, 0);

  assert.equal(feed.clear("srp"), true);
  assert.equal(fake.srp.cleared, 1);
  assert.equal(fake.knetCleared, 0);
  assert.equal(cmap.num("stats.srp.orf_token_rx"), 0n);
  assert.equal(cmap.map.has("stats.srp.rejected.truncated"), false);
  assert.equal(cmap.num("stats.ipcs.service2.4242.1.requests"), 10n);

  assert.equal(feed.clear("ipc"), true);
  assert.equal(cmap.num("stats.ipcs.service2.4242.1.requests"), 0n);
  assert.equal(cmap.num("stats.ipcs.service2.4242.1.requests_held"), 0n);
  assert.equal(cmap.num("stats.ipcs.global.closed"), 0n);
  fake.conns = [conn(1, 13)];
  feed.publish();
  assert.equal(cmap.num("stats.ipcs.service2.4242.1.requests"), 3n);

  assert.equal(feed.clear("all"), true);
  assert.equal(fake.srp.cleared, 2);
  assert.equal(fake.knetCleared, 1);
  assert.equal(cmap.num("stats.ipcs.service2.4242.1.requests"), 0n);
});

Deno.test("StatsFeed.start() publishes at once, then on its period only while stats.* is tracked", async () => {
  const fake = new Fake();
  let tracked = false;
  const asked: string[] = [];
  const cmap = Object.assign(new FakeCmap(), {
    hasTracksOverlapping(prefix: string) {
      asked.push(prefix);
      return tracked;
    },
  });
  const feed = new StatsFeed(cmap, fake.sources());
  feed.start(5);
  try {
    assert.equal(feed.passes, 1);
    // Polls with a bound, so a broken timer fails instead of hanging.
    const until = async (ok: () => boolean, what: string) => {
      const end = performance.now() + 5000;
      while (!ok()) {
        assert.ok(performance.now() < end, `timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 5));
      }
    };
    await until(() => asked.length >= 3, "three timer rounds");
    assert.equal(feed.passes, 1, "untracked: the timer published");
    assert.ok(asked.every((p) => p === "stats."));
    tracked = true;
    await until(() => feed.passes >= 3, "two tracked passes");
  } finally {
    feed.stop();
  }
});
