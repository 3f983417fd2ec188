/** The pure parts of reloading: what a new configuration may change, and how file changes are noticed. */
import assert from 'node:assert/strict';
import { renameSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parseConfig } from '../src/config/load';
import type { ProxyConfig } from '../src/config/types';
import { compareForReload, RESTART_KEYS } from '../src/reload/changes';
import { changedFiles, FilesWatch, versionsOf } from '../src/reload/file-watch';
import { tempDir } from './unit-support';

function config(raw: Record<string, unknown> = {}): ProxyConfig {
  return parseConfig({ ListenAddress: ':8066', ...raw }, 'test.json', {}, 'eas').config;
}

describe('compareForReload', () => {
  it('the same configuration changes nothing that needs a restart', () => {
    assert.deepEqual(compareForReload(config(), config()), { needRestart: [] });
  });

  it('names each restart-only key that changed, and nothing else', () => {
    const changes = compareForReload(
      config(),
      config({
        ListenAddress: ':9000',
        Workers: 2,
        LogFormat: 'json',
        SendTimeoutSec: 5,
        LogLevel: 'debug',
        TrustedProxies: ['10.0.0.0/8'],
      }),
    );
    assert.deepEqual(changes, { needRestart: ['ListenAddress', 'Workers', 'LogFormat'] });
  });

  it('every restart-only key is a configuration key, and is noticed when it changes', () => {
    const base = config();
    for (const key of RESTART_KEYS) {
      assert.ok(key in base, key);
      const changed = {
        ...base,
        [key]: typeof base[key] === 'number' ? (base[key] as number) + 1 : `${String(base[key])}x`,
      } as ProxyConfig;
      assert.deepEqual(compareForReload(base, changed).needRestart, [key]);
    }
  });

  it('HTTPS or client certificates switched on or off wait for a restart; new files for the same listener do not', () => {
    const tls = { TLSCertFile: 'a.pem', TLSKeyFile: 'a.key' };
    assert.deepEqual(compareForReload(config(), { ...config(), ...tls }).needRestart, ['TLSCertFile (HTTPS on or off)']);
    assert.deepEqual(compareForReload({ ...config(), ...tls }, { ...config(), TLSCertFile: 'b.pem', TLSKeyFile: 'b.key' }).needRestart, []);
    assert.deepEqual(compareForReload({ ...config(), ...tls }, { ...config(), ...tls, TLSClientCAFile: 'ca.pem' }).needRestart, [
      'TLSClientCAFile (client certificates on or off)',
    ]);
  });

  it('a Mode change is refused whatever else changed', () => {
    const changes = compareForReload(
      config({ Mode: 'hosted', TrustedProxies: ['10.0.0.0/8'], TenantsFile: 't.json' }),
      config({ Mode: 'test' }),
    );
    assert.match(changes.refusal!, /Mode cannot change by a reload \(running hosted, the file says test\): restart the proxy/);
  });
});

describe('changedFiles', () => {
  it('a changed version, a new file and a file no longer there', () => {
    const before = new Map([
      ['a', '1'],
      ['b', '1'],
      ['c', '1'],
    ]);
    const after = new Map([
      ['a', '1'],
      ['b', '2'],
      ['d', '1'],
    ]);
    assert.deepEqual(changedFiles(before, after).sort(), ['b', 'c', 'd']);
    assert.deepEqual(changedFiles(after, after), []);
  });
});

describe('FilesWatch', () => {
  /** A watch stepped by the test, one check() per poll: no timer decides anything here. */
  async function watching(files: string[]): Promise<{ calls: string[][]; watch: FilesWatch }> {
    const calls: string[][] = [];
    const watch = new FilesWatch(
      await versionsOf(files),
      async (changed, seen) => {
        calls.push(changed.map((f) => path.basename(f)).sort());
        return new Map(seen);
      },
      3_600_000,
    );
    return { calls, watch };
  }

  it('a write, a rename over the file, and a file that disappears are each acted on once, at the second poll that sees them', async () => {
    const dir = tempDir();
    const a = path.join(dir, 'a.json');
    const b = path.join(dir, 'b.pem');
    writeFileSync(a, '1');
    writeFileSync(b, '1');
    const { calls, watch } = await watching([a, b]);
    try {
      await watch.check();
      assert.deepEqual(calls, [], 'nothing changed');

      writeFileSync(a, '22');
      await watch.check();
      assert.deepEqual(calls, [], 'seen once: not yet settled');
      await watch.check();
      assert.deepEqual(calls, [['a.json']]);
      await watch.check();
      assert.equal(calls.length, 1, 'acted on once');

      writeFileSync(`${b}.new`, '2');
      renameSync(`${b}.new`, b);
      await watch.check();
      await watch.check();
      assert.deepEqual(calls[1], ['b.pem']);

      unlinkSync(a);
      for (let i = 0; i < 5; i++) await watch.check();
      assert.deepEqual(calls.slice(2), [['a.json']], 'a file that stays missing is reported once');
    } finally {
      watch.close();
    }
  });

  it('files written one after the other between two polls are taken together', async () => {
    const dir = tempDir();
    const cert = path.join(dir, 'tls.crt');
    const key = path.join(dir, 'tls.key');
    writeFileSync(cert, '1');
    writeFileSync(key, '1');
    const { calls, watch } = await watching([cert, key]);
    try {
      writeFileSync(cert, '2');
      await watch.check();
      writeFileSync(key, '2');
      await watch.check();
      assert.deepEqual(calls, [], 'the key changed after the first poll: not settled yet');
      await watch.check();
      assert.deepEqual(calls, [['tls.crt', 'tls.key']]);
    } finally {
      watch.close();
    }
  });

  it('a file that changes at every poll is acted on only once it stays the same', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'growing.json');
    writeFileSync(file, '');
    const { calls, watch } = await watching([file]);
    try {
      for (let i = 1; i <= 10; i++) {
        writeFileSync(file, 'x'.repeat(i));
        await watch.check();
      }
      assert.deepEqual(calls, []);
      await watch.check();
      assert.deepEqual(calls, [['growing.json']]);
    } finally {
      watch.close();
    }
  });
});
