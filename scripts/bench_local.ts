/**
 * `deno task bench`: starts a 3-node cluster on loopback (the demo's
 * configuration: 127.0.0.1-3, two links, no root needed), runs
 * `denosync bench` against all three daemons, and stops them whatever
 * happens (also on Ctrl-C).
 *
 *   deno task bench [denosync bench options...]
 *   deno task bench --duration 3 --size 1024 --json
 *
 * Options are passed to `denosync bench` unchanged (its --help lists them);
 * --socket and --run-dir are filled in here. DENOSYNC_BENCH_NETMTU=1500 sets
 * totem.netmtu (on loopback alone the daemon otherwise uses larger frames).
 * DENOSYNC_BENCH_CPU_PROF=DIR writes a V8 CPU profile of every daemon into
 * DIR (profile the bench client too with `deno run --cpu-prof`).
 * DENOSYNC_BENCH_CRYPTO=1 turns frame crypto on (a fresh authkey in the
 * cluster's temporary directory). DENOSYNC_BENCH_TOTEM="key: value; ..."
 * adds lines to the totem section.
 */
import { main as bench } from "../src/bench/cli.ts";
import { readStatus } from "../src/daemon/status.ts";
import { daemonCommand, demoConfig } from "../src/demo/cli.ts";
import { totemLinesFromEnv } from "./bench/totem_env.ts";

const NODES = 3;
const READY_TIMEOUT_MS = 30_000;

if (Deno.args.includes("-h") || Deno.args.includes("--help")) {
  console.log(
    "deno task bench [options]: runs `denosync bench` against a 3-node cluster it starts on loopback.\n",
  );
  Deno.exit(await bench(["--help"]));
}

const root = await Deno.makeTempDir({ prefix: "denosync-bench-" });
const children: Deno.ChildProcess[] = [];
let stopping: Promise<void> | null = null;

function stop(): Promise<void> {
  stopping ??= (async () => {
    for (const c of children) {
      try {
        c.kill("SIGTERM");
      } catch {
        // already gone
      }
    }
    await Promise.all(children.map((c) => c.status));
    await Deno.remove(root, { recursive: true }).catch(() => {});
  })();
  return stopping;
}

const onSignal = () => {
  console.error("bench: interrupted, stopping the cluster");
  stop().then(() => Deno.exit(130));
};
Deno.addSignalListener("SIGINT", onSignal);
Deno.addSignalListener("SIGTERM", onSignal);

let code = 1;
try {
  const port = 20000 + Math.floor(Math.random() * 15000) * 2;
  const conf = `${root}/corosync.conf`;
  // DENOSYNC_BENCH_NETMTU=1500 measures the frame size a real network
  // gives; on loopback alone the daemon picks larger frames (netmtu.ts).
  const netmtu = Deno.env.get("DENOSYNC_BENCH_NETMTU");
  let text = demoConfig(NODES, port);
  if (netmtu !== undefined) {
    if (!/^\d+$/.test(netmtu)) {
      throw new Error(
        `DENOSYNC_BENCH_NETMTU must be a number, got "${netmtu}"`,
      );
    }
    text = text.replace("totem {\n", `totem {\n    netmtu: ${netmtu}\n`);
  }
  text = text.replace("totem {\n", `totem {\n${totemLinesFromEnv()}`);
  const cryptoOn = Deno.env.get("DENOSYNC_BENCH_CRYPTO");
  if (cryptoOn !== undefined && cryptoOn !== "0") {
    if (cryptoOn !== "1") {
      throw new Error(
        `DENOSYNC_BENCH_CRYPTO must be 0 or 1, got "${cryptoOn}"`,
      );
    }
    const key = `${root}/authkey`;
    await Deno.writeFile(key, crypto.getRandomValues(new Uint8Array(128)), {
      mode: 0o600,
    });
    text = text.replace(
      "totem {\n",
      `totem {\n    crypto_cipher: aes256\n    crypto_hash: sha256\n    keyfile: ${key}\n`,
    );
  }
  await Deno.writeTextFile(conf, text);
  const profDir = Deno.env.get("DENOSYNC_BENCH_CPU_PROF");
  const dirs: string[] = [];
  for (let id = 1; id <= NODES; id++) {
    const dir = `${root}/node${id}`;
    await Deno.mkdir(dir);
    dirs.push(dir);
    children.push(
      new Deno.Command(Deno.execPath(), {
        args: withProfiling(
          daemonCommand(
            ["run", "-c", conf, "--nodeid", String(id), "--run-dir", dir],
            [root],
            profDir === undefined ? [root] : [root, profDir],
          ),
          profDir,
        ),
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn(),
    );
  }
  console.error(
    `bench: started ${NODES} daemons in ${root}, waiting for the ring`,
  );
  const end = performance.now() + READY_TIMEOUT_MS;
  for (;;) {
    const st = await Promise.all(dirs.map((d) => readStatus(d)));
    if (
      st.every((s) =>
        s !== null && s.state === "operational" && s.members.length === NODES
      )
    ) break;
    if (performance.now() > end) {
      throw new Error(
        `the ${NODES} daemons did not form a ring within ${READY_TIMEOUT_MS} ms`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  code = await bench([...dirs.flatMap((d) => ["--run-dir", d]), ...Deno.args]);
} catch (e) {
  console.error(`bench: ${(e as Error).message}`);
} finally {
  Deno.removeSignalListener("SIGINT", onSignal);
  Deno.removeSignalListener("SIGTERM", onSignal);
  await stop();
}
Deno.exit(code);

/** Adds `--cpu-prof` after `deno run` when a profile directory is given. */
function withProfiling(args: string[], dir: string | undefined): string[] {
  if (dir === undefined || args[0] !== "run") return args;
  return ["run", "--cpu-prof", `--cpu-prof-dir=${dir}`, ...args.slice(1)];
}
