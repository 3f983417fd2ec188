/** Hosted mode's tenants: keys, the store (authentication, caches, restrictions, reload) and the CLI's commands. */
import assert from 'node:assert/strict';
import { randomBytes, scrypt } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CommandError } from '../src/commands/errors';
import { ConfigError } from '../src/config/errors';
import { parseTenantsArgs, runTenantsCommand, tenantsAdd, tenantsList, tenantsRevoke, TENANTS_USAGE } from '../src/commands/tenants';
import { checkTenantId, generateTenantKey, hashKey, parseKeyHash, tenantIdOfKey, verifyKey } from '../src/tenants/keys';
import { parseTenantsFile, type TenantEntry, type TenantsFileData } from '../src/tenants/file';
import { TenantStore } from '../src/tenants/store';
import { capturedLogger, tempDir } from './unit-support';

const KEY_FORMAT = /^pp_acme_[A-Za-z0-9_-]{43}$/;

/**
 * A stored hash in the format hashKey writes, at a lower cost (N=1024): stored hashes name their own parameters,
 * so the store verifies it the same way, and the store's tests do not spend seconds of CPU on hashing.
 */
async function cheapHash(key: string): Promise<string> {
  const salt = randomBytes(16);
  const hash = await new Promise<Buffer>((resolve, reject) =>
    scrypt(key, salt, 32, { N: 1024, r: 8, p: 1 }, (err, derived) => (err ? reject(err) : resolve(derived))),
  );
  const unpadded = (b: Buffer) => b.toString('base64').replace(/=+$/, '');
  return `scrypt$N=1024,r=8,p=1$${unpadded(salt)}$${unpadded(hash)}`;
}
const HASH_FORMAT = /^scrypt\$N=16384,r=8,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/;
const CREATED = '2025-01-31T12:00:00.000Z';
const FIX = 'Fix the file, or rewrite it with "push-proxy tenants".';

const basic = (username: string, password: string): string => `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;

/** Atomic replacement, as the CLI and Kubernetes do it. */
function writeTenantsFile(file: string, data: TenantsFileData): void {
  const temp = `${file}.tmp`;
  writeFileSync(temp, JSON.stringify(data, null, 2), { mode: 0o600 });
  renameSync(temp, file);
}

async function eventually(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function rejectsWith<T extends Error>(promise: Promise<unknown>, type: new (...args: never[]) => T): Promise<string> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof type, `expected a ${type.name}, got ${err}`);
    return err.message;
  }
  return assert.fail(`expected a ${type.name}`);
}

function throwsWith<T extends Error>(fn: () => unknown, type: new (...args: never[]) => T): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof type, `expected a ${type.name}, got ${err}`);
    return err.message;
  }
  return assert.fail(`expected a ${type.name}`);
}

describe('tenants: keys', () => {
  it('generates keys that embed the tenant id, each different', () => {
    const one = generateTenantKey('acme');
    const two = generateTenantKey('acme');
    assert.match(one, KEY_FORMAT);
    assert.match(two, KEY_FORMAT);
    assert.notEqual(one, two);
    assert.equal(tenantIdOfKey(one), 'acme');
    // The secret may hold "_" and the id may too: the secret's fixed length keeps them apart.
    assert.equal(tenantIdOfKey(generateTenantKey('a_b-c')), 'a_b-c');
    assert.equal(tenantIdOfKey(`pp_x_${'_'.repeat(43)}`), 'x');
    const longest = 'a'.repeat(63);
    assert.equal(tenantIdOfKey(generateTenantKey(longest)), longest);
  });

  it('refuses tenant ids outside [a-z0-9][a-z0-9_-]{0,62}', () => {
    for (const id of ['', 'Acme', '-acme', '_acme', 'ac me', 'acme.com', 'a'.repeat(64), 'é']) {
      assert.throws(() => generateTenantKey(id), {
        message: `tenant id ${JSON.stringify(id)} is invalid: use 1 to 63 lowercase letters, digits, "_" or "-", starting with a letter or digit`,
      });
    }
    assert.doesNotThrow(() => checkTenantId('0-a_b'));
  });

  it('finds no tenant id in strings that are not keys', () => {
    const secret = 'A'.repeat(43);
    for (const text of [
      '',
      'pp_',
      `pp_acme_${'A'.repeat(42)}`,
      `pp_acme_${'A'.repeat(44)}x`,
      `xx_acme_${secret}`,
      `pp_Acme_${secret}`,
      `pp__${secret}`,
      `pp_acme-${secret}`,
      `pp_acme_${'A'.repeat(42)}=`,
    ]) {
      assert.equal(tenantIdOfKey(text), null, text);
    }
  });

  it('hashes with scrypt and a random salt, and verifies only the right key', async () => {
    const key = generateTenantKey('acme');
    const hash = await hashKey(key);
    const again = await hashKey(key);
    assert.match(hash, HASH_FORMAT);
    assert.notEqual(hash, again);
    assert.equal(await verifyKey(key, hash), true);
    assert.equal(await verifyKey(key, again), true);
    assert.equal(await verifyKey(generateTenantKey('acme'), hash), false);
    assert.equal(await verifyKey(`${key}x`, hash), false);
  });

  it('refuses tampered or foreign hashes', async () => {
    const key = generateTenantKey('acme');
    const [, params, salt, digest] = (await hashKey(key)).split('$') as [string, string, string, string];
    const flip = (text: string): string => (text[0] === 'A' ? 'B' : 'A') + text.slice(1);
    assert.equal(await verifyKey(key, `scrypt$${params}$${salt}$${flip(digest)}`), false);
    assert.equal(await verifyKey(key, `scrypt$${params}$${flip(salt)}$${digest}`), false);
    assert.equal(await verifyKey(key, `scrypt$N=16384,r=8,p=2$${salt}$${digest}`), false);
    assert.equal(await verifyKey(key, `scrypt$N=16000,r=8,p=1$${salt}$${digest}`), false);
    assert.equal(await verifyKey(key, `bcrypt$${params}$${salt}$${digest}`), false);
    assert.equal(await verifyKey(key, ''), false);
    assert.equal(parseKeyHash(`scrypt$N=16384,r=8,p=1$${salt}$${digest}`)?.hash.length, 32);
    assert.equal(parseKeyHash(`scrypt$N=1048576,r=8,p=1$${salt}$${digest}`), null); // 1 GiB per verification
    assert.equal(parseKeyHash(`scrypt$N=16384,r=8,p=1$${salt}$${digest}=`), null);
  });
});

describe('tenants: store', () => {
  const dir = tempDir();
  const keys = {
    acme: generateTenantKey('acme'),
    betaOld: generateTenantKey('beta'),
    betaNew: generateTenantKey('beta'),
    gone: generateTenantKey('gone'),
    open: generateTenantKey('open_co'),
  };
  let base: TenantsFileData;
  const stores: TenantStore[] = [];

  before(async () => {
    const entry = async (key: string, revoked = false) => ({ hash: await cheapHash(key), created: CREATED, revoked });
    base = {
      version: 1,
      tenants: [
        { id: 'acme', keys: [await entry(keys.acme)], serverIds: ['srv-1'], platforms: ['apple_rn'], ratePerSec: 50, revoked: false },
        { id: 'beta', keys: [await entry(keys.betaOld, true), await entry(keys.betaNew)] },
        { id: 'gone', keys: [await entry(keys.gone)], revoked: true },
        { id: 'open_co', keys: [await entry(keys.open)] },
      ],
    };
  });
  after(() => stores.forEach((s) => s.close()));

  let fileCount = 0;
  async function openStore(data: TenantsFileData, options: { cacheSize?: number } = {}) {
    const file = path.join(dir, `tenants-${++fileCount}.json`);
    writeTenantsFile(file, data);
    const log = capturedLogger();
    const store = await TenantStore.open(file, { logger: log.logger, pollIntervalMs: 50, ...options });
    stores.push(store);
    return { store, file, log };
  }

  const acmeTenant = { id: 'acme', revoked: false, serverIds: ['srv-1'], platforms: ['apple_rn'], ratePerSec: 50 };

  it('loads the tenants and logs how many, without keys or hashes', async () => {
    const { store, file, log } = await openStore(base);
    assert.equal(store.size, 4);
    assert.deepEqual(
      store.tenants().map((t) => t.id),
      ['acme', 'beta', 'gone', 'open_co'],
    );
    assert.deepEqual(store.tenants()[0], acmeTenant);
    assert.deepEqual(store.tenants()[1], { id: 'beta', revoked: false });
    assert.deepEqual(
      log.lines().map((l) => [l.level, l.msg, l.file, l.tenants, l.active]),
      [[30, 'tenants loaded', file, 4, 3]],
    );
  });

  it('authenticates HTTP Basic as Go sends it for https://tenant:key@host, and Bearer', async () => {
    const { store } = await openStore(base);
    assert.deepEqual(await store.authenticate(basic('acme', keys.acme)), { ok: true, tenant: acmeTenant });
    assert.deepEqual(await store.authenticate(`Bearer ${keys.acme}`), { ok: true, tenant: acmeTenant });
    assert.deepEqual(await store.authenticate(basic('open_co', keys.open)), { ok: true, tenant: { id: 'open_co', revoked: false } });
  });

  it('takes the scheme case-insensitively', async () => {
    const { store } = await openStore(base);
    for (const header of [
      `bearer ${keys.acme}`,
      `BEARER ${keys.acme}`,
      basic('acme', keys.acme).replace('Basic', 'bAsIc'),
      `  Bearer ${keys.acme}  `,
    ]) {
      assert.deepEqual(await store.authenticate(header), { ok: true, tenant: acmeTenant }, header);
    }
  });

  it("refuses a Basic username that is not the key's tenant", async () => {
    const { store } = await openStore(base);
    assert.deepEqual(await store.authenticate(basic('beta', keys.acme)), { ok: false, reason: 'invalid' });
    assert.deepEqual(await store.authenticate(basic('', keys.acme)), { ok: false, reason: 'invalid' });
    assert.equal(store.stats.hashVerifications, 0);
  });

  it('tells missing from malformed credentials', async () => {
    const { store } = await openStore(base);
    for (const header of [undefined, '', '   ']) {
      assert.deepEqual(await store.authenticate(header), { ok: false, reason: 'missing' }, String(header));
    }
    const malformed = [
      'Bearer',
      `Bearer ${keys.acme} extra`,
      `Token ${keys.acme}`,
      'Basic !!!!',
      `Basic ${Buffer.from(keys.acme).toString('base64')}`, // no colon
      basic('acme', 'not-a-key'),
      basic(keys.acme, ''), // the key as username: https://KEY@host
      'Bearer not-a-key',
      `Bearer ${keys.acme}${'x'.repeat(2000)}`,
    ];
    for (const header of malformed) {
      assert.deepEqual(await store.authenticate(header), { ok: false, reason: 'malformed' }, header);
    }
    assert.equal(store.stats.hashVerifications, 0);
  });

  it('refuses unknown and revoked tenants without computing a hash', async () => {
    const { store } = await openStore(base);
    assert.deepEqual(await store.authenticate(`Bearer ${generateTenantKey('nobody')}`), { ok: false, reason: 'unknown' });
    assert.deepEqual(await store.authenticate(basic('gone', keys.gone)), { ok: false, reason: 'revoked' });
    assert.equal(store.stats.hashVerifications, 0);
  });

  it("refuses a revoked key while the tenant's other key works", async () => {
    const { store } = await openStore(base);
    assert.deepEqual(await store.authenticate(`Bearer ${keys.betaOld}`), { ok: false, reason: 'revoked' });
    assert.deepEqual(await store.authenticate(`Bearer ${keys.betaNew}`), { ok: true, tenant: { id: 'beta', revoked: false } });
    assert.deepEqual(await store.authenticate(`Bearer ${generateTenantKey('beta')}`), { ok: false, reason: 'invalid' });
  });

  it('verifies a key once, then answers from the cache', async () => {
    const { store } = await openStore(base);
    assert.equal((await store.authenticate(basic('acme', keys.acme))).ok, true);
    assert.equal(store.stats.hashVerifications, 1);
    assert.equal((await store.authenticate(basic('acme', keys.acme))).ok, true);
    assert.equal((await store.authenticate(`Bearer ${keys.acme}`)).ok, true);
    assert.equal(store.stats.hashVerifications, 1);
    assert.equal(store.stats.cachedCredentials, 1);
  });

  it('caches failures, so a flood of one bad key costs one verification', async () => {
    const { store } = await openStore(base);
    const wrong = `Bearer ${generateTenantKey('beta')}`;
    for (let i = 0; i < 20; i++) assert.deepEqual(await store.authenticate(wrong), { ok: false, reason: 'invalid' });
    assert.equal(store.stats.hashVerifications, 2); // beta's active key, then its revoked one
    assert.equal(store.stats.cachedFailures, 1);
  });

  it('shares one verification between concurrent requests with the same new key', async () => {
    const { store } = await openStore(base);
    const results = await Promise.all(Array.from({ length: 10 }, () => store.authenticate(`Bearer ${keys.acme}`)));
    assert.deepEqual(
      results.map((r) => r.ok),
      Array(10).fill(true),
    );
    assert.equal(store.stats.hashVerifications, 1);
  });

  it('bounds the caches, evicting the least recently used', async () => {
    const { store } = await openStore(base, { cacheSize: 1 });
    await store.authenticate(`Bearer ${keys.acme}`);
    await store.authenticate(`Bearer ${keys.betaNew}`);
    assert.equal(store.stats.cachedCredentials, 1);
    assert.equal(store.stats.hashVerifications, 2);
    await store.authenticate(`Bearer ${keys.betaNew}`);
    assert.equal(store.stats.hashVerifications, 2);
    await store.authenticate(`Bearer ${keys.acme}`); // evicted by beta's key
    assert.equal(store.stats.hashVerifications, 3);
  });

  it('applies server_id and platform restrictions', async () => {
    const { store } = await openStore(base);
    const acme = store.tenants()[0]!;
    const open = store.tenants()[3]!;
    assert.deepEqual(store.allows(acme, { serverId: 'srv-1', platformType: 'apple_rn' }), { ok: true });
    assert.deepEqual(store.allows(acme, { serverId: 'srv-2', platformType: 'apple_rn' }), {
      ok: false,
      error: 'Failed because server_id "srv-2" is not allowed for tenant "acme"',
    });
    assert.deepEqual(store.allows(acme, { serverId: 'srv-1', platformType: 'android_rn' }), {
      ok: false,
      error: 'Failed because platform "android_rn" is not allowed for tenant "acme"',
    });
    assert.deepEqual(store.allows(open, { serverId: 'anything', platformType: 'android_rn' }), { ok: true });
  });

  it('reloads a changed file: a new tenant works, revocations apply even to cached keys', async () => {
    const { store, file, log } = await openStore(base);
    const newKey = generateTenantKey('newco');
    assert.deepEqual(await store.authenticate(`Bearer ${newKey}`), { ok: false, reason: 'unknown' });
    assert.equal((await store.authenticate(`Bearer ${keys.acme}`)).ok, true);
    assert.equal((await store.authenticate(`Bearer ${keys.betaNew}`)).ok, true);

    const changed = structuredClone(base);
    changed.tenants[0]!.revoked = true;
    changed.tenants[1]!.keys[1]!.revoked = true;
    changed.tenants.push({ id: 'newco', keys: [{ hash: await cheapHash(newKey), created: CREATED }] });
    writeTenantsFile(file, changed);
    await eventually(() => store.stats.reloads === 1, 'the reload');

    assert.equal(store.size, 5);
    assert.deepEqual(await store.authenticate(`Bearer ${newKey}`), { ok: true, tenant: { id: 'newco', revoked: false } });
    assert.deepEqual(await store.authenticate(`Bearer ${keys.acme}`), { ok: false, reason: 'revoked' });
    assert.deepEqual(await store.authenticate(`Bearer ${keys.betaNew}`), { ok: false, reason: 'revoked' });
    assert.deepEqual(
      log.lines().map((l) => [l.msg, l.tenants, l.active]),
      [
        ['tenants loaded', 4, 3],
        ['tenants reloaded', 5, 3],
      ],
    );
    const logged = log.text();
    for (const secret of [...Object.values(keys), newKey, ...changed.tenants.flatMap((t) => t.keys.map((k) => k.hash))]) {
      assert.equal(logged.includes(secret), false);
    }
  });

  it('keeps the old state when the new file is invalid, and recovers when it is fixed', async () => {
    const { store, file, log } = await openStore(base);
    writeTenantsFile(file, { version: 1, tenants: [{ id: 'acme' }] } as unknown as TenantsFileData);
    await eventually(() => store.stats.failedReloads >= 1, 'the failed reload');
    assert.equal(store.size, 4);
    assert.deepEqual(await store.authenticate(`Bearer ${keys.acme}`), { ok: true, tenant: acmeTenant });
    const failure = log
      .lines()
      .filter((l) => l.level === 50)
      .at(-1)!;
    assert.equal(failure.level, 50);
    assert.equal(failure.msg, 'TenantsFile reload failed: keeping the tenants loaded before');
    assert.equal(failure.file, file);
    assert.equal(failure.tenants, 4);
    assert.equal(failure.problem, `TenantsFile ${file} is invalid: tenant "acme" (tenants[0]) is missing "keys". ${FIX}`);

    writeTenantsFile(file, { version: 1, tenants: [base.tenants[3]!] });
    await eventually(() => store.stats.reloads >= 1, 'the reload');
    assert.deepEqual(
      store.tenants().map((t) => t.id),
      ['open_co'],
    );
  });

  it('keeps serving while the file is gone, logging it once, and reloads when it is back', async () => {
    const { store, file, log } = await openStore(base);
    rmSync(file);
    await eventually(() => store.stats.failedReloads >= 1, 'the failed reload');
    await new Promise((resolve) => setTimeout(resolve, 300)); // several polls
    assert.equal(store.stats.failedReloads, 1);
    assert.deepEqual(
      log
        .lines()
        .filter((l) => l.level === 50)
        .map((l) => l.problem),
      [`TenantsFile ${file} cannot be read (ENOENT)`],
    );
    assert.deepEqual(await store.authenticate(`Bearer ${keys.acme}`), { ok: true, tenant: acmeTenant });
    writeTenantsFile(file, { version: 1, tenants: [base.tenants[1]!] });
    await eventually(() => store.stats.reloads >= 1, 'the reload');
    assert.deepEqual(
      store.tenants().map((t) => t.id),
      ['beta'],
    );
  });

  it('answers every request under way across a reload', async () => {
    const { store } = await openStore(base);
    await store.authenticate(`Bearer ${keys.acme}`); // one cached, others not
    const headers = [`Bearer ${keys.acme}`, `Bearer ${keys.betaNew}`, basic('open_co', keys.open), `Bearer ${keys.betaOld}`];
    const pending = Array.from({ length: 5 }, () => headers.map((h) => store.authenticate(h))).flat();
    assert.equal(await store.reload(), true);
    const results = await Promise.all(pending);
    assert.deepEqual(
      results.map((r) => (r.ok ? r.tenant.id : r.reason)),
      Array(5).fill(['acme', 'beta', 'open_co', 'revoked']).flat(),
    );
    assert.equal(store.stats.reloads, 1);
  });

  it('stops reloading once closed', async () => {
    const { store, file } = await openStore(base);
    store.close();
    writeTenantsFile(file, { version: 1, tenants: [] });
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(store.stats.reloads, 0);
    assert.equal(store.size, 4);
  });

  it('open() refuses a missing, unreadable or invalid file with a ConfigError', async () => {
    const { logger } = capturedLogger();
    const missing = path.join(dir, 'missing.json');
    assert.equal(
      await rejectsWith(TenantStore.open(missing, { logger }), ConfigError),
      `TenantsFile ${missing} does not exist. Create it with "push-proxy tenants add <tenant-id>", or point TenantsFile at the tenants file.`,
    );
    assert.equal(
      await rejectsWith(TenantStore.open(dir, { logger }), ConfigError),
      `TenantsFile ${dir} cannot be read (EISDIR). Check its path and permissions.`,
    );
    const broken = path.join(dir, 'broken.json');
    writeFileSync(broken, '{"version":1,');
    assert.equal(
      await rejectsWith(TenantStore.open(broken, { logger }), ConfigError),
      `TenantsFile ${broken} is not valid JSON: Expected double-quoted property name at line 1, column 14. Fix the syntax, or rewrite the file with "push-proxy tenants".`,
    );
    const invalid = path.join(dir, 'invalid.json');
    writeFileSync(invalid, JSON.stringify({ version: 2, tenants: [] }));
    assert.equal(
      await rejectsWith(TenantStore.open(invalid, { logger }), ConfigError),
      `TenantsFile ${invalid} is invalid: the file version must be 1: this Push Proxy reads version 1 files. ${FIX}`,
    );
  });

  it('never quotes the file in a syntax error: it may hold hashes', () => {
    const hash = base.tenants[0]!.keys[0]!.hash;
    const syntax = (text: string): string => throwsWith(() => parseTenantsFile(text, 'F'), ConfigError);
    const notJson = (what: string): string =>
      `TenantsFile F is not valid JSON: ${what}. Fix the syntax, or rewrite the file with "push-proxy tenants".`;
    const text = `{"version":1,"tenants":[{"id":"acme","keys":[{"hash":"${hash}"} x]}]}`;
    assert.equal(syntax(text), notJson(`Expected ',' or ']' after array element at line 1, column ${text.indexOf(' x') + 2}`));
    assert.equal(syntax(`{"hash": ${hash}}`), notJson("Unexpected token 's'"));
    assert.equal(syntax(`{"hash": "${hash}"}\n}`), notJson('Unexpected non-whitespace character after the JSON at line 2, column 1'));
  });

  it('validates the file, naming the tenant and the field', () => {
    const hash = base.tenants[0]!.keys[0]!.hash;
    const tenant = (fields: Record<string, unknown>): string =>
      JSON.stringify({ version: 1, tenants: [{ id: 'acme', keys: [{ hash, created: CREATED }], ...fields }] });
    const problem = (text: string): string => throwsWith(() => parseTenantsFile(text, 'F'), ConfigError);
    const invalid = (what: string): string => `TenantsFile F is invalid: ${what}. ${FIX}`;
    assert.equal(
      problem(tenant({ serverIDs: ['x'] })),
      invalid(
        'tenant "acme" (tenants[0]) has unknown field "serverIDs" (known fields, case-sensitive: id, keys, serverIds, platforms, ratePerSec, revoked)',
      ),
    );
    assert.equal(problem(tenant({ serverIds: ['x', 5] })), invalid('tenant "acme" (tenants[0]) serverIds[1] must be a string'));
    assert.equal(
      problem(tenant({ platforms: [] })),
      invalid('tenant "acme" (tenants[0]) platforms must list at least one value, or be left out to allow any'),
    );
    assert.equal(problem(tenant({ ratePerSec: 0 })), invalid('tenant "acme" (tenants[0]) ratePerSec must be a number above 0'));
    assert.equal(problem(tenant({ revoked: 'no' })), invalid('tenant "acme" (tenants[0]) revoked must be a boolean'));
    assert.equal(
      problem(tenant({ id: 'Acme' })),
      invalid('tenant "Acme" (tenants[0]) id must be 1 to 63 lowercase letters, digits, "_" or "-", starting with a letter or digit'),
    );
    assert.equal(
      problem(JSON.stringify({ version: 1, tenants: [{ id: 'acme', keys: [{ hash: 'plain-text-key', created: CREATED }] }] })),
      invalid('tenant "acme" (tenants[0]) keys[0].hash is not a hash written by "push-proxy tenants add"'),
    );
    assert.equal(
      problem(JSON.stringify({ version: 1, tenants: [{ id: 'acme', keys: [{ hash, created: CREATED, revokd: true }] }] })),
      invalid('tenant "acme" (tenants[0]) keys[0] has unknown field "revokd" (known fields, case-sensitive: hash, created, revoked)'),
    );
    assert.equal(problem(JSON.stringify({ version: 1, tenants: [{ keys: [] }] })), invalid('tenants[0] is missing "id"'));
    assert.equal(problem(JSON.stringify({ tenants: {} })), invalid('the file is missing "version"; the file tenants must be an array'));
    const twice = JSON.parse(tenant({})) as TenantsFileData;
    twice.tenants.push(twice.tenants[0]!);
    assert.equal(problem(JSON.stringify(twice)), invalid('tenant "acme" (tenants[1]) appears twice: merge the two entries'));
    assert.deepEqual(parseTenantsFile(JSON.stringify({ version: 1, tenants: [] }), 'F'), { version: 1, tenants: [] });
  });
});

describe('tenants: command line', () => {
  const dir = tempDir();
  const keyIn = (text: string): string => {
    const match = /pp_[a-z0-9_-]+_[A-Za-z0-9_-]{43}/.exec(text);
    assert.ok(match, text);
    return match[0];
  };
  const readData = (file: string): TenantsFileData => JSON.parse(readFileSync(file, 'utf8')) as TenantsFileData;
  const modeOf = (file: string): number => statSync(file).mode & 0o777;
  const addedText = (key: string, id: string, first: string[]): string =>
    [
      ...first,
      '',
      'Its key, shown this once: it cannot be shown again (only its hash is stored). Keep it now:',
      '',
      `  ${key}`,
      '',
      "Set the Mattermost server's Push Notification Server to (with this proxy's host):",
      '',
      `  https://${id}:${key}@push.example.com`,
      '',
      'or send the header "Authorization: Bearer <key>".',
      '',
    ].join('\n');

  async function authenticateOnce(file: string, header: string) {
    const store = await TenantStore.open(file, { logger: capturedLogger().logger });
    try {
      return await store.authenticate(header);
    } finally {
      store.close();
    }
  }

  it('add creates the file (mode 0600) and prints a key, once, that then authenticates', async () => {
    const file = path.join(dir, 'add', 'nested', 'tenants.json');
    const text = await tenantsAdd(file, { id: 'acme', serverIds: ['srv-1'], platforms: ['apple_rn'] });
    const key = keyIn(text);
    assert.match(key, KEY_FORMAT);
    assert.equal(text, addedText(key, 'acme', [`Added tenant "acme" to ${file}.`]));
    assert.equal(modeOf(file), 0o600);
    const data = readData(file);
    assert.equal(data.version, 1);
    assert.equal(data.tenants.length, 1);
    const [entry] = data.tenants as [TenantEntry];
    assert.deepEqual(Object.keys(entry), ['id', 'keys', 'revoked', 'serverIds', 'platforms']);
    assert.equal(entry.keys.length, 1);
    assert.match(entry.keys[0]!.hash, HASH_FORMAT);
    assert.equal(new Date(entry.keys[0]!.created).toISOString(), entry.keys[0]!.created);
    assert.equal(entry.keys[0]!.revoked, false);
    assert.equal(readFileSync(file, 'utf8').includes(key), false);
    assert.deepEqual(readdirSync(path.dirname(file)), ['tenants.json']);
    assert.deepEqual(await authenticateOnce(file, basic('acme', key)), {
      ok: true,
      tenant: { id: 'acme', revoked: false, serverIds: ['srv-1'], platforms: ['apple_rn'] },
    });
  });

  it('add on an existing tenant adds a second key (rotation); both work until one is revoked', async () => {
    const file = path.join(dir, 'rotate.json');
    const first = keyIn(await tenantsAdd(file, { id: 'acme' }));
    const text = await tenantsAdd(file, { id: 'acme', ratePerSec: 25 });
    const second = keyIn(text);
    assert.notEqual(first, second);
    assert.equal(
      text,
      addedText(second, 'acme', [
        `Added key 2 to tenant "acme" in ${file}, and set its rate.`,
        'Its 1 other active key keeps working until revoked (push-proxy tenants revoke acme --key N).',
      ]),
    );
    assert.equal(modeOf(file), 0o600);
    assert.equal(readData(file).tenants[0]!.keys.length, 2);
    assert.deepEqual(await authenticateOnce(file, `Bearer ${first}`), { ok: true, tenant: { id: 'acme', revoked: false, ratePerSec: 25 } });
    assert.deepEqual(await authenticateOnce(file, `Bearer ${second}`), {
      ok: true,
      tenant: { id: 'acme', revoked: false, ratePerSec: 25 },
    });

    assert.equal(
      await tenantsRevoke(file, 'acme', { keyIndex: 1 }),
      'Revoked key 1 of tenant "acme". 1 active key left. A running proxy refuses it once it reloads the file, within a few seconds.\n',
    );
    assert.equal(modeOf(file), 0o600);
    assert.deepEqual(await authenticateOnce(file, `Bearer ${first}`), { ok: false, reason: 'revoked' });
    assert.deepEqual(await authenticateOnce(file, `Bearer ${second}`), {
      ok: true,
      tenant: { id: 'acme', revoked: false, ratePerSec: 25 },
    });
    assert.equal(await tenantsRevoke(file, 'acme', { keyIndex: 1 }), 'Key 1 of tenant "acme" was already revoked.\n');
    assert.equal(
      await tenantsRevoke(file, 'acme', { keyIndex: 2 }),
      'Revoked key 2 of tenant "acme". Tenant "acme" has no active key left: add one with "push-proxy tenants add acme". A running proxy refuses it once it reloads the file, within a few seconds.\n',
    );
  });

  it('list shows tenants and keys, never a key or a hash', async () => {
    const file = path.join(dir, 'list.json');
    const acmeKey = keyIn(await tenantsAdd(file, { id: 'acme', serverIds: ['srv-1', 'srv-2'], platforms: ['apple_rn'], ratePerSec: 50 }));
    const betaKeys = [keyIn(await tenantsAdd(file, { id: 'beta' })), keyIn(await tenantsAdd(file, { id: 'beta' }))];
    await tenantsRevoke(file, 'beta', { keyIndex: 1 });
    await tenantsAdd(file, { id: 'gone' });
    await tenantsRevoke(file, 'gone');
    const created = readData(file).tenants.map((t) => t.keys.map((k) => k.created));
    const text = await tenantsList(file);
    assert.equal(
      text,
      [
        `Tenants in ${file}:`,
        '',
        'TENANT  KEYS                 SERVER IDS   PLATFORMS  RATE/S   STATUS',
        'acme    1 active, 0 revoked  srv-1,srv-2  apple_rn   50       active',
        'beta    1 active, 1 revoked  any          any        default  active',
        'gone    1 active, 0 revoked  any          any        default  revoked',
        '',
        'TENANT  KEY  CREATED                   STATUS',
        `acme    1    ${created[0]![0]}  active`,
        `beta    1    ${created[1]![0]}  revoked`,
        `beta    2    ${created[1]![1]}  active`,
        `gone    1    ${created[2]![0]}  active (tenant revoked)`,
        '',
      ].join('\n'),
    );
    for (const secret of [acmeKey, ...betaKeys, ...readData(file).tenants.flatMap((t) => t.keys.map((k) => k.hash))]) {
      assert.equal(text.includes(secret), false);
    }
    assert.equal(text.includes('scrypt'), false);
    assert.equal(
      await tenantsList(path.join(dir, 'empty.json')).catch((err: Error) => err.message),
      `TenantsFile ${path.join(dir, 'empty.json')} does not exist. Create it with "push-proxy tenants add <tenant-id>".`,
    );
  });

  it('revoke refuses the whole tenant; add then refuses to give it a key', async () => {
    const file = path.join(dir, 'revoke.json');
    const key = keyIn(await tenantsAdd(file, { id: 'acme' }));
    assert.equal(
      await tenantsRevoke(file, 'acme'),
      'Revoked tenant "acme": every one of its keys is refused. A running proxy refuses it once it reloads the file, within a few seconds.\n',
    );
    assert.equal(readData(file).tenants[0]!.revoked, true);
    assert.equal(modeOf(file), 0o600);
    assert.deepEqual(await authenticateOnce(file, `Bearer ${key}`), { ok: false, reason: 'revoked' });
    assert.equal(await tenantsRevoke(file, 'acme'), 'Tenant "acme" was already revoked.\n');
    assert.equal(
      await rejectsWith(tenantsAdd(file, { id: 'acme' }), CommandError),
      `tenant "acme" is revoked, so a new key would be refused too. Choose another id, or set its "revoked" to false in ${file} first.`,
    );
  });

  it('names what is wrong: unknown tenant, missing key number, bad id', async () => {
    const file = path.join(dir, 'errors.json');
    await tenantsAdd(file, { id: 'acme' });
    await tenantsAdd(file, { id: 'beta' });
    assert.equal(
      await rejectsWith(tenantsRevoke(file, 'nobody'), CommandError),
      `tenant "nobody" is not in ${file} (tenants: acme, beta).`,
    );
    assert.equal(
      await rejectsWith(tenantsRevoke(file, 'acme', { keyIndex: 3 }), CommandError),
      'tenant "acme" has no key 3: its keys are 1 to 1 (see push-proxy tenants list).',
    );
    assert.equal(
      await rejectsWith(tenantsAdd(file, { id: 'Bad Id' }), CommandError),
      'tenant id "Bad Id" is invalid: use 1 to 63 lowercase letters, digits, "_" or "-", starting with a letter or digit',
    );
    writeFileSync(file, '{"version":1,"tenants":[{"id":"acme","keys":[],"serverIDs":["x"]}]}');
    assert.equal(
      await rejectsWith(tenantsAdd(file, { id: 'acme' }), ConfigError),
      `TenantsFile ${file} is invalid: tenant "acme" (tenants[0]) has unknown field "serverIDs" (known fields, case-sensitive: id, keys, serverIds, platforms, ratePerSec, revoked). ${FIX}`,
    );
  });

  it('runTenantsCommand parses and runs', async () => {
    const file = path.join(dir, 'run.json');
    mkdirSync(dir, { recursive: true });
    const key = keyIn(await runTenantsCommand(file, ['add', 'acme', '--platform', 'android_rn']));
    assert.deepEqual(await authenticateOnce(file, `Bearer ${key}`), {
      ok: true,
      tenant: { id: 'acme', revoked: false, platforms: ['android_rn'] },
    });
    const created = readData(file).tenants[0]!.keys[0]!.created;
    assert.equal(
      await runTenantsCommand(file, ['list']),
      [
        `Tenants in ${file}:`,
        '',
        'TENANT  KEYS                 SERVER IDS  PLATFORMS   RATE/S   STATUS',
        'acme    1 active, 0 revoked  any         android_rn  default  active',
        '',
        'TENANT  KEY  CREATED                   STATUS',
        `acme    1    ${created}  active`,
        '',
      ].join('\n'),
    );
    assert.equal(
      await runTenantsCommand(file, ['revoke', 'acme', '--key', '1']),
      'Revoked key 1 of tenant "acme". Tenant "acme" has no active key left: add one with "push-proxy tenants add acme". A running proxy refuses it once it reloads the file, within a few seconds.\n',
    );
  });

  it('parses the arguments', () => {
    assert.deepEqual(parseTenantsArgs(['add', 'acme']), { command: 'add', id: 'acme' });
    assert.deepEqual(
      parseTenantsArgs([
        'add',
        'acme',
        '--server-id',
        's1',
        '--server-id=s2',
        '--server-id',
        's1',
        '--platform',
        'apple_rn',
        '--platform=android_rn',
        '--rate',
        '12.5',
      ]),
      {
        command: 'add',
        id: 'acme',
        serverIds: ['s1', 's2'],
        platforms: ['apple_rn', 'android_rn'],
        ratePerSec: 12.5,
      },
    );
    assert.deepEqual(parseTenantsArgs(['list']), { command: 'list' });
    assert.deepEqual(parseTenantsArgs(['revoke', 'acme']), { command: 'revoke', id: 'acme' });
    assert.deepEqual(parseTenantsArgs(['revoke', 'acme', '--key', '2']), { command: 'revoke', id: 'acme', keyIndex: 2 });
    assert.deepEqual(parseTenantsArgs(['revoke', '--key=3', 'acme']), { command: 'revoke', id: 'acme', keyIndex: 3 });
  });

  it('answers bad arguments with the problem and the usage', () => {
    const cases: Array<[string[], string]> = [
      [[], 'a command is needed'],
      [['remove', 'acme'], 'unknown command "remove"'],
      [['add'], '"add" needs exactly one tenant id'],
      [['add', 'a', 'b'], '"add" needs exactly one tenant id, got 2'],
      [['add', 'Acme'], 'tenant id "Acme" is invalid: use 1 to 63 lowercase letters, digits, "_" or "-", starting with a letter or digit'],
      [['add', 'acme', '--key', '1'], 'unknown option "--key" for "add"'],
      [['add', 'acme', '--server-id'], '--server-id needs a value'],
      [['add', 'acme', '--rate', '0'], '--rate takes requests per second above 0, not "0"'],
      [['add', 'acme', '--rate', 'fast'], '--rate takes requests per second above 0, not "fast"'],
      [['add', 'acme', '--rate', '1', '--rate', '2'], '--rate is given more than once'],
      [
        ['add', 'acme', '--platform', 'apple_rn-v2'],
        '--platform takes a platform type without its version suffix: "apple_rn", not "apple_rn-v2"',
      ],
      [['list', 'acme'], '"list" takes no arguments, got "acme"'],
      [['revoke', 'acme', '--key', '0'], '--key takes a key number as "list" shows it (1, 2, …), not "0"'],
      [['revoke', 'acme', '--server-id', 'x'], 'unknown option "--server-id" for "revoke"'],
    ];
    for (const [argv, problem] of cases) {
      assert.equal(
        throwsWith(() => parseTenantsArgs(argv), CommandError),
        `${problem}\n\n${TENANTS_USAGE}`,
        argv.join(' '),
      );
    }
  });
});
