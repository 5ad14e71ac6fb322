// IpcConnection against a real IpcServer (and a few fake daemons) over Unix
// sockets in temp dirs.
import assert from "node:assert/strict";
import {
  IpcConnection,
  type IpcResponse,
} from "../../../src/client/ipc_connection.ts";
import { CsError } from "../../../src/ipc/cs_error.ts";
import {
  encodeFrame,
  FrameType,
  type FrameTypeCode,
} from "../../../src/ipc/codec.ts";
import {
  IpcClosedError,
  IpcError,
  IpcNotRunningError,
} from "../../../src/ipc/errors.ts";
import {
  type IpcHandler,
  type IpcReply,
  IpcServer,
  type IpcServerOptions,
} from "../../../src/ipc/server.ts";

async function withDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ dir: "/tmp", prefix: "ipcc" });
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const ECHO: IpcHandler = {
  open: (conn) =>
    conn.service === "cpg"
      ? { ok: true }
      : { ok: false, code: CsError.NOT_EXIST, message: "unknown service" },
  request: (_conn, fn, payload) => {
    const out = new Uint8Array(payload.length + 1);
    out[0] = fn & 0xff;
    out.set(payload, 1);
    return { status: CsError.OK, payload: out };
  },
  close: () => {},
};

async function withServer(
  options: Partial<IpcServerOptions>,
  body: (server: IpcServer, path: string) => Promise<void>,
): Promise<void> {
  await withDir(async (dir) => {
    const path = `${dir}/s.sock`;
    const server = await IpcServer.listen({
      path,
      handler: ECHO,
      logger: { log: () => {} },
      ...options,
    });
    try {
      await body(server, path);
    } finally {
      await server.close();
    }
  });
}

/** A fake daemon: accepts one connection and hands it to `serve`. */
async function withFakeDaemon(
  serve: (conn: Deno.UnixConn) => Promise<void>,
  body: (path: string) => Promise<void>,
): Promise<void> {
  await withDir(async (dir) => {
    const path = `${dir}/fake.sock`;
    const listener = Deno.listen({ transport: "unix", path });
    const served = (async () => {
      const conn = await listener.accept();
      try {
        await serve(conn);
      } finally {
        conn.close();
      }
    })();
    try {
      await body(path);
    } finally {
      await served;
      listener.close();
    }
  });
}

async function readSome(conn: Deno.UnixConn): Promise<void> {
  await conn.read(new Uint8Array(1024));
}

/** Reads and ignores everything until the client closes. */
async function readToEnd(conn: Deno.UnixConn): Promise<void> {
  const buf = new Uint8Array(1024);
  try {
    while (await conn.read(buf) !== null) { /* ignore */ }
  } catch {
    // reset by the client: also the end
  }
}

function frame(
  type: FrameTypeCode,
  requestId: number,
  code: number,
  payload = new Uint8Array(0),
) {
  return encodeFrame({ type, requestId, code, payload });
}

Deno.test("IpcConnection.connect() reports a missing socket as IpcNotRunningError", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/none.sock`;
    await assert.rejects(
      IpcConnection.connect({ path, service: "cpg" }),
      (e: unknown) =>
        e instanceof IpcNotRunningError && e.path === path &&
        e.code === CsError.LIBRARY &&
        e.message.includes("is the denosync daemon running"),
    );
  });
});

Deno.test("IpcConnection.connect() reports a stale socket as IpcNotRunningError", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/stale.sock`;
    const l = Deno.listen({ transport: "unix", path: `${dir}/tmp.sock` });
    Deno.renameSync(`${dir}/tmp.sock`, path);
    l.close();
    await assert.rejects(
      IpcConnection.connect({ path, service: "cpg" }),
      (e: unknown) =>
        e instanceof IpcNotRunningError && e.message.includes("refused"),
    );
  });
});

Deno.test("IpcConnection.connect() refuses bad paths and service names before connecting", async () => {
  await assert.rejects(
    IpcConnection.connect({ path: `/tmp/${"x".repeat(120)}`, service: "cpg" }),
    (e: unknown) => e instanceof IpcError && e.code === CsError.INVALID_PARAM,
  );
  await assert.rejects(
    IpcConnection.connect({ path: "/tmp/x.sock", service: "CPG!" }),
    (e: unknown) => e instanceof IpcError && e.code === CsError.INVALID_PARAM,
  );
});

Deno.test("IpcConnection.connect() surfaces a refusal as IpcError with the daemon's code", async () => {
  await withServer({}, async (_server, path) => {
    await assert.rejects(
      IpcConnection.connect({ path, service: "nosuch" }),
      (e: unknown) =>
        e instanceof IpcError && e.code === CsError.NOT_EXIST &&
        e.codeName === "CS_ERR_NOT_EXIST" &&
        e.message.includes("unknown service"),
    );
  });
});

Deno.test("IpcConnection.connect() times out when the daemon never answers HELLO", async () => {
  await withFakeDaemon(readToEnd, async (path) => {
    await assert.rejects(
      IpcConnection.connect({ path, service: "cpg", handshakeMsMax: 50 }),
      (e: unknown) => e instanceof IpcError && e.code === CsError.TIMEOUT,
    );
  });
});

Deno.test("IpcConnection.connect() refuses a daemon that answers garbage", async () => {
  await withFakeDaemon(async (conn) => {
    await readSome(conn);
    await conn.write(
      new TextEncoder().encode("HTTP/1.1 400 Bad Request\r\n\r\n"),
    );
  }, async (path) => {
    await assert.rejects(
      IpcConnection.connect({ path, service: "cpg" }),
      (e: unknown) => e instanceof IpcError && e.code === CsError.MESSAGE_ERROR,
    );
  });
});

Deno.test("IpcConnection.request() correlates many requests in flight, answered out of order", async () => {
  const pending: [number, (r: IpcReply) => void][] = [];
  const handler: IpcHandler = {
    ...ECHO,
    request: (_c, fn) => new Promise((resolve) => pending.push([fn, resolve])),
  };
  await withServer({ handler }, async (_server, path) => {
    const conn = await IpcConnection.connect({ path, service: "cpg" });
    try {
      const replies: Promise<IpcResponse>[] = [];
      for (let fn = 0; fn < 50; fn++) replies.push(conn.request(fn));
      while (pending.length < 50) await new Promise((r) => setTimeout(r, 2));
      assert.equal(conn.requestsInFlight, 50);
      for (const [fn, resolve] of pending.reverse()) {
        resolve({
          status: fn % 2 === 0 ? CsError.OK : CsError.TRY_AGAIN,
          payload: Uint8Array.of(fn),
        });
      }
      const got = await Promise.all(replies);
      got.forEach((r, fn) => {
        assert.equal(
          r.status,
          fn % 2 === 0 ? CsError.OK : CsError.TRY_AGAIN,
        );
        assert.deepEqual(Array.from(r.payload), [fn]);
      });
      assert.equal(conn.requestsInFlight, 0);
    } finally {
      await conn.close();
    }
  });
});

Deno.test("IpcConnection.request() carries large payloads both ways", async () => {
  await withServer({}, async (server, path) => {
    const conn = await IpcConnection.connect({ path, service: "cpg" });
    try {
      const max = server.messageBytesMax - 16 - 1; // echo adds one byte
      const payload = Uint8Array.from(
        { length: max },
        (_, i) => (i * 31) & 0xff,
      );
      const r = await conn.request(7, payload);
      assert.equal(r.payload.length, max + 1);
      assert.equal(r.payload[0], 7);
      assert.deepEqual(r.payload.subarray(1), payload);
    } finally {
      await conn.close();
    }
  });
});

Deno.test("IpcConnection.request() refuses an oversized payload locally with ERR_TOO_BIG", async () => {
  await withServer({ messageBytesMax: 4096 }, async (server, path) => {
    const conn = await IpcConnection.connect({ path, service: "cpg" });
    try {
      assert.equal(conn.messageBytesMax, 4096);
      await assert.rejects(
        conn.request(1, new Uint8Array(4096 - 15)),
        (e: unknown) => e instanceof IpcError && e.code === CsError.TOO_BIG,
      );
      assert.equal(
        (await conn.request(1, new Uint8Array(4096 - 17))).status,
        CsError.OK,
      );
      assert.equal(server.connectionStats()[0].requests, 1);
    } finally {
      await conn.close();
    }
  });
});

Deno.test("IpcConnection events arrive in order through the iterator and end after close()", async () => {
  await withServer({}, async (server, path) => {
    const conn = await IpcConnection.connect({ path, service: "cpg" });
    for (let i = 0; i < 100; i++) {
      server.sendEvent(conn.connectionId, Uint8Array.of(i));
    }
    const got: number[] = [];
    for await (const event of conn.events) {
      got.push(event[0]);
      if (got.length === 100) break;
    }
    assert.deepEqual(got, Array.from({ length: 100 }, (_, i) => i));
    const late = (async () => {
      const rest: Uint8Array[] = [];
      for await (const e of conn.events) rest.push(e);
      return rest;
    })();
    await conn.close();
    assert.deepEqual(await late, []);
    assert.equal((await conn.closed).reason, "local");
    await assert.rejects(
      conn.request(1),
      (e: unknown) =>
        e instanceof IpcClosedError && e.code === CsError.BAD_HANDLE,
    );
  });
});

Deno.test("IpcConnection onEvent acknowledges events as they are handled", async () => {
  await withServer({ outgoingBytesMax: 8 * 1024 }, async (server, path) => {
    let seen = 0;
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r));
    const conn = await IpcConnection.connect({
      path,
      service: "cpg",
      onEvent: async () => {
        seen++;
        await gate;
      },
    });
    try {
      for (let i = 0; i < 4; i++) {
        server.sendEvent(conn.connectionId, new Uint8Array(4000));
      }
      while (seen < 4) await new Promise((r) => setTimeout(r, 2));
      await new Promise((r) => setTimeout(r, 20));
      assert.equal(
        server.isFlowControlled(conn.connectionId),
        true,
        "handlers still running",
      );
      release();
      const end = performance.now() + 2000;
      while (
        server.isFlowControlled(conn.connectionId) && performance.now() < end
      ) {
        await new Promise((r) => setTimeout(r, 2));
      }
      assert.equal(server.isFlowControlled(conn.connectionId), false);
      assert.equal(server.connectionStats()[0].eventsAcked, 4);
    } finally {
      await conn.close();
    }
  });
});

Deno.test("IpcConnection rejects pending requests and ends events when the daemon goes away", async () => {
  const handler: IpcHandler = { ...ECHO, request: () => new Promise(() => {}) };
  await withServer({ handler }, async (server, path) => {
    const conn = await IpcConnection.connect({ path, service: "cpg" });
    // Rejections are caught at once, or they would count as unhandled.
    const reply = conn.request(1).then(() => null, (e: unknown) => e);
    const events = (async () => {
      for await (const _ of conn.events) { /* none */ }
    })().then(() => null, (e: unknown) => e);
    await server.close();
    const replyError = await reply;
    assert.ok(replyError instanceof IpcClosedError);
    assert.match(replyError.message, /shutting down/);
    assert.ok(await events instanceof IpcClosedError);
    assert.equal((await conn.closed).reason, "goodbye");
    await conn.close(); // closing again is harmless
  });
});

Deno.test("IpcConnection reports a dropped socket as disconnect", async () => {
  await withFakeDaemon(async (conn) => {
    await readSome(conn);
    const ok = new Uint8Array(20);
    new DataView(ok.buffer).setUint32(8, 1 << 20, true); // messageBytesMax
    new DataView(ok.buffer).setUint16(12, 1, true); // version
    new DataView(ok.buffer).setUint32(16, 1 << 20, true);
    await conn.write(frame(FrameType.HELLO_OK, 0, 0, ok));
    await readSome(conn); // the request
  }, async (path) => {
    const conn = await IpcConnection.connect({ path, service: "cpg" });
    await assert.rejects(conn.request(1), /closed the connection/);
    const info = await conn.closed;
    assert.equal(info.reason, "disconnect");
  });
});

Deno.test("IpcConnection treats a response to an unknown request as a protocol error", async () => {
  await withFakeDaemon(async (conn) => {
    await readSome(conn);
    const ok = new Uint8Array(20);
    new DataView(ok.buffer).setUint32(8, 1 << 20, true);
    new DataView(ok.buffer).setUint16(12, 1, true);
    new DataView(ok.buffer).setUint32(16, 1 << 20, true);
    // HELLO_OK and a stray RESPONSE in one write.
    const a = frame(FrameType.HELLO_OK, 0, 0, ok);
    const b = frame(FrameType.RESPONSE, 999, 1);
    const both = new Uint8Array(a.length + b.length);
    both.set(a);
    both.set(b, a.length);
    await conn.write(both);
    await readSome(conn);
  }, async (path) => {
    const conn = await IpcConnection.connect({ path, service: "cpg" });
    const info = await conn.closed;
    assert.equal(info.reason, "error");
    assert.equal(info.error.code, CsError.MESSAGE_ERROR);
    assert.match(info.error.message, /unknown request 999/);
  });
});
