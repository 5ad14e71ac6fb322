/**
 * IPC micro-benchmarks over a real Unix socket, server and client in one
 * process (one event loop, so every number includes both ends' work):
 *
 *   deno bench -A scripts/bench/ipc_bench.ts
 *
 * - round trip: one request at a time (32 B request, 16 B response);
 * - pipelined: 64 requests in flight, one iteration = 64 round trips;
 * - events: the server pushes 1000 events, one iteration ends when the
 *   client's `onEvent` saw all of them (events/s = 1000 x iter/s);
 * - large: a 256 KiB request echoed back.
 *
 * Reference points: DENO_NOTES.md section 4 (raw socket, two processes:
 * 24.5k rt/s one at a time, 427k msg/s one write per frame, 2.5M batched)
 * and Corosync's ~23k 1 KiB CPG messages/s end to end.
 */
import { IpcConnection } from "../../src/client/ipc_connection.ts";
import { CsError } from "../../src/ipc/cs_error.ts";
import { IpcServer } from "../../src/ipc/server.ts";

const dir = Deno.makeTempDirSync({ dir: "/tmp", prefix: "ipcb" });
const path = `${dir}/bench.sock`;
const RESPONSE = new Uint8Array(16);
const REQUEST = new Uint8Array(32);
const LARGE = new Uint8Array(256 * 1024);
const EVENT_SMALL = new Uint8Array(64);
const EVENT_1K = new Uint8Array(1024);
const EVENTS_PER_ITERATION = 1000;

const server = await IpcServer.listen({
  path,
  handler: {
    open: () => ({ ok: true }),
    request: (_conn, fn, payload) =>
      fn === 2
        ? { status: CsError.OK, payload }
        : { status: CsError.OK, payload: RESPONSE },
    close: () => {},
  },
});

let eventsSeen = 0;
let eventsWanted = 0;
let eventsDone: (() => void) | null = null;
const client = await IpcConnection.connect({
  path,
  service: "bench",
  onEvent: () => {
    if (++eventsSeen === eventsWanted) eventsDone?.();
  },
});

globalThis.addEventListener("unload", () => {
  Deno.removeSync(dir, { recursive: true });
});

async function pushEvents(payload: Uint8Array): Promise<void> {
  eventsSeen = 0;
  eventsWanted = EVENTS_PER_ITERATION;
  const done = new Promise<void>((resolve) => (eventsDone = resolve));
  for (let i = 0; i < EVENTS_PER_ITERATION; i++) {
    server.sendEvent(client.connectionId, payload);
  }
  await done;
}

Deno.bench("round trip, one at a time (32 B / 16 B)", {
  group: "rt",
  baseline: true,
}, async () => {
  await client.request(1, REQUEST);
});

Deno.bench("64 pipelined round trips (32 B / 16 B)", {
  group: "rt",
}, async () => {
  const all: Promise<unknown>[] = [];
  for (let i = 0; i < 64; i++) all.push(client.request(1, REQUEST));
  await Promise.all(all);
});

Deno.bench("256 KiB request echoed", { group: "rt" }, async () => {
  await client.request(2, LARGE);
});

Deno.bench("1000 events of 64 B, one way", {
  group: "events",
  baseline: true,
}, async () => {
  await pushEvents(EVENT_SMALL);
});

Deno.bench("1000 events of 1 KiB, one way", {
  group: "events",
}, async () => {
  await pushEvents(EVENT_1K);
});
