/** The `Workers` setting: how many processes, what stays in one process, and what each worker counts alone. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../src/config/load';
import { ConfigError } from '../src/config/errors';
import { resolveWorkerCount, singleProcessReason, workerNotices } from '../src/workers';

describe('Workers: the setting', () => {
  const parse = (raw: object, env: Record<string, string> = {}) => parseConfig(raw, 'test.json', env, 'eas').config;

  it('defaults to 1; takes a number, or "auto" for one per core', () => {
    assert.equal(parse({}).Workers, 1);
    assert.equal(parse({ Workers: 4 }).Workers, 4);
    assert.equal(resolveWorkerCount(parse({ Workers: 'auto' }).Workers, 6), 6);
    assert.equal(resolveWorkerCount(3, 6), 3);
    assert.equal(parse({}, { PUSH_PROXY_WORKERS: 'auto' }).Workers, 'auto');
    assert.equal(parse({ Workers: 1 }, { PUSH_PROXY_WORKERS: '2' }).Workers, 2);
  });

  it('anything else stops start-up with what to write', () => {
    for (const value of [0, 'many', 2.5, -1]) {
      assert.throws(
        () => parse({ Workers: value }),
        (err: unknown) => err instanceof ConfigError && /Workers must be a whole number from 1 to 256, or "auto"/.test(err.message),
      );
    }
    assert.throws(() => parse({}, { PUSH_PROXY_WORKERS: 'lots' }), /PUSH_PROXY_WORKERS="lots" must be a whole number or "auto"/);
  });

  it('what stays in one process, and what is counted per worker', () => {
    assert.match(singleProcessReason(parse({ Inspector: true }), false) ?? '', /inspector/);
    assert.match(singleProcessReason(parse({}), true) ?? '', /sandbox/);
    assert.equal(singleProcessReason(parse({}), false), undefined);
    const limited = { RateLimits: { PerClientPerSec: 10 } };
    assert.match(workerNotices(parse(limited), 2)[0] ?? '', /up to 2× each limit.*redis/);
    assert.match(workerNotices(parse({ TenantsFile: 'tenants.json' }), 2)[0] ?? '', /up to 2× each limit/);
    assert.deepEqual(workerNotices(parse({}), 2), [], 'eas mode counts nothing by default');
    assert.deepEqual(workerNotices(parse({ ...limited, RateLimitStore: { Type: 'redis', URL: 'redis://127.0.0.1:6379' } }), 2), []);
    assert.deepEqual(workerNotices(parse(limited), 1), []);
  });
});
