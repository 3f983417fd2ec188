/**
 * The operator commands as an operator runs them, as child processes: `certs inspect` on every kind of APNs
 * credential file (a legacy RC2 .p12 made here), `certs convert` whose PEM then delivers through the sandbox APNs
 * peer, and `check-config` on good and broken configurations, which opens no port and contacts no provider.
 */
import assert from 'node:assert/strict';
import { chmodSync, readFileSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import path from 'node:path';
import { describe, it } from 'node:test';
import { createAppleAuthKey, createAppleClientCertificate, createGoogleServiceAccount, toPkcs12 } from '../src/sandbox/credentials';
import { createCertificateAuthority, type PemPair } from '../src/tls/certificates';
import { listeningUrl, runCli, stop } from './cli-process';
import { toLegacyRc2Pkcs12 } from './pkcs12-legacy';
import { APPLE_TOKEN, TOPIC, post, startApnsFixture, tempDir, writeTemp } from './support';

/** A PEM private key's first line, written in two parts so that scans for committed keys do not take this test for one. */
const KEY_HEADER = ['-----BEGIN', 'PRIVATE KEY-----'].join(' ');

const DAY_MS = 86_400_000;

async function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; out: string; err: string }> {
  const cli = runCli(args, env);
  const code = await cli.exited;
  return { code, out: cli.output(), err: cli.stderr() };
}

const ca = createCertificateAuthority();
/** A certificate for both APNs environments, valid for a year from a minute ago. */
const universal = createAppleClientCertificate(ca, { topic: TOPIC });

function expired(): PemPair {
  return createAppleClientCertificate(ca, {
    topic: TOPIC,
    notBefore: new Date(Date.now() - 400 * DAY_MS),
    notAfter: new Date(Date.now() - 2 * DAY_MS),
  });
}

function assertCertificateReport(out: string, format: 'PEM' | 'PKCS#12'): void {
  assert.match(out, new RegExp(`^kind: +certificate and private key \\(${format}\\)$`, 'm'));
  assert.match(out, new RegExp(`^subject: +UID=${TOPIC.replace(/\./g, '\\.')}, CN=Apple Push Services: `, 'm'));
  assert.match(out, new RegExp(`^topic: +${TOPIC.replace(/\./g, '\\.')}$`, 'm'));
  assert.match(out, /^environment: +development and production/m);
  assert.match(out, /^expiry: +36[45] day\(s\) left$/m);
  assert.match(out, /^private key: +belongs to the certificate$/m);
}

describe('push-proxy certs inspect', () => {
  it('a .p8 token key: its kind, curve and the key id its file name carries', async () => {
    const key = createAppleAuthKey('ABCDE12345');
    const file = writeTemp(tempDir(), 'AuthKey_ABCDE12345.p8', key.keyPem);
    const result = await run(['certs', 'inspect', file]);
    assert.equal(result.code, 0, result.err);
    assert.match(result.out, /^kind: +APNs auth key \(\.p8, token auth/m);
    assert.match(result.out, /^curve: +P-256 \(prime256v1\)$/m);
    assert.match(result.out, /^key id: +ABCDE12345 \(from the file name\): AppleAuthKeyID$/m);
  });

  it('a key that is not an APNs key: exit code 2 saying so', async () => {
    const file = writeTemp(tempDir(), 'AuthKey_X.p8', universal.keyPem);
    const result = await run(['certs', 'inspect', file]);
    assert.equal(result.code, 2);
    assert.match(result.err, /^push-proxy: certs inspect: file .*AuthKey_X\.p8 is not an APNs key \(Apple issues P-256 EC keys/);
  });

  it('a PEM with a development-only certificate and its key', async () => {
    const pair = createAppleClientCertificate(ca, { topic: TOPIC, environments: ['sandbox'] });
    const result = await run(['certs', 'inspect', writeTemp(tempDir(), 'push.pem', pair.certPem + pair.keyPem)]);
    assert.equal(result.code, 0, result.err);
    assert.match(result.out, /^environment: +development \(sandbox\) only: ApplePushUseDevelopment must be true$/m);
    assert.match(result.out, /^private key: +belongs to the certificate$/m);
  });

  it('a 3DES .p12 and a legacy RC2 .p12, with their password', async () => {
    const dir = tempDir();
    for (const [name, data] of [
      ['3des.p12', toPkcs12(universal, 'secret', '3des')],
      ['rc2.p12', toLegacyRc2Pkcs12(universal, 'secret')],
    ] as const) {
      const result = await run(['certs', 'inspect', writeTemp(dir, name, data), '--password', 'secret']);
      assert.equal(result.code, 0, `${name}: ${result.err}`);
      assertCertificateReport(result.out, 'PKCS#12');
      assert.ok(!result.out.includes('secret'), result.out);
    }
  });

  it('a .p12 with a wrong password: exit code 2, the password not echoed', async () => {
    const file = writeTemp(tempDir(), 'rc2.p12', toLegacyRc2Pkcs12(universal, 'secret'));
    const result = await run(['certs', 'inspect', file, '--password', 'wrong-one']);
    assert.equal(result.code, 2);
    assert.match(
      result.err,
      /^push-proxy: certs inspect: file .*rc2\.p12 is neither PEM nor a \.p12 that opens with --password .*Check the password/,
    );
    assert.ok(!result.err.includes('wrong-one'), result.err);
  });

  it('an expired certificate, and a key of another certificate, are reported', async () => {
    const other = createAppleClientCertificate(ca, { topic: TOPIC });
    const dir = tempDir();
    const pair = expired();
    const old = await run(['certs', 'inspect', writeTemp(dir, 'old.pem', pair.certPem + pair.keyPem)]);
    assert.equal(old.code, 0, old.err);
    assert.match(old.out, /^expiry: +EXPIRED 2 day\(s\) ago/m);
    const mismatched = await run(['certs', 'inspect', writeTemp(dir, 'mixed.pem', universal.certPem + other.keyPem)]);
    assert.equal(mismatched.code, 0, mismatched.err);
    assert.match(mismatched.out, /^private key: +does NOT belong to the certificate/m);
  });

  it('bad arguments exit with code 2 and the usage; --help exits 0', async () => {
    const missing = await run(['certs', 'inspect']);
    assert.equal(missing.code, 2);
    assert.match(missing.err, /wrong arguments for certs inspect\nUsage: push-proxy certs inspect FILE/);
    const unreadable = await run(['certs', 'inspect', path.join(tempDir(), 'none.p12')]);
    assert.equal(unreadable.code, 2);
    assert.match(unreadable.err, /none\.p12 cannot be read \(ENOENT\)/);
    const help = await run(['certs', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.out, /push-proxy certs convert IN\.p12 OUT\.pem/);
  });
});

describe('push-proxy certs convert', () => {
  it('turns a legacy RC2 .p12 into a PEM (mode 600) that check-config accepts and that delivers through APNs', async () => {
    const apns = await startApnsFixture();
    const dir = tempDir();
    const p12 = writeTemp(dir, 'push.p12', toLegacyRc2Pkcs12(createAppleClientCertificate(apns.ca, { topic: TOPIC }), 'secret'));
    const pem = path.join(dir, 'push.pem');
    try {
      const converted = await run(['certs', 'convert', p12, pem, '--password', 'secret']);
      assert.equal(converted.code, 0, converted.err);
      assert.match(converted.out, /^wrote .*push\.pem \(mode 600\)/);
      assert.equal(statSync(pem).mode & 0o777, 0o600);
      assert.match(readFileSync(pem, 'utf8'), new RegExp(`^-----BEGIN CERTIFICATE-----[\\s\\S]+${KEY_HEADER}`));

      const entry = apns.entry({ AppleAuthKeyFile: '', AppleAuthKeyID: '', AppleTeamID: '', ApplePushCertPrivate: pem });
      const config = writeTemp(dir, 'push-proxy.json', JSON.stringify({ ApplePushSettings: [entry] }));
      const check = await run(['check-config', '--config', config]);
      assert.equal(check.code, 0, check.err);
      assert.match(check.out, /^apple entry "apple_rn" \(ApplePushSettings\): ready$/m);

      const cli = runCli(['--config', config], { NODE_EXTRA_CA_CERTS: writeTemp(dir, 'ca.pem', apns.ca.certPem) });
      try {
        const url = await listeningUrl(cli);
        const answer = await post(`${url}/api/v1/send_push`, {
          platform: 'apple_rn',
          server_id: 's',
          device_id: APPLE_TOKEN,
          message: 'x',
        });
        assert.equal(answer.text, '{"status":"OK"}\n');
        assert.equal(apns.peer.receivedFor(APPLE_TOKEN).length, 1);
        assert.equal(await stop(cli), 0);
      } finally {
        cli.child.kill('SIGKILL');
      }
    } finally {
      await apns.close();
    }
  });

  it('refuses to replace an existing file unless --force; a wrong password writes nothing', async () => {
    const dir = tempDir();
    const p12 = writeTemp(dir, 'push.p12', toPkcs12(universal, 'secret'));
    const out = writeTemp(dir, 'push.pem', 'keep me');
    // Readable by others, as a file left by an earlier attempt may be: replacing it must not leave the key so.
    chmodSync(out, 0o644);
    const refused = await run(['certs', 'convert', p12, out, '--password', 'secret']);
    assert.equal(refused.code, 2);
    assert.match(refused.err, /push\.pem exists: nothing written\. Give --force to replace it/);
    assert.equal(readFileSync(out, 'utf8'), 'keep me');

    const forced = await run(['certs', 'convert', p12, out, '--password', 'secret', '--force']);
    assert.equal(forced.code, 0, forced.err);
    assert.ok(readFileSync(out, 'utf8').includes(KEY_HEADER));
    assert.equal(statSync(out).mode & 0o777, 0o600);

    const fresh = path.join(dir, 'fresh.pem');
    const wrong = await run(['certs', 'convert', p12, fresh, '--password', 'nope']);
    assert.equal(wrong.code, 2);
    assert.throws(() => statSync(fresh), /ENOENT/);
  });
});

describe('push-proxy check-config', () => {
  /** A loopback port that counts the connections made to it: check-config must make none. */
  async function countingPort(): Promise<{ url: string; connections: () => number; server: Server }> {
    let connections = 0;
    const server = createServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { url: `https://127.0.0.1:${(server.address() as { port: number }).port}`, connections: () => connections, server };
  }

  async function expectExit2(config: object, pattern: RegExp): Promise<void> {
    const file = writeTemp(tempDir(), 'push-proxy.json', JSON.stringify(config));
    const result = await run(['check-config', '--config', file]);
    assert.equal(result.code, 2, `exit code ${result.code}; stdout: ${result.out}; stderr: ${result.err}`);
    assert.match(result.err, /^push-proxy: configuration error: /);
    assert.match(result.err, pattern);
  }

  it('a good configuration: one line per entry, the warnings, exit 0, and no connection to the providers', async () => {
    const port = await countingPort();
    const dir = tempDir();
    const key = createAppleAuthKey();
    const soon = createAppleClientCertificate(ca, { topic: TOPIC, notAfter: new Date(Date.now() + 10 * DAY_MS) });
    const account = createGoogleServiceAccount(`${port.url}/token`).account;
    const config = writeTemp(
      dir,
      'push-proxy.json',
      JSON.stringify({
        ListenAddress: ':8066',
        ApplePushSettings: [
          {
            Type: 'apple_rn',
            ApplePushTopic: TOPIC,
            AppleAuthKeyFile: writeTemp(dir, 'AuthKey.p8', key.keyPem),
            AppleAuthKeyID: key.keyId,
            AppleTeamID: key.teamId,
            AppleEndpoint: port.url,
          },
          { Type: 'apple', ApplePushCertPrivate: writeTemp(dir, 'soon.pem', soon.certPem + soon.keyPem), AppleEndpoint: port.url },
          { Type: 'apple_rnbeta' },
        ],
        AndroidPushSettings: [
          { Type: 'android_rn', ServiceFileLocation: writeTemp(dir, 'sa.json', JSON.stringify(account)), FcmEndpoint: port.url },
        ],
        SomethingElse: 1,
      }),
    );
    try {
      const result = await run(['check-config', '--config', config], { PUSH_PROXY_LISTEN_ADDRESS: '' });
      assert.equal(result.code, 0, result.err);
      assert.match(result.out, /^config .*push-proxy\.json: eas mode, would listen on every address port 8066$/m);
      assert.match(result.out, /^apple entry "apple_rn" \(ApplePushSettings\): ready$/m);
      assert.match(result.out, /^apple entry "apple" \(ApplePushSettings\): ready$/m);
      assert.match(result.out, /^apple entry "apple_rnbeta" \(ApplePushSettings\): skipped: no credentials/m);
      assert.match(result.out, /^android entry "android_rn" \(AndroidPushSettings\): ready$/m);
      assert.match(result.out, /^warning: .*unknown key "SomethingElse" ignored$/m);
      assert.match(result.out, /^warning: certificate of apple expires on .*: renew it/m);
      assert.match(result.out, /^OK: start-up would succeed/m);
      assert.equal(port.connections(), 0);
    } finally {
      port.server.close();
    }
  });

  it('finds the configuration as start-up does (PUSH_PROXY_CONFIG)', async () => {
    const file = writeTemp(tempDir(), 'push-proxy.json', '{"Mode":"eas"}');
    const result = await run(['check-config'], { PUSH_PROXY_CONFIG: file });
    assert.equal(result.code, 0, result.err);
    assert.match(result.out, new RegExp(`^config ${file.replace(/[.]/g, '\\.')}: eas mode`, 'm'));
  });

  it('with no configuration file, says start-up would run the built-in test mode; with --require-config, exit 2', async () => {
    const none = await run(['check-config'], { TMPDIR: tempDir() });
    assert.equal(none.code, 0, none.err);
    assert.match(none.out, /^no configuration file found: push-proxy would start the built-in test mode/);
    const required = await run(['check-config', '--require-config'], { TMPDIR: tempDir() });
    assert.equal(required.code, 2);
    assert.match(required.err, /no configuration file found, and --require-config requires one/);
  });

  it('a likely typo in a key', () =>
    expectExit2(
      { ApplePushSettings: [{ Type: 'apple', ApplePushTopik: TOPIC }] },
      /unknown key "ApplePushSettings\[0\]\.ApplePushTopik"\. Did you mean "ApplePushSettings\[0\]\.ApplePushTopic"\?/,
    ));

  it('an expired certificate', () => {
    const pair = expired();
    const file = writeTemp(tempDir(), 'push.pem', pair.certPem + pair.keyPem);
    return expectExit2(
      { ApplePushSettings: [{ Type: 'apple_rn', ApplePushCertPrivate: file }] },
      /the certificate in ApplePushCertPrivate .* expired on .*Create a new APNs certificate/,
    );
  });

  it('a certificate for the other APNs environment', () => {
    const pair = createAppleClientCertificate(ca, { topic: TOPIC, environments: ['production'] });
    const file = writeTemp(tempDir(), 'push.pem', pair.certPem + pair.keyPem);
    return expectExit2(
      { ApplePushSettings: [{ Type: 'apple_rn', ApplePushCertPrivate: file, ApplePushUseDevelopment: true }] },
      /is not valid for APNs development \(sandbox\)\. Set ApplePushUseDevelopment to false/,
    );
  });

  it('a TLS key that does not belong to TLSCertFile', () => {
    const dir = tempDir();
    return expectExit2(
      { TLSCertFile: writeTemp(dir, 'tls.pem', universal.certPem), TLSKeyFile: writeTemp(dir, 'tls-key.pem', expired().keyPem) },
      /TLSKeyFile .* does not belong to the certificate in TLSCertFile/,
    );
  });

  it('an unknown argument exits 2 with the usage; --help exits 0', async () => {
    const bad = await run(['check-config', '--bogus']);
    assert.equal(bad.code, 2);
    assert.match(bad.err, /check-config: unexpected argument "--bogus"\nUsage: push-proxy check-config/);
    const help = await run(['check-config', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.out, /^Usage: push-proxy check-config/);
  });
});
