/**
 * Builds the single binary `dist/denosync` with `deno compile`, baking in the
 * same scoped permissions as the `denosync` task in deno.json (read from
 * there, so the two never drift apart).
 *
 * `deno compile` needs `denort`, the slim runtime that the binary is built
 * on. Deno downloads it from dl.deno.land, which this environment cannot
 * reach, so this script looks for it first and stops with a clear message
 * when it is missing (DENO_NOTES.md section 6):
 *   1. `DENORT_BIN=/path/to/denort` (passed through to deno compile);
 *   2. the cached `$DENO_DIR/dl/release/v<version>/denort-<target>.zip`.
 *
 * Usage: deno run -A scripts/compile.ts   (or: deno task compile)
 *
 * @module
 */

/** Where the binary goes, relative to the repository root. */
export const OUTPUT = "dist/denosync";

/**
 * Tooling that `npm ci` puts in node_modules but the product never imports.
 * With `nodeModulesDir: "manual"` deno compile embeds all of node_modules,
 * which would otherwise add the ~95 MB deno CLI to the binary.
 */
export const EMBED_EXCLUDES: readonly string[] = [
  "node_modules/deno",
  "node_modules/@deno",
  "node_modules/@types",
  "node_modules/undici-types",
  "node_modules/.bin",
];

/** Splits a task command line into words, honouring '…' and "…" quotes. */
export function splitCommand(command: string): string[] {
  const words: string[] = [];
  let word = "";
  let inWord = false;
  let quote: "'" | '"' | null = null;
  for (const c of command) {
    if (quote !== null) {
      if (c === quote) quote = null;
      else word += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = "";
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (quote !== null) {
    throw new Error(`unterminated ${quote} quote in task command: ${command}`);
  }
  if (inWord) words.push(word);
  return words;
}

/**
 * The runtime flags of a `deno run <flags> main.ts` task command. Refuses
 * `-A`/`--allow-all`: the product runs with scoped permissions only.
 */
export function permissionFlags(taskCommand: string): string[] {
  // Tasks may start deno as `env deno` (see the note in deno.json).
  const all = splitCommand(taskCommand);
  const words = all[0] === "env" ? all.slice(1) : all;
  const run = words.indexOf("run");
  const entry = words.findIndex((w) =>
    w === "main.ts" || w.endsWith("/main.ts")
  );
  if (words[0] !== "deno" || run !== 1 || entry < run) {
    throw new Error(
      `deno.json: tasks.denosync must look like "[env] deno run <flags> main.ts", got "${taskCommand}"`,
    );
  }
  const flags = words.slice(run + 1, entry);
  const allowAll = flags.find((f) => f === "-A" || f === "--allow-all");
  if (allowAll !== undefined) {
    throw new Error(
      `deno.json: tasks.denosync uses ${allowAll}; the product must run with scoped permissions`,
    );
  }
  return flags;
}

/** The path where `deno compile` looks for a cached denort zip. */
export function denortZipPath(
  options: { denoDir: string; version: string; target: string },
): string {
  const { denoDir, version, target } = options;
  return `${denoDir}/dl/release/v${version}/denort-${target}.zip`;
}

/** The message printed when no denort is available. */
export function missingDenortMessage(
  options: { version: string; target: string; zipPath: string },
): string {
  const { version, target, zipPath } = options;
  return [
    `compile: deno compile needs the denort runtime (deno ${version}, ${target}), which cannot be downloaded here (dl.deno.land is unreachable)`,
    `  fix: set DENORT_BIN=/path/to/denort (a denort ${version} binary, not the full deno CLI)`,
    `  or:  put denort-${target}.zip at ${zipPath}`,
    `  meanwhile, run from source: deno task denosync <subcommand>`,
  ].join("\n");
}

/** Where denort comes from, or why it cannot be used. */
export type DenortSource =
  | { ok: true; how: "DENORT_BIN" | "cache"; path: string }
  | { ok: false; message: string };

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

async function output(
  cmd: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const result = await new Deno.Command(cmd, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(20_000),
  }).output();
  const decoder = new TextDecoder();
  return {
    code: result.code,
    stdout: decoder.decode(result.stdout),
    stderr: decoder.decode(result.stderr),
  };
}

/**
 * Finds denort: `DENORT_BIN` first, then deno's download cache. A
 * `DENORT_BIN` that is really the full deno CLI is refused, because the
 * "compiled" result would just be deno itself (DENO_NOTES.md section 6).
 */
export async function findDenort(
  options: {
    env: string | undefined;
    denoDir: string;
    version: string;
    target: string;
  },
): Promise<DenortSource> {
  const { env, denoDir, version, target } = options;
  if (env !== undefined && env !== "") {
    if (!(await isFile(env))) {
      return { ok: false, message: `compile: DENORT_BIN=${env} is not a file` };
    }
    let printed: string;
    try {
      printed = (await output(env, ["--version"])).stdout;
    } catch (error) {
      return {
        ok: false,
        message: `compile: DENORT_BIN=${env} cannot be run: ${
          error instanceof Error ? error.message : String(error)
        }`,
      };
    }
    if (printed.startsWith("deno ")) {
      return {
        ok: false,
        message: `compile: DENORT_BIN=${env} is the full deno CLI ("${
          printed.split("\n")[0]
        }"), not denort; the output would just be deno itself. Point DENORT_BIN at a real denort binary`,
      };
    }
    return { ok: true, how: "DENORT_BIN", path: env };
  }
  const zipPath = denortZipPath({ denoDir, version, target });
  if (await isFile(zipPath)) return { ok: true, how: "cache", path: zipPath };
  return {
    ok: false,
    message: missingDenortMessage({ version, target, zipPath }),
  };
}

async function denoDir(deno: string): Promise<string> {
  const info = await output(deno, ["info", "--json"]);
  if (info.code !== 0) {
    throw new Error(`deno info --json failed: ${info.stderr.trim()}`);
  }
  const dir = JSON.parse(info.stdout).denoDir;
  if (typeof dir !== "string") {
    throw new Error(`deno info --json has no denoDir: ${info.stdout}`);
  }
  return dir;
}

async function compile(): Promise<number> {
  const root = decodeURIComponent(new URL("..", import.meta.url).pathname);
  Deno.chdir(root);
  const deno = Deno.execPath();
  const config = JSON.parse(await Deno.readTextFile("deno.json"));
  const task = config.tasks?.denosync;
  const command = typeof task === "string" ? task : task?.command;
  if (typeof command !== "string") {
    console.error(
      "compile: deno.json has no tasks.denosync to take permissions from",
    );
    return 1;
  }
  const flags = permissionFlags(command);

  const found = await findDenort({
    env: Deno.env.get("DENORT_BIN"),
    denoDir: await denoDir(deno),
    version: Deno.version.deno,
    target: Deno.build.target,
  });
  if (!found.ok) {
    console.error(found.message);
    return 1;
  }
  console.log(`compile: using denort from ${found.how} (${found.path})`);

  await Deno.mkdir("dist", { recursive: true });
  const args = [
    "compile",
    ...flags,
    ...EMBED_EXCLUDES.map((path) => `--exclude=${path}`),
    "--output",
    OUTPUT,
    "main.ts",
  ];
  console.log(`compile: deno ${args.join(" ")}`);
  const status = await new Deno.Command(deno, { args, stdin: "null" }).spawn()
    .status;
  if (!status.success) {
    console.error(`compile: deno compile failed with exit code ${status.code}`);
    return 1;
  }

  // A cached zip or DENORT_BIN may still hold the full CLI: then the output
  // answers like deno, not like denosync. Do not leave such a file behind.
  const check = await output(OUTPUT, ["--version"]);
  if (!check.stdout.startsWith("denosync ")) {
    await Deno.remove(OUTPUT);
    console.error(
      `compile: ${OUTPUT} answered --version with "${check.stdout.trim()}" instead of "denosync …": the denort used is not a real denort; removed the output`,
    );
    return 1;
  }
  console.log(`compile: built ${OUTPUT} (${check.stdout.trim()})`);
  return 0;
}

if (import.meta.main) {
  Deno.exit(await compile());
}
