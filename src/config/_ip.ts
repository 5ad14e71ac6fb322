/**
 * IP literal helpers for configuration checks: parsing (as strict as
 * `inet_pton`), canonical text, family, multicast and prefix tests. No name
 * resolution: that is deliberately absent (see `resolveAddress`).
 *
 * @module
 */

/** Address family of an IP literal. */
export type IpFamily = 4 | 6;

/** The 32-bit value of a dotted-quad IPv4 literal, or undefined. */
export function parseIpv4(text: string): number | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    // inet_pton rejects leading zeros ("010") and anything but digits.
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part)) return undefined;
    const octet = Number(part);
    if (octet > 255) return undefined;
    value = value * 256 + octet;
  }
  return value;
}

/** The eight 16-bit groups of an IPv6 literal (zone id ignored), or undefined. */
export function parseIpv6(text: string): number[] | undefined {
  const zone = text.indexOf("%");
  const s = zone >= 0 ? text.slice(0, zone) : text;
  if (s === "" || !/^[0-9A-Fa-f:.]+$/.test(s)) return undefined;
  if (s.includes(".")) {
    // Embedded IPv4 tail ("::ffff:192.0.2.1") stands for the last two groups.
    const lastColon = s.lastIndexOf(":");
    const v4 = parseIpv4(s.slice(lastColon + 1));
    if (lastColon < 0 || v4 === undefined) return undefined;
    let head = s.slice(0, lastColon + 1);
    if (!head.endsWith("::")) head = head.slice(0, -1);
    const groups = parseGroups(head, 6);
    return groups && [...groups, Math.floor(v4 / 65536), v4 % 65536];
  }
  return parseGroups(s, 8);
}

function parseGroups(s: string, count: number): number[] | undefined {
  const halves = s.split("::");
  if (halves.length > 2) return undefined;
  const parse = (part: string): number[] | undefined => {
    if (part === "") return [];
    const out: number[] = [];
    for (const group of part.split(":")) {
      if (!/^[0-9A-Fa-f]{1,4}$/.test(group)) return undefined;
      out.push(parseInt(group, 16));
    }
    return out;
  };
  const head = parse(halves[0]);
  if (head === undefined) return undefined;
  if (halves.length === 1) return head.length === count ? head : undefined;
  const rest = parse(halves[1]);
  if (rest === undefined || head.length + rest.length >= count) {
    return undefined;
  }
  return [
    ...head,
    ...new Array(count - head.length - rest.length).fill(0),
    ...rest,
  ];
}

/** 4 or 6 for an IP literal, undefined for anything else (host names). */
export function ipFamily(text: string): IpFamily | undefined {
  if (parseIpv4(text) !== undefined) return 4;
  if (parseIpv6(text) !== undefined) return 6;
  return undefined;
}

/** Canonical text (RFC 5952 for IPv6) so that equal addresses compare equal. */
export function canonicalIp(text: string): string | undefined {
  const v4 = parseIpv4(text);
  if (v4 !== undefined) return formatIpv4(v4);
  const groups = parseIpv6(text);
  if (groups === undefined) return undefined;
  // Compress the longest run of two or more zero groups (first one on ties).
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(":");
  const head = hex.slice(0, bestStart).join(":");
  const tail = hex.slice(bestStart + bestLength).join(":");
  return `${head}::${tail}`;
}

/** Dotted-quad text of a 32-bit value. */
export function formatIpv4(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256)
    .join(".");
}

/** True for 224.0.0.0/4 and ff00::/8. */
export function isMulticast(text: string): boolean {
  const v4 = parseIpv4(text);
  if (v4 !== undefined) return Math.floor(v4 / 2 ** 28) === 0xe;
  const v6 = parseIpv6(text);
  return v6 !== undefined && v6[0] >= 0xff00;
}

/** Bits of an address, most significant first (for prefix tests). */
function addressBits(
  text: string,
): { family: IpFamily; bits: number[] } | undefined {
  const v4 = parseIpv4(text);
  if (v4 !== undefined) {
    const bits: number[] = [];
    for (let i = 31; i >= 0; i--) bits.push(Math.floor(v4 / 2 ** i) % 2);
    return { family: 4, bits };
  }
  const v6 = parseIpv6(text);
  if (v6 === undefined) return undefined;
  const bits: number[] = [];
  for (const group of v6) {
    for (let i = 15; i >= 0; i--) bits.push((group >> i) & 1);
  }
  return { family: 6, bits };
}

/** Whether `a` and `b` are in the same network of `prefixLength` bits. */
export function samePrefix(
  a: string,
  b: string,
  prefixLength: number,
): boolean {
  const x = addressBits(a);
  const y = addressBits(b);
  if (x === undefined || y === undefined || x.family !== y.family) return false;
  for (let i = 0; i < prefixLength && i < x.bits.length; i++) {
    if (x.bits[i] !== y.bits[i]) return false;
  }
  return true;
}
