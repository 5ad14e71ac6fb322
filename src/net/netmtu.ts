/**
 * The frame size a node uses when the configuration leaves `totem.netmtu`
 * unset. Corosync's knet finds the path MTU itself (PMTUd), and on a
 * loopback-only cluster that is the loopback MTU (64 KiB), which is how
 * Corosync packs many messages per frame there. Our UDP sockets keep the
 * kernel's default receive buffer (Deno cannot set SO_RCVBUF, DENO_NOTES.md
 * section 3), so the loopback size here is bounded by that buffer instead:
 * the kernel charges a datagram of up to ~7.8 KB as 8.5 KB (an 8 KiB slab
 * plus the skb), and the default 208 KiB buffer then still holds 25 of
 * them, more than one token visit's burst (`max_messages` 17). One byte
 * more and each datagram costs 16 KiB, and a burst overflows the buffer.
 *
 * Frame size is not part of the wire contract: receivers accept any
 * datagram up to 64 KiB whatever their own netmtu, so nodes that chose
 * differently still interoperate.
 */

/** `netmtu` without configuration when every ring address is loopback. */
export const LOOPBACK_NETMTU = 7_708;
/** Corosync's default `netmtu` (TOTEM.md section 4). */
export const DEFAULT_NETMTU = 1_500;

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
 * `DEFAULT_NETMTU`.
 */
export function effectiveNetmtu(
  configured: number | undefined,
  ringAddrs: readonly (readonly string[])[],
): number {
  if (configured !== undefined) return configured;
  const all = ringAddrs.flat();
  return all.length > 0 && all.every(isLoopbackAddress)
    ? LOOPBACK_NETMTU
    : DEFAULT_NETMTU;
}
