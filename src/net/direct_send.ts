/**
 * Datagrams sent with libc's `sendto` on the transport's own UDP socket.
 *
 * `Deno.DatagramConn.send` does not send when called: the datagram leaves on
 * a later turn of the event loop, and two sends issued in one turn left in
 * reverse order (strace, Deno 2.9). So every send costs the daemon's thread
 * an op, a turn and a settled promise (9.7 µs a datagram measured here
 * against 3.9 µs for `sendto`, each with its receiver in the same process),
 * and the transport must wait for a visit's frames before it may send the
 * token behind them (`Transport`'s drain). In a 1 KiB throughput run that
 * op was the largest single item of every daemon's profile, 14-23 % of its
 * thread.
 *
 * `sendto` on the socket Deno already bound (found as socket_buffer.ts
 * finds it) is one system call, in call order, before `send` returns. The
 * socket is non-blocking; with `MSG_DONTWAIT` a full send buffer refuses at
 * once (`EAGAIN`, or `ENOBUFS` from a full device queue), and the caller then
 * queues the datagram for Deno's `send`, which waits for room. Any other
 * error loses the datagram, as it would on Deno's path: a firewall that drops
 * it (`EPERM` from an nftables `drop` in the output hook) must not get a
 * second try, or 5 % loss would become 0.25 %. libc keeps the error in
 * `errno`, read through `__errno_location` right after the call, on the
 * same thread. The source address and port stay those of the link's socket,
 * so peers' source checks see no difference.
 *
 * Needs `--allow-ffi` for libc (`LIBC_PATHS`). Without it the transport
 * sends through Deno as before, and the daemon logs why.
 *
 * @module
 */
import { assert } from "../lib/assert.ts";
import { dlopenLibc, findUdpSocket, sockaddrBytes } from "./socket_buffer.ts";

/** `MSG_DONTWAIT | MSG_NOSIGNAL` (Linux). */
const SEND_FLAGS = 0x40 | 0x4000;
/** `sizeof(struct sockaddr_in)` and `sizeof(struct sockaddr_in6)`. */
const SOCKADDR_IN_BYTES = 16;
const SOCKADDR_IN6_BYTES = 28;
/** Linux errno values that mean "no room now", not "refused". */
const EAGAIN = 11;
const ENOBUFS = 105;
/** Names for the errors a UDP send can meet; others print as a number. */
const ERRNO_NAMES: Record<number, string> = {
  1: "EPERM",
  11: "EAGAIN",
  13: "EACCES",
  22: "EINVAL",
  90: "EMSGSIZE",
  97: "EAFNOSUPPORT",
  101: "ENETUNREACH",
  105: "ENOBUFS",
  111: "ECONNREFUSED",
  113: "EHOSTUNREACH",
};

/** The result of one `DirectSender.send`. */
export type DirectSendResult =
  /** The kernel took the whole datagram. */
  | "sent"
  /** No room now: send it the slow way, which waits for room. */
  | "busy"
  /** Refused (errno name, e.g. "EPERM"): the datagram is lost. */
  | { error: string };

/** Sends on one socket; see the module comment. */
export interface DirectSender {
  /** The descriptor of the socket it sends on. */
  readonly fd: number;
  /** Sends `bytes` to `to` (a `sockaddrFor` result) now. */
  send(bytes: Uint8Array, to: Uint8Array): DirectSendResult;
}

/**
 * The `struct sockaddr_in` / `sockaddr_in6` for `sendto` to `hostname:port`,
 * or null for anything but an IP literal (an IPv6 scope is not supported:
 * such peers are sent to the slow way).
 */
export function sockaddrFor(hostname: string, port: number): Uint8Array | null {
  const prefix = sockaddrBytes(hostname, port);
  if (prefix === null) return null;
  // The prefix holds family, port and address; the rest (sin_zero, or the
  // IPv6 scope id) stays zero.
  const out = new Uint8Array(
    prefix.length === 8 ? SOCKADDR_IN_BYTES : SOCKADDR_IN6_BYTES,
  );
  out.set(prefix);
  return out;
}

/**
 * A sender on this process's UDP socket bound to `hostname:port`, or why
 * there is none (no FFI permission, no libc, no such socket). Never throws.
 */
export function openDirectSender(
  hostname: string,
  port: number,
): DirectSender | { reason: string } {
  const sendto = openSendto();
  if ("reason" in sendto) return sendto;
  const fd = findUdpSocket(hostname, port);
  if (typeof fd !== "number") return fd;
  return {
    fd,
    send(bytes, to) {
      const sent = sendto.call(
        fd,
        bytes,
        BigInt(bytes.length),
        SEND_FLAGS,
        to,
        to.length,
      );
      if (sent === bytes.length) return "sent";
      // A datagram socket sends all or nothing: a short count cannot happen.
      assert(sent < 0, `sendto sent ${sent} of ${bytes.length} bytes`);
      const errno = sendto.errno();
      if (errno === EAGAIN || errno === ENOBUFS) return "busy";
      return { error: ERRNO_NAMES[errno] ?? `errno ${errno}` };
    },
  };
}

type Sendto = (
  fd: number,
  bytes: Uint8Array,
  length: bigint,
  flags: number,
  to: Uint8Array,
  toLength: number,
) => number;

interface OpenedSendto {
  call: Sendto;
  /** This thread's `errno` now. */
  errno(): number;
}

let opened: OpenedSendto | { reason: string } | undefined;

/** libc's `sendto` and `errno`, opened once per process, or why not. */
function openSendto(): OpenedSendto | { reason: string } {
  if (opened !== undefined) return opened;
  const lib = dlopenLibc({
    sendto: {
      parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"],
      // The length goes as a BigInt, and the result comes back as the low
      // 32 bits of ssize_t (a datagram's size or -1 fits; the x86-64 and
      // AArch64 ABIs return it in one register). With a number for the
      // "usize", V8's fast call expected a BigInt: every function the call
      // was inlined into (#performAll, #flushDeferred, ...) was deoptimized
      // for "not a BigInt" and optimized again, 41-52 times in a 20 s bench
      // run of 3 daemons (--trace-deopt), and none with a BigInt.
      result: "i32",
    },
    __errno_location: { parameters: [], result: "pointer" },
  });
  if ("reason" in lib) {
    opened = lib;
    return opened;
  }
  // errno is thread-local; sends happen on this (the JS) thread only, so
  // its address is fixed.
  const where = lib.symbols.__errno_location();
  if (where === null) {
    opened = { reason: "__errno_location returned NULL" };
    return opened;
  }
  const view = new Deno.UnsafePointerView(where);
  opened = { call: lib.symbols.sendto, errno: () => view.getInt32() };
  return opened;
}
