// The side-by-side table: medians per engine and the advantage ratio, the
// right way round for "more is better" and "less is better" rows.
import assert from "node:assert/strict";
import {
  formatTable,
  parseWorkloads,
  type Row,
  snmpCounter,
  WORKLOADS,
} from "../../../scripts/bench/side_by_side.ts";
import { totemLinesFromEnv } from "../../../scripts/bench/totem_env.ts";

Deno.test("side-by-side table: medians and ratios", () => {
  const rows: Row[] = [
    {
      name: "1 sender 1024 B",
      unit: "msgs/s",
      better: "higher",
      denosync: [30_000, 10_000, 20_000],
      corosync: [10_000, 12_000, 11_000],
    },
    {
      name: "latency 1 KiB p50",
      unit: "ms",
      better: "lower",
      denosync: [0.2],
      corosync: [0.4],
    },
    {
      name: "idle RSS per daemon",
      unit: "MB",
      better: "lower",
      denosync: [50],
      corosync: [],
    },
  ];
  rows.push({
    name: "5% loss at node 3: latency p99",
    unit: "ms",
    better: "lower",
    denosync: [7, 8, 9],
    corosync: [0.3, NaN, NaN],
  }, {
    name: "lost everywhere",
    unit: "ms",
    better: "lower",
    denosync: [NaN],
    corosync: [1],
  });
  const lines = formatTable(rows, 3).split("\n");
  assert.equal(
    lines[2],
    "| 1 sender 1024 B | msgs/s | 20000 | 11000 | 1.82x |",
  );
  assert.equal(lines[3], "| latency 1 KiB p50 | ms | 0.200 | 0.400 | 2.00x |");
  assert.equal(lines[4], "| idle RSS per daemon | MB | 50.0 | - | - |");
  // Runs that could not measure are shown, and then there is no ratio.
  assert.equal(
    lines[5],
    "| 5% loss at node 3: latency p99 | ms | 8.000 | 0.300 (failed 2/3) | - |",
  );
  assert.equal(lines[6], "| lost everywhere | ms | failed 1/1 | 1.000 | - |");
  assert.match(lines.at(-2)!, /medians of 3 run\(s\)/);
  assert.match(lines.at(-1)!, /failed k\/n: k of n runs could not measure/);
  assert.doesNotMatch(formatTable(rows.slice(0, 3), 3), /failed/);
});

Deno.test("snmpCounter reads one counter of /proc/net/snmp", () => {
  const snmp = [
    "Ip: Forwarding DefaultTTL",
    "Ip: 1 64",
    "Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors",
    "Udp: 1200 3 17 900 15 0",
    "UdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors",
    "UdpLite: 0 0 0 0 99 0",
    "",
  ].join("\n");
  assert.equal(snmpCounter(snmp, "Udp", "RcvbufErrors"), 15);
  assert.equal(snmpCounter(snmp, "UdpLite", "RcvbufErrors"), 99);
  assert.equal(snmpCounter(snmp, "Udp", "NoSuchCounter"), 0);
  assert.equal(snmpCounter("", "Udp", "RcvbufErrors"), 0);
});

Deno.test("totemLinesFromEnv turns DENOSYNC_BENCH_TOTEM into totem lines", () => {
  assert.equal(totemLinesFromEnv(undefined), "");
  assert.equal(totemLinesFromEnv(" ; "), "");
  assert.equal(
    totemLinesFromEnv("netmtu: 8900; max_messages: 30;"),
    "    netmtu: 8900\n    max_messages: 30\n",
  );
});

Deno.test("parseWorkloads() takes a comma list and names an unknown entry", () => {
  assert.deepEqual(
    [...parseWorkloads("latency, throughput")],
    ["latency", "throughput"],
  );
  assert.deepEqual([...parseWorkloads(WORKLOADS.join(","))], [...WORKLOADS]);
  assert.throws(
    () => parseWorkloads("latency,lose"),
    /unknown workload "lose"; choose from idle, throughput, latency, loss, failure, crypto/,
  );
});
