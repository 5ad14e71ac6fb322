/**
 * Larger kernel receive buffers for the transport's UDP sockets.
 *
 * A node receives a token visit's frames in one burst (up to `max_messages`
 * datagrams from the token holder, plus retransmissions). With the kernel's
 * default receive buffer (net.core.rmem_default, 208 KiB here) a burst of
 * fragmented frames overflows it whenever the daemon's one thread (or the
 * CPU it shares) is busy for a moment, and every overflowed datagram costs
 * a Totem retransmission. knet sizes its sockets itself for the same reason
 * (SO_RCVBUFFORCE); Deno has no socket option for it (DENO_NOTES.md
 * section 3), so this module sets it through libc: it finds the socket's
 * file descriptor by asking `getsockname` of the low descriptors (up to
 * `FD_SCAN_MAX`) which one is a UDP socket bound to the link's address and
 * port, and calls `setsockopt` on it. SO_RCVBUFFORCE works for root
 * (CAP_NET_ADMIN) beyond net.core.rmem_max; otherwise SO_RCVBUF is tried,
 * which the kernel caps at rmem_max.
 *
 * It needs `--allow-ffi` for libc (one of `LIBC_PATHS`); Deno's rules for
 * /proc (reading /proc/net/udp needs --allow-all) rule out the usual
 * inode lookup. Without the permission nothing changes and the caller
 * learns why: the daemon still works, with more retransmissions under load.
 *
 * @module
 */
import { parseIpv4, parseIpv6 } from "../config/_ip.ts";
import { dlopenFirst } from "../lib/dlopen_first.ts";

/** What the transport asks for: 8 MiB, as knet's sockets. */
export const RECEIVE_BUFFER_BYTES = 8 * 1024 * 1024;

/** Where libc lives on the Linux distributions we run on. */
export const LIBC_PATHS: readonly string[] = [
  "/lib/x86_64-linux-gnu/libc.so.6",
  "/lib/aarch64-linux-gnu/libc.so.6",
  "/lib64/libc.so.6",
  "/usr/lib64/libc.so.6",
  "/lib/libc.so.6",
];

/** Descriptors examined; a daemon's sockets are among its first few dozen. */
export const FD_SCAN_MAX = 4096;

const SOL_SOCKET = 1;
const SO_TYPE = 3;
const SO_RCVBUF = 8;
const SO_RCVBUFFORCE = 33;
const SOCK_DGRAM = 2;
const AF_INET = 2;
const AF_INET6 = 10;

/** The outcome of `raiseReceiveBuffer`. */
export type ReceiveBufferResult =
  | {
    ok: true;
    /** Buffer size the kernel now reports (SO_RCVBUF, bookkeeping included). */
    bytes: number;
    /** True when SO_RCVBUFFORCE was allowed (root), false for SO_RCVBUF. */
    forced: boolean;
  }
  | { ok: false; reason: string };

/**
 * The `struct sockaddr_in` / `sockaddr_in6` Linux fills for a socket bound
 * to `hostname:port` (only the family, port and address bytes, the part
 * `sockaddrMatches` compares), or null for anything not an IP literal.
 */
export function sockaddrBytes(
  hostname: string,
  port: number,
): Uint8Array | null {
  const v4 = parseIpv4(hostname);
  if (v4 !== undefined) {
    const b = new Uint8Array(8);
    const v = new DataView(b.buffer);
    v.setUint16(0, AF_INET, true);
    v.setUint16(2, port, false);
    v.setUint32(4, v4, false);
    return b;
  }
  const groups = parseIpv6(hostname);
  if (groups === undefined) return null;
  const b = new Uint8Array(24);
  const v = new DataView(b.buffer);
  v.setUint16(0, AF_INET6, true);
  v.setUint16(2, port, false);
  // bytes 4..7: flowinfo, not compared
  groups.forEach((g, i) => v.setUint16(8 + 2 * i, g, false));
  return b;
}

/** True when `actual` (from getsockname) is the address `expected` names. */
export function sockaddrMatches(
  actual: Uint8Array,
  expected: Uint8Array,
): boolean {
  if (actual.length < expected.length) return false;
  for (let i = 0; i < expected.length; i++) {
    if (i >= 4 && i < 8 && expected.length === 24) continue; // flowinfo
    if (actual[i] !== expected[i]) return false;
  }
  return true;
}

interface Libc {
  setsockopt(fd: number, level: number, name: number, value: number): number;
  getsockopt(fd: number, level: number, name: number): number | null;
  /** The bound address of `fd`, or null when it is not a socket. */
  getsockname(fd: number): Uint8Array | null;
}

let libc: { lib: Libc } | { reason: string } | undefined;

/**
 * libc opened with `symbols` from the first of `LIBC_PATHS` this process may
 * load (`--allow-ffi`) and that exists, or why none could be.
 */
export function dlopenLibc<S extends Deno.ForeignLibraryInterface>(
  symbols: S,
): Deno.DynamicLibrary<S> | { reason: string } {
  const opened = dlopenFirst("libc", LIBC_PATHS, symbols);
  return "reason" in opened ? opened : opened.lib;
}

/** libc's socket calls, or why they cannot be had (opened once). */
function openLibc(): { lib: Libc } | { reason: string } {
  if (libc !== undefined) return libc;
  const lib = dlopenLibc({
    setsockopt: {
      parameters: ["i32", "i32", "i32", "buffer", "u32"],
      result: "i32",
    },
    getsockopt: {
      parameters: ["i32", "i32", "i32", "buffer", "buffer"],
      result: "i32",
    },
    getsockname: {
      parameters: ["i32", "buffer", "buffer"],
      result: "i32",
    },
  });
  if ("reason" in lib) {
    libc = lib;
    return libc;
  }
  const s = lib.symbols;
  const calls: Libc = {
    setsockopt(fd, level, name, value) {
      const v = new Int32Array([value]);
      return s.setsockopt(fd, level, name, new Uint8Array(v.buffer), 4);
    },
    getsockopt(fd, level, name) {
      const v = new Int32Array(1);
      const len = new Uint32Array([4]);
      const rc = s.getsockopt(
        fd,
        level,
        name,
        new Uint8Array(v.buffer),
        new Uint8Array(len.buffer),
      );
      return rc === 0 ? v[0] : null;
    },
    getsockname(fd) {
      const addr = new Uint8Array(128);
      const len = new Uint32Array([addr.length]);
      const rc = s.getsockname(fd, addr, new Uint8Array(len.buffer));
      return rc === 0 ? addr.subarray(0, Math.min(len[0], addr.length)) : null;
    },
  };
  libc = { lib: calls };
  return libc;
}

/** This process's UDP socket bound to `want`, or null. */
function findSocket(lib: Libc, want: Uint8Array): number | null {
  for (let fd = 0; fd < FD_SCAN_MAX; fd++) {
    const name = lib.getsockname(fd);
    if (
      name !== null && sockaddrMatches(name, want) &&
      lib.getsockopt(fd, SOL_SOCKET, SO_TYPE) === SOCK_DGRAM
    ) return fd;
  }
  return null;
}

/**
 * The descriptor of this process's UDP socket bound to `hostname:port`, or
 * why it cannot be had (see the module comment). Never throws.
 */
export function findUdpSocket(
  hostname: string,
  port: number,
): number | { reason: string } {
  const want = sockaddrBytes(hostname, port);
  if (want === null) return { reason: `${hostname} is not an IP literal` };
  const opened = openLibc();
  if (!("lib" in opened)) return { reason: opened.reason };
  try {
    return findSocket(opened.lib, want) ??
      { reason: `no socket of this process bound to ${hostname}:${port}` };
  } catch (e) {
    return { reason: (e as Error).message };
  }
}

/**
 * Asks for a `bytes` receive buffer on this process's UDP socket bound to
 * `hostname:port` (see the module comment). Never throws.
 */
export function raiseReceiveBuffer(
  hostname: string,
  port: number,
  bytes = RECEIVE_BUFFER_BYTES,
): ReceiveBufferResult {
  const fd = findUdpSocket(hostname, port);
  if (typeof fd !== "number") return { ok: false, reason: fd.reason };
  const opened = openLibc();
  if (!("lib" in opened)) return { ok: false, reason: opened.reason };
  const lib = opened.lib;
  try {
    const forced = lib.setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, bytes) === 0;
    if (!forced && lib.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, bytes) !== 0) {
      return { ok: false, reason: "setsockopt(SO_RCVBUF) failed" };
    }
    const now = lib.getsockopt(fd, SOL_SOCKET, SO_RCVBUF);
    if (now === null) {
      return { ok: false, reason: "getsockopt(SO_RCVBUF) failed" };
    }
    return { ok: true, bytes: now, forced };
  } catch (e) {
    return { ok: false, reason: (e as Error).message };
  }
}
