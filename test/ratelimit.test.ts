import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { RateLimitGate, type RateLimitStoreSettings } from '../src/ratelimit/gate';
import type { RateLimitSettings } from '../src/ratelimit/settings';
import { allowedOf, captureLog, checkBounded, OFF } from './ratelimit-support';
import { startRedis, type RedisServer } from './redis-server';

async function waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('rate limits, redis store', () => {
  let redis: RedisServer;
  const gates: RateLimitGate[] = [];

  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    await Promise.all(gates.map((g) => g.close()));
    await redis?.stop();
  });

  function redisGate(
    settings: Partial<RateLimitSettings>,
    store: Partial<Extract<RateLimitStoreSettings, { type: 'redis' }>> = {},
    onFallbackChange?: (active: boolean) => void,
  ) {
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
