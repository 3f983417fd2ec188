/**
 * The `push-proxy` command as an operator runs it: test mode with no config, a config file pointing at an
 * APNs-compatible server trusted through NODE_EXTRA_CA_CERTS, and start-up errors with exit code 2.
 */
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import https from 'node:https';
import { createServer } from 'node:net';
import path from 'node:path';
import { describe, it } from 'node:test';
import { createAppleClientCertificate, toPkcs12 } from '../src/sandbox/credentials';
import { createCertificateAuthority } from '../src/tls/certificates';
import { listeningUrl, runCli, stop } from './cli-process';
import { APPLE_TOKEN, TOPIC, get, post, startApnsFixture, tempDir, writeTemp } from './support';

const SAMPLE = path.join(__dirname, '..', '..', 'test', 'fixtures', 'mattermost-push-proxy.sample.json');

describe('push-proxy with no configuration: test mode with the sandbox peers', () => {
  it('delivers to the sandbox APNs and FCM peers and logs it', async () => {
    const cli = runCli([]);
    try {
      const url = await listeningUrl(cli);
      const banner = JSON.parse(await cli.waitFor(/Push Proxy listening/)) as { mode: string; platforms: string[] };
      assert.equal(banner.mode, 'test');
      assert.deepEqual(banner.platforms, ['apple', 'apple_rn', 'apple_rnbeta', 'android', 'android_rn', 'android_rnbeta']);

      const apple = await post(`${url}/api/v1/send_push`, {
        platform: 'apple_rn-v2',
        server_id: 'demo',
        device_id: 'ab'.repeat(32),
        type: 'message',
        message: 'hello :wave:',
      });
      assert.equal(apple.text, '{"status":"OK"}\n');
      const android = await post(`${url}/api/v1/send_push`, {
        platform: 'android_rn-v2',
        server_id: 'demo',
        device_id: 'fcm-token-1',
        type: 'message',
        message: 'hello',
      });
      assert.equal(android.text, '{"status":"OK"}\n');

      await cli.waitFor(/sandbox APNs received a notification/);
      await cli.waitFor(/sandbox FCM received a message/);
      assert.match(cli.output(), /"msg":"push delivered"/);
      assert.equal((await get(`${url}/readyz`)).status, 200);
      assert.equal(await stop(cli), 0);
    } finally {
      cli.child.kill('SIGKILL');
    }
  });
});

describe('push-proxy --config FILE', () => {
  it('delivers to the AppleEndpoint it names, trusting NODE_EXTRA_CA_CERTS', async () => {
    const apns = await startApnsFixture();
    const dir = tempDir();
    const caFile = writeTemp(dir, 'ca.pem', apns.ca.certPem);
    const configFile = writeTemp(dir, 'push-proxy.json', JSON.stringify({ ListenAddress: ':8066', ApplePushSettings: [apns.entry()] }));
    const cli = runCli(['--config', configFile], { NODE_EXTRA_CA_CERTS: caFile });
    try {
      const url = await listeningUrl(cli);
      const answer = await post(`${url}/api/v1/send_push`, {
        platform: 'apple_rn',
        server_id: 's',
        device_id: APPLE_TOKEN,
        type: 'message',
        message: 'x',
      });
      assert.equal(answer.text, '{"status":"OK"}\n');
      assert.equal(apns.peer.receivedFor(APPLE_TOKEN).length, 1);
      assert.equal(apns.peer.received[0]!.headers['apns-topic'], TOPIC);
      assert.equal(await stop(cli), 0);
    } finally {
      cli.child.kill('SIGKILL');
      await apns.close();
    }
  });

  it('without NODE_EXTRA_CA_CERTS the peer is not trusted: FAIL, no delivery', async () => {
    const apns = await startApnsFixture();
    const dir = tempDir();
    const configFile = writeTemp(
      dir,
      'push-proxy.json',
      JSON.stringify({ ApplePushSettings: [apns.entry()], SendTimeoutSec: 2, RetryTimeoutSec: 1 }),
    );
    const cli = runCli(['--config', configFile]);
    try {
      const url = await listeningUrl(cli);
      const answer = await post(`${url}/api/v1/send_push`, { platform: 'apple_rn', server_id: 's', device_id: APPLE_TOKEN });
      assert.equal(answer.text, '{"error":"unknown transport error","status":"FAIL"}\n');
      assert.equal(apns.peer.received.length, 0);
    } finally {
      cli.child.kill('SIGKILL');
      await apns.close();
    }
  });

  it("starts with the original's sample config: every entry skipped, /readyz says so", async () => {
    const cli = runCli(['-config', SAMPLE]);
    try {
      const url = await listeningUrl(cli);
      const ready = await get(`${url}/readyz`);
      assert.equal(ready.status, 503);
      const body = JSON.parse(ready.text) as { entries: Array<{ type: string; state: string }> };
      assert.deepEqual(
        body.entries.map((e) => `${e.type}:${e.state}`),
        ['apple:skipped', 'apple_rn:skipped', 'android:skipped', 'android_rn:skipped'],
      );
      assert.match(cli.output(), /apple entry \\"apple\\" skipped: no credentials/);
    } finally {
      cli.child.kill('SIGKILL');
    }
  });
});

describe('push-proxy: start-up errors the operator must fix exit with code 2', () => {
  const apple = (fields: Record<string, unknown>) => ({ Type: 'apple_rn', ApplePushTopic: TOPIC, ...fields });

  async function expectExit2(config: object, pattern: RegExp): Promise<void> {
    const dir = tempDir();
    const file = writeTemp(dir, 'push-proxy.json', JSON.stringify(config));
    const cli = runCli(['--config', file]);
    const code = await cli.exited;
    assert.equal(code, 2, `exit code ${code}; stderr: ${cli.stderr()}`);
    assert.match(cli.stderr(), /^push-proxy: configuration error: /);
    assert.match(cli.stderr(), pattern);
  }

  it('an unreadable key file', () =>
    expectExit2(
      { ApplePushSettings: [apple({ AppleAuthKeyFile: '/nonexistent/AuthKey.p8', AppleAuthKeyID: 'K', AppleTeamID: 'T' })] },
      /ApplePushSettings entry "apple_rn": AppleAuthKeyFile \/nonexistent\/AuthKey\.p8 cannot be read \(ENOENT\)\. Check the path/,
    ));

  it('a key file that is not a key', () => {
    const file = writeTemp(tempDir(), 'AuthKey.p8', 'not a key');
    return expectExit2(
      { ApplePushSettings: [apple({ AppleAuthKeyFile: file, AppleAuthKeyID: 'K', AppleTeamID: 'T' })] },
      /AppleAuthKeyFile .* is not a readable private key .*Use the \.p8 file/,
    );
  });

  it('an expired certificate', () => {
    const ca = createCertificateAuthority();
    const cert = createAppleClientCertificate(ca, {
      topic: TOPIC,
      notBefore: new Date(Date.now() - 400 * 86400_000),
      notAfter: new Date(Date.now() - 86400_000),
    });
    const file = writeTemp(tempDir(), 'push.pem', cert.certPem + cert.keyPem);
    return expectExit2(
      { ApplePushSettings: [apple({ ApplePushCertPrivate: file })] },
      /the certificate in ApplePushCertPrivate .* expired on .*Create a new APNs certificate/,
    );
  });

  it('a .p12 with the wrong password', () => {
    const ca = createCertificateAuthority();
    const file = writeTemp(tempDir(), 'push.p12', toPkcs12(createAppleClientCertificate(ca, { topic: TOPIC }), 'right'));
    return expectExit2(
      { ApplePushSettings: [apple({ ApplePushCertPrivate: file, ApplePushCertPassword: 'wrong' })] },
      /opens with ApplePushCertPassword .*Check the password/,
    );
  });

  it('a certificate for the other APNs environment', () => {
    const ca = createCertificateAuthority();
    const cert = createAppleClientCertificate(ca, { topic: TOPIC, environments: ['sandbox'] });
    const file = writeTemp(tempDir(), 'push.pem', cert.certPem + cert.keyPem);
    return expectExit2(
      { ApplePushSettings: [apple({ ApplePushCertPrivate: file })] },
      /is not valid for APNs production\. Set ApplePushUseDevelopment to true/,
    );
  });

  it('a likely typo in a key', () => expectExit2({ ListenAdress: ':8066' }, /unknown key "ListenAdress"\. Did you mean "ListenAddress"\?/));

  it('a wrong type', () => expectExit2({ EnableMetrics: 'yes' }, /EnableMetrics must be a boolean, not "yes"/));

  it('a port already in use', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    const cli = runCli(['--config', writeTemp(tempDir(), 'c.json', '{}')], { PUSH_PROXY_LISTEN_ADDRESS: `127.0.0.1:${port}` });
    try {
      assert.equal(await cli.exited, 2);
      assert.match(cli.stderr(), /cannot listen \(EADDRINUSE/);
    } finally {
      blocker.close();
    }
  });
});

describe('push-proxy tenants and dev-cert', () => {
  async function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; out: string; err: string }> {
    const cli = runCli(args, env);
    const code = await cli.exited;
    return { code, out: cli.output(), err: cli.stderr() };
  }

  it('tenants add prints a key once, list shows no secret, revoke marks it', async () => {
    const file = path.join(tempDir(), 'tenants.json');
    const add = await run(['tenants', 'add', 'acme', '--server-id', 'srv-1', '--tenants-file', file]);
    assert.equal(add.code, 0, add.err);
    const key = /^\s+(pp_acme_\S+)$/m.exec(add.out)?.[1];
    assert.ok(key, add.out);
    assert.match(add.out, new RegExp(`https://acme:${key}@push\\.example\\.com`));
    assert.equal(statSync(file).mode & 0o777, 0o600);

    const list = await run(['tenants', 'list'], { PUSH_PROXY_TENANTS_FILE: file });
    assert.equal(list.code, 0, list.err);
    assert.match(list.out, /acme/);
    assert.match(list.out, /srv-1/);
    assert.ok(!list.out.includes(key!) && !list.out.includes('scrypt'), list.out);

    const revoke = await run(['tenants', 'revoke', 'acme', '--tenants-file', file]);
    assert.equal(revoke.code, 0, revoke.err);
    assert.equal((JSON.parse(readFileSync(file, 'utf8')) as { tenants: Array<{ revoked: boolean }> }).tenants[0]!.revoked, true);

    const unknown = await run(['tenants', 'revoke', 'nobody', '--tenants-file', file]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.err, /nobody/);
  });

  it('tenants without a file says how to name one, exit code 2', async () => {
    const result = await run(['tenants', 'list']);
    assert.equal(result.code, 2);
    assert.match(result.err, /no tenants file: give --tenants-file FILE/);
  });

  it('dev-cert writes certificates the proxy serves HTTPS with', async () => {
    const dir = path.join(tempDir(), 'dev');
    const made = await run(['dev-cert', '--out', dir]);
    assert.equal(made.code, 0, made.err);
    assert.equal(statSync(path.join(dir, 'server-key.pem')).mode & 0o777, 0o600);
    const config = writeTemp(
      tempDir(),
      'push-proxy.json',
      JSON.stringify({ TLSCertFile: path.join(dir, 'server.pem'), TLSKeyFile: path.join(dir, 'server-key.pem') }),
    );
    const cli = runCli(['--config', config]);
    try {
      const url = await listeningUrl(cli);
      assert.match(url, /^https:/);
      const status = await new Promise<number>((resolve, reject) => {
        https
          .get(`${url}/healthz`, { ca: readFileSync(path.join(dir, 'ca.pem'), 'utf8') }, (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          })
          .on('error', reject);
      });
      assert.equal(status, 200);
      // The container's HEALTHCHECK speaks HTTPS when the config says so.
      const port = new URL(url).port;
      const health = await run(['healthcheck', '--config', config], { PUSH_PROXY_LISTEN_ADDRESS: `127.0.0.1:${port}` });
      assert.equal(health.code, 0, health.err);
    } finally {
      cli.child.kill('SIGKILL');
    }
  });

  it('healthcheck fails when nothing answers', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    await new Promise<void>((resolve) => blocker.close(() => resolve()));
    const health = await run(['healthcheck'], { PUSH_PROXY_LISTEN_ADDRESS: `127.0.0.1:${port}` });
    assert.equal(health.code, 1);
  });

  it('healthcheck with a configuration it cannot read is unhealthy (1), never the exit code 2 a container runtime reserves', async () => {
    const health = await run(['healthcheck', '--config', path.join(tempDir(), 'missing.json')]);
    assert.equal(health.code, 1);
    assert.match(health.err, /configuration error: config file .*missing\.json not found/);
  });

  it('tenants --help prints the usage without a file', async () => {
    const help = await run(['tenants', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.out, /push-proxy tenants add <tenant-id>/);
  });
});
