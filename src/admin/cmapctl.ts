/**
 * `denosync cmapctl`: read, write and track the local daemon's cmap
 * database, like `corosync-cmapctl`.
 *
 * @module
 */
import { connectOrExit, socketPathOf } from "./_connect.ts";
import { parseArgs } from "node:util";
import {
  type CmapChange,
  CmapClient,
  CmapError,
  type CmapValue,
} from "../client/cmap.ts";
import {
  type CmapType,
  formatValue,
  parseCmapType,
  parseValue,
  toHex,
} from "../../engines/cmap/values.ts";
import { IpcError } from "../ipc/errors.ts";
import { CsError } from "../ipc/cs_error.ts";
import { isReadOnlyKey } from "../../engines/cmap/cmap.ts";

const USAGE = `Usage: denosync cmapctl [options] [PREFIX]

Read, write and track the cmap database, like corosync-cmapctl.

  (none)             print every key, or every key under PREFIX, as
                     "key (type) = value"
  -g KEY             print one key
  -s KEY TYPE VALUE  set a key (TYPE: i8 u8 i16 u16 i32 u32 i64 u64 flt dbl
                     str bin, or int8 ... binary; bin VALUE is hex)
  -d KEY             delete a key
  -D PREFIX          delete every key under PREFIX
  -t KEY             track changes of a key until Ctrl-C
  -T PREFIX          track changes of every key under PREFIX until Ctrl-C
  -p FILE            apply a file of changes, one per line: "KEY TYPE VALUE"
                     sets, "^KEY" deletes; blank lines and "#" comments are
                     skipped. Every line is checked before any is applied;
                     errors name FILE:LINE
  -C WHAT            zero statistics: all, totem (or srp), knet or ipc
                     (writes the write-only key stats.clear.WHAT)
  -m MAP             list only one of Corosync's two maps: icmap (the
                     configuration and runtime keys) or stats (stats.*)
  -b                 print binary values as hex (default: as text when
                     printable, else hex)
  -q                 print values only, one per line (no key or type)
  --json             JSON output. Stable fields: list prints {"entries":
                     [{"key","type","value"}]}; -g prints {"key","type",
                     "value"}; tracking prints one {"event","key","type",
                     "oldValue","newValue"} per line. "type" is the long
                     name (uint8 ...); int64/uint64 values are decimal
                     strings, binary values hex strings, a missing value null
  --socket PATH      the daemon's IPC socket (default: $DENOSYNC_SOCKET or
                     /var/run/denosync/denosync.sock)
  --run-dir DIR      use DIR/denosync.sock (the daemon's --run-dir)
  -h, --help         show this help

Exit status: 0 ok, 1 error (e.g. key does not exist, read-only key), 2
usage error, 3 daemon not running or socket not permitted.`;

const EXIT_OK = 0;
const EXIT_ERROR = 1;
const EXIT_USAGE = 2;

/** corosync-cmapctl's short type names, used in the text output. */
const SHORT: Record<CmapType, string> = {
  int8: "i8",
  uint8: "u8",
  int16: "i16",
  uint16: "u16",
  int32: "i32",
  uint32: "u32",
  int64: "i64",
  uint64: "u64",
  float: "flt",
  double: "dbl",
  string: "str",
  binary: "bin",
};

type Command =
  | { kind: "list"; prefix: string; map?: "icmap" | "stats" }
  | { kind: "get"; key: string }
  | { kind: "set"; key: string; value: CmapValue }
  | { kind: "delete"; key: string }
  | { kind: "delete_prefix"; prefix: string }
  | { kind: "track"; key: string; prefix: boolean }
  | { kind: "clear"; what: string }
  | { kind: "load"; file: string; ops: LoadOp[] };

/** One line of a `-p` file. */
export type LoadOp =
  | { line: number; key: string; value: CmapValue }
  | { line: number; key: string; value: null };

/** What `-C` accepts: the daemon's `stats.clear.*` keys. */
const CLEAR_TARGETS = ["all", "totem", "srp", "knet", "ipc"];

/** Entry point of `denosync cmapctl`; resolves to the exit code. */
export async function main(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        g: { type: "string" },
        s: { type: "boolean", default: false },
        d: { type: "string" },
        D: { type: "string" },
        t: { type: "string" },
        T: { type: "string" },
        C: { type: "string" },
        p: { type: "string" },
        m: { type: "string" },
        b: { type: "boolean", default: false },
        q: { type: "boolean", default: false },
        json: { type: "boolean", default: false },
        socket: { type: "string" },
        "run-dir": { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (e) {
    return usage((e as Error).message);
  }
  const { values: v, positionals } = parsed;
  if (v.help) {
    console.log(USAGE);
    return EXIT_OK;
  }
  const chosen = [
    v.g !== undefined,
    v.s,
    v.d !== undefined,
    v.D !== undefined,
    v.t !== undefined,
    v.T !== undefined,
    v.C !== undefined,
    v.p !== undefined,
  ].filter(Boolean).length;
  if (chosen > 1) {
    return usage("choose one of -g, -s, -d, -D, -t, -T, -C, -p");
  }
  if (v.m !== undefined && v.m !== "icmap" && v.m !== "stats") {
    return usage(`-m takes icmap or stats, got "${v.m}"`);
  }
  if (v.C !== undefined && !CLEAR_TARGETS.includes(v.C)) {
    return usage(`-C takes one of ${CLEAR_TARGETS.join(", ")}, got "${v.C}"`);
  }
  let command: Command;
  if (v.s) {
    if (positionals.length !== 3) return usage("-s needs KEY TYPE VALUE");
    const [key, typeText, valueText] = positionals;
    const type = parseCmapType(typeText);
    if (type === null) return usage(`unknown type "${typeText}"`);
    const parsedValue = parseValue(type, valueText);
    if (!parsedValue.ok) return usage(`-s ${key}: ${parsedValue.error}`);
    command = { kind: "set", key, value: parsedValue.value };
  } else {
    if (chosen === 1 && positionals.length > 0) {
      return usage(`unexpected argument "${positionals[0]}"`);
    }
    if (positionals.length > 1) return usage("at most one PREFIX");
    command = v.g !== undefined
      ? { kind: "get", key: v.g }
      : v.d !== undefined
      ? { kind: "delete", key: v.d }
      : v.D !== undefined
      ? { kind: "delete_prefix", prefix: v.D }
      : v.t !== undefined
      ? { kind: "track", key: v.t, prefix: false }
      : v.T !== undefined
      ? { kind: "track", key: v.T, prefix: true }
      : v.C !== undefined
      ? { kind: "clear", what: v.C }
      : v.p !== undefined
      ? { kind: "load", file: v.p, ops: [] }
      : {
        kind: "list",
        prefix: positionals[0] ?? "",
        map: v.m as "icmap" | "stats" | undefined,
      };
  }
  if (command.kind === "load") {
    // Read and check the whole file before connecting: a bad line must not
    // leave half of the file applied.
    let text: string;
    try {
      text = await Deno.readTextFile(command.file);
    } catch (e) {
      console.error(
        `denosync cmapctl: -p ${command.file}: ${(e as Error).message}`,
      );
      return EXIT_ERROR;
    }
    const ops = parseLoadFile(command.file, text);
    if (typeof ops === "string") {
      console.error(`denosync cmapctl: ${ops}`);
      return EXIT_ERROR;
    }
    command.ops = ops;
  }
  const socketPath = socketPathOf(v);

  const client = await connectOrExit(
    "cmapctl",
    () => CmapClient.initialize({ socketPath }),
  );
  if (typeof client === "number") return client;
  try {
    return await run(client, command, { json: v.json, hex: v.b, quiet: v.q });
  } catch (e) {
    if (e instanceof CmapError || e instanceof IpcError) {
      console.error(`denosync cmapctl: ${e.message}${explain(e, command)}`);
      return EXIT_ERROR;
    }
    throw e;
  } finally {
    await client.finalize().catch(() => {});
  }
}

/** Why the daemon refused, when the status alone does not say it. */
function explain(e: Error, c: Command): string {
  if (!(e instanceof CmapError) || e.code !== CsError.ACCESS) return "";
  const key = c.kind === "set" || c.kind === "delete"
    ? c.key
    : c.kind === "delete_prefix"
    ? c.prefix
    : null;
  if (key === null || !isReadOnlyKey(key)) return "";
  return `: ${key} is read-only (runtime.* and stats.* are kept by the daemon; only stats.clear.* may be written)`;
}

function usage(message: string): number {
  console.error(`denosync cmapctl: ${message}\n\n${USAGE}`);
  return EXIT_USAGE;
}

/** How values are printed. */
interface Output {
  json: boolean;
  hex: boolean;
  /** Values only (`-q`). */
  quiet: boolean;
}

async function run(
  client: CmapClient,
  c: Command,
  { json, hex, quiet }: Output,
): Promise<number> {
  switch (c.kind) {
    case "list": {
      // One database here; Corosync keeps stats.* in a map of its own.
      const entries = (await client.iter(c.prefix)).filter((e) =>
        c.map === undefined ||
        e.key.startsWith("stats.") === (c.map === "stats")
      );
      if (json) {
        console.log(JSON.stringify({
          entries: entries.map((e) => ({
            key: e.key,
            type: e.value.type,
            value: jsonValue(e.value),
          })),
        }));
      } else {
        for (const e of entries) {
          console.log(
            quiet ? formatValue(e.value, hex) : line(e.key, e.value, hex),
          );
        }
      }
      return EXIT_OK;
    }
    case "get": {
      const value = await client.get(c.key);
      console.log(
        json
          ? JSON.stringify({
            key: c.key,
            type: value.type,
            value: jsonValue(value),
          })
          : quiet
          ? formatValue(value, hex)
          : line(c.key, value, hex),
      );
      return EXIT_OK;
    }
    case "set":
      await client.set(c.key, c.value);
      return EXIT_OK;
    case "delete":
      await client.delete(c.key);
      return EXIT_OK;
    case "delete_prefix": {
      const entries = await client.iter(c.prefix);
      for (const e of entries) await client.delete(e.key);
      if (json) console.log(JSON.stringify({ deleted: entries.length }));
      return EXIT_OK;
    }
    case "track":
      return await track(client, c.key, c.prefix, json, hex);
    case "clear":
      await client.set(`stats.clear.${c.what}`, { type: "uint32", value: 1 });
      if (json) console.log(JSON.stringify({ cleared: c.what }));
      return EXIT_OK;
    case "load": {
      for (const op of c.ops) {
        try {
          if (op.value === null) await client.delete(op.key);
          else await client.set(op.key, op.value);
        } catch (e) {
          if (e instanceof CmapError) {
            throw new CmapError(
              `${c.file}:${op.line}: ${
                op.value === null ? "delete" : "set"
              } ${op.key}`,
              e.code,
            );
          }
          throw e;
        }
      }
      if (json) console.log(JSON.stringify({ applied: c.ops.length }));
      return EXIT_OK;
    }
  }
}

/**
 * Parses a `-p` file into its operations, or says what is wrong and where.
 * Values may contain spaces (everything after the type is the value).
 */
export function parseLoadFile(file: string, text: string): LoadOp[] | string {
  const ops: LoadOp[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const where = `${file}:${i + 1}`;
    const raw = lines[i].trim();
    if (raw === "" || raw.startsWith("#")) continue;
    if (raw.startsWith("^")) {
      const key = raw.slice(1).trim();
      if (key === "" || /\s/.test(key)) {
        return `${where}: "^" must be followed by one key`;
      }
      ops.push({ line: i + 1, key, value: null });
      continue;
    }
    const m = /^(\S+)\s+(\S+)\s+(.*)$/.exec(raw);
    if (m === null) return `${where}: expected "KEY TYPE VALUE" or "^KEY"`;
    const [, key, typeText, valueText] = m;
    const type = parseCmapType(typeText);
    if (type === null) return `${where}: unknown type "${typeText}"`;
    const parsed = parseValue(type, valueText);
    if (!parsed.ok) return `${where}: ${key}: ${parsed.error}`;
    ops.push({ line: i + 1, key, value: parsed.value });
  }
  return ops;
}

function line(key: string, value: CmapValue, hex: boolean): string {
  return `${key} (${SHORT[value.type]}) = ${formatValue(value, hex)}`;
}

function jsonValue(v: CmapValue | null): string | number | null {
  if (v === null) return null;
  switch (v.type) {
    case "int64":
    case "uint64":
      return v.value.toString();
    case "binary":
      return toHex(v.value);
    default:
      return v.value;
  }
}

async function track(
  client: CmapClient,
  key: string,
  prefix: boolean,
  json: boolean,
  hex: boolean,
): Promise<number> {
  const tracker = await client.track(key, { prefix });
  const stop = Promise.withResolvers<void>();
  const onInt = () => stop.resolve();
  Deno.addSignalListener("SIGINT", onInt);
  Deno.addSignalListener("SIGTERM", onInt);
  try {
    const it = tracker[Symbol.asyncIterator]();
    for (;;) {
      const next = await Promise.race([
        it.next(),
        stop.promise.then(() => null),
      ]);
      if (next === null || next.done) break;
      console.log(showChange(next.value, json, hex));
    }
  } finally {
    Deno.removeSignalListener("SIGINT", onInt);
    Deno.removeSignalListener("SIGTERM", onInt);
  }
  await tracker.stop().catch(() => {});
  return EXIT_OK;
}

function showChange(c: CmapChange, json: boolean, hex: boolean): string {
  if (json) {
    return JSON.stringify({
      event: c.event,
      key: c.key,
      type: c.type,
      oldValue: jsonValue(c.oldValue),
      newValue: jsonValue(c.newValue),
    });
  }
  const shown = c.newValue ?? c.oldValue!;
  const was = c.event === "modify" && c.oldValue !== null
    ? ` (was ${formatValue(c.oldValue, hex)}${
      c.oldValue.type === shown.type ? "" : ` ${SHORT[c.oldValue.type]}`
    })`
    : "";
  return `${c.event} ${line(c.key, shown, hex)}${was}`;
}
