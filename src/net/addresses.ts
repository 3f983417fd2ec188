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

/** The address `text` names (see the rules above), or undefined when it names none. */
export function parseIp(text: string): IpAddress | undefined {
  if (isIP(text) === 0) return undefined;
  try {
    // ipaddr.js reads the IPv4-compatible form `::a.b.c.d` as IPv4-mapped; Node reads it as `::0:0:a.b.c.d`.
    return ipaddr.parse(text.replace(/%.*$/, '').replace(/^::(?=\d+\.)/, '::0:'));
  } catch {
    // Not reached for what isIP accepts; an address that cannot be read matches nothing rather than throwing.
    return undefined;
  }
}

/** An IPv4-mapped IPv6 address as the IPv4 address it carries; any other address as it is. */
export function unmapIPv4(address: IpAddress): IpAddress {
  return address instanceof ipaddr.IPv6 && address.isIPv4MappedAddress() ? address.toIPv4Address() : address;
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
    const address = parseIp(text);
    return address !== undefined && cidrs.some((cidr) => cidrContains(cidr, address));
  };
}

function asIPv6(address: IpAddress): ipaddr.IPv6 {
  return address instanceof ipaddr.IPv4 ? address.toIPv4MappedAddress() : address;
}
