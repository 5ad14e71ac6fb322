import assert from "node:assert/strict";
import {
  LIBC_PATHS,
  raiseReceiveBuffer,
  sockaddrBytes,
  sockaddrMatches,
} from "../../../src/net/socket_buffer.ts";
import { DAEMON_FFI_PATHS } from "../../../src/daemon/ffi_paths.ts";

Deno.test("sockaddrBytes lays out sockaddr_in and sockaddr_in6 as Linux does", () => {
  assert.deepEqual(
    [...sockaddrBytes("127.0.0.1", 5405)!],
    [2, 0, 0x15, 0x1d, 127, 0, 0, 1],
  );
  const v6 = sockaddrBytes("fe80::1:2", 5405)!;
  assert.equal(v6.length, 24);
  assert.deepEqual([...v6.subarray(0, 4)], [10, 0, 0x15, 0x1d]);
  assert.deepEqual(
    [...v6.subarray(8)],
    [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2],
  );
  assert.equal(sockaddrBytes("node1", 5405), null);
});

Deno.test("sockaddrMatches compares family, port and address only", () => {
  const want = sockaddrBytes("10.0.0.1", 5405)!;
  // getsockname's sockaddr_in is 16 bytes: 8 bytes of zero padding follow.
  const got = new Uint8Array(16);
  got.set(want);
  assert.ok(sockaddrMatches(got, want));
  assert.ok(!sockaddrMatches(got, sockaddrBytes("10.0.0.1", 5406)!));
  assert.ok(!sockaddrMatches(got, sockaddrBytes("10.0.0.2", 5405)!));
  assert.ok(!sockaddrMatches(got.subarray(0, 4), want));
  const want6 = sockaddrBytes("::1", 5405)!;
  const got6 = new Uint8Array(28);
  got6.set(want6);
  got6[4] = 7; // flowinfo differs: still the same socket address
  assert.ok(sockaddrMatches(got6, want6));
  assert.ok(!sockaddrMatches(got, want6));
});

Deno.test("raiseReceiveBuffer grows a real socket's buffer, and says why not when it cannot", () => {
  const sock = Deno.listenDatagram({
    transport: "udp",
    hostname: "127.0.0.1",
    port: 0,
  });
  try {
    const { port } = sock.addr as Deno.NetAddr;
    const before = Number(
      Deno.readTextFileSync("/proc/sys/net/core/rmem_default").trim(),
    );
    const r = raiseReceiveBuffer("127.0.0.1", port, 4 * 1024 * 1024);
    assert.ok(r.ok, JSON.stringify(r));
    assert.ok(r.bytes > before, `${r.bytes} > ${before}`);
    // Nobody here is bound to port 9 (discard) on 127.0.0.3.
    const none = raiseReceiveBuffer("127.0.0.3", 9);
    assert.ok(!none.ok && none.reason.includes("no socket of this process"));
    const bad = raiseReceiveBuffer("localhost", port);
    assert.ok(!bad.ok && bad.reason.includes("not an IP literal"));
  } finally {
    sock.close();
  }
});

Deno.test("raiseReceiveBuffer without FFI permission leaves the socket alone and says so", async () => {
  const module = new URL("../../../src/net/socket_buffer.ts", import.meta.url);
  const script = `
    import { raiseReceiveBuffer } from "${module.href}";
    const s = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
    console.log(JSON.stringify(raiseReceiveBuffer("127.0.0.1", s.addr.port)));
    s.close();`;
  // `deno eval` would grant everything: run a file with scoped flags.
  const file = await Deno.makeTempFile({ suffix: ".ts" });
  await Deno.writeTextFile(file, script);
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--unstable-net",
      "--allow-net=127.0.0.1",
      `--allow-read=${module.pathname.replace(/\/src\/.*$/, "")}`,
      file,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output().finally(() => Deno.remove(file));
  const text = new TextDecoder().decode(out.stdout).trim();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const r = JSON.parse(text);
  assert.equal(r.ok, false);
  assert.match(r.reason, /no FFI permission for libc/);
});

Deno.test("deno task denosync grants exactly the libraries the daemon loads", () => {
  const tasks = JSON.parse(
    Deno.readTextFileSync(new URL("../../../deno.json", import.meta.url)),
  ).tasks;
  const command: string = tasks.denosync.command;
  const flag = (name: string) =>
    (/--allow-[a-z]+=\S+/g[Symbol.match](command) ?? [])
      .find((f) => f.startsWith(`--allow-${name}=`))!
      .slice(`--allow-${name}=`.length).split(",");
  assert.deepEqual(flag("ffi"), [...DAEMON_FFI_PATHS]);
  for (const path of LIBC_PATHS) assert.ok(DAEMON_FFI_PATHS.includes(path));
});
