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
 * once, and the caller then queues the datagram for Deno's `send`, which
 * waits for room and reports errors. The source address and port stay those
 * of the link's socket, so peers' source checks see no difference.
 *
 * Needs `--allow-ffi` for libc (`LIBC_PATHS`). Without it the transport
 * sends through Deno as before, and the daemon logs why.
 *
 * @module
 */
import { dlopenLibc, findUdpSocket, sockaddrBytes } from "./socket_buffer.ts";

/** `MSG_DONTWAIT | MSG_NOSIGNAL` (Linux). */
const SEND_FLAGS = 0x40 | 0x4000;
/** `sizeof(struct sockaddr_in)` and `sizeof(struct sockaddr_in6)`. */
const SOCKADDR_IN_BYTES = 16;
const SOCKADDR_IN6_BYTES = 28;

/** Sends on one socket; see the module comment. */
export interface DirectSender {
  /** The descriptor of the socket it sends on. */
  readonly fd: number;
  /**
   * Sends `bytes` to `to` (a `sockaddrFor` result) now. False when the
   * kernel did not take the whole datagram at once (a full send buffer or
   * an error): the caller then sends it the slow way, which reports why.
   */
  send(bytes: Uint8Array, to: Uint8Array): boolean;
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
        bytes.length,
        SEND_FLAGS,
        to,
        to.length,
      );
      return Number(sent) === bytes.length;
    },
  };
}

type Sendto = (
  fd: number,
  bytes: Uint8Array,
  length: number,
  flags: number,
  to: Uint8Array,
  toLength: number,
) => number | bigint;

let opened: { call: Sendto } | { reason: string } | undefined;

/** libc's `sendto`, opened once per process, or why it cannot be. */
function openSendto(): { call: Sendto } | { reason: string } {
  if (opened !== undefined) return opened;
  const lib = dlopenLibc({
    sendto: {
      parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"],
      result: "isize",
    },
  });
  opened = "reason" in lib ? lib : { call: lib.symbols.sendto };
  return opened;
}
