/** AdminListenAddress read and checked, and what each listener serves (src/http/surfaces.ts). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { adminListenAddress, parseConfig } from '../src/config/load';
import { ConfigError } from '../src/config/errors';
import { listenerSurfaces } from '../src/http/surfaces';

function configError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${err}`);
    return err.message;
  }
  assert.fail('expected a ConfigError');
}

const HOSTED = { Mode: 'hosted', TrustedProxies: ['10.0.0.0/8'], TenantsFile: 't.json' };

describe('config: AdminListenAddress', () => {
  it('empty by default: no admin listener', () => {
    const { config } = parseConfig({}, 'f', {}, 'eas');
    assert.equal(config.AdminListenAddress, '');
    assert.equal(adminListenAddress(config), undefined);
  });

  it("Go's host:port, from the file or PUSH_PROXY_ADMIN_LISTEN_ADDRESS (which wins)", () => {
    const fromFile = parseConfig({ adminlistenaddress: '127.0.0.1:9066' }, 'f', {}, 'eas').config;
    assert.deepEqual(adminListenAddress(fromFile), { host: '127.0.0.1', port: 9066 });
    const fromEnv = parseConfig(
      { AdminListenAddress: '127.0.0.1:9066' },
      'f',
      { PUSH_PROXY_ADMIN_LISTEN_ADDRESS: '[::1]:9067' },
      'eas',
    ).config;
    assert.deepEqual(adminListenAddress(fromEnv), { host: '::1', port: 9067 });
  });

  it('a value that is not host:port is a ConfigError naming the key', () => {
    assert.match(
      configError(() => parseConfig({ AdminListenAddress: '9066' }, 'f', {}, 'eas')),
      /AdminListenAddress "9066" must be host:port, such as ":8066" or "127\.0\.0\.1:8066"/,
    );
    assert.match(
      configError(() => parseConfig({}, 'f', { PUSH_PROXY_ADMIN_LISTEN_ADDRESS: 'localhost' }, 'eas')),
      /AdminListenAddress "localhost" must be host:port/,
    );
  });

  it("the public listener's port is a ConfigError; another port, another address or port 0 is not", () => {
    assert.match(
      configError(() => parseConfig({ ListenAddress: ':8066', AdminListenAddress: '127.0.0.1:8066' }, 'f', {}, 'eas')),
      /AdminListenAddress "127\.0\.0\.1:8066" uses the port of ListenAddress ":8066" \(8066\)\. Give the admin listener a port of its own/,
    );
    assert.match(
      configError(() => parseConfig({ ListenAddress: '', AdminListenAddress: ':80' }, 'f', {}, 'eas')),
      /uses the port of ListenAddress "" \(80\)/,
    );
    for (const [listen, admin] of [
      [':8066', '127.0.0.1:9066'],
      ['10.0.0.5:8066', '127.0.0.1:8066'],
      ['127.0.0.1:0', '127.0.0.1:0'],
    ]) {
      assert.equal(parseConfig({ ListenAddress: listen, AdminListenAddress: admin }, 'f', {}, 'eas').config.AdminListenAddress, admin);
    }
  });

  it('hosted mode: a start-up warning when /metrics or the inspector is on without an admin listener', () => {
    const { warnings } = parseConfig({ ...HOSTED, EnableMetrics: true, Inspector: true }, 'f', {}, 'eas');
    assert.ok(
      warnings.some((w) =>
        /hosted mode never serves \/metrics \(EnableMetrics\) or the inspector \(Inspector\) on the public listener, and AdminListenAddress is not set: they are not served/.test(
          w,
        ),
      ),
      warnings.join('\n'),
    );
    assert.deepEqual(parseConfig({ ...HOSTED }, 'f', {}, 'eas').warnings, []);
    const withAdmin = parseConfig({ ...HOSTED, EnableMetrics: true, AdminListenAddress: '127.0.0.1:9066' }, 'f', {}, 'eas').warnings;
    assert.deepEqual(withAdmin, []);
    const inspectorWithAdmin = parseConfig({ ...HOSTED, Inspector: true, AdminListenAddress: '127.0.0.1:9066' }, 'f', {}, 'eas').warnings;
    assert.ok(inspectorWithAdmin.some((w) => /anyone who can reach the admin listener \(127\.0\.0\.1:9066\)/.test(w)));
  });
});

describe('listenerSurfaces', () => {
  const on = { EnableMetrics: true, Inspector: true, AdminListenAddress: '' };

  it('no admin listener, eas or test: everything on the public listener, as before', () => {
    for (const Mode of ['eas', 'test'] as const) {
      assert.deepEqual(listenerSurfaces({ ...on, Mode }), {
        public: { pushApi: true, readiness: 'details', metrics: true, inspector: true, operatorApi: true },
        admin: undefined,
      });
    }
    assert.equal(listenerSurfaces({ ...on, Mode: 'eas', EnableMetrics: false }).public.metrics, false);
  });

  it('hosted: /metrics and the inspector never on the public listener', () => {
    assert.deepEqual(listenerSurfaces({ ...on, Mode: 'hosted' }).public, {
      pushApi: true,
      readiness: 'details',
      metrics: false,
      inspector: false,
      operatorApi: false,
    });
    const split = listenerSurfaces({ ...on, Mode: 'hosted', AdminListenAddress: '127.0.0.1:9066' });
    assert.equal(split.public.metrics, false);
    assert.equal(split.public.inspector, false);
    assert.equal(split.admin?.metrics, true);
    assert.equal(split.admin?.inspector, true);
  });

  it('with an admin listener: the push API and a bare /readyz public, the rest on the admin listener', () => {
    assert.deepEqual(listenerSurfaces({ ...on, Mode: 'eas', AdminListenAddress: ':9066' }), {
      public: { pushApi: true, readiness: 'status', metrics: false, inspector: false, operatorApi: false },
      admin: { pushApi: false, readiness: 'details', metrics: true, inspector: true, operatorApi: true },
    });
    assert.equal(listenerSurfaces({ ...on, Mode: 'eas', AdminListenAddress: ':9066', EnableMetrics: false }).admin?.metrics, false);
  });
});
