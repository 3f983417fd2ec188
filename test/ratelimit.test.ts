import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { DEFAULT_RATE_LIMITS, RateLimitGate, type RateLimitDecision, type RateLimitKeys, type RateLimitSettings, type RateLimitStoreSettings } from '../src/ratelimit/gate';
import { startRedis, type RedisServer } from './redis-server';

const OFF: RateLimitSettings = { perClientPerSec: 0, perServerIdPerSec: 0, perTenantPerSec: 0 };
/** A decision must never wait on Redis for long; this is a hang detector, not a speed assertion. */
const CHECK_BOUND_MS = 2000;

function captureLog() {
  const chunks: string[] = [];
  const logger = pino({ level: 'debug' }, new Writable({ write(chunk, _enc, cb) { chunks.push(chunk.toString()); cb(); } }));
  const lines = () => chunks.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { level: number; msg: string; err?: { message: string } });
  return { logger, warnings: () => lines().filter((l) => l.level === 40), infos: () => lines().filter((l) => l.level === 30) };
}

function memoryGate(settings: Partial<RateLimitSettings>) {
  return new RateLimitGate({ settings: { ...OFF, ...settings }, store: { type: 'memory' }, logger: captureLog().logger });
}

async function checkBounded(gate: RateLimitGate, keys: RateLimitKeys): Promise<RateLimitDecision> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`check did not resolve within ${CHECK_BOUND_MS} ms`)), CHECK_BOUND_MS); });
  try {
    return await Promise.race([gate.check(keys), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** How many of `count` checks are allowed. */
async function allowedOf(gate: RateLimitGate, keys: RateLimitKeys, count: number): Promise<number> {
  let allowed = 0;
  for (let i = 0; i < count; i++) if ((await checkBounded(gate, keys)).allowed) allowed++;
  return allowed;
}

async function waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

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

  it('resets with the next 1-second window', async () => {
    const gate = memoryGate({ perServerIdPerSec: 2 });
    assert.equal(await allowedOf(gate, { serverId: 'window' }, 3), 2);
    await sleep(1100);
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
    for (const weird of [null, undefined, 42, {}, [], { clientAddress: 5, serverId: {}, tenant: { id: 7, ratePerSec: 'x' } }, { tenant: null }]) {
      const decision = await gate.check(weird as unknown as RateLimitKeys);
      assert.deepEqual(decision, { allowed: true });
    }
  });

  it('rejects invalid settings at construction', () => {
    assert.throws(() => memoryGate({ perClientPerSec: -1 }), /perClientPerSec/);
    assert.throws(() => memoryGate({ perTenantPerSec: Number.NaN }), /perTenantPerSec/);
    assert.throws(() => new RateLimitGate({ settings: OFF, store: { type: 'redis', url: 'redis://127.0.0.1:1', fallbackDivisor: 0 }, logger: captureLog().logger }), /fallbackDivisor/);
  });
});

describe('rate limits, redis store', () => {
  let redis: RedisServer;
  const gates: RateLimitGate[] = [];

  before(async () => { redis = await startRedis(); });
  after(async () => {
    await Promise.all(gates.map((g) => g.close()));
    await redis?.stop();
  });

  function redisGate(settings: Partial<RateLimitSettings>, store: Partial<Extract<RateLimitStoreSettings, { type: 'redis' }>> = {}, onFallbackChange?: (active: boolean) => void) {
    const log = captureLog();
    const gate = new RateLimitGate({
      settings: { ...OFF, ...settings },
      store: { type: 'redis', url: redis.url, keyPrefix: `test:${randomUUID()}`, ...store },
      logger: log.logger,
      onFallbackChange,
    });
    gates.push(gate);
    return { gate, log };
  }

  it('two instances on the same Redis share one budget', async () => {
    const keyPrefix = `test:${randomUUID()}`;
    const a = redisGate({ perServerIdPerSec: 5 }, { keyPrefix }).gate;
    const b = redisGate({ perServerIdPerSec: 5 }, { keyPrefix }).gate;
    await Promise.all([a.ready(), b.ready()]);
    assert.deepEqual(a.status(), { store: 'redis', fallback: false, since: a.status().since });
    const keys = { serverId: 'shared' };
    assert.equal(await allowedOf(a, keys, 3), 3);
    assert.equal(await allowedOf(b, keys, 2), 2);
    const deniedA = await a.check(keys);
    const deniedB = await b.check(keys);
    assert.ok(!deniedA.allowed && deniedA.limit === 'server_id' && deniedA.retryAfterSec >= 1);
    assert.ok(!deniedB.allowed && deniedB.limit === 'server_id' && deniedB.retryAfterSec >= 1);
    // Tenants with their own rates share it too.
    assert.equal(await allowedOf(a, { tenant: { id: 'big', ratePerSec: 4 } }, 2), 2);
    assert.equal(await allowedOf(b, { tenant: { id: 'big', ratePerSec: 4 } }, 4), 2);
  });

  it('a hung Redis costs one command timeout, then checks bypass it until it answers again', async () => {
    const changes: boolean[] = [];
    const { gate, log } = redisGate({ perClientPerSec: 100 }, {}, (active) => changes.push(active));
    await gate.ready();
    const keys = { clientAddress: '192.0.2.50' };
    assert.equal(await allowedOf(gate, keys, 1), 1);
    redis.freeze();
    try {
      assert.deepEqual(await checkBounded(gate, keys), { allowed: true });
      assert.equal(gate.status().fallback, true);
      assert.match(gate.status().lastError ?? '', /timed out/i);
      const started = Date.now();
      assert.equal(await allowedOf(gate, keys, 5), 5);
      assert.ok(Date.now() - started < 400, 'checks in fallback do not wait for Redis');
    } finally {
      redis.thaw();
    }
    // The connection never dropped, so only a check that reaches Redis can tell it is back.
    const deadline = Date.now() + 5000;
    while (gate.status().fallback) {
      assert.ok(Date.now() < deadline, 'gate did not return to Redis after it thawed');
      await checkBounded(gate, keys);
      await sleep(50);
    }
    assert.deepEqual(changes, [true, false]);
    assert.equal(log.warnings().length, 1);
  });

  it('keeps deciding under per-instance fallback limits when Redis dies, and returns to Redis by itself', async () => {
    const keyPrefix = `test:${randomUUID()}`;
    const changesA: boolean[] = [];
    const a = redisGate({ perServerIdPerSec: 6 }, { keyPrefix, fallbackDivisor: 2 }, (active) => changesA.push(active));
    const b = redisGate({ perServerIdPerSec: 6 }, { keyPrefix, fallbackDivisor: 2 });
    await Promise.all([a.gate.ready(), b.gate.ready()]);
    assert.equal(await allowedOf(a.gate, { serverId: 'before' }, 3), 3);
    assert.equal(await allowedOf(b.gate, { serverId: 'before' }, 4), 3);

    // Checks racing the crash are decided too.
    const racing = Array.from({ length: 20 }, () => checkBounded(a.gate, { serverId: 'racing' }));
    await redis.kill();
    const raced = await Promise.all(racing);
    assert.equal(raced.filter((d) => d.allowed).length + raced.filter((d) => !d.allowed).length, 20);
    await waitFor(() => a.gate.status().fallback && b.gate.status().fallback, 3000, 'both gates to fall back');
    // 6 per second shared becomes 6 / 2 = 3 per instance, each instance counting alone.
    assert.equal(await allowedOf(a.gate, { serverId: 'during' }, 5), 3);
    assert.equal(await allowedOf(b.gate, { serverId: 'during' }, 5), 3);
    const denied = await checkBounded(a.gate, { serverId: 'during' });
    assert.ok(!denied.allowed && denied.limit === 'server_id' && denied.retryAfterSec >= 1);
    // Let a few reconnect attempts fail: still one warning, one notification.
    await sleep(600);
    assert.equal(await allowedOf(a.gate, { serverId: 'later' }, 2), 2);
    const status = a.gate.status();
    assert.equal(status.fallback, true);
    assert.ok(status.since && !Number.isNaN(Date.parse(status.since)));
    assert.ok(status.lastError && status.lastError.length > 0);
    assert.deepEqual(changesA, [true]);
    assert.equal(a.log.warnings().length, 1);
    assert.match(a.log.warnings()[0].msg, /per-instance/);
    assert.ok(a.log.warnings()[0].err?.message);

    await redis.restart();
    await waitFor(() => !a.gate.status().fallback && !b.gate.status().fallback, 8000, 'both gates to return to Redis');
    assert.deepEqual(changesA, [true, false]);
    assert.equal(a.log.warnings().length, 1);
    assert.equal(a.log.infos().filter((l) => /back/.test(l.msg)).length, 1);
    // Shared again: 6 across both instances.
    assert.equal(await allowedOf(a.gate, { serverId: 'after' }, 4), 4);
    assert.equal(await allowedOf(b.gate, { serverId: 'after' }, 4), 2);
  });

  it('ready() resolves promptly when Redis is unreachable from the start, and checks are decided', async () => {
    const changes: boolean[] = [];
    const { gate, log } = redisGate({ perClientPerSec: 2 }, { url: 'redis://127.0.0.1:1' }, (active) => changes.push(active));
    const started = Date.now();
    await gate.ready();
    assert.ok(Date.now() - started < 3500);
    assert.equal(gate.status().fallback, true);
    assert.equal(await allowedOf(gate, { clientAddress: '192.0.2.1' }, 4), 2);
    assert.deepEqual(changes, [true]);
    assert.equal(log.warnings().length, 1);
  });
});
