/**
 * `denosync cpgtool`: the process groups of the cluster and their members,
 * like `corosync-cpgtool`, plus subcommands to join a group and print what
 * arrives, and to send messages to a group (for scripts and tests).
 *
 * @module
 */
import { connectOrExit, socketPathOf } from "./_connect.ts";
import { parseArgs } from "node:util";
import { CpgClient, CpgError, type CpgEvent } from "../client/cpg.ts";
import { IpcError } from "../ipc/errors.ts";

const USAGE =
  `Usage: denosync cpgtool [options]                  list groups and members
       denosync cpgtool [options] join GROUP       join, print deliveries and
                                                   membership changes until Ctrl-C
       denosync cpgtool [options] send GROUP [MESSAGE...]
                                                   send each MESSAGE (or each
                                                   line of stdin) to GROUP

Options:
  -s, --socket PATH   the daemon's IPC socket (default: $DENOSYNC_SOCKET or
                      /var/run/denosync/denosync.sock)
  --run-dir DIR       use DIR/denosync.sock (the daemon's --run-dir)
  -e                  list: group names only
  -n                  list: node ids only (no pids)
  -d DELIM            list: separate fields with DELIM
  --safe              send: safe delivery instead of agreed
  --json              JSON output: list prints {"groups":[{"name","members":
                      [{"nodeId","pid"}]}]}; join prints one JSON object per
                      event; send prints {"sent": N}
  -h, --help          show this help

Exit status: 0 ok, 1 error, 2 usage error, 3 daemon not running or socket
not permitted.`;

const EXIT_OK = 0;
const EXIT_ERROR = 1;
const EXIT_USAGE = 2;

/** Entry point of `denosync cpgtool`; resolves to the exit code. */
export async function main(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        socket: { type: "string", short: "s" },
        "run-dir": { type: "string" },
        e: { type: "boolean", default: false },
        n: { type: "boolean", default: false },
        d: { type: "string" },
        safe: { type: "boolean", default: false },
        json: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (e) {
    console.error(`denosync cpgtool: ${(e as Error).message}\n\n${USAGE}`);
    return EXIT_USAGE;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(USAGE);
    return EXIT_OK;
  }
  const socketPath = socketPathOf(values);
  const [command, group, ...rest] = positionals;
  if (command !== undefined && !["join", "send"].includes(command)) {
    console.error(
      `denosync cpgtool: unknown subcommand "${command}"\n\n${USAGE}`,
    );
    return EXIT_USAGE;
  }
  if (command !== undefined && (group === undefined || group === "")) {
    console.error(`denosync cpgtool ${command}: a GROUP name is required`);
    return EXIT_USAGE;
  }

  const client = await connectOrExit(
    "cpgtool",
    () => CpgClient.initialize({ socketPath }),
  );
  if (typeof client === "number") return client;
  try {
    if (command === "join") return await join(client, group!, values.json);
    if (command === "send") {
      return await send(client, group!, rest, values.safe, values.json);
    }
    return await list(client, {
      json: values.json,
      namesOnly: values.e,
      nodesOnly: values.n,
      delim: values.d,
    });
  } catch (e) {
    if (e instanceof CpgError || e instanceof IpcError) {
      console.error(`denosync cpgtool: ${e.message}`);
      return EXIT_ERROR;
    }
    throw e;
  } finally {
    await client.finalize().catch(() => {});
  }
}

async function list(
  client: CpgClient,
  o: { json: boolean; namesOnly: boolean; nodesOnly: boolean; delim?: string },
): Promise<number> {
  const groups = new Map<string, { nodeId: number; pid: number }[]>();
  for await (const item of client.iterate()) {
    const members = groups.get(item.group) ?? [];
    members.push({ nodeId: item.nodeId, pid: item.pid });
    groups.set(item.group, members);
  }
  const names = [...groups.keys()].sort();
  if (o.json) {
    console.log(JSON.stringify({
      groups: names.map((name) => ({
        name,
        members: groups.get(name)!.sort((a, b) =>
          a.nodeId - b.nodeId || a.pid - b.pid
        ),
      })),
    }));
    return EXIT_OK;
  }
  if (o.delim !== undefined) {
    for (const name of names) {
      for (const m of groups.get(name)!) {
        console.log(
          [name, ...(o.nodesOnly ? [] : [String(m.pid)]), String(m.nodeId)]
            .join(o.delim),
        );
      }
    }
    return EXIT_OK;
  }
  console.log(
    o.namesOnly
      ? "Group Name"
      : `Group Name${" ".repeat(10)}${o.nodesOnly ? "" : "PID".padStart(10)}${
        "Node ID".padStart(10)
      }`,
  );
  for (const name of names) {
    console.log(name);
    if (o.namesOnly) continue;
    for (
      const m of groups.get(name)!.sort((a, b) =>
        a.nodeId - b.nodeId || a.pid - b.pid
      )
    ) {
      console.log(
        `${" ".repeat(20)}${o.nodesOnly ? "" : String(m.pid).padStart(10)}${
          String(m.nodeId).padStart(10)
        }`,
      );
    }
  }
  return EXIT_OK;
}

async function join(
  client: CpgClient,
  group: string,
  json: boolean,
): Promise<number> {
  await client.join(group);
  const decoder = new TextDecoder();
  const stop = Promise.withResolvers<void>();
  const onInt = () => stop.resolve();
  Deno.addSignalListener("SIGINT", onInt);
  Deno.addSignalListener("SIGTERM", onInt);
  try {
    const it = client.events();
    for (;;) {
      const next = await Promise.race([
        it.next(),
        stop.promise.then(() => null),
      ]);
      if (next === null || next.done) break;
      print(next.value, json, decoder);
    }
  } finally {
    Deno.removeSignalListener("SIGINT", onInt);
    Deno.removeSignalListener("SIGTERM", onInt);
  }
  await client.leave().catch(() => {});
  return EXIT_OK;
}

function print(ev: CpgEvent, json: boolean, decoder: TextDecoder): void {
  if (json) {
    console.log(JSON.stringify(
      ev.type === "deliver"
        ? { ...ev, message: decoder.decode(ev.message) }
        : ev,
    ));
    return;
  }
  switch (ev.type) {
    case "deliver":
      console.log(
        `deliver ${ev.group} from node ${ev.nodeId} pid ${ev.pid}: ${
          decoder.decode(ev.message)
        }`,
      );
      break;
    case "confchg": {
      const who = (
        l: readonly { nodeId: number; pid: number; reason?: string }[],
      ) =>
        l.map((p) => `${p.nodeId}/${p.pid}${p.reason ? ` (${p.reason})` : ""}`)
          .join(", ") || "-";
      console.log(
        `confchg ${ev.group}: members ${who(ev.members)}; left ${
          who(ev.left)
        }; joined ${who(ev.joined)}`,
      );
      break;
    }
    case "totem_confchg":
      console.log(
        `ring ${ev.ringId.rep}.${ev.ringId.seq}: nodes ${ev.members.join(" ")}`,
      );
      break;
  }
}

async function send(
  client: CpgClient,
  group: string,
  messages: string[],
  safe: boolean,
  json: boolean,
): Promise<number> {
  await client.join(group);
  const encoder = new TextEncoder();
  let sent = 0;
  const guarantee = safe ? "safe" : "agreed";
  if (messages.length > 0) {
    for (const m of messages) {
      await client.mcastRetry(encoder.encode(m), { guarantee });
      sent++;
    }
  } else {
    const text = await new Response(Deno.stdin.readable).text();
    for (const line of text.split("\n")) {
      if (line === "") continue;
      await client.mcastRetry(encoder.encode(line), { guarantee });
      sent++;
    }
  }
  await client.leave();
  console.log(
    json ? JSON.stringify({ sent }) : `sent ${sent} message(s) to ${group}`,
  );
  return EXIT_OK;
}
