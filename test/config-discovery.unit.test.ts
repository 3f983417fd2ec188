/** Where the configuration is looked for without --config, in which order, and which files are refused (files only, no process). */
import assert from 'node:assert/strict';
import { chmodSync, chownSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import {
  checkSharedDirectoryFile,
  configRequiredBy,
  defaultConfigCandidates,
  loadStartupConfig,
  searchConfigFile,
} from '../src/config/load';
import { ConfigError } from '../src/config/errors';
import { layout, put } from './config-layout';

function expectConfigError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err.message;
  }
  assert.fail('expected a ConfigError');
}

describe('config discovery: the search order (pure)', () => {
  it('a file in the temporary directory that others may write to, or that another user owns, is refused', () => {
    const l = layout();
    const file = put(path.join(l.tmp, 'mattermost-push-proxy.json'), {});
    const me = statSync(file).uid;
    assert.doesNotThrow(() => checkSharedDirectoryFile(file, me));
    chmodSync(file, 0o666);
    assert.match(
      expectConfigError(() => searchConfigFile([], {}, l.cwd, l.tmp)),
      /shared temporary directory and others may write to it.*chmod go-w/,
    );
    chmodSync(file, 0o644);
    assert.equal(searchConfigFile([], {}, l.cwd, l.tmp).file, file);
    // A file of another user's: as root the test gives it away; as another user it checks against a stranger's uid.
    if (me === 0) chownSync(file, 4242, 4242);
    assert.match(
      expectConfigError(() => checkSharedDirectoryFile(file, me === 0 ? 0 : me + 1)),
      /belongs to another user \(uid \d+\)/,
    );
  });

  it('config/push-proxy.json, then mattermost-push-proxy.json in the temporary directory, ./config, ../config, the working directory', () => {
    assert.deepEqual(defaultConfigCandidates('/srv/app', '/var/tmp'), [
      '/srv/app/config/push-proxy.json',
      '/var/tmp/mattermost-push-proxy.json',
      '/srv/app/config/mattermost-push-proxy.json',
      '/srv/config/mattermost-push-proxy.json',
      '/srv/app/mattermost-push-proxy.json',
    ]);
  });

  it('takes the first candidate that exists, and reports every path it looked at', () => {
    const l = layout();
    const none = searchConfigFile([], {}, l.cwd, l.tmp);
    assert.equal(none.file, null);
    assert.deepEqual(none.tried, defaultConfigCandidates(l.cwd, l.tmp));

    const bare = put(path.join(l.cwd, 'mattermost-push-proxy.json'), {});
    assert.equal(searchConfigFile([], {}, l.cwd, l.tmp).file, bare);
    const upper = put(path.join(l.parent, 'config', 'mattermost-push-proxy.json'), {});
    assert.equal(searchConfigFile([], {}, l.cwd, l.tmp).file, upper);
    const local = put(path.join(l.cwd, 'config', 'mattermost-push-proxy.json'), {});
    assert.equal(searchConfigFile([], {}, l.cwd, l.tmp).file, local);
    const temporary = put(path.join(l.tmp, 'mattermost-push-proxy.json'), {});
    assert.equal(searchConfigFile([], {}, l.cwd, l.tmp).file, temporary);
    const ours = put(path.join(l.cwd, 'config', 'push-proxy.json'), {});
    assert.equal(searchConfigFile([], {}, l.cwd, l.tmp).file, ours);
  });

  it('a named file is still looked for as before and must exist', () => {
    const l = layout();
    put(path.join(l.cwd, 'config', 'push-proxy.json'), {});
    const named = put(path.join(l.root, 'other.json'), {});
    assert.equal(searchConfigFile(['--config', named], {}, l.cwd, l.tmp).file, named);
    assert.equal(searchConfigFile([], { PUSH_PROXY_CONFIG: named }, l.cwd, l.tmp).file, named);
    assert.match(
      expectConfigError(() => searchConfigFile(['--config', 'missing.json'], {}, l.cwd, l.tmp)),
      /config file missing\.json not found/,
    );
  });

  it('--require-config or PUSH_PROXY_REQUIRE_CONFIG (true/1) requires a file; false/0/empty do not; anything else is an error', () => {
    assert.equal(configRequiredBy(['--require-config'], {}), '--require-config');
    assert.equal(configRequiredBy([], { PUSH_PROXY_REQUIRE_CONFIG: 'true' }), 'PUSH_PROXY_REQUIRE_CONFIG=true');
    assert.equal(configRequiredBy([], { PUSH_PROXY_REQUIRE_CONFIG: '1' }), 'PUSH_PROXY_REQUIRE_CONFIG=1');
    for (const value of ['false', '0', '', undefined])
      assert.equal(configRequiredBy([], { PUSH_PROXY_REQUIRE_CONFIG: value }), null, String(value));
    assert.equal(configRequiredBy([], {}), null);
    assert.match(
      expectConfigError(() => configRequiredBy([], { PUSH_PROXY_REQUIRE_CONFIG: 'yes' })),
      /PUSH_PROXY_REQUIRE_CONFIG="yes" must be true or false/,
    );
  });

  it('loadStartupConfig: no file is test mode, unless a file is required; PUSH_PROXY_MODE=test still gives test mode', () => {
    const l = layout();
    assert.equal(loadStartupConfig([], {}, l.cwd, l.tmp).config.Mode, 'test');
    const message = expectConfigError(() => loadStartupConfig(['--require-config'], {}, l.cwd, l.tmp));
    for (const candidate of defaultConfigCandidates(l.cwd, l.tmp))
      assert.ok(message.includes(candidate), `${candidate} is not named in: ${message}`);
    const { config, source } = loadStartupConfig(['--require-config'], { PUSH_PROXY_MODE: 'test' }, l.cwd, l.tmp);
    assert.equal(config.Mode, 'test');
    assert.equal(source, null);
    const file = put(path.join(l.cwd, 'config', 'mattermost-push-proxy.json'), {});
    const found = loadStartupConfig(['--require-config'], {}, l.cwd, l.tmp);
    assert.equal(found.source, file);
    assert.equal(found.config.Mode, 'eas');
  });
});
