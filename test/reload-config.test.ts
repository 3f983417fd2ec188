/**
 * What a reload applies, warns about and refuses, on an in-process instance talking to a sandbox APNs peer: the
 * configuration file is rewritten and `reload()` called, as SIGHUP does (the process-level test is reload.test.ts).
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { loadConfigFile } from '../src/config/load';
import { startInstance, type ProxyInstance } from '../src/instance';
import { createAppleClientCertificate } from '../src/sandbox/credentials';
import { APPLE_TOKEN, TOPIC, capturedLogger, get, post, startApnsFixture, tempDir, writeTemp, type ApnsFixture } from './support';

const OK = '{"status":"OK"}\n';

function push(platform = 'apple_rn'): object {
  return { platform, server_id: 'reload-config', device_id: APPLE_TOKEN, type: 'message', message: 'hi' };
}

function metricValue(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

describe('reload: what changes in place, what waits for a restart, what is refused', () => {
  let apns: ApnsFixture;
  let dir: string;
  let file: string;
  let proxy: ProxyInstance;
  const log = capturedLogger('info');

  const write = (settings: Record<string, unknown>): void =>
    writeFileSync(file, JSON.stringify({ Mode: 'eas', ListenAddress: '127.0.0.1:0', EnableMetrics: true, ...settings }));

  before(async () => {
    apns = await startApnsFixture();
    dir = tempDir();
    file = writeTemp(dir, 'push-proxy.json', '{}');
    write({ ApplePushSettings: [apns.entry()] });
    proxy = await startInstance(loadConfigFile(file, {}).config, {
      logger: log.logger,
      trustedCa: [apns.ca.certPem],
      listen: { host: '127.0.0.1', port: 0 },
      configSource: file,
      // A long poll: these tests reload by calling reload(), as SIGHUP does, never by the watch.
      reload: { configFile: file, load: () => loadConfigFile(file, {}), pollIntervalMs: 3_600_000 },
    });
  });
  after(async () => {
    await proxy.close();
    await apns.close();
  });

  it('a new entry is served, a removed one is not, after reload()', async () => {
    assert.match((await post(`${proxy.url}/api/v1/send_push`, push('apple_rnbeta'))).text, /missing platform property type=apple_rnbeta/);
    write({ ApplePushSettings: [apns.entry(), apns.entry({ Type: 'apple_rnbeta' })] });
    assert.deepEqual(await proxy.reload('test'), { result: 'reloaded' });
    assert.equal((await post(`${proxy.url}/api/v1/send_push`, push('apple_rnbeta'))).text, OK);
    // Usage counts the new Type under its own name, not as `other`.
    const usage = JSON.parse((await get(`${proxy.url}/api/v1/usage`)).text) as { days: Array<{ platform: string; OK: number }> };
    assert.equal(usage.days.find((d) => d.platform === 'apple_rnbeta')?.OK, 1, JSON.stringify(usage));
    assert.deepEqual(
      proxy.entryStates.map((e) => e.type),
      ['apple_rn', 'apple_rnbeta'],
    );

    assert.equal(metricValue((await get(`${proxy.url}/metrics`)).text, 'service_entry_up{platform_type="apple_rnbeta"}'), 1);

    write({ ApplePushSettings: [apns.entry({ Type: 'apple_rnbeta' })] });
    assert.deepEqual(await proxy.reload('test'), { result: 'reloaded' });
    assert.doesNotMatch(
      (await get(`${proxy.url}/metrics`)).text,
      /service_entry_up\{platform_type="apple_rn"\}/,
      'a removed entry leaves the gauge',
    );
    assert.match((await post(`${proxy.url}/api/v1/send_push`, push('apple_rn'))).text, /missing platform property type=apple_rn /);
    assert.equal((await post(`${proxy.url}/api/v1/send_push`, push('apple_rnbeta'))).text, OK);
  });

  it('ListenAddress and Workers are named in a warning and wait for a restart; LogLevel and the rest apply', async () => {
    write({ ApplePushSettings: [apns.entry()], ListenAddress: '127.0.0.1:9999', Workers: 2, LogLevel: 'warn', SendTimeoutSec: 12 });
    assert.deepEqual(await proxy.reload('test'), { result: 'reloaded' });
    const warning = log.lines().find((l) => /takes a restart/.test(String(l.msg)));
    assert.ok(warning, log.text());
    assert.deepEqual(warning.keys, ['ListenAddress', 'Workers']);
    assert.equal(proxy.config.ListenAddress, '127.0.0.1:0', 'the listener keeps its address');
    assert.equal(proxy.config.SendTimeoutSec, 12);
    assert.equal(log.logger.level, 'warn');
    // At warn, a delivery logs nothing.
    const before = log.lines().length;
    assert.equal((await post(`${proxy.url}/api/v1/send_push`, push())).text, OK);
    assert.equal(log.lines().length, before);
    write({ ApplePushSettings: [apns.entry()] });
    await proxy.reload('test');
    assert.equal(log.logger.level, 'info');
  });

  it('a Mode change and a broken file are refused, counted and shown in /readyz; the running configuration keeps serving', async () => {
    const metricsBefore = (await get(`${proxy.url}/metrics`)).text;
    const refusedBefore = metricValue(metricsBefore, 'service_config_reloads_total{result="refused"}');

    write({ Mode: 'test', ApplePushSettings: [apns.entry()] });
    const modeChange = await proxy.reload('test');
    assert.equal(modeChange.result, 'refused');
    assert.match(modeChange.error!, /Mode cannot change by a reload \(running eas, the file says test\)/);
    assert.equal(proxy.config.Mode, 'eas');

    writeFileSync(file, '{"ApplePushSettings": [');
    const broken = await proxy.reload('test');
    assert.equal(broken.result, 'refused');
    assert.match(broken.error!, new RegExp(`config file ${file}`));
    const logged = log.lines().filter((l) => /new configuration was refused and the running one keeps serving/.test(String(l.msg)));
    assert.equal(logged.length, 2);
    assert.equal(logged[1]!.level, 50, 'an error');

    assert.equal((await post(`${proxy.url}/api/v1/send_push`, push())).text, OK);
    const metrics = (await get(`${proxy.url}/metrics`)).text;
    assert.equal(metricValue(metrics, 'service_config_reloads_total{result="refused"}'), refusedBefore + 2);
    const readiness = JSON.parse((await get(`${proxy.url}/readyz`)).text) as {
      status: string;
      reload: { result: string; trigger: string };
    };
    assert.equal(readiness.status, 'ready');
    assert.equal(readiness.reload.result, 'refused');

    write({ ApplePushSettings: [apns.entry()] });
    assert.equal((await proxy.reload('test')).result, 'reloaded');
  });

  it('a renewed APNs certificate: its new end is gauged, and its warning comes again; a removed entry leaves the gauge', async () => {
    const series = 'service_certificate_expiry_timestamp_seconds{certificate="apple_cert"}';
    const certEntry = (days: number) => {
      const notAfter = new Date(Date.now() + days * 86_400_000);
      const pair = createAppleClientCertificate(apns.ca, { topic: TOPIC, notAfter });
      const entry = apns.entry({ Type: 'apple_cert', AppleAuthKeyFile: '', AppleAuthKeyID: '', AppleTeamID: '' });
      return { notAfter, entry: { ...entry, ApplePushCertPrivate: writeTemp(dir, `push-${days}.pem`, pair.certPem + pair.keyPem) } };
    };
    const soon = certEntry(5);
    write({ ApplePushSettings: [apns.entry(), soon.entry] });
    assert.equal((await proxy.reload('test')).result, 'reloaded');
    assert.equal(metricValue((await get(`${proxy.url}/metrics`)).text, series), Math.floor(soon.notAfter.getTime() / 1000));
    const warnings = () => log.lines().filter((l) => l.certificate === 'apple_cert' && /expires on/.test(String(l.msg))).length;
    assert.equal(warnings(), 1);
    // The same certificate again: today's warning is not repeated.
    assert.equal((await proxy.reload('test')).result, 'reloaded');
    assert.equal(warnings(), 1);

    const renewed = certEntry(300);
    write({ ApplePushSettings: [apns.entry(), renewed.entry] });
    assert.equal((await proxy.reload('test')).result, 'reloaded');
    assert.equal(metricValue((await get(`${proxy.url}/metrics`)).text, series), Math.floor(renewed.notAfter.getTime() / 1000));
    assert.equal(warnings(), 1, 'a year away: no warning');

    write({ ApplePushSettings: [apns.entry()] });
    assert.equal((await proxy.reload('test')).result, 'reloaded');
    assert.doesNotMatch((await get(`${proxy.url}/metrics`)).text, /certificate="apple_cert"/);
  });
});

describe('many reloads leak nothing', () => {
  it('after 30 reloads with sends between them, the old services have closed their connections and timers', async () => {
    const apns = await startApnsFixture();
    const file = writeTemp(
      tempDir(),
      'push-proxy.json',
      JSON.stringify({ Mode: 'eas', ListenAddress: '127.0.0.1:0', ApplePushSettings: [apns.entry()] }),
    );
    const proxy = await startInstance(loadConfigFile(file, {}).config, {
      logger: capturedLogger('warn').logger,
      trustedCa: [apns.ca.certPem],
      listen: { host: '127.0.0.1', port: 0 },
      reload: { configFile: file, load: () => loadConfigFile(file, {}), pollIntervalMs: 3_600_000 },
    });
    const handles = () => (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles().length;
    try {
      assert.equal((await post(`${proxy.url}/api/v1/send_push`, push())).text, OK);
      const before = handles();
      for (let i = 0; i < 30; i++) {
        assert.equal((await proxy.reload('test')).result, 'reloaded');
        assert.equal((await post(`${proxy.url}/api/v1/send_push`, push())).text, OK);
      }
      // Each old state closes once its sends are answered: give the last one its turn.
      for (let i = 0; i < 100 && apns.peer.openConnections > 1; i++) await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(apns.peer.openConnections, 1, 'one HTTP/2 connection: the current service');
      assert.ok(handles() <= before + 2, `active handles ${before} before, ${handles()} after 30 reloads`);
    } finally {
      await proxy.close();
      await apns.close();
    }
  });
});

describe('reload without a configuration file', () => {
  it('the built-in configuration has nothing to reload', async () => {
    const apns = await startApnsFixture();
    const log = capturedLogger('info');
    const file = writeTemp(
      tempDir(),
      'push-proxy.json',
      JSON.stringify({ ListenAddress: '127.0.0.1:0', ApplePushSettings: [apns.entry()] }),
    );
    const proxy = await startInstance(loadConfigFile(file, {}).config, { logger: log.logger, trustedCa: [apns.ca.certPem] });
    try {
      assert.deepEqual(await proxy.reload('SIGHUP'), { result: 'unchanged' });
      assert.match(log.text(), /no configuration file to reload/);
    } finally {
      await proxy.close();
      await apns.close();
    }
  });
});
