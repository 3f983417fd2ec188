/** Rate limits with the in-memory store: per client, per server id, per tenant, the 1-second window, the settings' checks. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RateLimitGate, type RateLimitKeys } from '../src/ratelimit/gate';
import { DEFAULT_RATE_LIMITS } from '../src/ratelimit/settings';
import { allowedOf, captureLog, memoryGate, OFF } from './ratelimit-support';

describe('rate limits, memory store', () => {
  it('denies the (N+1)th request per client address, with Retry-After >= 1', async () => {
    const gate = memoryGate({ perClientPerSec: 3 });
    assert.equal(await allowedOf(gate, { clientAddress: '203.0.113.7' }, 3), 3);
    const denied = await gate.check({ clientAddress: '203.0.113.7' });
    assert.equal(denied.allowed, false);
    assert.ok(!denied.allowed && denied.limit === 'client' && denied.retryAfterSec >= 1 && denied.retryAfterSec <= 1);
    assert.deepEqual(await gate.check({ clientAddress: '203.0.113.8' }), { allowed: true });
    assert.deepEqual(gate.status(), { store: 'memory', fallback: false });
  });

  it('denies the (N+1)th request per server_id', async () => {
    const gate = memoryGate({ perServerIdPerSec: 2 });
    assert.equal(await allowedOf(gate, { serverId: 'server-a' }, 2), 2);
    assert.deepEqual(await gate.check({ serverId: 'server-a' }), { allowed: false, limit: 'server_id', retryAfterSec: 1 });
    assert.deepEqual(await gate.check({ serverId: 'server-b' }), { allowed: true });
  });

  it('denies the (N+1)th request per tenant, and tenant.ratePerSec overrides the default (0: unlimited)', async () => {
    const gate = memoryGate({ perTenantPerSec: 2 });
    assert.equal(await allowedOf(gate, { tenant: { id: 't1' } }, 5), 2);
    assert.deepEqual(await gate.check({ tenant: { id: 't1' } }), { allowed: false, limit: 'tenant', retryAfterSec: 1 });
    assert.equal(await allowedOf(gate, { tenant: { id: 't2', ratePerSec: 5 } }, 8), 5);
    assert.equal(await allowedOf(gate, { tenant: { id: 't3', ratePerSec: 1 } }, 3), 1);
    assert.equal(await allowedOf(gate, { tenant: { id: 't4', ratePerSec: 0 } }, 20), 20);
    // An invalid override is ignored: the default applies.
    assert.equal(await allowedOf(gate, { tenant: { id: 't5', ratePerSec: -1 } }, 4), 2);
    assert.equal(await allowedOf(gate, { tenant: { id: 't6', ratePerSec: Number.NaN } }, 4), 2);
  });

  it('counts a fractional rate, setting or tenant override, as whole requests: rounded down, but never to off', async () => {
    const gate = memoryGate({ perClientPerSec: 0.5, perServerIdPerSec: 2.9, perTenantPerSec: 3 });
    assert.equal(await allowedOf(gate, { clientAddress: '203.0.113.9' }, 3), 1);
    assert.equal(await allowedOf(gate, { serverId: 'server-f' }, 5), 2);
    assert.equal(await allowedOf(gate, { tenant: { id: 'tf1', ratePerSec: 0.2 } }, 3), 1);
    assert.equal(await allowedOf(gate, { tenant: { id: 'tf2', ratePerSec: 1.99 } }, 3), 1);
  });

  it('keeps the limits independent, client first: a request denied per client does not spend the server budget', async () => {
    const gate = memoryGate({ perClientPerSec: 2, perServerIdPerSec: 3, perTenantPerSec: 4 });
    const a = { clientAddress: '198.51.100.1', serverId: 'sid-x' };
    assert.equal(await allowedOf(gate, a, 2), 2);
    const third = await gate.check(a);
    assert.ok(!third.allowed && third.limit === 'client');
    const b = { clientAddress: '198.51.100.2', serverId: 'sid-x' };
    assert.deepEqual(await gate.check(b), { allowed: true });
    const serverDenied = await gate.check(b);
    assert.ok(!serverDenied.allowed && serverDenied.limit === 'server_id');
    // Another server id of the same tenant is fine until the tenant's budget (4) runs out.
    const c = { clientAddress: '198.51.100.3', serverId: 'sid-y', tenant: { id: 'acme' } };
    assert.equal(await allowedOf(gate, c, 2), 2);
    const d = { clientAddress: '198.51.100.4', serverId: 'sid-z', tenant: { id: 'acme' } };
    assert.equal(await allowedOf(gate, d, 2), 2);
    const tenantDenied = await gate.check({ clientAddress: '198.51.100.5', serverId: 'sid-w', tenant: { id: 'acme' } });
    assert.ok(!tenantDenied.allowed && tenantDenied.limit === 'tenant');
  });

  it('0 turns a limit off; absent keys skip their limit', async () => {
    const off = memoryGate({});
    assert.equal(await allowedOf(off, { clientAddress: '192.0.2.1', serverId: 's', tenant: { id: 't' } }, 50), 50);
    const on = memoryGate({ perClientPerSec: 1, perServerIdPerSec: 1, perTenantPerSec: 1 });
    assert.equal(await allowedOf(on, {}, 10), 10);
    assert.equal(await allowedOf(on, { clientAddress: '', serverId: '', tenant: { id: '' } }, 10), 10);
    assert.deepEqual(DEFAULT_RATE_LIMITS.eas, OFF);
    for (const mode of ['test', 'hosted'] as const) {
      const limits = DEFAULT_RATE_LIMITS[mode];
      assert.ok(limits.perClientPerSec > 0 && limits.perServerIdPerSec > 0 && limits.perTenantPerSec > 0, mode);
    }
    assert.ok(DEFAULT_RATE_LIMITS.test.perClientPerSec < DEFAULT_RATE_LIMITS.hosted.perClientPerSec);
    assert.ok(DEFAULT_RATE_LIMITS.test.perServerIdPerSec < DEFAULT_RATE_LIMITS.hosted.perServerIdPerSec);
  });

  it('resets with the next 1-second window', async (t) => {
    // The store reads Date.now() and expires its keys with setTimeout: a mocked clock moves past the window at once.
    t.mock.timers.enable({ apis: ['Date', 'setTimeout'] });
    const gate = memoryGate({ perServerIdPerSec: 2 });
    assert.equal(await allowedOf(gate, { serverId: 'window' }, 3), 2);
    t.mock.timers.tick(900);
    assert.equal(await allowedOf(gate, { serverId: 'window' }, 1), 0, 'still the same window');
    t.mock.timers.tick(200);
    assert.equal(await allowedOf(gate, { serverId: 'window' }, 3), 2);
  });

  it('keys untrusted input safely: IPv6 by /64, IPv4-mapped as IPv4, any server id, never throws', async () => {
    const gate = memoryGate({ perClientPerSec: 2, perServerIdPerSec: 2 });
    assert.equal(await allowedOf(gate, { clientAddress: '2001:db8:1:2::1' }, 1), 1);
    assert.equal(await allowedOf(gate, { clientAddress: '2001:db8:1:2:ffff::9' }, 2), 1, 'same /64 shares a budget');
    assert.equal(await allowedOf(gate, { clientAddress: '2001:db8:1:3::1' }, 2), 2, 'another /64 does not');
    assert.equal(await allowedOf(gate, { clientAddress: '::ffff:192.0.2.10' }, 1), 1);
    assert.equal(await allowedOf(gate, { clientAddress: '192.0.2.10' }, 2), 1, 'IPv4-mapped is the IPv4 address');
    assert.equal(await allowedOf(gate, { clientAddress: '[fe80::1%eth0]' }, 3), 2);
    assert.equal(await allowedOf(gate, { serverId: 'x'.repeat(1_000_000) }, 3), 2);
    assert.equal(await allowedOf(gate, { serverId: 'a:b\n*\u0000é' }, 3), 2);
    assert.equal(await allowedOf(gate, { serverId: 'a:b\n*\u0000è' }, 3), 2, 'distinct hashed ids do not collide');
    for (const weird of [
      null,
      undefined,
      42,
      {},
      [],
      { clientAddress: 5, serverId: {}, tenant: { id: 7, ratePerSec: 'x' } },
      { tenant: null },
    ]) {
      const decision = await gate.check(weird as unknown as RateLimitKeys);
      assert.deepEqual(decision, { allowed: true });
    }
  });

  it('rejects invalid settings at construction', () => {
    assert.throws(() => memoryGate({ perClientPerSec: -1 }), /perClientPerSec/);
    assert.throws(() => memoryGate({ perTenantPerSec: Number.NaN }), /perTenantPerSec/);
    assert.throws(
      () =>
        new RateLimitGate({
          settings: OFF,
          store: { type: 'redis', url: 'redis://127.0.0.1:1', fallbackDivisor: 0 },
          logger: captureLog().logger,
        }),
      /fallbackDivisor/,
    );
  });
});
