/**
 * Errors of the IPC layer, for operators and application authors. Each one
 * names the socket path and says what to do (STYLE.md section 6).
 */
import { CsError, csErrorName } from "./cs_error.ts";

/** Longest unix socket path in bytes (sun_path is 108 bytes with the NUL). */
export const UNIX_PATH_BYTES_MAX = 107;

/** An IPC failure carrying a Corosync `cs_error_t` code. */
export class IpcError extends Error {
  override name = "IpcError";
  /** The `cs_error_t` value (see cs_error.ts). */
  readonly code: number;

  constructor(code: number, message: string) {
    super(message);
    this.code = code;
  }

  /** `CS_ERR_TRY_AGAIN` etc. */
  get codeName(): string {
    return csErrorName(this.code);
  }
}

/** No daemon listens on the socket (ENOENT or ECONNREFUSED). */
export class IpcNotRunningError extends IpcError {
  override name = "IpcNotRunningError";
  readonly path: string;

  constructor(path: string, cause: "missing" | "refused") {
    super(
      CsError.LIBRARY,
      cause === "missing"
        ? `${path}: no IPC socket here; is the denosync daemon running?`
        : `${path}: connection refused; the denosync daemon is not running (stale socket)`,
    );
    this.path = path;
  }
}

/** The socket exists but this process may not connect to it. */
export class IpcPermissionError extends IpcError {
  override name = "IpcPermissionError";
  readonly path: string;

  constructor(path: string, detail: string) {
    super(CsError.ACCESS, `${path}: ${detail}`);
    this.path = path;
  }
}

/** The connection ended (daemon gone, GOODBYE, protocol error, or local close). */
export class IpcClosedError extends IpcError {
  override name = "IpcClosedError";

  constructor(message: string, code: number = CsError.LIBRARY) {
    super(code, message);
  }
}

/** The server cannot start: bad options or an unusable socket path. */
export class IpcConfigError extends Error {
  override name = "IpcConfigError";
}

/** Another live daemon already answers on the socket path. */
export class IpcAddressInUseError extends Error {
  override name = "IpcAddressInUseError";
  readonly path: string;

  constructor(path: string) {
    super(
      `another daemon is listening on ${path}; stop it or give this one another socket path`,
    );
    this.path = path;
  }
}

/** Returns the byte length of `path` as the kernel sees it. */
export function unixPathBytes(path: string): number {
  return new TextEncoder().encode(path).length;
}
