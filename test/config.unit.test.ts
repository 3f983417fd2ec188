/** Configuration: the original's sample loads unchanged; bad configs stop start-up naming the key and the fix. */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { builtInTestConfig, findConfigFile, loadConfigFile, parseConfig, parseListenAddress } from '../src/config/load';
import { ConfigError } from '../src/config/errors';
import { removeGuardSettings } from '../src/delivery/remove-guard';

const SAMPLE = path.join(__dirname, '..', '..', 'test', 'fixtures', 'mattermost-push-proxy.sample.json');

function tempFile(name: string, content: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'push-proxy-config-'));
  const file = path.join(dir, name);
  writeFileSync(file, content);
  return file;
}

function configError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${err}`);
    return err.message;
  }
  assert.fail('expected a ConfigError');
}

describe('config: the original sample', () => {
  it('loads unchanged, in eas mode, with the original values and defaults for new keys', () => {
    const { config, warnings, source } = loadConfigFile(SAMPLE, {});
    assert.equal(source, SAMPLE);
    assert.deepEqual(warnings, []);
    assert.equal(config.Mode, 'eas');
    assert.equal(config.ListenAddress, ':8066');
    assert.equal(config.ThrottlePerSec, 300);
    assert.equal(config.ThrottleMemoryStoreSize, 50000);
    assert.equal(config.ThrottleVaryByHeader, 'X-Forwarded-For');
    assert.equal(config.EnableMetrics, false);
    assert.equal(config.SendTimeoutSec, 30);
    assert.equal(config.RetryTimeoutSec, 8);
    assert.equal(config.LogFormat, 'plain');
    assert.equal(config.LogLevel, 'info');
    assert.deepEqual(
      config.ApplePushSettings.map((e) => [e.Type, e.ApplePushTopic, e.AppleEndpoint]),
      [
        ['apple', 'com.mattermost.Mattermost', ''],
        ['apple_rn', 'com.mattermost.react.native', ''],
      ],
    );
    assert.deepEqual(
      config.AndroidPushSettings.map((e) => [e.Type, e.ServiceFileLocation, e.FcmEndpoint]),
      [
        ['android', '', ''],
        ['android_rn', '', ''],
      ],
    );
  });
});

describe('config: parsing', () => {
  it('matches keys case-insensitively, as Go does', () => {
    const { config } = parseConfig(
      { listenaddress: '127.0.0.1:9000', ENABLEMETRICS: true, applepushsettings: [{ type: 'apple', applepushtopic: 'x' }] },
      'f',
      {},
      'eas',
    );
    assert.equal(config.ListenAddress, '127.0.0.1:9000');
    assert.equal(config.EnableMetrics, true);
    assert.equal(config.ApplePushSettings[0]!.Type, 'apple');
    assert.equal(config.ApplePushSettings[0]!.ApplePushTopic, 'x');
    assert.equal(config.ApplePushSettings[0]!.ApplePushUseDevelopment, false);
  });

  it('ignores an unrelated unknown key with a warning', () => {
    const { warnings } = parseConfig({ SomethingElseEntirely: 1 }, 'f', {}, 'eas');
    assert.deepEqual(warnings, ['config file f: unknown key "SomethingElseEntirely" ignored']);
  });

  it('stops on a likely typo, naming the key it resembles', () => {
    assert.equal(
      configError(() => parseConfig({ ThrotlePerSec: 10 }, 'f', {}, 'eas')),
      'config file f: unknown key "ThrotlePerSec". Did you mean "ThrottlePerSec"? Rename it, or remove it.',
    );
    assert.match(
      configError(() => parseConfig({ ApplePushSettings: [{ AppleAuthKeyFlie: 'x' }] }, 'f', {}, 'eas')),
      /"ApplePushSettings\[0\]\.AppleAuthKeyFlie"\. Did you mean "ApplePushSettings\[0\]\.AppleAuthKeyFile"/,
    );
  });

  it('stops on a wrong type, naming the key', () => {
    assert.equal(
      configError(() => parseConfig({ ApplePushSettings: [{ Type: 'apple', ApplePushUseDevelopment: 'yes' }] }, 'f', {}, 'eas')),
      'config file f: ApplePushSettings[0].ApplePushUseDevelopment must be a boolean, not "yes". Fix its value.',
    );
    assert.match(
      configError(() => parseConfig({ SendTimeoutSec: 1.5 }, 'f', {}, 'eas')),
      /SendTimeoutSec must be a whole number, not 1\.5/,
    );
  });

  it('stops on an unknown mode and a bad endpoint', () => {
    assert.match(
      configError(() => parseConfig({ Mode: 'prod' }, 'f', {}, 'eas')),
      /Mode must be one of "test", "eas", "hosted", not "prod"/,
    );
    assert.match(
      configError(() => parseConfig({ ApplePushSettings: [{ AppleEndpoint: 'https://h:1/path' }] }, 'f', {}, 'eas')),
      /ApplePushSettings\[0\]\.AppleEndpoint must be https:\/\/host:port with no path/,
    );
  });

  it('hosted mode needs HTTPS (or a trusted balancer) and a tenants file', () => {
    assert.equal(
      parseConfig({ Mode: 'hosted', TrustedProxies: ['10.0.0.0/8'], TenantsFile: 't.json' }, 'f', {}, 'eas').config.Mode,
      'hosted',
    );
    assert.equal(
      parseConfig({ Mode: 'hosted', TLSCertFile: 'c', TLSKeyFile: 'k', TenantsFile: 't.json' }, 'f', {}, 'eas').config.Mode,
      'hosted',
    );
    assert.match(
      configError(() => parseConfig({ Mode: 'hosted', TenantsFile: 't.json' }, 'f', {}, 'eas')),
      /hosted mode serves the public internet and needs HTTPS: set TLSCertFile and TLSKeyFile, or, .* TrustedProxies/,
    );
    assert.match(
      configError(() => parseConfig({ Mode: 'hosted', TrustedProxies: ['10.0.0.0/8'] }, 'f', {}, 'eas')),
      /hosted mode authenticates every chat server: set TenantsFile/,
    );
  });

  it('OutboundProxy must be an http:// proxy URL', () => {
    assert.equal(
      parseConfig({ OutboundProxy: 'http://u:p@proxy.internal:3128' }, 'f', {}, 'eas').config.OutboundProxy,
      'http://u:p@proxy.internal:3128',
    );
    assert.match(
      configError(() => parseConfig({ OutboundProxy: 'socks5://proxy:1080' }, 'f', {}, 'eas')),
      /OutboundProxy must be http:\/\/\[user:password@\]host:port/,
    );
  });

  it('TLS keys come in pairs; a client CA needs HTTPS', () => {
    assert.match(
      configError(() => parseConfig({ TLSCertFile: 'c' }, 'f', {}, 'eas')),
      /HTTPS needs both TLSCertFile and TLSKeyFile; only TLSCertFile is set/,
    );
    assert.match(
      configError(() => parseConfig({ TLSClientCAFile: 'ca' }, 'f', {}, 'eas')),
      /TLSClientCAFile .* needs HTTPS/,
    );
  });

  it('rate-limit settings: nested keys case-insensitive, store defaults, Redis needs a URL', () => {
    const { config } = parseConfig(
      { ratelimits: { perclientpersec: 7 }, RateLimitStore: { type: 'redis', url: 'redis://127.0.0.1:6379' } },
      'f',
      {},
      'eas',
    );
    assert.deepEqual(config.RateLimits, { PerClientPerSec: 7 });
    assert.deepEqual(config.RateLimitStore, { Type: 'redis', URL: 'redis://127.0.0.1:6379', FallbackDivisor: 1 });
    assert.deepEqual(parseConfig({}, 'f', {}, 'eas').config.RateLimitStore, { Type: 'memory', URL: '', FallbackDivisor: 1 });
    assert.match(
      configError(() => parseConfig({ RateLimitStore: { Type: 'redis' } }, 'f', {}, 'eas')),
      /set RateLimitStore\.URL to redis:\/\/host:port/,
    );
    assert.match(
      configError(() => parseConfig({ RateLimits: { PerClientPersec: -1 } }, 'f', {}, 'eas')),
      /RateLimits\.PerClientPerSec/,
    );
    assert.deepEqual(
      parseConfig({}, 'f', { PUSH_PROXY_REDIS_URL: 'redis://r:1', PUSH_PROXY_TRUSTED_PROXIES: '10.0.0.0/8, 192.168.0.0/16' }, 'eas').config
        .TrustedProxies,
      ['10.0.0.0/8', '192.168.0.0/16'],
    );
  });

  it('RemoveGuard: documented defaults, nested keys case-insensitive, bounds checked', () => {
    assert.deepEqual(parseConfig({}, 'f', {}, 'eas').config.RemoveGuard, {
      Enabled: true,
      Window: 100,
      MinSuspect: 5,
      Ratio: 0.5,
      MaxAgeSec: 3600,
    });
    const { config } = parseConfig({ removeguard: { enabled: false, minsuspect: 3 } }, 'f', {}, 'eas');
    assert.deepEqual(config.RemoveGuard, { Enabled: false, Window: 100, MinSuspect: 3, Ratio: 0.5, MaxAgeSec: 3600 });
    assert.deepEqual(removeGuardSettings(config), { enabled: false, window: 100, minSuspect: 3, ratio: 0.5, maxAgeMs: 3_600_000 });
    assert.match(
      configError(() => parseConfig({ RemoveGuard: { Ratio: 2 } }, 'f', {}, 'eas')),
      /RemoveGuard\.Ratio/,
    );
    assert.match(
      configError(() => parseConfig({ RemoveGuard: { MinSuspekt: 2 } }, 'f', {}, 'eas')),
      /Did you mean "RemoveGuard\.MinSuspect"/,
    );
  });

  it('an unknown LogFormat means plain, as the original', () => {
    const { config, warnings } = parseConfig({ LogFormat: 'fancy' }, 'f', {}, 'eas');
    assert.equal(config.LogFormat, 'plain');
    assert.equal(warnings.length, 1);
  });

  it('null leaves the default', () => assert.equal(parseConfig({ SendTimeoutSec: null }, 'f', {}, 'eas').config.SendTimeoutSec, 0));

  it('environment overrides win over the file', () => {
    const { config } = parseConfig(
      { ListenAddress: ':1', Mode: 'eas' },
      'f',
      {
        PUSH_PROXY_LISTEN_ADDRESS: '127.0.0.1:2',
        PUSH_PROXY_MODE: 'test',
        PUSH_PROXY_LOG_FORMAT: 'json',
        PUSH_PROXY_LOG_LEVEL: 'debug',
        PUSH_PROXY_ENABLE_METRICS: 'true',
      },
      'eas',
    );
    assert.deepEqual(
      [config.ListenAddress, config.Mode, config.LogFormat, config.LogLevel, config.EnableMetrics],
      ['127.0.0.1:2', 'test', 'json', 'debug', true],
    );
  });

  it('a bad environment value is reported with its name', () => {
    assert.match(
      configError(() => parseConfig({}, 'f', { PUSH_PROXY_ENABLE_METRICS: 'maybe' }, 'eas')),
      /PUSH_PROXY_ENABLE_METRICS="maybe" must be true or false/,
    );
    assert.match(
      configError(() => parseConfig({}, 'f', { PUSH_PROXY_LOG_LEVEL: 'loud' }, 'eas')),
      /LogLevel must be one of/,
    );
  });

  it('invalid JSON names the file and the fix', () => {
    const file = tempFile('bad.json', '{"ListenAddress": ":8066",}');
    assert.match(
      configError(() => loadConfigFile(file, {})),
      /is not valid JSON: .*Fix the syntax/,
    );
  });

  it('without a file: test mode on :8066', () => {
    const { config, source } = builtInTestConfig({});
    assert.equal(source, null);
    assert.equal(config.Mode, 'test');
    assert.equal(config.ListenAddress, ':8066');
  });
});

describe('config: finding the file', () => {
  it('--config, --config=, -config, then PUSH_PROXY_CONFIG, then config/push-proxy.json', () => {
    const file = tempFile('a.json', '{}');
    const dir = path.dirname(file);
    assert.equal(findConfigFile(['--config', file], {}, '/'), file);
    assert.equal(findConfigFile([`--config=${file}`], {}, '/'), file);
    assert.equal(findConfigFile(['-config', 'a.json'], {}, dir), file);
    assert.equal(findConfigFile([], { PUSH_PROXY_CONFIG: file }, '/'), file);
    assert.equal(findConfigFile([], {}, dir), null);
    const project = path.dirname(tempFile('x', ''));
    const defaultFile = path.join(project, 'config', 'push-proxy.json');
    mkdirSync(path.dirname(defaultFile));
    writeFileSync(defaultFile, '{}');
    assert.equal(findConfigFile([], {}, project), defaultFile);
  });

  it('a named file that does not exist is an error', () => {
    assert.match(
      configError(() => findConfigFile(['--config', '/nonexistent/x.json'], {}, '/')),
      /config file \/nonexistent\/x.json not found/,
    );
  });
});

describe('ListenAddress', () => {
  it('parses Go host:port forms', () => {
    assert.deepEqual(parseListenAddress(':8066'), { host: undefined, port: 8066 });
    assert.deepEqual(parseListenAddress('127.0.0.1:9'), { host: '127.0.0.1', port: 9 });
    assert.deepEqual(parseListenAddress('[::1]:9'), { host: '::1', port: 9 });
    assert.deepEqual(parseListenAddress(''), { host: undefined, port: 80 });
    assert.deepEqual(parseListenAddress(':http'), { host: undefined, port: 80 });
  });
  it('refuses what is not host:port', () => {
    assert.match(
      configError(() => parseListenAddress('8066')),
      /ListenAddress "8066" must be host:port/,
    );
  });
});
