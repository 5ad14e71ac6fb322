import {
  deepStrictEqual as assertEquals,
  throws as assertThrows,
} from "node:assert/strict";
import {
  denortZipPath,
  findDenort,
  permissionFlags,
  splitCommand,
} from "../../../scripts/compile.ts";

Deno.test("splitCommand() splits on blanks and honours quotes", () => {
  assertEquals(
    splitCommand(`env deno run  '--allow-env=A,B_*' "x y" main.ts`),
    [
      "env",
      "deno",
      "run",
      "--allow-env=A,B_*",
      "x y",
      "main.ts",
    ],
  );
  assertEquals(splitCommand("a '' b"), ["a", "", "b"]);
  assertThrows(() => splitCommand("deno 'run"), /unterminated/);
});

Deno.test("permissionFlags() takes the flags between run and main.ts", () => {
  assertEquals(permissionFlags("deno run --allow-net --unstable-net main.ts"), [
    "--allow-net",
    "--unstable-net",
  ]);
  assertEquals(permissionFlags("env deno run '--allow-env=X_*' ./main.ts"), [
    "--allow-env=X_*",
  ]);
  assertThrows(
    () => permissionFlags("deno run -A main.ts"),
    /scoped permissions/,
  );
  assertThrows(
    () => permissionFlags("deno run --allow-all main.ts"),
    /scoped permissions/,
  );
  assertThrows(() => permissionFlags("deno test main.ts"), /must look like/);
});

Deno.test("permissionFlags() accepts the denosync task in deno.json", async () => {
  const config = JSON.parse(
    await Deno.readTextFile(new URL("../../../deno.json", import.meta.url)),
  );
  const flags = permissionFlags(config.tasks.denosync.command);
  for (const needed of ["--unstable-net", "--allow-net", "--allow-run"]) {
    assertEquals(flags.includes(needed), true, `${needed} in ${flags}`);
  }
  const env = flags.find((f) => f.startsWith("--allow-env="));
  assertEquals(
    env?.split("=")[1].split(",").includes("LOG_TOKENS"),
    true,
    `yaml needs LOG_TOKENS: ${env}`,
  );
});

Deno.test("denortZipPath() matches deno's download cache layout", () => {
  assertEquals(
    denortZipPath({
      denoDir: "/c/deno",
      version: "2.9.6",
      target: "x86_64-unknown-linux-gnu",
    }),
    "/c/deno/dl/release/v2.9.6/denort-x86_64-unknown-linux-gnu.zip",
  );
});

Deno.test("findDenort() refuses the full deno CLI as DENORT_BIN", async () => {
  const found = await findDenort({
    env: Deno.execPath(),
    denoDir: "/nonexistent",
    version: "2.9.6",
    target: "x86_64-unknown-linux-gnu",
  });
  assertEquals(found.ok, false);
  assertEquals(
    !found.ok && found.message.includes("full deno CLI"),
    true,
    JSON.stringify(found),
  );
});

Deno.test("findDenort() explains how to provide denort when none is found", async () => {
  const found = await findDenort({
    env: undefined,
    denoDir: "/nonexistent",
    version: "2.9.6",
    target: "x86_64-unknown-linux-gnu",
  });
  assertEquals(found.ok, false);
  const message = found.ok ? "" : found.message;
  assertEquals(message.includes("DENORT_BIN=/path/to/denort"), true, message);
  assertEquals(message.includes("cannot be downloaded here"), true, message);
  assertEquals(
    message.includes(
      "/nonexistent/dl/release/v2.9.6/denort-x86_64-unknown-linux-gnu.zip",
    ),
    true,
    message,
  );
});

Deno.test("findDenort() uses a cached zip when present", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const zip = denortZipPath({ denoDir: dir, version: "9.9.9", target: "t" });
    await Deno.mkdir(zip.slice(0, zip.lastIndexOf("/")), { recursive: true });
    await Deno.writeFile(zip, new Uint8Array([0x50, 0x4b]));
    const found = await findDenort({
      env: "",
      denoDir: dir,
      version: "9.9.9",
      target: "t",
    });
    assertEquals(found, { ok: true, how: "cache", path: zip });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
