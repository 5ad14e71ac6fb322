// cfg's IPC payloads and ordered messages: round trips, and random or
// mutated bytes that must decode to a rejection, never a throw.
import {
  deepStrictEqual as assertEquals,
  ok as assert,
} from "node:assert/strict";
import {
  CFG_REQUEST_FN,
  type CfgReloadReport,
  type CfgRequest,
  cfgRequestFn,
  type CfgStatus,
  decodeCfgCallback,
  decodeCfgRequest,
  decodeCfgStatus,
  decodeErrorText,
  decodeReloadReport,
  encodeCfgCallback,
  encodeCfgRequest,
  encodeCfgStatus,
  encodeErrorText,
  encodeReloadReport,
} from "../../engines/cfg/ipc.ts";
import {
  CFG_MESSAGE_FN,
  type CfgMessage,
  type CfgMessageName,
  clipText,
  decodeCfgMessage,
  encodeCfgMessage,
} from "../../engines/cfg/wire.ts";
import { Prng } from "../../src/lib/prng.ts";

const REQUESTS: CfgRequest[] = [
  { fn: "kill_node", nodeId: 3, reason: "maintenance – ünïcode" },
  { fn: "kill_node", nodeId: 0xffff_ffff, reason: "" },
  { fn: "try_shutdown", flags: 0 },
  { fn: "try_shutdown", flags: 2 },
  { fn: "reply_to_shutdown", allow: true },
  { fn: "reply_to_shutdown", allow: false },
  { fn: "local_get" },
  { fn: "reload_config" },
  { fn: "reopen_log_files" },
  { fn: "node_status_get" },
  { fn: "track_start" },
  { fn: "track_stop" },
];

const STATUS: CfgStatus = {
  localNodeId: 1,
  transport: "udpu",
  ringId: { rep: 1, seq: 12 },
  members: [1, 2],
  localLinks: [{ link: 0, addr: "127.0.0.1:5405" }, {
    link: 1,
    addr: "[::1]:5407",
  }],
  nodes: [
    {
      nodeId: 2,
      reachable: true,
      links: [{
        link: 0,
        enabled: true,
        connected: true,
        mtu: 1500,
        src: "127.0.0.1:5405",
        dst: "127.0.0.2:5405",
      }],
    },
    { nodeId: 3, reachable: false, links: [] },
  ],
};

const REPORT: CfgReloadReport = {
  outcome: "refused",
  verdicts: [{ nodeId: 1, ok: true, error: "" }, {
    nodeId: 2,
    ok: false,
    error: "/etc/corosync.conf:4: bad",
  }],
  changes: ["a", "b"],
  message: "reload refused",
};

const MESSAGES: CfgMessage[] = [
  { type: "kill_node", nodeId: 2, tag: 9, reason: "why" },
  { type: "reload_request", tag: 1 },
  { type: "reload_verdict", origin: 1, tag: 1, ok: true, error: "" },
  { type: "reload_verdict", origin: 4, tag: 7, ok: false, error: "x:1: y" },
];

Deno.test("decodeCfgRequest() round-trips every request", () => {
  for (const req of REQUESTS) {
    assertEquals(
      decodeCfgRequest(cfgRequestFn(req), encodeCfgRequest(req)),
      { ok: true, value: req },
    );
  }
});

Deno.test("decodeCfgRequest() rejects unknown fns, bad flags and node id 0", () => {
  assert(!decodeCfgRequest(99, new Uint8Array(0)).ok);
  assert(!decodeCfgRequest(CFG_REQUEST_FN.try_shutdown, Uint8Array.of(3)).ok);
  assert(
    !decodeCfgRequest(CFG_REQUEST_FN.kill_node, Uint8Array.of(0, 0, 0, 0, 0, 0))
      .ok,
  );
  assert(!decodeCfgRequest(CFG_REQUEST_FN.local_get, Uint8Array.of(1)).ok);
});

Deno.test("decodeCfgStatus(), decodeReloadReport(), decodeCfgCallback() and decodeErrorText() round-trip", () => {
  assertEquals(decodeCfgStatus(encodeCfgStatus(STATUS)), {
    ok: true,
    value: STATUS,
  });
  assertEquals(decodeReloadReport(encodeReloadReport(REPORT)), {
    ok: true,
    value: REPORT,
  });
  const cb = { kind: "shutdown_request", flags: 1 } as const;
  assertEquals(decodeCfgCallback(encodeCfgCallback(cb)), {
    ok: true,
    value: cb,
  });
  assertEquals(
    decodeErrorText(encodeErrorText("no such node")),
    "no such node",
  );
  assertEquals(decodeErrorText(new Uint8Array(0)), "");
});

Deno.test("decodeCfgMessage() round-trips every message", () => {
  for (const m of MESSAGES) {
    assertEquals(decodeCfgMessage(m.type, encodeCfgMessage(m)), {
      ok: true,
      value: m,
    });
  }
});

Deno.test("clipText() keeps texts within the byte limit on a character boundary", () => {
  assertEquals(clipText("short", 10), "short");
  const clipped = clipText("ü".repeat(100), 21);
  assert(new TextEncoder().encode(clipped).length <= 21, clipped);
  assert(clipped.endsWith("..."));
  // A long verdict error is cut, not refused.
  const long = encodeReloadReport({ ...REPORT, message: "x".repeat(10_000) });
  const d = decodeReloadReport(long);
  assert(d.ok && d.value.message.length <= 4096);
});

Deno.test("cfg decoders never throw on random and mutated bytes", () => {
  const rng = new Prng(5);
  const valid: Uint8Array[] = [
    encodeCfgStatus(STATUS),
    encodeReloadReport(REPORT),
    ...MESSAGES.map(encodeCfgMessage),
    ...REQUESTS.map(encodeCfgRequest),
  ];
  const names = Object.keys(CFG_MESSAGE_FN) as CfgMessageName[];
  const fns = Object.values(CFG_REQUEST_FN);
  for (let i = 0; i < 5000; i++) {
    let bytes: Uint8Array;
    if (i % 2 === 0) {
      bytes = new Uint8Array(rng.int(64)).map(() => rng.int(256));
    } else {
      bytes = valid[rng.int(valid.length)].slice();
      for (let k = 0; k < 1 + rng.int(4); k++) {
        if (bytes.length > 0) bytes[rng.int(bytes.length)] ^= 1 << rng.int(8);
      }
      if (rng.chance(0.3)) bytes = bytes.subarray(0, rng.int(bytes.length + 1));
    }
    decodeCfgStatus(bytes);
    decodeReloadReport(bytes);
    decodeCfgCallback(bytes);
    decodeErrorText(bytes);
    decodeCfgMessage(names[rng.int(names.length)], bytes);
    decodeCfgRequest(fns[rng.int(fns.length)], bytes);
  }
});
