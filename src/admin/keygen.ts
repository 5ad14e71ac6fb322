/**
 * `denosync keygen`: creates the cluster authkey, like corosync-keygen.
 *
 * The key comes from the CSPRNG (`crypto.getRandomValues`), is 256 bytes by
 * default (Corosync's default) and lands in /etc/corosync/authkey with mode
 * 0400. It is written to a temp file in the same directory, fsynced, then
 * moved into place, so a crash never leaves a short key behind. Without
 * `--force` the move is a hard link, which fails atomically if the file
 * already exists: an existing key is never clobbered by a race either.
 *
 * Exit codes: 0 written, 1 refused or I/O error, 2 usage error.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { AUTHKEY_BYTES_MAX, AUTHKEY_BYTES_MIN } from "../net/crypto.ts";

/** Where Corosync (and we) look for the key by default. */
export const DEFAULT_AUTHKEY_PATH = "/etc/corosync/authkey";
/** Corosync's default key size in bytes. */
export const DEFAULT_AUTHKEY_BYTES = 256;

const USAGE = `Usage: denosync keygen [options]

Create the cluster authentication key from the system CSPRNG, like
corosync-keygen. Copy the same file to every node (mode 0400, owner root).

Options:
  -k, --key-file FILE  where to write the key (default ${DEFAULT_AUTHKEY_PATH})
  -s, --size BYTES     key size, ${AUTHKEY_BYTES_MIN}..${AUTHKEY_BYTES_MAX} (default ${DEFAULT_AUTHKEY_BYTES})
      --force          replace an existing key file
  -h, --help           show this help
`;

/** Entry point of `denosync keygen`; resolves to the exit code. */
export async function main(args: string[]): Promise<number> {
  let values: {
    "key-file"?: string;
    size?: string;
    force?: boolean;
    help?: boolean;
  };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args,
      options: {
        "key-file": { type: "string", short: "k" },
        size: { type: "string", short: "s" },
        force: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: true,
    }));
  } catch (e) {
    return usageError(e instanceof Error ? e.message : String(e));
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length > 0) {
    return usageError(`unexpected argument "${positionals[0]}"`);
  }

  const sizeText = values.size ?? String(DEFAULT_AUTHKEY_BYTES);
  const size = /^[0-9]+$/.test(sizeText) ? Number(sizeText) : NaN;
  if (
    !Number.isSafeInteger(size) || size < AUTHKEY_BYTES_MIN ||
    size > AUTHKEY_BYTES_MAX
  ) {
    return usageError(
      `--size must be a whole number of bytes from ${AUTHKEY_BYTES_MIN} to ${AUTHKEY_BYTES_MAX}, got "${sizeText}"`,
    );
  }
  const path = values["key-file"] ?? DEFAULT_AUTHKEY_PATH;
  if (path === "") return usageError("--key-file must not be empty");
  const force = values.force === true;

  if (!force && await exists(path)) {
    console.error(
      `denosync keygen: ${path} already exists; not overwriting it (use --force to replace the key on every node)`,
    );
    return 1;
  }

  // getRandomValues fills at most 65536 bytes per call; 4096 is the limit here.
  const key = crypto.getRandomValues(new Uint8Array(size));
  try {
    const created = await writeKey(path, key, force);
    if (!created) {
      console.error(
        `denosync keygen: ${path} already exists; not overwriting it (use --force to replace the key on every node)`,
      );
      return 1;
    }
  } catch (e) {
    console.error(
      `denosync keygen: ${path}: cannot write key: ${
        e instanceof Error ? e.message : String(e)
      }`,
    );
    return 1;
  } finally {
    key.fill(0);
  }
  console.log(
    `denosync keygen: wrote a ${size}-byte key to ${path} (mode 0400); copy it to every node`,
  );
  return 0;
}

function usageError(message: string): number {
  console.error(`denosync keygen: ${message}`);
  console.error(`Try "denosync keygen --help"`);
  return 2;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/**
 * Writes `key` durably; false when `path` exists and `force` is off. The
 * temp file is removed on every path out.
 */
async function writeKey(
  path: string,
  key: Uint8Array,
  force: boolean,
): Promise<boolean> {
  const dir = dirname(path);
  const tmp = `${dir}/.${basename(path)}.${Deno.pid}.tmp`;
  let placed = false;
  await removeIfPresent(tmp); // left by a crash of an earlier run with our pid
  try {
    // Created 0400 directly, so the key is never readable by others.
    const file = await Deno.open(tmp, {
      write: true,
      createNew: true,
      mode: 0o400,
    });
    try {
      let written = 0;
      while (written < key.length) {
        written += await file.write(key.subarray(written));
      }
      await file.sync();
    } finally {
      file.close();
    }
    await Deno.chmod(tmp, 0o400); // umask cannot widen it, but be exact
    if (force) {
      await Deno.rename(tmp, path);
      placed = true;
    } else {
      try {
        await Deno.link(tmp, path);
      } catch (e) {
        if (e instanceof Deno.errors.AlreadyExists) return false;
        throw e;
      }
    }
    await syncDir(dir);
    return true;
  } finally {
    if (!placed) await removeIfPresent(tmp);
  }
}

async function syncDir(dir: string): Promise<void> {
  const handle = await Deno.open(dir, { read: true });
  try {
    await handle.sync();
  } finally {
    handle.close();
  }
}

async function removeIfPresent(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

function dirname(path: string): string {
  const at = path.lastIndexOf("/");
  if (at < 0) return ".";
  return at === 0 ? "/" : path.slice(0, at);
}

function basename(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}
