/**
 * IP addresses, hosts and CIDRs, read one way everywhere: the listener's TrustedProxies and AllowedClients,
 * NO_PROXY for the outbound proxy, the rate limits' client key, and the hosts that sockets dial.
 *
 * The rules:
 * - An IP address is what Node's `net.isIP` accepts: dotted-quad IPv4 (no `127.1`, no octal or hex forms,
 *   which ipaddr.js alone would also read) and IPv6 with an optional zone id (`fe80::1%eth0`), which is ignored.
 * - IPv4 and IPv6 meet as IPv4-mapped IPv6 (`::ffff:a.b.c.d`), as Node's `BlockList` matches them: an IPv4
 *   CIDR contains the mapped form of its addresses, and an IPv6 CIDR contains the IPv4 addresses it maps.
 */
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';
import { ConfigError } from '../config/errors';

export type IpAddress = ipaddr.IPv4 | ipaddr.IPv6;

/** An address and how many of its leading bits a match compares; a bare address is the CIDR of itself alone. */
export interface Cidr {
  readonly address: IpAddress;
  readonly bits: number;
}

/**
 * A host as sockets want it: a leading `[` and a trailing `]` are dropped (`[::1]` → `::1`), since URLs and
 * `host:port` strings bracket IPv6 addresses and `net.connect`, TLS and `isIP` do not.
 */
export function stripBrackets(host: string): string {
  return host.replace(/^\[|\]$/g, '');
}

/** A URL's host as sockets want it: `URL.hostname` keeps the brackets of an IPv6 host. */
export function hostnameOf(url: URL): string {
  return stripBrackets(url.hostname);
}

/** How Node gives an IPv4 client's address on a dual-stack socket. */
const MAPPED_DOTTED_QUAD = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i;

/** The address `text` names (see the rules above), or undefined when it names none. */
export function parseIp(text: string): IpAddress | undefined {
  const family = isIP(text);
  if (family === 0) return undefined;
  // isIP has checked the form. A dotted quad and `::ffff:a.b.c.d`, nearly every client's address, are read
  // directly: ipaddr.js's parser tries every notation and costs ten times more, on each request checked.
  if (family === 4) return dottedQuad(text);
  const mapped = MAPPED_DOTTED_QUAD.exec(text);
  if (mapped) return asIPv6(dottedQuad(mapped[1]!));
  try {
    // ipaddr.js reads the IPv4-compatible form `::a.b.c.d` as IPv4-mapped; Node reads it as `::0:0:a.b.c.d`.
    return ipaddr.IPv6.parse(text.replace(/%.*$/, '').replace(/^::(?=\d+\.)/, '::0:'));
  } catch {
    // Not reached for what isIP accepts; an address that cannot be read matches nothing rather than throwing.
    return undefined;
  }
}

/** An IPv4-mapped IPv6 address as the IPv4 address it carries; any other address as it is. */
export function unmapIPv4(address: IpAddress): IpAddress {
  if (!(address instanceof ipaddr.IPv6)) return address;
  // Read from the groups: ipaddr.js's isIPv4MappedAddress looks the address up in its whole table of special ranges.
  const [a, b, c, d, e, f, g = 0, h = 0] = address.parts;
  if (a || b || c || d || e || f !== 0xffff) return address;
  return new ipaddr.IPv4([g >> 8, g & 0xff, h >> 8, h & 0xff]);
}

/**
 * `address/bits` or a bare address (all its bits), or undefined when `text` is neither. Bits are decimal
 * digits, at most 32 for IPv4 and 128 for IPv6; anything after a second `/` is not read.
 */
export function parseCidr(text: string): Cidr | undefined {
  const [addressText = '', bitsText] = text.split('/');
  const address = parseIp(addressText);
  if (!address) return undefined;
  const maxBits = address.kind() === 'ipv4' ? 32 : 128;
  if (bitsText === undefined) return { address, bits: maxBits };
  if (!/^\d+$/.test(bitsText) || Number(bitsText) > maxBits) return undefined;
  return { address, bits: Number(bitsText) };
}

/** Whether `address` lies in `cidr`, IPv4 and IPv6 meeting as IPv4-mapped IPv6 (see the rules above). */
export function cidrContains(cidr: Cidr, address: IpAddress): boolean {
  if (cidr.address.kind() === address.kind()) return address.match(cidr.address, cidr.bits);
  const bits = cidr.address.kind() === 'ipv4' ? 96 + cidr.bits : cidr.bits;
  return asIPv6(address).match(asIPv6(cidr.address), bits);
}

/**
 * Whether an address (text, as a socket or a forwarding header gives it) lies in one of the CIDRs or addresses
 * that config key `key` lists. Throws a ConfigError naming the first entry that is neither.
 */
export function cidrMatcher(entries: readonly string[], key: string): (address: string) => boolean {
  const cidrs = entries.map((entry) => {
    const cidr = parseCidr(entry);
    if (!cidr) throw new ConfigError(`${key} entry "${entry}" is not an IP address or CIDR (such as "10.0.0.0/8" or "fd00::/8").`);
    return cidr;
  });
  return (text: string) => {
    const parsed = parseIp(text);
    if (parsed === undefined) return false;
    // The same point in IPv6, unmapped once: against IPv4 CIDRs, the most common, it then needs no conversion.
    const address = unmapIPv4(parsed);
    return cidrs.some((cidr) => cidrContains(cidr, address));
  };
}

function dottedQuad(text: string): ipaddr.IPv4 {
  return new ipaddr.IPv4(text.split('.').map(Number));
}

/** An IPv4 address as IPv4-mapped IPv6, built from its octets: ipaddr.js's toIPv4MappedAddress parses a string. */
function asIPv6(address: IpAddress): ipaddr.IPv6 {
  if (!(address instanceof ipaddr.IPv4)) return address;
  const [a = 0, b = 0, c = 0, d = 0] = address.octets;
  return new ipaddr.IPv6([0, 0, 0, 0, 0, 0xffff, (a << 8) | b, (c << 8) | d]);
}
