/**
 * `CpgPort` over denosync's own `CpgClient`.
 *
 * @module
 */
import { CpgClient, CpgError } from "../client/cpg.ts";
import type { CpgPort } from "./cpg_port.ts";

type Deliver = (
  senderNode: number,
  senderPid: number,
  payload: Uint8Array,
) => void;

/** A CPG handle on one daemon, for the bench workloads. */
export class DenosyncPort implements CpgPort {
  readonly engine = "denosync";
  readonly #client: CpgClient;
  readonly nodeId: number;
  #deliver: Deliver = () => {};
  #members = 0;

  private constructor(client: CpgClient, nodeId: number) {
    this.#client = client;
    this.nodeId = nodeId;
  }

  /**
   * Connects to the daemon at `socketPath`. `pid` tells handles of one
   * process apart when several join the same group through one daemon.
   */
  static async open(socketPath: string, pid?: number): Promise<DenosyncPort> {
    let port: DenosyncPort | null = null;
    const client = await CpgClient.initialize({
      socketPath,
      pid,
      onEvent: (ev) => {
        if (port === null) return;
        if (ev.type === "deliver") port.#deliver(ev.nodeId, ev.pid, ev.message);
        else if (ev.type === "confchg") port.#members = ev.members.length;
      },
    });
    try {
      port = new DenosyncPort(client, await client.localGet());
      return port;
    } catch (e) {
      await client.finalize().catch(() => {});
      throw e;
    }
  }

  join(group: string): Promise<void> {
    return this.#client.join(group);
  }

  async send(payload: Uint8Array): Promise<"ok" | "try_again"> {
    try {
      await this.#client.mcast(payload);
      return "ok";
    } catch (e) {
      if (e instanceof CpgError && e.tryAgain) return "try_again";
      throw e;
    }
  }

  onDeliver(handler: Deliver): void {
    this.#deliver = handler;
  }

  memberCount(): number {
    return this.#members;
  }

  async close(): Promise<void> {
    await this.#client.finalize().catch(() => {});
  }
}
