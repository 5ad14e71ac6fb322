/**
 * The daemon's node control port (an edge): what engines ask of their node
 * through `EngineApi.control` (src/exec/engine.ts, `NodeControlRequest`) —
 * the transport's link status, a clean shutdown, reopening log files, and
 * preparing, committing or dropping a configuration reload. `ExecHost`
 * performs the requests with this and steps the answers back into the
 * executive; timers it keeps itself.
 *
 * Reload goes through a `ReloadPort`: `prepare` re-reads and validates the
 * configuration file and holds the plan, `commit` applies the held plan,
 * `abort` drops it. Reload operations run one at a time, in the order they
 * were asked, so a new vote's prepare never overtakes an older commit.
 *
 * @module
 */
import type {
  NodeControlRequest,
  NodeControlResult,
  NodeReport,
  NodeStatusReport,
} from "../exec/engine.ts";
import { assert, AssertionError } from "../lib/assert.ts";
import type { Logger } from "../log/logger.ts";
import type { LinkStatus } from "../net/transport.ts";
import type { DaemonConfig } from "../config/daemon_config.ts";
import type { ReloadPlan } from "./reload.ts";

/** Re-reads and validates the configuration; operator errors come back as text. */
export type ReloadPlanner = () => Promise<
  { ok: true; plan: ReloadPlan } | { ok: false; error: string }
>;

/** What the port needs of the running node. */
export interface DaemonNodeControlOptions {
  /** `totem.transport`. */
  transport: string;
  /** The transport's links to every peer (`Transport.linkStatus`). */
  linkStatus(): LinkStatus[];
  /** This node's "addr:port" per link, ascending by link number. */
  localLinks(): { link: number; addr: string }[];
  /** `totem.netmtu` in force. */
  mtu(): number;
  logger: Logger;
  /** Leaves the ring cleanly and stops the daemon (after this turn). */
  stop(reason: string): void;
  /** Validates the configuration file into a plan. */
  planReload: ReloadPlanner;
}

/** Performs node control requests for the daemon. */
export class DaemonNodeControl {
  #o: DaemonNodeControlOptions;
  #plan: ReloadPlan | null = null;
  /** The tail of the reload operations, which run one at a time. */
  #reloadChain: Promise<unknown> = Promise.resolve();
  #stopping = false;

  constructor(options: DaemonNodeControlOptions) {
    this.#o = options;
  }

  /**
   * Performs one request. Operator-caused failures (an unreadable log
   * file, a refused configuration) resolve `{ ok: false, error }`; it
   * never rejects for them.
   */
  perform(
    request: Exclude<NodeControlRequest, { op: "timer" }>,
  ): Promise<NodeControlResult> {
    switch (request.op) {
      case "status":
        return Promise.resolve({ ok: true, status: this.status() });
      case "shutdown":
        if (!this.#stopping) {
          this.#stopping = true;
          this.#o.logger.log("notice", "MAIN", `stopping: ${request.reason}`);
          // After this turn, so the replies queued in it reach their clients
          // before the IPC server says GOODBYE.
          setTimeout(() => this.#o.stop(request.reason), 0);
        }
        return Promise.resolve({ ok: true });
      case "reopen_log":
        return this.#reopenLog();
      case "reload_prepare":
        return this.#serial(() => this.#prepare());
      case "reload_commit":
        return this.#serial(() => this.#commit());
      case "reload_abort":
        return this.#serial(() => {
          this.#plan = null;
          return Promise.resolve({ ok: true });
        });
    }
  }

  /** The transport's view of every peer, grouped by node. */
  status(): NodeStatusReport {
    const mtu = this.#o.mtu();
    const byNode = new Map<number, NodeReport["links"][number][]>();
    for (const l of this.#o.linkStatus()) {
      const list = byNode.get(l.nodeId) ?? [];
      list.push({
        link: l.link,
        enabled: l.enabled,
        connected: l.connected,
        mtu,
        src: l.src,
        dst: l.dst,
      });
      byNode.set(l.nodeId, list);
    }
    const nodes: NodeReport[] = [...byNode.entries()]
      .sort(([a], [b]) => a - b)
      .map(([nodeId, links]) => ({
        nodeId,
        links: links.sort((a, b) => a.link - b.link),
      }));
    return {
      transport: this.#o.transport,
      localLinks: this.#o.localLinks(),
      nodes,
    };
  }

  async #reopenLog(): Promise<NodeControlResult> {
    try {
      await this.#o.logger.reopen();
    } catch (e) {
      if (e instanceof AssertionError) throw e;
      // An operator problem (permissions, a removed directory): say so.
      return { ok: false, error: `cannot reopen the log file: ${describe(e)}` };
    }
    this.#o.logger.log("notice", "MAIN", "log files reopened");
    return { ok: true };
  }

  async #prepare(): Promise<NodeControlResult> {
    this.#plan = null;
    const r = await this.#o.planReload();
    if (!r.ok) return r;
    this.#plan = r.plan;
    return { ok: true, changes: r.plan.changes };
  }

  async #commit(): Promise<NodeControlResult> {
    const plan = this.#plan;
    assert(plan !== null, "reload commit without a prepared plan");
    this.#plan = null;
    try {
      await plan.apply();
    } catch (e) {
      // Our bugs crash; anything else is a change the node could not take.
      if (e instanceof AssertionError) throw e;
      return { ok: false, error: describe(e) };
    }
    return { ok: true, changes: plan.changes };
  }

  #serial(
    op: () => Promise<NodeControlResult>,
  ): Promise<NodeControlResult> {
    const next = this.#reloadChain.then(op);
    this.#reloadChain = next.catch(() => {});
    return next;
  }
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** This node's "addr:port" per link, from its nodelist entry. */
export function localLinksOf(
  config: DaemonConfig,
  nodeId: number,
): { link: number; addr: string }[] {
  const me = config.nodelist.find((n) => n.nodeid === nodeId);
  assert(me !== undefined, `node ${nodeId} is not in the nodelist`);
  const out: { link: number; addr: string }[] = [];
  me.ringAddrs.forEach((addr, link) => {
    const port = config.totem.interfaces.find((i) => i.linknumber === link)
      ?.mcastport;
    if (port === undefined) return;
    out.push({
      link,
      addr: addr.includes(":") ? `[${addr}]:${port}` : `${addr}:${port}`,
    });
  });
  return out;
}
