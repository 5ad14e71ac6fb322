/**
 * The frame size a node uses when the configuration leaves `totem.netmtu`
 * unset.
 *
 * Frames are what a token visit carries (at most `max_messages` of them),
 * so their size bounds throughput with large messages: every frame costs a
 * syscall per peer, an encode, a seal and its place in the token's
 * bookkeeping whatever it holds.
 *
 * - With large receive buffers (the transport raised them to at least
 *   `LARGE_FRAME_BUFFER_BYTES`, src/net/socket_buffer.ts; root gets 8 MiB)
 *   loopback rings and `transport: knet` use `LARGE_NETMTU` frames, as
 *   Corosync hands knet 64 KiB Totem frames (exec/totemconfig.c,
 *   KNET_MAX_PACKET_SIZE) and knet splits them into path-MTU packets. We let
 *   the kernel do that split (IP fragmentation of one UDP datagram: one
 *   syscall per frame instead of one per packet). Measured in the
 *   side-by-side namespaces (2026-11-24, quick runs): 64 KiB messages 1325
 *   vs 821 msgs/s from one sender and 1485 vs 852 from all against six
 *   fragments, 1 KiB and 5 % datagram loss no worse. A frame is lost with
 *   any one of its fragments, as knet's frames are with any of their
 *   packets, so on a link that loses single packets large frames need more
 *   retransmissions: set `totem.netmtu` there.
 * - Otherwise (the kernel's default 208 KiB buffer) a token visit's burst
 *   must fit that buffer. Loopback: the kernel charges a datagram of up to
 *   ~7.8 KB as 8.5 KB (an 8 KiB slab plus the skb), and the buffer then
 *   still holds 25 of them, more than one visit (`max_messages` 17); one
 *   byte more and each datagram costs 16 KiB. knet on a network: six full
 *   fragments of a 1500-byte link.
 * - `udpu` / `udp` on a network: Corosync's default of 1500, one
 *   unfragmented datagram per frame.
 *
 * Frame size is not part of the wire contract: receivers accept any
 * datagram up to 64 KiB whatever their own netmtu, so nodes that chose
 * differently still interoperate.
 */

/**
 * `netmtu` without configuration for loopback and knet when the receive
 * buffers are large: under 64 KiB with room for the crypto and wire
 * headers.
 */
export const LARGE_NETMTU = 60_000;
/**
 * Smallest receive buffer (as the kernel reports it, bookkeeping included)
 * for `LARGE_NETMTU` frames: a visit of 17 of them, about 1.1 MB charged,
 * several times over.
 */
export const LARGE_FRAME_BUFFER_BYTES = 4 * 1024 * 1024;
/** `netmtu` without configuration when every ring address is loopback. */
export const LOOPBACK_NETMTU = 7_708;
/** Corosync's default `netmtu` for udp/udpu (TOTEM.md section 4). */
export const DEFAULT_NETMTU = 1_500;
/** IPv4 header; a fragment carries up to (link MTU - this) of IP payload. */
const IPV4_HEADER_BYTES = 20;
/**
 * `netmtu` without configuration for `transport: knet` off loopback: six
 * full IPv4 fragments of a 1500-byte link (6 × 1480 payload + IP header).
 */
export const KNET_NETMTU = 6 * (DEFAULT_NETMTU - IPV4_HEADER_BYTES) +
  IPV4_HEADER_BYTES;

/** True for 127.0.0.0/8 and ::1 (canonical IP literals). */
export function isLoopbackAddress(addr: string): boolean {
  if (addr === "::1") return true;
  if (addr.includes(":")) {
    // IPv4-mapped loopback, ::ffff:127.x.y.z.
    const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(addr);
    return m !== null && isLoopbackAddress(m[1]);
  }
  return /^127\.\d+\.\d+\.\d+$/.test(addr);
}

/**
 * The netmtu to run with: the configured one when set; otherwise, when every
 * address of every node is loopback or the transport is knet,
 * `LARGE_NETMTU` if `receiveBufferBytes` (the smallest buffer of the node's
 * sockets as the kernel reports it, null when one could not be read) is at
 * least `LARGE_FRAME_BUFFER_BYTES`, else `LOOPBACK_NETMTU` / `KNET_NETMTU`;
 * udp/udpu on a network get `DEFAULT_NETMTU`.
 */
export function effectiveNetmtu(
  configured: number | undefined,
  ringAddrs: readonly (readonly string[])[],
  transport: "udpu" | "udp" | "knet" = "udpu",
  receiveBufferBytes: number | null = null,
): number {
  if (configured !== undefined) return configured;
  const all = ringAddrs.flat();
  const loopback = all.length > 0 && all.every(isLoopbackAddress);
  if (!loopback && transport !== "knet") return DEFAULT_NETMTU;
  if (
    receiveBufferBytes !== null &&
    receiveBufferBytes >= LARGE_FRAME_BUFFER_BYTES
  ) {
    return LARGE_NETMTU;
  }
  return loopback ? LOOPBACK_NETMTU : KNET_NETMTU;
}
