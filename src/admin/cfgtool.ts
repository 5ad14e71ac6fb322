/**
 * `denosync cfgtool`: show and steer the local node and the cluster, like
 * `corosync-cfgtool`, over the cfg engine (`CfgClient`).
 *
 * @module
 */
import { parseArgs } from "node:util";
import {
  CfgClient,
  CfgError,
  CfgReloadError,
  type CfgReloadReport,
  type CfgStatus,
} from "../client/cfg.ts";
import { CsError, csErrorName } from "../ipc/cs_error.ts";
import { IpcError } from "../ipc/errors.ts";
import { connectOrExit, EXIT, socketPathOf } from "./_connect.ts";

const USAGE = `Usage: denosync cfgtool [options]

Show and steer the local node and the cluster, like corosync-cfgtool.

  -s              this node's id and every link's status to every node
  -n              every configured node: in the ring or not, and each link
                  (enabled, connected, MTU, source -> destination)
  -i              this node's address on each link
  -a NODEID       the addresses of a node
  -k NODEID       make another node (or this one) shut down; the reason
                  (--reason TEXT, default "killed by denosync cfgtool") is
                  written to that node's log
  -H              shut this node down cleanly; clients tracking shutdown
                  may veto it within cfg.shutdown_timeout ms (cmap, default
                  5000); --force shuts down regardless of vetoes
  -r              reopen the log files (after rotating them)
  -R              reload the configuration file on every member: each one
                  validates its file, and all apply it only if all can
  --json          JSON output on stdout, one object. Stable fields:
                  -s  {"localNodeId","transport","links":[{"link","addr",
                       "nodes":[{"nodeId","status"}]}]}  status is
                       "localhost", "connected", "disconnected" or
                       "disabled"
                  -n  {"localNodeId","transport","ringId","members",
                       "nodes":[{"nodeId","reachable","links":[{"link",
                       "enabled","connected","mtu","src","dst"}]}]}
                  -i  {"localNodeId","links":[{"link","addr"}]}
                  -a  {"nodeId","addrs":[...]}
                  -k  {"killed":NODEID}     -H  {"shutdown":"accepted"}
                  -r  {"reopened":true}
                  -R  {"outcome","verdicts":[{"nodeId","ok","error"}],
                       "changes":[...],"message"}; outcome is "applied",
                       "refused", "interrupted", "commit_failed" or "busy"
                  On failure: {"error","code"} (code: CS_ERR_... name),
                  with the -R fields too for a reload
  --socket PATH   the daemon's IPC socket (default: $DENOSYNC_SOCKET or
                  /var/run/denosync/denosync.sock)
  --run-dir DIR   use DIR/denosync.sock (the daemon's --run-dir)
  -h, --help      show this help

Exit status: 0 ok, 1 error (refused, vetoed, unknown node), 2 usage
error, 3 daemon not running or socket not permitted.`;

type Command =
  | { kind: "status" }
  | { kind: "nodes" }
  | { kind: "local_addrs" }
  | { kind: "addrs"; nodeId: number }
  | { kind: "kill"; nodeId: number; reason: string }
  | { kind: "shutdown"; force: boolean }
  | { kind: "reopen" }
  | { kind: "reload" };

const DEFAULT_REASON = "killed by denosync cfgtool";

/** Entry point of `denosync cfgtool`; resolves to the exit code. */
export async function main(args: string[]): Promise<number> {
  let values;
  let positionals: string[];
  try {
    const parsed = parseArgs({
      args,
      options: {
        s: { type: "boolean", default: false },
        n: { type: "boolean", default: false },
        i: { type: "boolean", default: false },
        a: { type: "string" },
        k: { type: "string" },
        reason: { type: "string" },
        H: { type: "boolean", default: false },
        force: { type: "boolean", default: false },
        r: { type: "boolean", default: false },
        R: { type: "boolean", default: false },
        json: { type: "boolean", default: false },
        socket: { type: "string" },
        "run-dir": { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
      allowPositionals: true,
      strict: true,
    });
    values = parsed.values;
    positionals = parsed.positionals;
  } catch (e) {
    return usage((e as Error).message);
  }
  const v = values;
  if (v.help) {
    console.log(USAGE);
    return EXIT.OK;
  }
  if (positionals.length > 0) {
    return usage(`unexpected argument "${positionals[0]}"`);
  }
  const chosen = [
    v.s,
    v.n,
    v.i,
    v.a !== undefined,
    v.k !== undefined,
    v.H,
    v.r,
    v.R,
  ].filter(Boolean).length;
  if (chosen !== 1) {
    return usage(
      chosen === 0
        ? "choose one of -s, -n, -i, -a, -k, -H, -r, -R"
        : "choose only one of -s, -n, -i, -a, -k, -H, -r, -R",
    );
  }
  if (v.force && !v.H) return usage("--force goes with -H");
  if (v.reason !== undefined && v.k === undefined) {
    return usage("--reason goes with -k");
  }
  let command: Command;
  if (v.a !== undefined || v.k !== undefined) {
    const text = (v.a ?? v.k)!;
    const nodeId = Number(text);
    if (!/^[0-9]+$/.test(text) || nodeId < 1 || nodeId > 0xffff_ffff) {
      return usage(
        `${
          v.a !== undefined ? "-a" : "-k"
        } takes a node id from 1 to 4294967295, got "${text}"`,
      );
    }
    command = v.a !== undefined
      ? { kind: "addrs", nodeId }
      : { kind: "kill", nodeId, reason: v.reason ?? DEFAULT_REASON };
  } else {
    command = v.s
      ? { kind: "status" }
      : v.n
      ? { kind: "nodes" }
      : v.i
      ? { kind: "local_addrs" }
      : v.H
      ? { kind: "shutdown", force: v.force }
      : v.r
      ? { kind: "reopen" }
      : { kind: "reload" };
  }
  const socketPath = socketPathOf(v);
  const client = await connectOrExit(
    "cfgtool",
    () => CfgClient.initialize({ socketPath }),
  );
  if (typeof client === "number") return client;
  try {
    return await run(client, command, v.json);
  } catch (e) {
    if (e instanceof CfgReloadError) {
      showReloadFailure(e, v.json);
      return EXIT.ERROR;
    }
    if (e instanceof CfgError || e instanceof IpcError) {
      if (v.json) {
        console.log(JSON.stringify({
          error: e.message,
          code: csErrorName(e.code),
        }));
      }
      console.error(`denosync cfgtool: ${e.message}`);
      return EXIT.ERROR;
    }
    throw e;
  } finally {
    await client.finalize().catch(() => {});
  }
}

function usage(message: string): number {
  console.error(`denosync cfgtool: ${message}\n\n${USAGE}`);
  return EXIT.USAGE;
}

async function run(
  client: CfgClient,
  c: Command,
  json: boolean,
): Promise<number> {
  switch (c.kind) {
    case "status":
      showLinks(await client.nodeStatus(), json);
      return EXIT.OK;
    case "nodes":
      showNodes(await client.nodeStatus(), json);
      return EXIT.OK;
    case "local_addrs": {
      const s = await client.nodeStatus();
      if (json) {
        console.log(JSON.stringify({
          localNodeId: s.localNodeId,
          links: s.localLinks.map((l) => ({ link: l.link, addr: l.addr })),
        }));
      } else {
        console.log(
          `Local node ID ${s.localNodeId}, transport ${s.transport}`,
        );
        for (const l of s.localLinks) {
          console.log(`LINK ID ${l.link} udp: ${l.addr}`);
        }
      }
      return EXIT.OK;
    }
    case "addrs": {
      const s = await client.nodeStatus();
      const addrs = c.nodeId === s.localNodeId
        ? s.localLinks.map((l) => l.addr)
        : s.nodes.find((n) => n.nodeId === c.nodeId)?.links.map((l) => l.dst);
      if (addrs === undefined) {
        throw new CfgError(
          "node_status_get",
          CsError.NOT_EXIST,
          `node ${c.nodeId} is not in the nodelist`,
        );
      }
      if (json) console.log(JSON.stringify({ nodeId: c.nodeId, addrs }));
      else console.log(addrs.map(hostOf).join(" "));
      return EXIT.OK;
    }
    case "kill":
      await client.killNode(c.nodeId, c.reason);
      if (json) console.log(JSON.stringify({ killed: c.nodeId }));
      return EXIT.OK;
    case "shutdown":
      await client.tryShutdown(c.force ? "regardless" : "request");
      if (json) console.log(JSON.stringify({ shutdown: "accepted" }));
      else console.log(`Shutting down denosync on node ${client.nodeId}`);
      return EXIT.OK;
    case "reopen":
      await client.reopenLogFiles();
      if (json) console.log(JSON.stringify({ reopened: true }));
      return EXIT.OK;
    case "reload": {
      if (!json) console.log("Reloading the configuration on every member...");
      const report = await client.reloadConfig();
      if (json) console.log(JSON.stringify(reportJson(report)));
      else {
        for (const change of report.changes) console.log(`  ${change}`);
        console.log("Done");
      }
      return EXIT.OK;
    }
  }
}

/** "127.0.0.1" for "127.0.0.1:5405", "::1" for "[::1]:5405". */
function hostOf(addr: string): string {
  const v6 = /^\[(.*)\]:\d+$/.exec(addr);
  if (v6 !== null) return v6[1];
  const v4 = /^(.*):\d+$/.exec(addr);
  return v4 !== null ? v4[1] : addr;
}

function linkState(l: { enabled: boolean; connected: boolean }): string {
  return !l.enabled ? "disabled" : l.connected ? "connected" : "disconnected";
}

/** `-s`, laid out as `corosync-cfgtool -s` does for knet links. */
function showLinks(s: CfgStatus, json: boolean): void {
  const links = s.localLinks.map((local) => ({
    link: local.link,
    addr: local.addr,
    nodes: [
      { nodeId: s.localNodeId, status: "localhost" },
      ...s.nodes.flatMap((n) =>
        n.links.filter((l) => l.link === local.link).map((l) => ({
          nodeId: n.nodeId,
          status: linkState(l),
        }))
      ),
    ].sort((a, b) => a.nodeId - b.nodeId),
  }));
  if (json) {
    console.log(JSON.stringify({
      localNodeId: s.localNodeId,
      transport: s.transport,
      links,
    }));
    return;
  }
  console.log(`Local node ID ${s.localNodeId}, transport ${s.transport}`);
  for (const l of links) {
    console.log(`LINK ID ${l.link} udp`);
    console.log(`\taddr\t= ${hostOf(l.addr)}`);
    console.log("\tstatus:");
    for (const n of l.nodes) {
      console.log(`\t\tnodeid: ${String(n.nodeId).padStart(3)}:\t${n.status}`);
    }
  }
}

/** `-n`, laid out as `corosync-cfgtool -n`. */
function showNodes(s: CfgStatus, json: boolean): void {
  if (json) {
    console.log(JSON.stringify({
      localNodeId: s.localNodeId,
      transport: s.transport,
      ringId: `${s.ringId.rep}.${s.ringId.seq}`,
      members: s.members,
      nodes: s.nodes,
    }));
    return;
  }
  console.log(`Local node ID ${s.localNodeId}, transport ${s.transport}`);
  for (const n of s.nodes) {
    console.log(
      `nodeid: ${n.nodeId} ${n.reachable ? "reachable" : "unreachable"}`,
    );
    for (const l of n.links) {
      console.log(
        `   LINK: ${l.link} udp (${l.src}->${l.dst}) ${
          l.enabled ? "enabled" : "disabled"
        } ${l.connected ? "connected" : "disconnected"} mtu: ${l.mtu}`,
      );
    }
    console.log("");
  }
}

function reportJson(r: CfgReloadReport): Record<string, unknown> {
  return {
    outcome: r.outcome,
    verdicts: r.verdicts.map((v) => ({
      nodeId: v.nodeId,
      ok: v.ok,
      error: v.error,
    })),
    changes: r.changes,
    message: r.message,
  };
}

function showReloadFailure(e: CfgReloadError, json: boolean): void {
  if (json) {
    console.log(JSON.stringify({
      error: e.message,
      code: csErrorName(e.code),
      ...reportJson(e.report),
    }));
  }
  console.error(
    `denosync cfgtool: could not reload the configuration: ${e.report.message}`,
  );
  for (const v of e.report.verdicts) {
    console.error(`  node ${v.nodeId}: ${v.ok ? "ok" : v.error}`);
  }
}
