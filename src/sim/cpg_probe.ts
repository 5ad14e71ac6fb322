/**
 * A test-only engine for the CPG simulation: it takes part in service sync
 * on some nodes only (the others run it as a no-op, TOTEM.md 8.1 step 2),
 * answers "again" a random number of times before its `process` is done
 * (exercising the executive's retry path), multicasts a HELLO carrying the
 * ring id from `process`, and at `activate` checks that the HELLO of every
 * member running the probe arrived first: sync messages sent before a
 * barrier must be delivered before it completes.
 *
 * @module
 */
import { ByteReader, ByteWriter, finishDecode } from "../exec/bytes.ts";
import type {
  Engine,
  EngineApi,
  SyncHooks,
  SyncProgress,
} from "../exec/engine.ts";
import { assert } from "../lib/assert.ts";
import type { Prng } from "../lib/prng.ts";
import {
  type NodeId,
  type RingId,
  ringIdText,
  sameRing,
} from "../totem/types.ts";

/** Service id of the probe: far from every real one. */
export const PROBE_SERVICE_ID = 200;

/** The probe engine of one node. */
export class ProbeEngine implements Engine {
  readonly name = "probe";
  readonly serviceId = PROBE_SERVICE_ID;
  readonly priority = 50;
  readonly requests = {};
  readonly messages;
  readonly sync: SyncHooks;
  /** Broken expectations, collected by the simulator. */
  readonly violations: string[] = [];
  /** Rings activated, in order. */
  readonly activated: string[] = [];

  #api: EngineApi | null = null;
  #rng: Prng;
  #probeNodes: readonly NodeId[];
  #ring: RingId | null = null;
  #members: readonly NodeId[] = [];
  #hellos = new Set<NodeId>();
  #againLeft = 0;
  #sent = false;

  /** `probeNodes`: the nodes that run the probe. */
  constructor(rng: Prng, probeNodes: readonly NodeId[]) {
    this.#rng = rng;
    this.#probeNodes = probeNodes;
    this.messages = {
      hello: {
        fn: 0,
        handle: (from: NodeId, payload: Uint8Array): void => {
          const r = new ByteReader(payload);
          const ring = r.ringId();
          const d = finishDecode(r, ring);
          if (!d.ok) {
            this.violations.push(`undecodable hello from ${from}`);
            return;
          }
          if (this.#ring !== null && sameRing(d.value, this.#ring)) {
            this.#hellos.add(from);
          }
        },
      },
    };
    this.sync = {
      init: (_trans, members, ringId) => {
        this.#ring = ringId;
        this.#members = members;
        this.#hellos.clear();
        this.#againLeft = this.#rng.int(4);
        this.#sent = false;
      },
      process: (): SyncProgress => {
        assert(this.#ring !== null, "probe process outside a round");
        if (this.#againLeft > 0) {
          this.#againLeft--;
          return "again";
        }
        if (!this.#sent) {
          this.#sent = true;
          this.#api!.mcast(
            "hello",
            new ByteWriter(12).ringId(this.#ring).finish(),
          );
        }
        return "done";
      },
      activate: () => {
        const ring = this.#ring;
        if (ring === null) {
          this.violations.push("activate outside a round");
          return;
        }
        const missing = this.#members.filter((n) =>
          this.#probeNodes.includes(n) && !this.#hellos.has(n)
        );
        if (missing.length > 0) {
          this.violations.push(
            `ring ${
              ringIdText(ring)
            }: activated before the hello of [${missing}]`,
          );
        }
        this.activated.push(ringIdText(ring));
        this.#ring = null;
      },
      abort: () => {
        this.#ring = null;
      },
    };
  }

  init(api: EngineApi): void {
    this.#api = api;
  }

  confChange(): void {}
}
