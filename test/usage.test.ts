/**
 * Usage per tenant over real sockets: a hosted instance with a tenants file sends two tenants' notifications to
 * the sandbox APNs peer (delivered, Unregistered, refused) and GET /api/v1/usage on the admin listener counts them
 * in memory; then in a real redis-server shared by two instances, and the Redis store's flushes.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { tenantsAdd } from '../src/commands/tenants';
import { getAdminJson } from '../src/commands/admin-client';
import { CommandError } from '../src/commands/errors';
import type { ProxyInstance } from '../src/instance';
import { localQueries } from '../src/operator-queries';
import { utcDay, type UsageAnswer } from '../src/usage/counts';
import { RedisUsageStore, UsageLabels } from '../src/usage/store';
import { startRedis, type RedisServer } from './redis-server';
import { APPLE_TOKEN, capturedLogger, get, post, startApnsFixture, startTestProxy, tempDir, testConfig, type ApnsFixture } from './support';

const REMOVED_TOKEN = 'b2'.repeat(32);
const REFUSED_TOKEN = 'c3'.repeat(32);

function keyFrom(addOutput: string): string {
  const match = /^\s+(pp_\S+)$/m.exec(addOutput);
  assert.ok(match, `no key in: ${addOutput}`);
  return match[1]!;
}

interface Tenants {
  file: string;
  keys: Record<string, string>;
}

async function makeTenants(...ids: string[]): Promise<Tenants> {
  const file = `${tempDir()}/tenants.json`;
  const keys: Record<string, string> = {};
  for (const id of ids) keys[id] = keyFrom(await tenantsAdd(file, { id }));
  return { file, keys };
}

function hostedConfig(apns: ApnsFixture, tenantsFile: string, extra: Record<string, unknown> = {}) {
  return testConfig({
    Mode: 'hosted',
    apple: [apns.entry()],
    TrustedProxies: ['127.0.0.0/8'],
    TenantsFile: tenantsFile,
    AdminListenAddress: '127.0.0.1:0',
    RateLimits: { PerClientPerSec: 0, PerServerIdPerSec: 0, PerTenantPerSec: 0 },
    ...extra,
  });
}

/** A notification from `tenant` through a load balancer that terminated TLS. */
async function send(proxy: ProxyInstance, key: string, fields: Record<string, unknown> = {}): Promise<string> {
  const body = { platform: 'apple_rn-v2', server_id: 'srv-1', device_id: APPLE_TOKEN, type: 'message', message: 'hi', ...fields };
  const answer = await post(`${proxy.url}/api/v1/send_push`, body, { Authorization: `Bearer ${key}`, 'X-Forwarded-Proto': 'https' });
  assert.equal(answer.status, 200);
  return (JSON.parse(answer.text) as { status: string }).status;
}

async function usage(base: string, query = ''): Promise<UsageAnswer> {
  const answer = await get(`${base}/api/v1/usage${query}`);
  assert.equal(answer.status, 200, answer.text);
  return JSON.parse(answer.text) as UsageAnswer;
}

describe('usage: in memory, hosted mode with tenants', () => {
  let apns: ApnsFixture;
  let proxy: ProxyInstance;
  let tenants: Tenants;
  const today = utcDay(Date.now());

  before(async () => {
    apns = await startApnsFixture();
    apns.peer.setDeviceBehaviour(REMOVED_TOKEN, { status: 410, reason: 'Unregistered' });
    apns.peer.setDeviceBehaviour(REFUSED_TOKEN, { status: 400, reason: 'BadPriority' });
    tenants = await makeTenants('acme', 'globex');
    proxy = await startTestProxy(hostedConfig(apns, tenants.file), [apns.ca.certPem]);
    const { acme, globex } = tenants.keys;
    assert.equal(await send(proxy, acme!), 'OK');
    assert.equal(await send(proxy, acme!), 'OK');
    assert.equal(await send(proxy, acme!, { device_id: REMOVED_TOKEN }), 'REMOVE');
    assert.equal(await send(proxy, acme!, { device_id: REFUSED_TOKEN }), 'FAIL');
    assert.equal(await send(proxy, globex!), 'OK');
    // A Type no entry has: refused, and counted under "other".
    assert.equal(await send(proxy, globex!, { platform: 'android_rn' }), 'FAIL');
  });
  after(async () => {
    await proxy.close();
    await apns.close();
  });

  it('the admin listener counts per tenant, and per day, tenant and platform', async () => {
    const answer = await usage(proxy.admin!.url);
    assert.equal(answer.store, 'memory');
    assert.equal(answer.retentionDays, 35);
    assert.equal(answer.to, today);
    assert.deepEqual(answer.tenants, [
      { tenant: 'acme', OK: 2, REMOVE: 1, FAIL: 1, total: 4 },
      { tenant: 'globex', OK: 1, REMOVE: 0, FAIL: 1, total: 2 },
    ]);
    assert.deepEqual(answer.days, [
      { day: today, tenant: 'acme', platform: 'apple_rn', OK: 2, REMOVE: 1, FAIL: 1, total: 4 },
      { day: today, tenant: 'globex', platform: 'apple_rn', OK: 1, REMOVE: 0, FAIL: 0, total: 1 },
      { day: today, tenant: 'globex', platform: 'other', OK: 0, REMOVE: 0, FAIL: 1, total: 1 },
    ]);
  });

  it('one tenant, and days', async () => {
    const acme = await usage(proxy.admin!.url, `?tenant=acme&from=${today}&to=${today}`);
    assert.equal(acme.tenant, 'acme');
    assert.deepEqual(
      acme.tenants.map((t) => t.tenant),
      ['acme'],
    );
    assert.deepEqual(
      acme.days.map((d) => d.tenant),
      ['acme'],
    );
    const before = await usage(proxy.admin!.url, `?to=${utcDay(Date.now() - 86_400_000)}`);
    assert.deepEqual(before.tenants, []);
  });

  it('a bad parameter: 400 with a FAIL naming it', async () => {
    for (const [query, name] of [
      ['?from=2026-02-30', /^from /],
      ['?tenant=ACME', /^tenant /],
      ['?to=a&to=b', /^to must be given once/],
    ] as const) {
      const answer = await get(`${proxy.admin!.url}/api/v1/usage${query}`);
      assert.equal(answer.status, 400, query);
      const body = JSON.parse(answer.text) as { status: string; error: string };
      assert.equal(body.status, 'FAIL');
      assert.match(body.error, name);
    }
  });

  it('the public listener does not serve it', async () => {
    assert.equal((await get(`${proxy.url}/api/v1/usage`)).status, 404);
  });

  it("the commands' client: the JSON from the admin listener; on a listener without it, a message saying where it is", async () => {
    const config = hostedConfig(apns, tenants.file);
    const answer = await getAdminJson({ ...config, AdminListenAddress: `127.0.0.1:${proxy.admin!.port}` }, '/api/v1/usage?tenant=globex');
    assert.equal(answer.status, 200);
    assert.deepEqual((answer.body as UsageAnswer).tenants, [{ tenant: 'globex', OK: 1, REMOVE: 0, FAIL: 1, total: 2 }]);
    await assert.rejects(
      getAdminJson({ ...config, AdminListenAddress: '', ListenAddress: `127.0.0.1:${proxy.port}` }, '/api/v1/usage'),
      (err: Error) =>
        err instanceof CommandError &&
        err.exitCode === 2 &&
        err.message ===
          `the proxy at http://127.0.0.1:${proxy.port}/api/v1/usage does not serve /api/v1/usage: in hosted mode it is served only on the admin listener: set AdminListenAddress.`,
    );
  });
});

describe('usage: in a real redis-server shared by two instances', () => {
  let redis: RedisServer;
  let apns: ApnsFixture;
  let proxies: ProxyInstance[];
  let tenants: Tenants;

  before(async () => {
    redis = await startRedis();
    apns = await startApnsFixture();
    apns.peer.setDeviceBehaviour(REMOVED_TOKEN, { status: 410, reason: 'Unregistered' });
    tenants = await makeTenants('acme', 'globex');
    const config = () => hostedConfig(apns, tenants.file, { RateLimitStore: { Type: 'redis', URL: redis.url } });
    proxies = [await startTestProxy(config(), [apns.ca.certPem]), await startTestProxy(config(), [apns.ca.certPem])];
  });
  after(async () => {
    await Promise.all(proxies.map((p) => p.close()));
    await apns.close();
    await redis.stop();
  });

  it('each instance answers with the counts of both', async () => {
    const [a, b] = proxies as [ProxyInstance, ProxyInstance];
    const { acme, globex } = tenants.keys;
    assert.equal(await send(a, acme!), 'OK');
    assert.equal(await send(a, acme!), 'OK');
    assert.equal(await send(b, acme!), 'OK');
    assert.equal(await send(b, acme!, { device_id: REMOVED_TOKEN }), 'REMOVE');
    assert.equal(await send(b, globex!), 'OK');
    const expected = [
      { tenant: 'acme', OK: 3, REMOVE: 1, FAIL: 0, total: 4 },
      { tenant: 'globex', OK: 1, REMOVE: 0, FAIL: 0, total: 1 },
    ];
    // Each instance saves its own counts before it reads; the other's arrive within its next flush (a second).
    for (const proxy of proxies) {
      let answer = await usage(proxy.admin!.url);
      for (let i = 0; i < 40 && JSON.stringify(answer.tenants) !== JSON.stringify(expected); i++) {
        await sleep(250);
        answer = await usage(proxy.admin!.url);
      }
      assert.equal(answer.store, 'redis');
      assert.deepEqual(answer.tenants, expected);
    }
  });
});

describe('usage: the Redis store', () => {
  let redis: RedisServer;
  const labels = new UsageLabels({ ApplePushSettings: [], AndroidPushSettings: [] });
  const today = utcDay(Date.now());
  const everyDay = { from: today, to: today };
  // A flush interval no test waits for: only close(), read() and flush() save counts.
  const open = (logger = capturedLogger('warn').logger) =>
    new RedisUsageStore(redis.url, labels, 35, { logger, queries: localQueries(), flushIntervalMs: 3_600_000 });
  const notification = (tenant: string) => ({
    at: new Date(),
    serverId: 's',
    tenant,
    platform: 'apple_rn',
    pushType: 'message',
    transport: '',
    outcome: 'OK' as const,
    attempts: 1,
    ms: 1,
    device: 'x',
  });

  before(async () => {
    redis = await startRedis();
  });
  after(() => redis.stop());

  it('close() saves what is pending', async () => {
    const writer = open();
    const reader = open();
    try {
      writer.record(notification('closing'));
      writer.record(notification('closing'));
      await writer.close();
      assert.deepEqual(
        (await reader.read({ ...everyDay, tenant: 'closing' })).map((r) => r.count),
        [2],
      );
    } finally {
      await reader.close();
    }
  });

  it('Redis away: counts wait, a warning says so, and the next flush saves them', async () => {
    const log = capturedLogger('warn');
    const store = open(log.logger);
    try {
      store.record(notification('waiting'));
      await store.flush();
      await redis.kill();
      store.record(notification('waiting'));
      await assert.rejects(store.flush());
      await assert.rejects(store.flush());
      assert.equal(log.text().match(/usage counts not saved to Redis/g)?.length, 1, log.text());
      await redis.restart();
      store.record(notification('waiting'));
      // Redis restarted empty: the count saved before the crash is gone with it, the two since are not.
      // The connection comes back on ioredis's own schedule: flush until it has.
      for (let i = 0; ; i++) {
        const saved = await store.flush().then(
          () => true,
          () => false,
        );
        if (saved) break;
        assert.ok(i < 20, 'Redis not back');
      }
      assert.deepEqual(
        (await store.read({ ...everyDay, tenant: 'waiting' })).map((r) => r.count),
        [2],
      );
      assert.equal(store.dropped(), 0);
    } finally {
      await store.close();
    }
  });
});
