/**
 * The registry of delivery services (src/platforms/registry.ts) is what config loading, metrics and the
 * instance read: a service declared there is configurable, measured and probed with nothing else to change.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../src/config/load';
import { ConfigError } from '../src/config/errors';
import { ProxyMetrics } from '../src/metrics';
import { entriesOf, PLATFORMS } from '../src/platforms/registry';
import { buildApnsRequest } from '../src/platforms/apns/payload';
import { buildFcmMessage } from '../src/platforms/fcm/payload';

describe('the registry of delivery services', () => {
  it('lists APNs and FCM under the original settings keys and platform labels', () => {
    assert.deepEqual(
      PLATFORMS.map((p) => [p.id, p.settingsKey]),
      [
        ['apple', 'ApplePushSettings'],
        ['android', 'AndroidPushSettings'],
      ],
    );
  });

  for (const platform of PLATFORMS) {
    it(`${platform.settingsKey}: config loading takes the list, folds the keys' case and fills the schema's defaults`, () => {
      const lower = platform.settingsKey.toLowerCase();
      const { config } = parseConfig({ [lower]: [{ type: 'x' }] }, 'f', {}, 'eas');
      const [entry] = entriesOf(config, platform) as ReadonlyArray<Record<string, unknown>>;
      assert.ok(entry, 'the entry is read under the canonical key');
      assert.deepEqual(Object.keys(entry).sort(), Object.keys(platform.entrySchema.properties).sort());
      assert.equal(entry.Type, 'x');
    });

    it(`${platform.settingsKey}: a misspelt key of an entry is refused with the right name`, () => {
      const [key] = Object.keys(platform.entrySchema.properties).filter((k) => k.length > 12);
      assert.ok(key);
      const typo = key.slice(0, -2) + key.slice(-1);
      assert.throws(
        () => parseConfig({ [platform.settingsKey]: [{ Type: 'x', [typo]: '' }] }, 'f', {}, 'eas'),
        (err: unknown) => err instanceof ConfigError && err.message.includes(`Did you mean "${platform.settingsKey}[0].${key}"`),
      );
    });

    it(`${platform.id}: its attempt histogram is registered under ${platform.requestDurationMetric.name}`, async () => {
      const metrics = new ProxyMetrics();
      metrics.entryMetrics(platform.id, 'x').ended(0.25, { kind: 'final', outcome: 'OK' });
      const text = await metrics.registry.metrics();
      assert.match(text, new RegExp(`^${platform.requestDurationMetric.name}_count 1$`, 'm'));
      assert.match(text, new RegExp(`^service_notification_duration_seconds_count\\{platform="${platform.id}"\\} 1$`, 'm'));
    });
  }

  it('the credential probes are silent notifications the builders accept', () => {
    const [apns, fcm] = PLATFORMS;
    const apple = buildApnsRequest(apns.credentialProbe('apple_rn'), { topic: 'com.example', appVersion: 1 });
    // Nothing to show: no alert, no badge, no sound.
    assert.deepEqual(apple.payload.aps, { 'content-available': 1 });
    assert.equal(apple.token, '0'.repeat(64));
    const android = buildFcmMessage(fcm.credentialProbe('android_rn'));
    assert.equal(android.token, 'push-proxy-credential-check');
    assert.equal(android.data.type, 'clear');
  });

  it('test mode sets only APNs entries to the development environment, and only where the file is silent', () => {
    const { config } = parseConfig(
      { ApplePushSettings: [{ Type: 'a' }, { Type: 'b', ApplePushUseDevelopment: false }], AndroidPushSettings: [{ Type: 'c' }] },
      'f',
      {},
      'test',
    );
    assert.deepEqual(
      config.ApplePushSettings.map((e) => e.ApplePushUseDevelopment),
      [true, false],
    );
    assert.equal('ApplePushUseDevelopment' in config.AndroidPushSettings[0]!, false);
  });
});
