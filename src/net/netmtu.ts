/**
 * The frame size a node uses when the configuration leaves `totem.netmtu`
 * unset.
 *
 * - Loopback-only clusters: Corosync's knet finds the path MTU itself
 *   (PMTUd), and on loopback that is 64 KiB, which is how Corosync packs
 *   many messages per frame there. Our UDP sockets keep the kernel's default
 *   receive buffer (Deno cannot set SO_RCVBUF, DENO_NOTES.md section 3), so
 *   the loopback size here is bounded by that buffer instead: the kernel
 *   charges a datagram of up to ~7.8 KB as 8.5 KB (an 8 KiB slab plus the
 *   skb), and the default 208 KiB buffer then still holds 25 of them, more
 *   than one token visit's burst (`max_messages` 17). One byte more and each
 *   datagram costs 16 KiB, and a burst overflows the buffer.
 * - `transport: knet` on a network: Corosync hands knet 64 KiB Totem frames
 *   (exec/totemconfig.c, KNET_MAX_PACKET_SIZE) and knet splits them into
 *   path-MTU packets. We let the kernel do that split (IP fragmentation of
 *   a larger UDP datagram: one syscall per frame instead of one per
 *   packet), with frames of six full fragments on a 1500-byte link. Larger
 *   frames lose more often under packet loss (a frame is lost with any of
 *   its fragments, as knet's are) and fill the receive buffer sooner;
 *   side-by-side runs in namespaces (README, Measurements) put six
 *   fragments at or near the best of 1500-16000 for 1 KiB and 64 KiB
 *   messages and under 5 % loss.
 * - `udpu` / `udp`: Corosync's default of 1500, one unfragmented datagram
 *   per frame.
 *
 * Frame size is not part of the wire contract: receivers accept any
 * datagram up to 64 KiB whatever their own netmtu, so nodes that chose
 * differently still interoperate.
 */

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
 * The netmtu to run with: the configured one when set; otherwise
 * `LOOPBACK_NETMTU` when every address of every node is loopback, else
 * `KNET_NETMTU` for `transport: knet` and `DEFAULT_NETMTU` for udp/udpu.
 */
export function effectiveNetmtu(
  configured: number | undefined,
  ringAddrs: readonly (readonly string[])[],
  transport: "udpu" | "udp" | "knet" = "udpu",
): number {
  if (configured !== undefined) return configured;
  const all = ringAddrs.flat();
  if (all.length > 0 && all.every(isLoopbackAddress)) return LOOPBACK_NETMTU;
  return transport === "knet" ? KNET_NETMTU : DEFAULT_NETMTU;
}
