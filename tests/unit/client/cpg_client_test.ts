// CpgClient against a real IpcServer whose handler plays a syncing daemon:
// join and leave are answered TRY_AGAIN a few times before they succeed.
import assert from "node:assert/strict";
import { CpgClient, CpgError } from "../../../src/client/cpg.ts";
import { CsError } from "../../../src/ipc/cs_error.ts";
import { type IpcHandler, IpcServer } from "../../../src/ipc/server.ts";
import { decodeCpgRequest } from "../../../engines/cpg/ipc.ts";

/** A daemon that answers the first `busy` requests TRY_AGAIN. */
async function withSyncingDaemon(
  busy: number,
  body: (client: CpgClient, seen: string[]) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ dir: "/tmp", prefix: "cpgc" });
  const seen: string[] = [];
  let left = busy;
  const handler: IpcHandler = {
    open: () => ({ ok: true }),
    request: (_conn, fn, payload) => {
      const req = decodeCpgRequest(fn, payload);
      seen.push(req.ok ? req.value.fn : "invalid");
      if (left > 0) {
        left--;
        return { status: CsError.TRY_AGAIN, payload: new Uint8Array() };
      }
      return { status: CsError.OK, payload: new Uint8Array() };
    },
    close: () => {},
  };
  const server = await IpcServer.listen({
    path: `${dir}/s.sock`,
    handler,
    logger: { log: () => {} },
  });
  const client = await CpgClient.initialize({ socketPath: `${dir}/s.sock` });
  try {
    await body(client, seen);
  } finally {
    await client.finalize();
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("CpgClient.join and leave retry TRY_AGAIN while the ring syncs", async () => {
  await withSyncingDaemon(3, async (client, seen) => {
    await client.join("g");
    assert.equal(client.group, "g");
    assert.deepEqual(seen, ["join", "join", "join", "join"]);
  });
  await withSyncingDaemon(2, async (client, seen) => {
    await client.leave();
    assert.equal(client.group, null);
    assert.deepEqual(seen, ["leave", "leave", "leave"]);
  });
});

Deno.test("CpgClient.join gives up on TRY_AGAIN after its timeout", async () => {
  await withSyncingDaemon(1_000_000, async (client, seen) => {
    await assert.rejects(
      () => client.join("g", { timeoutMs: 30 }),
      (e: unknown) => e instanceof CpgError && e.tryAgain,
    );
    assert.ok(seen.length > 1, "retried before giving up");
    assert.equal(client.group, null);
  });
});
