import assert from "node:assert/strict";
import { main } from "../../../src/admin/keygen.ts";

/** Runs keygen with console output captured. */
async function run(
  args: string[],
): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const { log, error } = console;
  console.log = (...xs: unknown[]) => void out.push(xs.join(" "));
  console.error = (...xs: unknown[]) => void err.push(xs.join(" "));
  try {
    const code = await main(args);
    return { code, out: out.join("\n"), err: err.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "keygen_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function names(dir: string): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of Deno.readDir(dir)) found.push(entry.name);
  return found.sort();
}

Deno.test("keygen main() writes a 256-byte 0400 key and says so", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/authkey`;
    const r = await run(["-k", path]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /wrote a 256-byte key to .*authkey \(mode 0400\)/);
    const key = await Deno.readFile(path);
    assert.equal(key.length, 256);
    assert.ok(key.some((b) => b !== 0), "key is not all zero");
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o400);
    assert.deepEqual(await names(dir), ["authkey"], "no temp file left");
  });
});

Deno.test("keygen main() accepts sizes 32..4096 and long options", async () => {
  await withTempDir(async (dir) => {
    for (const size of [32, 128, 4096]) {
      const path = `${dir}/k${size}`;
      const r = await run(["--key-file", path, "--size", String(size)]);
      assert.equal(r.code, 0, r.err);
      assert.equal((await Deno.readFile(path)).length, size);
    }
    assert.equal((await run(["-k", `${dir}/s`, "-s", "64"])).code, 0);
    assert.equal((await Deno.readFile(`${dir}/s`)).length, 64);
  });
});

Deno.test("keygen main() rejects sizes outside 32..4096 with exit 2", async () => {
  await withTempDir(async (dir) => {
    for (const size of ["31", "0", "4097", "abc", "", "64.5", "-64", "1e3"]) {
      const r = await run(["-k", `${dir}/authkey`, `--size=${size}`]);
      assert.equal(r.code, 2, `size ${JSON.stringify(size)}`);
      assert.match(
        r.err,
        /--size must be a whole number of bytes from 32 to 4096/,
      );
    }
    assert.deepEqual(await names(dir), []);
  });
});

Deno.test("keygen main() refuses to overwrite without --force", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/authkey`;
    assert.equal((await run(["-k", path])).code, 0);
    const first = await Deno.readFile(path);
    const r = await run(["-k", path]);
    assert.equal(r.code, 1);
    assert.match(r.err, /already exists; not overwriting it \(use --force/);
    assert.deepEqual(await Deno.readFile(path), first);

    const forced = await run(["-k", path, "--force", "--size", "512"]);
    assert.equal(forced.code, 0, forced.err);
    const second = await Deno.readFile(path);
    assert.equal(second.length, 512);
    assert.notDeepEqual(second.subarray(0, 256), first);
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o400);
    assert.deepEqual(await names(dir), ["authkey"]);
  });
});

Deno.test("keygen main() reports a missing directory with exit 1", async () => {
  await withTempDir(async (dir) => {
    const r = await run(["-k", `${dir}/nope/authkey`]);
    assert.equal(r.code, 1);
    assert.match(r.err, /nope\/authkey: cannot write key/);
  });
});

Deno.test("keygen main() handles --help and bad arguments", async () => {
  const help = await run(["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.out, /Usage: denosync keygen/);
  assert.equal((await run(["--bogus"])).code, 2);
  assert.equal((await run(["extra"])).code, 2);
  assert.equal((await run(["-k"])).code, 2);
  assert.equal((await run(["-k", ""])).code, 2);
});
