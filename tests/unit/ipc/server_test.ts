// IpcServer over real Unix sockets in temp dirs: handshake, dispatch, flow
// control and every kind of bad client. Raw sockets play the bad clients.
import assert from "node:assert/strict";
import { gather } from "../../../src/lib/gather.ts";
import { IpcConnection } from "../../../src/client/ipc_connection.ts";
import { CsError } from "../../../src/ipc/cs_error.ts";
import {
  decodeErrorMessage,
  decodeHelloOk,
  encodeEventAck,
  encodeFrame,
  encodeHello,
  type Frame,
  FRAME_HEADER_BYTES,
  FrameDecoder,
  FrameType,
  type FrameTypeCode,
  writeU16,
  writeU32,
} from "../../../src/ipc/codec.ts";
import {
  IpcAddressInUseError,
  IpcConfigError,
} from "../../../src/ipc/errors.ts";
import {
  type IpcCloseReason,
  type IpcConnectionInfo,
  type IpcHandler,
  type IpcReply,
  IpcServer,
  type IpcServerOptions,
} from "../../../src/ipc/server.ts";

// ------------------------------------------------------------------ helpers

async function waitFor<T>(
  check: () => T | undefined | false,
  what: string,
  timeoutMs = 3000,
): Promise<T> {
  const end = performance.now() + timeoutMs;
  while (performance.now() < end) {
    const v = check();
    if (v !== undefined && v !== false) return v as T;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** A handler that records what it saw; replies echo unless told otherwise. */
class Recorder implements IpcHandler {
  opens: IpcConnectionInfo[] = [];
  closes: { id: number; reason: IpcCloseReason }[] = [];
  requests: { id: number; fn: number; payload: number[] }[] = [];
  flow: { id: number; on: boolean }[] = [];
  requestIds: number[] = [];
  reply: (fn: number, payload: Uint8Array) => IpcReply | Promise<IpcReply> = (
    _fn,
    payload,
  ) => ({ status: CsError.OK, payload: payload.slice() });
  services = new Set(["cpg", "cmap"]);

  open(conn: IpcConnectionInfo) {
    if (!this.services.has(conn.service)) {
      return {
        ok: false as const,
        code: CsError.NOT_EXIST,
        message: `no service ${conn.service}`,
      };
    }
    this.opens.push(conn);
    return { ok: true as const };
  }
  request(
    conn: IpcConnectionInfo,
    fn: number,
    payload: Uint8Array,
    requestId: number,
  ) {
    this.requestIds.push(requestId);
    this.requests.push({ id: conn.id, fn, payload: Array.from(payload) });
    return this.reply(fn, payload);
  }
  close(conn: IpcConnectionInfo, reason: IpcCloseReason) {
    this.closes.push({ id: conn.id, reason });
  }
  flowControl(conn: IpcConnectionInfo, on: boolean) {
    this.flow.push({ id: conn.id, on });
  }
  closedReason(id: number): Promise<IpcCloseReason> {
    return waitFor(
      () => this.closes.find((c) => c.id === id)?.reason,
      `close of connection ${id}`,
    );
  }
}

interface Ctx {
  server: IpcServer;
  path: string;
  dir: string;
  rec: Recorder;
  logs: string[];
}

async function withServer(
  options: Partial<IpcServerOptions>,
  body: (ctx: Ctx) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ dir: "/tmp", prefix: "ipct" });
  const path = `${dir}/s.sock`;
  const rec = new Recorder();
  const logs: string[] = [];
  const server = await IpcServer.listen({
    path,
    handler: rec,
    logger: { log: (level, _s, msg) => logs.push(`${level}: ${msg}`) },
    ...options,
  });
  try {
    await body({ server, path, dir, rec, logs });
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/** A hand-driven client socket speaking raw frames. */
class Raw {
  #decoder = new FrameDecoder(1 << 24);
  #frames: Frame[] = [];
  #buf = new Uint8Array(64 * 1024);
  eof = false;
  constructor(readonly conn: Deno.UnixConn) {}

  static async open(path: string): Promise<Raw> {
    return new Raw(await Deno.connect({ transport: "unix", path }));
  }

  async send(bytes: Uint8Array): Promise<void> {
    let at = 0;
    while (at < bytes.length) at += await this.conn.write(bytes.subarray(at));
  }

  sendFrame(
    type: FrameTypeCode,
    requestId: number,
    code: number,
    payload: Uint8Array = new Uint8Array(0),
  ) {
    return this.send(encodeFrame({ type, requestId, code, payload }));
  }

  async hello(service = "cpg", features = 0, version = 1): Promise<Frame> {
    await this.sendFrame(
      FrameType.HELLO,
      0,
      0,
      encodeHello({ version, features, pid: 4321, service }),
    );
    return await this.next();
  }

  /** The next frame; fails on EOF or after a timeout. */
  async next(timeoutMs = 3000): Promise<Frame> {
    const timer = setTimeout(() => this.conn.close(), timeoutMs);
    try {
      while (this.#frames.length === 0) {
        const n = await this.conn.read(this.#buf);
        if (n === null) throw new Error("EOF before the next frame");
        const r = this.#decoder.push(this.#buf.slice(0, n));
        this.#frames.push(...r.frames);
      }
      return this.#frames.shift()!;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Reads until the server closes; true if it did within the timeout. */
  async closedByServer(timeoutMs = 3000): Promise<boolean> {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      this.conn.close();
    }, timeoutMs);
    try {
      while (true) {
        const n = await this.conn.read(this.#buf);
        if (n === null) return true;
      }
    } catch {
      return !timedOut; // ECONNRESET also means the server closed
    } finally {
      clearTimeout(timer);
    }
  }

  close(): void {
    try {
      this.conn.close();
    } catch {
      // closed by a timeout already
    }
  }
}

function header(length: number, type: number, requestId = 1): Uint8Array {
  const bytes = new Uint8Array(FRAME_HEADER_BYTES);
  writeU32(bytes, 0, length);
  writeU16(bytes, 4, type);
  writeU32(bytes, 8, requestId);
  return bytes;
}

function modeOf(path: string): number {
  return Deno.lstatSync(path).mode! & 0o777;
}

// -------------------------------------------------------------- listening

Deno.test("IpcServer.listen() applies the mode and removes the socket on close", async () => {
  const dir = await Deno.makeTempDir({ dir: "/tmp", prefix: "ipct" });
  try {
    const path = `${dir}/a.sock`;
    const server = await IpcServer.listen({
      path,
      mode: 0o600,
      handler: new Recorder(),
    });
    assert.equal(modeOf(path), 0o600);
    assert.ok(Deno.lstatSync(path).isSocket);
    await server.close();
    assert.throws(() => Deno.lstatSync(path), Deno.errors.NotFound);
    const again = await IpcServer.listen({ path, handler: new Recorder() });
    assert.equal(modeOf(path), 0o660, "default mode");
    await again.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("IpcServer.listen() replaces a stale socket after a failed probe", async () => {
  const dir = await Deno.makeTempDir({ dir: "/tmp", prefix: "ipct" });
  try {
    // A socket file nobody listens on: bind, move the file, close.
    const path = `${dir}/stale.sock`;
    const l = Deno.listen({ transport: "unix", path: `${dir}/tmp.sock` });
    Deno.renameSync(`${dir}/tmp.sock`, path);
    l.close();
    assert.ok(Deno.lstatSync(path).isSocket);
    const server = await IpcServer.listen({ path, handler: new Recorder() });
    try {
      const conn = await IpcConnection.connect({ path, service: "cpg" });
      await conn.close();
    } finally {
      await server.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("IpcServer.listen() refuses a path where a live daemon answers", async () => {
  await withServer({}, async ({ path, logs }) => {
    await assert.rejects(
      IpcServer.listen({ path, handler: new Recorder() }),
      (e: unknown) =>
        e instanceof IpcAddressInUseError &&
        e.message.startsWith(`another daemon is listening on ${path}`),
    );
    // The live daemon saw the probe connect and leave; it did not complain.
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(logs.filter((l) => !l.startsWith("debug")), []);
    const conn = await IpcConnection.connect({ path, service: "cpg" });
    await conn.close();
  });
});

Deno.test("IpcServer.listen() never removes a file that is not a socket", async () => {
  const dir = await Deno.makeTempDir({ dir: "/tmp", prefix: "ipct" });
  try {
    const path = `${dir}/file`;
    await Deno.writeTextFile(path, "keep me");
    await assert.rejects(
      IpcServer.listen({ path, handler: new Recorder() }),
      (e: unknown) =>
        e instanceof IpcConfigError && e.message.includes("not a socket"),
    );
    assert.equal(await Deno.readTextFile(path), "keep me");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("IpcServer.listen() refuses access rules it cannot enforce", async () => {
  const dir = await Deno.makeTempDir({ dir: "/tmp", prefix: "ipct" });
  const path = `${dir}/s.sock`;
  const handler = new Recorder();
  try {
    const cases: [Partial<IpcServerOptions>, string][] = [
      [{ allowedGids: [1, 2] }, "one group"],
      [{ allowedGids: [0], mode: 0o600 }, "does not grant the group"],
      [{ allowedUids: [54321] }, "SO_PEERCRED"],
      [{ mode: 0o1777 }, "socket mode"],
      [{ path: `${dir}/${"x".repeat(120)}` }, "at most 107"],
      [
        { outgoingBytesMax: 10 << 20, outgoingBytesHardMax: 11 << 20 },
        "outgoingBytesHardMax",
      ],
      [{ stuckMsMax: 0 }, "stuckMsMax"],
    ];
    for (const [options, text] of cases) {
      await assert.rejects(
        IpcServer.listen({ path, handler, ...options }),
        (e: unknown) => e instanceof IpcConfigError && e.message.includes(text),
        text,
      );
      assert.throws(() => Deno.lstatSync(path), Deno.errors.NotFound, text);
    }
    // The owner's own uid, root and one group with group rw are fine.
    const gid = Deno.lstatSync(dir).gid!;
    const uid = Deno.lstatSync(dir).uid!;
    const server = await IpcServer.listen({
      path,
      handler,
      allowedUids: [0, uid],
      allowedGids: [gid],
    });
    assert.equal(Deno.lstatSync(path).gid, gid);
    await server.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// -------------------------------------------------------------- handshake

Deno.test("IpcServer answers HELLO with HELLO_OK and a REQUEST with its RESPONSE", async () => {
  await withServer(
    { nodeId: 42, messageBytesMax: 100_000 },
    async ({ path, rec, server }) => {
      const raw = await Raw.open(path);
      try {
        const ok = await raw.hello("cmap", 1);
        assert.equal(ok.type, FrameType.HELLO_OK);
        const hello = decodeHelloOk(ok.payload);
        assert.ok(hello.ok);
        assert.equal(hello.value.nodeId, 42);
        assert.equal(hello.value.messageBytesMax, 100_000);
        assert.equal(hello.value.features, 1);
        assert.equal(hello.value.eventWindowBytes, 8 << 20);
        assert.deepEqual(
          rec.opens.map((o) => [o.service, o.pid, o.eventAcks]),
          [
            ["cmap", 4321, true],
          ],
        );
        rec.reply = (fn) => ({
          status: CsError.EXIST,
          payload: Uint8Array.of(fn),
        });
        await raw.sendFrame(
          FrameType.REQUEST,
          0xabcd_ef01,
          77,
          Uint8Array.of(5, 6),
        );
        const resp = await raw.next();
        assert.deepEqual(
          { ...resp, payload: Array.from(resp.payload) },
          {
            type: FrameType.RESPONSE,
            requestId: 0xabcd_ef01,
            code: CsError.EXIST,
            payload: [77],
          },
        );
        assert.deepEqual(rec.requests, [{
          id: hello.value.connectionId,
          fn: 77,
          payload: [5, 6],
        }]);
        const [stats] = server.connectionStats();
        assert.equal(stats.requests, 1);
        assert.equal(stats.responses, 1);
        assert.equal(stats.service, "cmap");
        assert.equal(stats.bytesIn, 16 + 12 + 4 + 16 + 2);
      } finally {
        raw.close();
      }
    },
  );
});

Deno.test("IpcServer refuses a bad version with ERR_VERSION and an unknown service with the handler's code", async () => {
  await withServer({}, async ({ path, rec, server }) => {
    const raw = await Raw.open(path);
    try {
      const err = await raw.hello("cpg", 0, 2);
      assert.equal(err.type, FrameType.ERROR);
      assert.equal(err.code, CsError.VERSION);
      assert.match(
        decodeErrorMessage(err.payload),
        /version 2 is not supported/,
      );
      assert.ok(await raw.closedByServer());
    } finally {
      raw.close();
    }
    const raw2 = await Raw.open(path);
    try {
      const err = await raw2.hello("nosuch");
      assert.equal(err.code, CsError.NOT_EXIST);
      assert.equal(decodeErrorMessage(err.payload), "no service nosuch");
      assert.ok(await raw2.closedByServer());
    } finally {
      raw2.close();
    }
    assert.equal(rec.opens.length, 0);
    assert.equal(rec.closes.length, 0, "close only follows a successful open");
    assert.equal(server.stats().refused, 2);
  });
});

Deno.test("IpcServer closes a connection that sends no HELLO in time", async () => {
  await withServer({ handshakeMsMax: 50 }, async ({ path }) => {
    const raw = await Raw.open(path);
    try {
      const err = await raw.next();
      assert.equal(err.type, FrameType.ERROR);
      assert.equal(err.code, CsError.TIMEOUT);
      assert.ok(await raw.closedByServer());
    } finally {
      raw.close();
    }
  });
});

Deno.test("IpcServer refuses connections beyond connectionsMax with ERR_NO_RESOURCES", async () => {
  await withServer({ connectionsMax: 1 }, async ({ path, server }) => {
    const first = await IpcConnection.connect({ path, service: "cpg" });
    try {
      const raw = await Raw.open(path);
      try {
        const err = await raw.next();
        assert.equal(err.code, CsError.NO_RESOURCES);
        assert.ok(await raw.closedByServer());
      } finally {
        raw.close();
      }
      assert.equal((await first.request(1)).status, CsError.OK);
      assert.equal(server.stats().connections, 1);
    } finally {
      await first.close();
    }
  });
});

// ------------------------------------------------------------- bad clients

Deno.test("IpcServer answers garbage before the handshake with ERROR, cuts only that client", async () => {
  await withServer({}, async ({ path, rec, server }) => {
    const good = await IpcConnection.connect({ path, service: "cpg" });
    try {
      for (
        const garbage of [
          new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
          header(40, FrameType.REQUEST), // a valid frame, but not HELLO
          encodeFrame({
            type: FrameType.HELLO,
            requestId: 0,
            code: 0,
            payload: new Uint8Array(20),
          }),
        ]
      ) {
        const raw = await Raw.open(path);
        try {
          await raw.send(garbage);
          await raw.send(new Uint8Array(40));
          const err = await raw.next();
          assert.equal(err.type, FrameType.ERROR);
          assert.ok(
            [CsError.MESSAGE_ERROR, CsError.TOO_BIG].includes(
              err.code as 22,
            ),
            `code ${err.code}`,
          );
          assert.ok(await raw.closedByServer());
        } finally {
          raw.close();
        }
        assert.equal(
          (await good.request(3, Uint8Array.of(1))).status,
          CsError.OK,
        );
      }
      assert.equal(rec.opens.length, 1);
      assert.equal(server.stats().protocolErrors, 3);
    } finally {
      await good.close();
    }
  });
});

Deno.test("IpcServer answers garbage after the handshake with ERROR and close(error)", async () => {
  await withServer({}, async ({ path, rec, server, logs }) => {
    const good = await IpcConnection.connect({ path, service: "cpg" });
    const raw = await Raw.open(path);
    try {
      await raw.hello();
      const id = rec.opens[1].id;
      await raw.send(
        Uint8Array.from({ length: 64 }, (_, i) => (i * 37) & 0xff),
      );
      const err = await raw.next();
      assert.equal(err.type, FrameType.ERROR);
      assert.ok(await raw.closedByServer());
      assert.equal(await rec.closedReason(id), "error");
      assert.ok(
        logs.some((l) => l.startsWith("warn") && l.includes("protocol error")),
      );
      assert.equal((await good.request(1)).status, CsError.OK);
      assert.deepEqual(server.connectionStats().map((s) => s.id), [
        good.connectionId,
      ]);
    } finally {
      raw.close();
      await good.close();
    }
  });
});

Deno.test("IpcServer refuses frames a client may not send (RESPONSE, second HELLO, bad EVENT_ACK)", async () => {
  await withServer({}, async ({ path, rec }) => {
    const bad: [FrameTypeCode, Uint8Array, number][] = [
      [FrameType.RESPONSE, new Uint8Array(0), CsError.MESSAGE_ERROR],
      [
        FrameType.HELLO,
        encodeHello({ version: 1, features: 0, pid: 1, service: "cpg" }),
        CsError.MESSAGE_ERROR,
      ],
      [
        FrameType.EVENT_ACK,
        encodeEventAck({ events: 1, bytes: 16 }),
        CsError.MESSAGE_ERROR,
      ],
      [FrameType.EVENT_ACK, new Uint8Array(3), CsError.MESSAGE_ERROR],
    ];
    for (const [type, payload, code] of bad) {
      const raw = await Raw.open(path);
      try {
        await raw.hello("cpg", 1);
        const id = rec.opens.at(-1)!.id;
        await raw.sendFrame(type, 5, 0, payload);
        const err = await raw.next();
        assert.equal(err.type, FrameType.ERROR, `type ${type}`);
        assert.equal(err.code, code);
        assert.equal(err.requestId, 5);
        assert.equal(await rec.closedReason(id), "error");
      } finally {
        raw.close();
      }
    }
  });
});

Deno.test("IpcServer refuses an oversized length at once, without waiting for the body", async () => {
  await withServer({}, async ({ path, rec }) => {
    const raw = await Raw.open(path);
    try {
      await raw.hello();
      const id = rec.opens[0].id;
      await raw.send(header(0xffff_fff0, FrameType.REQUEST, 99));
      const err = await raw.next();
      assert.equal(err.code, CsError.TOO_BIG);
      assert.equal(err.requestId, 99);
      assert.match(decodeErrorMessage(err.payload), /exceeds the limit/);
      assert.ok(await raw.closedByServer());
      assert.equal(await rec.closedReason(id), "error");
      assert.equal(rec.requests.length, 0);
    } finally {
      raw.close();
    }
  });
});

Deno.test("IpcServer cleans up a client that closes halfway through a frame", async () => {
  await withServer({}, async ({ path, rec, server, logs }) => {
    const raw = await Raw.open(path);
    await raw.hello();
    const id = rec.opens[0].id;
    const frame = encodeFrame({
      type: FrameType.REQUEST,
      requestId: 1,
      code: 1,
      payload: new Uint8Array(1000),
    });
    await raw.send(frame.subarray(0, 500));
    raw.close();
    assert.equal(await rec.closedReason(id), "disconnect");
    assert.equal(rec.requests.length, 0);
    assert.deepEqual(server.connectionStats(), []);
    assert.equal(server.stats().connections, 0);
    assert.ok(
      logs.some((l) => l.includes("closed mid-frame (500 of 1016 bytes)")),
    );
  });
});

Deno.test("IpcServer calls close(disconnect) at once when a client's socket closes", async () => {
  await withServer({}, async ({ path, rec }) => {
    const raw = await Raw.open(path);
    await raw.hello();
    const id = rec.opens[0].id;
    raw.close();
    assert.equal(await rec.closedReason(id), "disconnect");
  });
});

Deno.test("IpcServer calls close(goodbye) on GOODBYE", async () => {
  await withServer({}, async ({ path, rec }) => {
    const conn = await IpcConnection.connect({ path, service: "cpg" });
    await conn.close();
    assert.equal(await rec.closedReason(conn.connectionId), "goodbye");
  });
});

// ------------------------------------------------------------ flow control

Deno.test("IpcServer flow-controls a client that never reads, cuts it when stuck, serves others", async () => {
  await withServer(
    { outgoingBytesMax: 64 * 1024, stuckMsMax: 300 },
    async ({ path, rec, server, logs }) => {
      const good = await IpcConnection.connect({ path, service: "cpg" });
      const stuck = await Raw.open(path);
      try {
        await stuck.hello("cpg", 0); // no acks: socket backpressure only
        const id = rec.opens[1].id;
        const payload = new Uint8Array(4096);
        let sent = 0;
        let refused = 0;
        // Push until flow control holds: the kernel's socket buffer takes
        // the first few hundred KiB, then the server's queue fills.
        while (true) {
          sent++;
          assert.ok(sent < 4000, "sendEvent never reported flow control");
          if (server.sendEvent(id, payload)) continue;
          refused++;
          await new Promise((r) => setTimeout(r, 20));
          if (server.isFlowControlled(id)) break;
        }
        await waitFor(
          () => rec.flow.some((f) => f.id === id && f.on),
          "flowControl(on)",
        );
        const stats = server.connectionStats().find((s) => s.id === id)!;
        assert.equal(stats.flowControl, true);
        assert.equal(stats.flowControlHits, refused);
        assert.ok(stats.queuedBytes > 64 * 1024);
        assert.ok(stats.bytesOut > 64 * 1024, "the kernel took some first");
        // The other client is served while that one is stuck.
        for (let i = 0; i < 20; i++) {
          assert.equal(
            (await good.request(i, Uint8Array.of(i))).status,
            CsError.OK,
          );
        }
        assert.equal(await rec.closedReason(id), "error");
        assert.ok(
          logs.some((l) => l.startsWith("warn") && l.includes("stuck")),
        );
        assert.equal(server.sendEvent(id, payload), false);
        assert.equal(server.stats().overloaded, 1);
        assert.equal((await good.request(1)).status, CsError.OK);
      } finally {
        stuck.close();
        await good.close();
      }
    },
  );
});

Deno.test("IpcServer cuts a connection whose queue passes the hard limit", async () => {
  await withServer(
    {
      messageBytesMax: 32 * 1024,
      outgoingBytesMax: 64 * 1024,
      outgoingBytesHardMax: 128 * 1024,
    },
    async ({ path, rec, server, logs }) => {
      const raw = await Raw.open(path);
      try {
        await raw.hello("cpg", 0);
        const id = rec.opens[0].id;
        const payload = new Uint8Array(16 * 1024);
        let accepted = 0;
        for (let i = 0; i < 20; i++) {
          if (server.sendEvent(id, payload)) accepted++;
        }
        // Queued in one turn: 3 fit under the soft limit, the 8th passes the hard one.
        assert.equal(accepted, 3);
        assert.equal(await rec.closedReason(id), "error");
        assert.ok(logs.some((l) => l.includes("hard limit")));
        assert.deepEqual(server.connectionStats(), []);
      } finally {
        raw.close();
      }
    },
  );
});

Deno.test("IpcServer takes an acking client out of flow control as it consumes", async () => {
  await withServer(
    { outgoingBytesMax: 16 * 1024 },
    async ({ path, rec, server }) => {
      const conn = await IpcConnection.connect({ path, service: "cpg" });
      try {
        const payload = new Uint8Array(4096);
        const results = [];
        for (let i = 0; i < 8; i++) {
          results.push(
            server.sendEvent(conn.connectionId, payload),
          );
        }
        assert.deepEqual(results, [
          true,
          true,
          true,
          false,
          false,
          false,
          false,
          false,
        ]);
        // Read by the client library but not consumed: still in flow control.
        await new Promise((r) => setTimeout(r, 30));
        assert.equal(server.isFlowControlled(conn.connectionId), true);
        let n = 0;
        for await (const _ of conn.events) if (++n === 8) break;
        await waitFor(
          () => !server.isFlowControlled(conn.connectionId),
          "flow control off",
        );
        assert.deepEqual(rec.flow, [
          { id: conn.connectionId, on: true },
          { id: conn.connectionId, on: false },
        ]);
        const stats = server.connectionStats()[0];
        assert.equal(stats.eventsAcked, 8);
        assert.equal(stats.dispatched, 8);
        assert.equal(stats.pendingBytes, 0);
        assert.equal(stats.flowControlCount, 1);
      } finally {
        await conn.close();
      }
    },
  );
});

Deno.test("IpcServer stops reading a client with requestsInFlightMax async requests pending", async () => {
  await withServer({ requestsInFlightMax: 2 }, async ({ path, rec }) => {
    const resolvers: ((r: IpcReply) => void)[] = [];
    rec.reply = () => new Promise((resolve) => resolvers.push(resolve));
    const raw = await Raw.open(path);
    try {
      await raw.hello();
      for (let i = 1; i <= 3; i++) {
        await raw.sendFrame(FrameType.REQUEST, i, i);
        if (i < 3) {
          await waitFor(() => rec.requests.length === i, `request ${i}`);
        }
      }
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(
        rec.requests.length,
        2,
        "the third request waits in the socket",
      );
      resolvers[1]({ status: CsError.OK });
      const first = await raw.next();
      assert.equal(first.requestId, 2, "async replies go out as they resolve");
      await waitFor(() => rec.requests.length === 3, "third request");
      resolvers[0]({ status: CsError.TRY_AGAIN });
      resolvers[2]({ status: CsError.OK });
      assert.deepEqual([
        (await raw.next()).requestId,
        (await raw.next()).requestId,
      ], [1, 3]);
    } finally {
      raw.close();
    }
  });
});

Deno.test("IpcServer.holdRequests keeps matching requests and what follows them unread until released", async () => {
  await withServer({}, async ({ path, rec, server }) => {
    const cpg = await IpcConnection.connect({ path, service: "cpg" });
    const cmap = await IpcConnection.connect({ path, service: "cmap" });
    try {
      server.holdRequests((service, fn) => service === "cpg" && fn === 7);
      // fn 7 is held; fn 1 behind it on the same connection waits too, in
      // order; other requests on the connection before it and on other
      // connections pass.
      const before = await cpg.request(1, new Uint8Array([1]));
      assert.equal(before.status, CsError.OK);
      const held = cpg.request(7, new Uint8Array([2]));
      const behind = cpg.request(1, new Uint8Array([3]));
      const other = await cmap.request(7, new Uint8Array([4]));
      assert.equal(other.status, CsError.OK);
      await waitFor(
        () => server.connectionStats().some((s) => s.requestsHeld === 1),
        "the held request to be counted",
      );
      await new Promise((r) => setTimeout(r, 30));
      assert.deepEqual(rec.requests.map((r) => r.payload[0]), [1, 4]);
      server.holdRequests(null);
      assert.deepEqual(
        [(await held).payload[0], (await behind).payload[0]],
        [2, 3],
      );
      assert.deepEqual(rec.requests.map((r) => r.payload[0]), [1, 4, 2, 3]);
    } finally {
      await cpg.close();
      await cmap.close();
    }
  });
});

Deno.test("IpcServer: a client that leaves while its request is held is closed once released", async () => {
  await withServer({}, async ({ path, rec, server }) => {
    server.holdRequests(() => true);
    const raw = await Raw.open(path);
    await raw.hello();
    await raw.sendFrame(FrameType.REQUEST, 5, 1);
    await waitFor(
      () => server.connectionStats().some((s) => s.requestsHeld === 1),
      "the request to be held",
    );
    raw.close();
    // Nothing reads a held connection, so its end is seen after release,
    // as a request sent just before closing would be.
    server.holdRequests(null);
    await waitFor(() => rec.closes.length === 1, "the close");
    assert.equal(rec.requests.length, 1);
  });
});

Deno.test("IpcServer.sendEvent writes parts as one EVENT body, small ones batched and large ones direct", async () => {
  await withServer({}, async ({ path, server }) => {
    const raw = await Raw.open(path);
    try {
      await raw.hello();
      const id = server.connectionStats()[0].id;
      const big = new Uint8Array(100_000).map((_, i) => i & 0xff);
      const bodies: Uint8Array[][] = [
        [new Uint8Array([1, 2]), new Uint8Array([3])],
        [new Uint8Array([4]), big],
        [new Uint8Array([5, 6, 7])],
        [new Uint8Array([8]), new Uint8Array([9]), new Uint8Array([10])],
      ];
      for (const b of bodies) assert.equal(server.sendEvent(id, b), true);
      for (const b of bodies) {
        const frame = await raw.next();
        assert.equal(frame.type, FrameType.EVENT);
        assert.deepEqual(frame.payload, gather(b));
      }
      const [s] = server.connectionStats();
      // HELLO_OK (16 + 20), then four EVENT headers and their bodies.
      assert.equal(s.bytesOut, 16 + 20 + 4 * 16 + 3 + 100_001 + 3 + 3);
    } finally {
      raw.close();
    }
  });
});

Deno.test("IpcConnection.request sends parts as one body, a large tail from its own buffer", async () => {
  await withServer({}, async ({ path, rec }) => {
    rec.reply = (_fn, payload) => ({
      status: CsError.OK,
      payload: new Uint8Array([
        payload.length >>> 16,
        payload[0],
        payload.at(-1)!,
      ]),
    });
    const conn = await IpcConnection.connect({ path, service: "cpg" });
    try {
      const big = new Uint8Array(70_000).fill(9);
      const small = await conn.request(3, [
        new Uint8Array([1]),
        new Uint8Array([2, 3]),
      ]);
      const large = await conn.request(3, [new Uint8Array([7]), big]);
      assert.deepEqual([...small.payload], [0, 1, 3]);
      assert.deepEqual([...large.payload], [70_001 >>> 16, 7, 9]);
      assert.deepEqual(rec.requests[0].payload, [1, 2, 3]);
      assert.equal(rec.requests[1].payload.length, 70_001);
    } finally {
      await conn.close();
    }
  });
});

Deno.test("IpcServer counts invalid requests and bytes per connection", async () => {
  await withServer({}, async ({ path, rec, server }) => {
    rec.reply = (fn) => ({
      status: fn === 9 ? CsError.NOT_SUPPORTED : CsError.OK,
    });
    const conn = await IpcConnection.connect({ path, service: "cpg" });
    try {
      await conn.request(9);
      await conn.request(1);
      server.sendEvent(conn.connectionId, new Uint8Array(10));
      const [s] = server.connectionStats();
      assert.equal(s.requests, 2);
      assert.equal(s.responses, 2);
      assert.equal(s.invalidRequests, 1);
      assert.equal(s.dispatched, 1);
      assert.equal(s.bytesOut, 16 + 20 + 16 + 16);
      assert.equal(s.pid, Deno.pid);
    } finally {
      await conn.close();
    }
  });
});

Deno.test("IpcServer.disconnect() closes a connection after its queued frames", async () => {
  await withServer({}, async ({ path, rec, server }) => {
    const got: number[] = [];
    const a = await IpcConnection.connect({
      path,
      service: "cpg",
      onEvent: (p) => {
        got.push(p[0]);
      },
    });
    const b = await IpcConnection.connect({ path, service: "cpg" });
    try {
      server.sendEvent(a.connectionId, Uint8Array.of(1));
      assert.equal(server.disconnect(a.connectionId), true);
      assert.equal(server.disconnect(a.connectionId), false, "already gone");
      assert.equal((await a.closed).reason, "goodbye");
      assert.deepEqual(got, [1]);
      assert.equal(await rec.closedReason(a.connectionId), "kicked");

      assert.equal(
        server.disconnect(b.connectionId, CsError.BAD_HANDLE, "group left"),
        true,
      );
      const info = await b.closed;
      assert.equal(info.reason, "error");
      assert.equal(info.error.code, CsError.BAD_HANDLE);
      assert.match(info.error.message, /group left/);
      assert.equal(await rec.closedReason(b.connectionId), "kicked");
      assert.equal(server.disconnect(12345), false);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

// ---------------------------------------------------------------- shutdown

Deno.test("IpcServer.close() says GOODBYE, flushes queued events and calls close(shutdown)", async () => {
  const dir = await Deno.makeTempDir({ dir: "/tmp", prefix: "ipct" });
  const path = `${dir}/s.sock`;
  const rec = new Recorder();
  const server = await IpcServer.listen({ path, handler: rec });
  const got: number[] = [];
  const conn = await IpcConnection.connect({
    path,
    service: "cpg",
    onEvent: (p) => {
      got.push(p[0]);
    },
  });
  try {
    for (let i = 0; i < 5; i++) {
      server.sendEvent(conn.connectionId, Uint8Array.of(i));
    }
    await server.close();
    assert.deepEqual(rec.closes, [{
      id: conn.connectionId,
      reason: "shutdown",
    }]);
    const info = await conn.closed;
    assert.equal(info.reason, "goodbye");
    assert.deepEqual(got, [0, 1, 2, 3, 4]);
    assert.throws(() => Deno.lstatSync(path), Deno.errors.NotFound);
    await assert.rejects(conn.request(1), /shutting down/);
  } finally {
    await conn.close();
    await Deno.remove(dir, { recursive: true });
  }
});
