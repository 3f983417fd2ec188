/** Client limits without sockets: how often Node checks for late headers, the refused-connection log's pacing, the settings' defaults and checks. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../src/config/errors';
import { builtInTestConfig, parseConfig } from '../src/config/load';
import { connectionsCheckingIntervalMs, DropCounter } from '../src/http/listener';

describe('client limits: pure parts and settings', () => {
  it('Node checks for late headers twice per shortest timeout, at most every second, at least every 100 ms', () => {
    assert.equal(connectionsCheckingIntervalMs(10_000, 60_000), 1_000);
    assert.equal(connectionsCheckingIntervalMs(1_000, 2_000), 500);
    assert.equal(connectionsCheckingIntervalMs(60_000, 1_000), 500);
    assert.equal(connectionsCheckingIntervalMs(100, 100), 100);
  });

  it('refused connections are logged at once, then at most once per interval with the count meanwhile', () => {
    let now = 0;
    const counter = new DropCounter(10_000, () => now);
    assert.equal(counter.drop(), 1);
    now = 1_000;
    assert.equal(counter.drop(), undefined);
    assert.equal(counter.drop(), undefined);
    now = 9_999;
    assert.equal(counter.drop(), undefined);
    now = 11_000;
    assert.equal(counter.drop(), 4);
    now = 30_000;
    assert.equal(counter.drop(), 1);
  });

  const parse = (raw: object, env: Record<string, string> = {}) => parseConfig(raw, 'test.json', env, 'eas').config;

  it('defaults: headers 10 s, request 60 s, keep-alive 60 s, 10000 connections, a 5 s grace', () => {
    const config = parse({});
    assert.deepEqual(
      [config.HeadersTimeoutSec, config.RequestTimeoutSec, config.KeepAliveTimeoutSec, config.MaxConnections, config.DrainGraceSec],
      [10, 60, 60, 10_000, 5],
    );
    assert.equal(parse({}, { PUSH_PROXY_MAX_CONNECTIONS: '0' }).MaxConnections, 0);
    assert.equal(parse({ DrainGraceSec: 9 }, { PUSH_PROXY_DRAIN_GRACE_SEC: '1' }).DrainGraceSec, 1);
    assert.equal(parseConfig({}, null, {}, 'test').config.DrainGraceSec, 5);
    assert.equal(builtInTestConfig({}).config.DrainGraceSec, 0, 'a local demo without a file has no load balancer to wait for');
  });

  it('headers that may take longer than the whole request stop start-up, naming both keys', () => {
    assert.throws(
      () => parse({ HeadersTimeoutSec: 30, RequestTimeoutSec: 20 }),
      (err: unknown) => err instanceof ConfigError && /HeadersTimeoutSec \(30\) is longer than RequestTimeoutSec \(20\)/.test(err.message),
    );
    assert.throws(() => parse({ HeadersTimeoutSec: 0 }), ConfigError);
    assert.throws(() => parse({ MaxConnections: -1 }), ConfigError);
  });
});
