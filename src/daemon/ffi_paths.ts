/**
 * Every native library the daemon may load through FFI: libc (socket
 * buffers, scheduling) and libcrypto (frame crypto). `deno task denosync`,
 * the demo and the integration tests grant `--allow-ffi` for exactly these.
 *
 * @module
 */
import { LIBCRYPTO_PATHS } from "../net/aes_gcm.ts";
import { LIBC_PATHS } from "../net/socket_buffer.ts";

/** The `--allow-ffi` list of a daemon. */
export const DAEMON_FFI_PATHS: readonly string[] = [
  ...LIBC_PATHS,
  ...LIBCRYPTO_PATHS,
];
