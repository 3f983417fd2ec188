/** IP addresses, hosts and CIDRs (src/net/addresses.ts): one reading for TrustedProxies, AllowedClients, NO_PROXY and the rate limits. */
import assert from 'node:assert/strict';
import { BlockList, isIP } from 'node:net';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ConfigError } from '../src/config/errors';
import { cidrContains, cidrMatcher, hostnameOf, parseCidr, parseIp, stripBrackets, unmapIPv4 } from '../src/net/addresses';

const hexGroup = fc.integer({ min: 0, max: 0xffff }).map((n) => n.toString(16));
const zoneId = fc.constantFrom('%eth0', '%1', '%en0', '%lo-1');

/** An IPv4 address and the ways IPv6 writes it mapped. */
const mappedForms = (v4: string): string[] => {
  const [a, b, c, d] = v4.split('.').map(Number) as [number, number, number, number];
  const hex = `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  return [`::ffff:${v4}`, `::FFFF:${v4}`, `0:0:0:0:0:ffff:${v4}`, `::ffff:${hex}`, `::ffff:${v4}%eth0`];
};

/** Any address text the proxy may meet: IPv4, IPv6 (also mapped, IPv4-compatible, upper case, with a zone id). */
const addressText = fc.oneof(
  fc.ipV4(),
  fc.ipV6(),
  fc.ipV6().map((a) => a.toUpperCase()),
  fc.tuple(fc.ipV6(), zoneId).map(([a, zone]) => a + zone),
  fc.ipV4().chain((v4) => fc.constantFrom(...mappedForms(v4), `::${v4}`)),
  fc.tuple(hexGroup, hexGroup).map(([a, b]) => `::ffff:${a}:${b}`),
);

/** What Node's BlockList says: the reference for matching across IPv4 and IPv6. */
function blockListContains(network: string, bits: number, address: string): boolean {
  const list = new BlockList();
  list.addSubnet(network, bits, isIP(network) === 6 ? 'ipv6' : 'ipv4');
  return list.check(address, isIP(address) === 6 ? 'ipv6' : 'ipv4');
}

describe('addresses: hosts with and without brackets', () => {
  it('stripBrackets drops the brackets of an IPv6 host and leaves anything else alone', () => {
    assert.equal(stripBrackets('[::1]'), '::1');
    assert.equal(stripBrackets('::1'), '::1');
    assert.equal(stripBrackets('127.0.0.1'), '127.0.0.1');
    assert.equal(stripBrackets('api.push.apple.com'), 'api.push.apple.com');
    fc.assert(fc.property(addressText, (address) => stripBrackets(`[${address}]`) === address && stripBrackets(address) === address));
  });

  it("hostnameOf gives a URL's IPv6 host unbracketed, the same address, and names as they are", () => {
    assert.equal(hostnameOf(new URL('https://[::1]:8443/x')), '::1');
    assert.equal(hostnameOf(new URL('https://fcm.googleapis.com/v1')), 'fcm.googleapis.com');
    fc.assert(
      fc.property(fc.oneof(fc.ipV6(), fc.ipV4()), (address) => {
        const url = new URL(isIP(address) === 6 ? `https://[${address}]:443/` : `https://${address}/`);
        const host = hostnameOf(url);
        return isIP(host) === isIP(address) && parseIp(host)!.toNormalizedString() === parseIp(address)!.toNormalizedString();
      }),
    );
  });
});

describe('addresses: parsing', () => {
  it('reads what Node reads as an IP address, and nothing else', () => {
    for (const text of ['127.1', '0x7f.0.0.1', '010.0.0.1', '2130706433', '[::1]', '', 'localhost', '1.2.3.4%eth0', '::ffff:999.1.1.1']) {
      assert.equal(parseIp(text), undefined, text);
    }
    fc.assert(fc.property(addressText, (text) => parseIp(text) !== undefined));
    fc.assert(fc.property(fc.string(), (text) => (parseIp(text) === undefined) === (isIP(text) === 0)));
  });

  it('keeps an IPv4-mapped address IPv6, whichever way it is written', () => {
    fc.assert(
      fc.property(fc.ipV4(), (v4) => {
        const [a, b, c, d] = v4.split('.').map(Number) as [number, number, number, number];
        const expected = `0:0:0:0:0:ffff:${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
        return mappedForms(v4).every((form) => parseIp(form)!.kind() === 'ipv6' && parseIp(form)!.toNormalizedString() === expected);
      }),
    );
  });

  it('ignores a zone id', () => {
    fc.assert(
      fc.property(
        fc.ipV6(),
        zoneId,
        (address, zone) => parseIp(address + zone)!.toNormalizedString() === parseIp(address)!.toNormalizedString(),
      ),
    );
  });

  it('reads ::a.b.c.d as IPv4-compatible (::0:0:a.b.c.d), not as IPv4-mapped', () => {
    assert.equal(parseIp('::1.2.3.4')!.toNormalizedString(), '0:0:0:0:0:0:102:304');
    assert.equal(unmapIPv4(parseIp('::1.2.3.4')!).kind(), 'ipv6');
  });

  it('unmapIPv4 turns every written form of an IPv4-mapped address into that IPv4 address', () => {
    fc.assert(fc.property(fc.ipV4(), (v4) => mappedForms(v4).every((form) => unmapIPv4(parseIp(form)!).toString() === v4)));
    assert.equal(unmapIPv4(parseIp('2001:db8::1')!).toString(), '2001:db8::1');
    assert.equal(unmapIPv4(parseIp('192.0.2.1')!).toString(), '192.0.2.1');
  });

  it('parseCidr: address/bits or a bare address; bits in decimal digits within the family', () => {
    assert.deepEqual(
      [parseCidr('10.1.2.3/8'), parseCidr('fd00::/8'), parseCidr('10.0.0.1'), parseCidr('::1'), parseCidr('10.0.0.0/08')].map(
        (cidr) => cidr && `${cidr.address.toString()}/${cidr.bits}`,
      ),
      ['10.1.2.3/8', 'fd00::/8', '10.0.0.1/32', '::1/128', '10.0.0.0/8'],
    );
    for (const text of [
      '10.0.0.0/33',
      'fd00::/129',
      '10.0.0.0/',
      '10.0.0.0/-1',
      '10.0.0.0/1.5',
      '10.0.0.0/ 8',
      '127.1/8',
      'example.com',
      '',
    ]) {
      assert.equal(parseCidr(text), undefined, text);
    }
  });
});

describe('addresses: CIDR matching', () => {
  it("agrees with Node's BlockList for any CIDR and address, across IPv4, IPv6 and their mapped forms", () => {
    const cidrText = fc.oneof(
      fc.tuple(fc.ipV4(), fc.integer({ min: 0, max: 32 })),
      fc.tuple(addressText, fc.integer({ min: 0, max: 128 })),
    );
    fc.assert(
      fc.property(cidrText, addressText, ([network, bits], address) => {
        // BlockList refuses a zone id in a subnet's address ("Invalid socket address"): nothing to compare with.
        fc.pre(!network.includes('%'));
        const family = parseIp(network)!.kind();
        if (family === 'ipv4' && bits > 32) return;
        const cidr = parseCidr(`${network}/${bits}`)!;
        assert.equal(cidrContains(cidr, parseIp(address)!), blockListContains(network, bits, address), `${network}/${bits} ∋ ${address}`);
      }),
      { numRuns: 2000 },
    );
  });

  it('an IPv4 address and its mapped IPv6 forms fall in the same CIDRs, with or without a zone id', () => {
    fc.assert(
      fc.property(fc.ipV4(), fc.ipV4(), fc.integer({ min: 0, max: 32 }), (network, v4, bits) => {
        const match = cidrMatcher([`${network}/${bits}`, `::ffff:${network}/${96 + bits}`], 'TrustedProxies');
        const expected = cidrMatcher([`${network}/${bits}`], 'TrustedProxies')(v4);
        return mappedForms(v4).every((form) => match(form) === expected) && match(v4) === expected;
      }),
    );
    const match = cidrMatcher(['10.0.0.0/8'], 'AllowedClients');
    assert.deepEqual(['10.1.2.3', '::ffff:10.1.2.3', '::ffff:a01:203', '11.0.0.1', '::ffff:b00:1', '::10.1.2.3'].map(match), [
      true,
      true,
      true,
      false,
      false,
      false,
    ]);
  });

  it('cidrMatcher: a bare address is that address alone; what is not an address matches nothing', () => {
    const match = cidrMatcher(['192.0.2.1', '2001:db8::/32', 'fe80::1%eth0'], 'AllowedClients');
    assert.deepEqual(
      ['192.0.2.1', '192.0.2.2', '2001:db8:ffff::1', '2001:db9::1', 'fe80::1', 'fe80::1%lo', '[2001:db8::1]', 'unix:/x', ''].map(match),
      [true, false, true, false, true, true, false, false, false],
    );
    assert.equal(cidrMatcher([], 'AllowedClients')('192.0.2.1'), false);
  });

  it('cidrMatcher: an entry that is no address or CIDR is a ConfigError naming the key and the entry', () => {
    for (const entry of ['10.0.0.0/33', 'fd00::/129', '10.0.0.0/8x', 'example.com', '127.1/8', '']) {
      assert.throws(
        () => cidrMatcher(['10.0.0.0/8', entry], 'TrustedProxies'),
        (err: unknown) =>
          err instanceof ConfigError &&
          err.message === `TrustedProxies entry "${entry}" is not an IP address or CIDR (such as "10.0.0.0/8" or "fd00::/8").`,
        entry,
      );
    }
  });
});
