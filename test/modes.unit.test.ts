/** Mode defaults as the configuration is read: test mode's endpoints, inspector and limits; eas mode's. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../src/config/load';
import { rateLimitSettings } from '../src/ratelimit/settings';

describe('mode defaults', () => {
  it('test mode: APNs development endpoints unless an entry says otherwise, the inspector on, stricter limits', () => {
    const { config } = parseConfig(
      { Mode: 'test', ApplePushSettings: [{ Type: 'a' }, { Type: 'b', ApplePushUseDevelopment: false }] },
      'f',
      {},
      'eas',
    );
    assert.deepEqual(
      config.ApplePushSettings.map((e) => e.ApplePushUseDevelopment),
      [true, false],
    );
    assert.equal(config.Inspector, true);
    assert.deepEqual(rateLimitSettings(config), { perClientPerSec: 50, perServerIdPerSec: 20, perTenantPerSec: 100 });
  });

  it('eas mode: production endpoints, no inspector, no limits, as the original', () => {
    const { config } = parseConfig({ ApplePushSettings: [{ Type: 'a' }] }, 'f', {}, 'eas');
    assert.equal(config.ApplePushSettings[0]!.ApplePushUseDevelopment, false);
    assert.equal(config.Inspector, false);
    assert.deepEqual(rateLimitSettings(config), { perClientPerSec: 0, perServerIdPerSec: 0, perTenantPerSec: 0 });
  });

  it('the inspector can be turned on in other modes, and off in test mode', () => {
    assert.equal(parseConfig({ Inspector: true }, 'f', {}, 'eas').config.Inspector, true);
    assert.equal(parseConfig({ Mode: 'test', Inspector: false }, 'f', {}, 'eas').config.Inspector, false);
  });
});
