/**
 * `denosync run`: the node daemon. Loads the configuration (corosync.conf
 * syntax or YAML), finds which node this is, opens the UDP transport with its
 * links and the frame crypto, and drives the Totem core with real time.
 */
import { parseArgs } from "node:util";
import { ConfigError, formatWarning } from "../config/config_error.ts";
import { loadConfigFile, type LoadedConfig } from "../config/load.ts";
import { flatToRecord } from "../config/flat.ts";
import { findLocalNode } from "../config/local_node.ts";
import { Logger } from "../log/logger.ts";
import { ringIdText } from "../totem/types.ts";
import { bindLoggingKeys, publishTotemConfig } from "./cmap_runtime.ts";
import { ExecHost } from "./exec_host.ts";
import { DaemonNodeControl, localLinksOf } from "./node_control.ts";
import { reloadPlanner, type RunningNode } from "./reload.ts";
import { type OpenNode, openNode, StartError } from "./node.ts";
import { procNameFromProc, StatsFeed } from "./stats_feed.ts";
import { type DaemonStatus, writeStatus } from "./status.ts";
import { applyScheduling, schedulingPlan } from "./scheduling.ts";

const USAGE =
  `Usage: denosync run [-c FILE] [-f] [--nodeid N] [--run-dir DIR] [--state-dir DIR]

Runs this machine's cluster node until SIGTERM or SIGINT (then it leaves the
ring cleanly so the others re-form at once).

Options:
  -c, --config FILE   corosync.conf-syntax or .yaml/.yml file
                      (default /etc/corosync/corosync.conf)
  -f, --foreground    accepted for Corosync compatibility; the daemon always
                      runs in the foreground (use your service manager)
  --nodeid N          which nodelist entry this daemon is, when several of
                      its addresses are local (several nodes on one machine)
  --run-dir DIR       status file and IPC socket (default: system.run_dir,
                      else /var/run/denosync)
  --state-dir DIR     ring sequence and crypto epoch files (default:
                      system.state_dir, else the run dir)
  -h, --help          show this help

Exit status: 0 after a clean shutdown, 2 for a configuration error, 1 for any
other failure at start.`;

const DEFAULT_CONFIG = "/etc/corosync/corosync.conf";
const DEFAULT_RUN_DIR = "/var/run/denosync";
/** How often the status is recomputed (written only when it changed). */
const STATUS_PERIOD_MS = 1000;
/** Longest time between two writes of an unchanged status file. */
const STATUS_REFRESH_MS = 10_000;
/** File name of the IPC socket in the run dir. */
export const SOCKET_NAME = "denosync.sock";

/** Entry point of `denosync run`. */
export async function main(args: string[]): Promise<number> {
  let values;
  try {
    values = parseArgs({
      args,
      options: {
        config: { type: "string", short: "c", default: DEFAULT_CONFIG },
        foreground: { type: "boolean", short: "f", default: false },
        nodeid: { type: "string" },
        "run-dir": { type: "string" },
        "state-dir": { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
    }).values;
  } catch (e) {
    console.error(`denosync run: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  let nodeIdArg: number | undefined;
  if (values.nodeid !== undefined) {
    nodeIdArg = Number(values.nodeid);
    if (
      !Number.isInteger(nodeIdArg) || nodeIdArg <= 0 || nodeIdArg > 0xffff_ffff
    ) {
      console.error(
        `denosync run: --nodeid must be a node id from 1 to 4294967295, got "${values.nodeid}"`,
      );
      return 2;
    }
  }

  let loaded: LoadedConfig;
  try {
    loaded = await loadConfigFile(values.config);
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`denosync run: ${e.message}`);
      return 2;
    }
    throw e;
  }
  const cfg = loaded.config;
  let local;
  const localNodeOptions = {
    nodeId: nodeIdArg,
    localAddresses: localAddresses(),
  };
  try {
    local = findLocalNode(cfg, localNodeOptions);
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`denosync run: ${e.message}`);
      return 2;
    }
    throw e;
  }
  const nodeId = local.nodeId;
  const runDir = values["run-dir"] ?? cfg.system.runDir ?? DEFAULT_RUN_DIR;
  const stateDir = values["state-dir"] ?? cfg.system.stateDir ?? runDir;
  await Deno.mkdir(runDir, { recursive: true, mode: 0o750 });
  await Deno.mkdir(stateDir, { recursive: true, mode: 0o750 });

  const subsysDebug: Record<string, "off" | "on" | "trace"> = {};
  for (const [name, o] of Object.entries(cfg.logging.subsys)) {
    if (o.debug !== undefined) subsysDebug[name.toUpperCase()] = o.debug;
  }
  const logger = new Logger({
    toStderr: cfg.logging.toStderr,
    logfile: cfg.logging.toLogfile ? cfg.logging.logfile : undefined,
    toSyslog: cfg.logging.toSyslog,
    syslogFacility: cfg.logging.syslogFacility,
    debug: cfg.logging.debug,
    timestamp: cfg.logging.timestamp !== "off",
    subsys: subsysDebug,
    ident: `node ${nodeId}`,
    runDir,
  });
  await logger.open();
  for (const w of loaded.warnings) logger.log("warn", "MAIN", formatWarning(w));
  const schedPlan = schedulingPlan(cfg.system);
  if (schedPlan.warning !== null) logger.log("warn", "MAIN", schedPlan.warning);
  const sched = applyScheduling(schedPlan);
  logger.log(sched.ok ? "info" : "warn", "MAIN", sched.message);

  // Set once the status publisher exists; links may change before that.
  let linkChanged = () => {};
  let node: OpenNode;
  try {
    node = await openNode({
      loaded,
      nodeId,
      via: local.via,
      stateDir,
      logger,
      testBlockFile: envGet("DENOSYNC_TEST_BLOCK_LINKS_FILE"),
      syncBarrier: true,
      onLinkChange: () => linkChanged(),
    });
  } catch (e) {
    if (e instanceof StartError) {
      console.error(`denosync run: ${e.message}`);
      logger.close();
      return 2;
    }
    throw e;
  }
  const { runtime, transport } = node;
  const socketPath = `${runDir}/${SOCKET_NAME}`;
  // Resolved by a signal or by a node control shutdown (cfg: -H, -k).
  const stopped = Promise.withResolvers<string>();
  // What a reload changes; set once the executive (and cmap) exists.
  let running: RunningNode | null = null;
  const control = new DaemonNodeControl({
    transport: cfg.totem.transport,
    linkStatus: () => transport.linkStatus(),
    localLinks: () => localLinksOf(cfg, nodeId),
    mtu: () => runtime.srp.config.netmtu,
    logger,
    stop: (reason) => stopped.resolve(reason),
    // cfgtool -R: re-read the file and apply what can change at runtime.
    planReload: reloadPlanner(values.config, () => running),
  });
  let exec: ExecHost;
  try {
    exec = await ExecHost.start({
      runtime,
      logger,
      socketPath,
      socketGid: await socketGroup(cfg.uidgid.gids, logger),
      cmapSeed: flatToRecord(loaded.flat),
      control,
    });
  } catch (e) {
    console.error(
      `denosync run: cannot open the IPC socket ${socketPath}: ${
        (e as Error).message
      }`,
    );
    await node.close();
    logger.close();
    return 1;
  }
  logger.log("notice", "MAIN", `IPC socket ${socketPath}`);
  running = {
    loaded,
    nodeId,
    localNode: localNodeOptions,
    srp: runtime.srp,
    transport,
    opener: node.opener,
    logger,
    cmap: exec.cmap,
  };
  // cmap's live keys: effective totem values, logging switches, statistics.
  let feed: StatsFeed | null = null;
  if (exec.cmap !== null) {
    const cmap = exec.cmap;
    publishTotemConfig(cmap, runtime.srp.config);
    // Corosync sets this at start from the node it found itself to be.
    const pos = cfg.nodelist.find((n) => n.nodeid === nodeId)?.pos;
    if (pos !== undefined) {
      cmap.setInternal("nodelist.local_node_pos", {
        type: "uint32",
        value: pos,
      });
    }
    bindLoggingKeys(cmap, logger, { debug: "off", toStderr: true });
    const statsFeed = new StatsFeed(cmap, {
      srp: runtime.srp,
      srpRejected: runtime.rejected,
      now: () => runtime.now(),
      transport,
      ipc: exec.server,
      procName: procNameFromProc,
    });
    cmap.setStatsClearHandler((what) => statsFeed.clear(what));
    // Fresh statistics for every client read; the timer only for trackers.
    cmap.addReadHook("stats.", () => statsFeed.publish());
    statsFeed.start();
    feed = statsFeed;
  }
  const rt = runtime;
  let publishing = false;
  let again = false;
  let lastStatus = "";
  let lastStatusMs = 0;
  const publish = async (): Promise<void> => {
    if (publishing) {
      again = true;
      return;
    }
    publishing = true;
    try {
      do {
        again = false;
        const s = rt.status();
        const status: DaemonStatus = {
          nodeId,
          pid: Deno.pid,
          state: s.state,
          ringId: { ...s.ringId },
          members: [...s.members],
          delivered: s.delivered,
          sendQueue: s.sendQueue,
          links: transport.linkStatus().map((l) => ({
            nodeId: l.nodeId,
            link: l.link,
            connected: l.connected,
            src: l.src,
            dst: l.dst,
          })),
          rejected: {
            ...Object.fromEntries(rt.rejected),
            ...transport.stats.rejected,
            pg_bad_frame: rt.pg.rejectedFrames,
          },
          updatedMs: 0,
        };
        // Unchanged content is rewritten only every STATUS_REFRESH_MS: the
        // file's timestamp then still shows the daemon alive, and an idle
        // daemon does not touch the disk every second.
        const content = JSON.stringify(status);
        const now = Date.now();
        if (
          content === lastStatus && now - lastStatusMs < STATUS_REFRESH_MS
        ) continue;
        status.updatedMs = now;
        await writeStatus(runDir, status);
        lastStatus = content;
        lastStatusMs = now;
      } while (again);
    } catch (e) {
      logger.log(
        "warn",
        "MAIN",
        `cannot write the status file in ${runDir}: ${e}`,
      );
    } finally {
      publishing = false;
    }
  };
  rt.listen({
    confchg: (change) => {
      if (change.kind === "regular") void publish();
    },
  });
  linkChanged = () => void publish();
  const ticker = setInterval(() => void publish(), STATUS_PERIOD_MS);

  const onTerm = () => stopped.resolve("SIGTERM");
  const onInt = () => stopped.resolve("SIGINT");
  const onHup = () =>
    logger.log(
      "notice",
      "MAIN",
      "SIGHUP ignored: reload the configuration with `denosync cfgtool -R`",
    );
  Deno.addSignalListener("SIGTERM", onTerm);
  Deno.addSignalListener("SIGINT", onInt);
  Deno.addSignalListener("SIGHUP", onHup);

  rt.start();
  await publish();
  const signal = await stopped.promise;
  logger.log(
    "notice",
    "MAIN",
    `${signal}: leaving ring ${ringIdText(rt.srp.ringId)} and shutting down`,
  );
  clearInterval(ticker);
  feed?.stop();
  Deno.removeSignalListener("SIGTERM", onTerm);
  Deno.removeSignalListener("SIGINT", onInt);
  Deno.removeSignalListener("SIGHUP", onHup);
  await exec.close();
  await node.close();
  await publish();
  logger.log("notice", "MAIN", "stopped");
  logger.close();
  return 0;
}

/**
 * The group given access to the IPC socket (`uidgid { gid: ... }`), as a
 * number. Without peer credentials only one group can be honoured, through
 * the socket file's group; further ones are refused with a warning.
 */
async function socketGroup(
  gids: readonly string[],
  logger: Logger,
): Promise<number | undefined> {
  if (gids.length === 0) return undefined;
  if (gids.length > 1) {
    logger.log(
      "warn",
      "MAIN",
      `uidgid: only the first gid (${
        gids[0]
      }) can own the IPC socket; ignoring ${gids.slice(1).join(", ")}`,
    );
  }
  const name = gids[0];
  if (/^[0-9]+$/.test(name)) return Number(name);
  let text: string;
  try {
    text = await Deno.readTextFile("/etc/group");
  } catch (e) {
    throw new StartError(
      `uidgid: cannot look up group "${name}" in /etc/group (${
        (e as Error).message
      }); give its number`,
    );
  }
  for (const line of text.split("\n")) {
    const [gname, , gid] = line.split(":");
    if (gname === name && gid !== undefined) return Number(gid);
  }
  throw new StartError(`uidgid: no group "${name}" in /etc/group`);
}

/** An environment variable, or undefined when unset or not permitted. */
function envGet(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/** This host's addresses as `ip/prefix`, from the kernel. */
function localAddresses(): string[] {
  try {
    return Deno.networkInterfaces().map((i) =>
      `${i.address}/${i.cidr?.split("/")[1] ?? ""}`.replace(/\/$/, "")
    );
  } catch {
    return [];
  }
}
