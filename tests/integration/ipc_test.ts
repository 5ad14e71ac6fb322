// The IPC layer across real processes: a daemon killed with SIGKILL leaves a
// stale socket, a client killed with SIGKILL is noticed at once, and the
// socket file's mode keeps other users out. Children run `deno eval` with
// the module URLs below; every child is killed and awaited in `finally`.
import { assert, assertEquals } from "./_assert.ts";
import { IpcConnection } from "../../src/client/ipc_connection.ts";
import { CsError } from "../../src/ipc/cs_error.ts";
import { IpcClosedError, IpcNotRunningError } from "../../src/ipc/errors.ts";
import { type IpcCloseReason, IpcServer } from "../../src/ipc/server.ts";

const SERVER_URL = new URL("../../src/ipc/server.ts", import.meta.url).href;
const CLIENT_URL = new URL(
  "../../src/client/ipc_connection.ts",
  import.meta.url,
).href;

async function waitFor<T>(
  check: () => T | undefined | false,
  { timeoutMs, what }: { timeoutMs: number; what: string },
): Promise<T> {
  const end = performance.now() + timeoutMs;
  while (performance.now() < end) {
    const v = check();
    if (v !== undefined && v !== false) return v as T;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** A `deno eval` child whose stdout lines are collected. */
class Child {
  readonly lines: string[] = [];
  readonly #process: Deno.ChildProcess;
  readonly #pump: Promise<void>;

  constructor(
    code: string,
    options: { asUid?: number; denoDir?: string } = {},
  ) {
    const deno = Deno.execPath();
    const args = ["eval", "--no-config", code];
    const command = options.asUid === undefined
      ? new Deno.Command(deno, { args, stdout: "piped", stderr: "inherit" })
      : new Deno.Command("setpriv", {
        args: [
          `--reuid=${options.asUid}`,
          `--regid=${options.asUid}`,
          "--clear-groups",
          "env",
          `DENO_DIR=${options.denoDir}`,
          `HOME=${options.denoDir}`,
          deno,
          ...args,
        ],
        stdout: "piped",
        stderr: "inherit",
      });
    const process = command.spawn();
    this.#process = process;
    this.#pump = (async () => {
      let text = "";
      for await (
        const chunk of process.stdout.pipeThrough(new TextDecoderStream())
      ) {
        text += chunk;
        const parts = text.split("\n");
        text = parts.pop()!;
        this.lines.push(...parts);
      }
    })();
  }

  line(prefix: string, timeoutMs = 15_000): Promise<string> {
    return waitFor(() => this.lines.find((l) => l.startsWith(prefix)), {
      timeoutMs,
      what: `child line "${prefix}" (got ${JSON.stringify(this.lines)})`,
    });
  }

  async kill(): Promise<void> {
    try {
      this.#process.kill("SIGKILL");
    } catch {
      // already exited
    }
    await this.#process.status;
    await this.#pump;
  }
}

function daemonCode(path: string): string {
  return `
    import { IpcServer } from ${JSON.stringify(SERVER_URL)};
    await IpcServer.listen({
      path: ${JSON.stringify(path)},
      handler: {
        open: () => ({ ok: true }),
        request: (_c, fn, payload) =>
          fn === 99 ? new Promise(() => {}) : { status: 1, payload },
        close: () => {},
      },
    });
    console.log("ready");
    await new Promise(() => {});
  `;
}

Deno.test("a SIGKILLed daemon's stale socket refuses clients and is replaced by the next daemon", async () => {
  const dir = await Deno.makeTempDir({ dir: "/tmp", prefix: "ipci" });
  const path = `${dir}/d.sock`;
  const daemon = new Child(daemonCode(path));
  let server: IpcServer | null = null;
  try {
    await daemon.line("ready");
    const conn = await IpcConnection.connect({ path, service: "cpg" });
    // Never answered; the rejection is caught now, or it would be unhandled.
    const pending = conn.request(99).then(() => null, (e: unknown) => e);
    assertEquals(
      (await conn.request(1, Uint8Array.of(7))).payload,
      Uint8Array.of(7),
    );
    await daemon.kill();

    // The client notices the daemon's death and fails what was pending.
    const info = await conn.closed;
    assertEquals(info.reason, "disconnect");
    const rejected = await pending;
    assert(rejected instanceof IpcClosedError, `got ${rejected}`);

    // SIGKILL left the socket file behind: clients are told nobody runs.
    assert(Deno.lstatSync(path).isSocket);
    let refused: unknown = null;
    await IpcConnection.connect({ path, service: "cpg" }).catch((
      e,
    ) => (refused = e));
    assert(refused instanceof IpcNotRunningError, `got ${refused}`);
    assert((refused as Error).message.includes("refused"));

    // The next daemon probes, removes the stale file and serves.
    server = await IpcServer.listen({
      path,
      handler: {
        open: () => ({ ok: true }),
        request: () => ({ status: CsError.OK }),
        close: () => {},
      },
    });
    const again = await IpcConnection.connect({ path, service: "cpg" });
    assertEquals((await again.request(1)).status, CsError.OK);
    await again.close();
  } finally {
    await daemon.kill();
    await server?.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a SIGKILLed client is closed at once and the daemon keeps serving", async () => {
  const dir = await Deno.makeTempDir({ dir: "/tmp", prefix: "ipci" });
  const path = `${dir}/d.sock`;
  const closes: { id: number; reason: IpcCloseReason }[] = [];
  const server = await IpcServer.listen({
    path,
    handler: {
      open: () => ({ ok: true }),
      request: () => ({ status: CsError.OK }),
      close: (conn, reason) => closes.push({ id: conn.id, reason }),
    },
  });
  const client = new Child(`
    import { IpcConnection } from ${JSON.stringify(CLIENT_URL)};
    const conn = await IpcConnection.connect({ path: ${
    JSON.stringify(path)
  }, service: "cpg" });
    await conn.request(1);
    console.log("ready " + conn.connectionId);
    await new Promise(() => {});
  `);
  try {
    const id = Number((await client.line("ready ")).split(" ")[1]);
    assertEquals(server.connectionStats().map((s) => s.id), [id]);
    // The daemon keeps pushing events at the dead client: no harm done.
    server.sendEvent(id, new Uint8Array(100));
    await client.kill();
    const reason = await waitFor(
      () => closes.find((c) => c.id === id)?.reason,
      {
        timeoutMs: 2_000,
        what: "handler.close after SIGKILL",
      },
    );
    assertEquals(reason, "disconnect");
    assertEquals(server.connectionStats(), []);
    const other = await IpcConnection.connect({ path, service: "cpg" });
    assertEquals((await other.request(2)).status, CsError.OK);
    await other.close();
  } finally {
    await client.kill();
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "a user outside the socket's mode and group gets IpcPermissionError",
  ignore: Deno.build.os !== "linux" || Deno.uid() !== 0,
  fn: async () => {
    const dir = await Deno.makeTempDir({ dir: "/tmp", prefix: "ipci" });
    await Deno.chmod(dir, 0o755); // nobody may traverse; the socket decides
    const denoDir = `${dir}/deno`;
    await Deno.mkdir(denoDir, { mode: 0o777 });
    await Deno.chmod(denoDir, 0o777);
    const path = `${dir}/d.sock`;
    const server = await IpcServer.listen({
      path,
      mode: 0o660, // root:root; nobody is neither
      handler: {
        open: () => ({ ok: true }),
        request: () => ({ status: CsError.OK }),
        close: () => {},
      },
    });
    const intruder = new Child(
      `
      import { IpcConnection } from ${JSON.stringify(CLIENT_URL)};
      try {
        await IpcConnection.connect({ path: ${
        JSON.stringify(path)
      }, service: "cpg" });
        console.log("result connected");
      } catch (e) {
        console.log("result " + e.name + " " + e.code);
      }
    `,
      { asUid: 65534, denoDir },
    );
    try {
      assertEquals(
        await intruder.line("result "),
        "result IpcPermissionError 11",
      );
      assertEquals(server.stats().accepted, 0);
    } finally {
      await intruder.kill();
      await server.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
