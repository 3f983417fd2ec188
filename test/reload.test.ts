/**
 * Hot reload against real processes, real signals and the sandbox peers: while chat-server traffic keeps flowing,
 * an APNs key is rotated by SIGHUP and by changing the files, an FCM service account is replaced, the inbound TLS
 * certificate is renewed, a tenant is added and an invalid configuration is refused; no request fails or goes
 * unanswered. Then: what cannot change in place is named, Mode changes are refused, and every worker reloads.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import tls from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { FcmPeer } from '../src/sandbox/fcm-peer';
import { createAppleAuthKey, createAppleClientCertificate, createGoogleServiceAccount } from '../src/sandbox/credentials';
import { createServerCertificate } from '../src/tls/certificates';
import { listeningUrl, runCli, type Cli } from './cli-process';
import { APPLE_TOKEN, startApnsFixture, tempDir, TOPIC, writeTemp, type ApnsFixture } from './support';

const CLI = path.join(__dirname, '..', 'src', 'cli.js');
const FCM_TOKEN = 'fcm-device-token-for-reload-tests';
const SLOW = { timeout: 120_000 };

function logLines(cli: Cli): Array<Record<string, unknown>> {
  return cli
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

function countLogs(cli: Cli, pattern: RegExp): number {
  return logLines(cli).filter((line) => pattern.test(String(line.msg))).length;
}

async function waitUntil(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  for (const end = Date.now() + timeoutMs; Date.now() < end; await sleep(50)) if (await check()) return;
  assert.fail(`timed out waiting until ${what}`);
}

/** Writes a file as editors and `cp` do not: whole, under a temporary name, renamed over the old one. */
function replaceFile(file: string, content: string): void {
  writeFileSync(`${file}.new`, content);
  renameSync(`${file}.new`, file);
}

interface Answer {
  status: number;
  text: string;
}

function request(
  url: string,
  options: { method?: string; path: string; body?: object; auth?: string; agent?: https.Agent; ca?: string },
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const target = new URL(options.path, url);
    const body = options.body ? JSON.stringify(options.body) : undefined;
    const req = (target.protocol === 'https:' ? https : http).request(
      target,
      {
        method: options.method ?? (body ? 'POST' : 'GET'),
        agent: options.agent,
        ca: options.ca,
        headers: options.auth ? { authorization: `Basic ${Buffer.from(options.auth).toString('base64')}` } : {},
      },
      (res: http.IncomingMessage) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * Chat-server traffic: `concurrency` loops, each sending one notification after the other (APNs and FCM in
 * turn) on kept-alive connections, plus one new connection every tenth send. Every answer is kept.
 */
class Load {
  readonly answers: Array<Answer | { error: string; phase: string; fresh: boolean }> = [];
  /** What the test is doing, noted with each failed request. */
  phase = 'start';
  private running = true;
  private readonly loops: Promise<void>[];
  private readonly agent: https.Agent;

  constructor(
    private readonly url: string,
    private readonly auth: () => string,
    ca: string,
    concurrency = 4,
  ) {
    this.agent = new https.Agent({ keepAlive: true, ca, maxSockets: concurrency });
    this.loops = Array.from({ length: concurrency }, (_, loop) => this.run(loop, this.agent, ca));
  }

  private async run(loop: number, agent: https.Agent, ca: string): Promise<void> {
    for (let i = 0; this.running; i++) {
      // APNs with token auth, FCM, APNs with a certificate, in turn.
      const kind = (i + loop) % 3;
      const apple = kind !== 1;
      const body = {
        platform: kind === 0 ? 'apple_rn' : kind === 1 ? 'android_rn' : 'apple_cert',
        server_id: 'reload-test',
        device_id: apple ? APPLE_TOKEN : FCM_TOKEN,
        type: 'message',
        message: 'hello',
        ack_id: `ack-${loop}-${i}`,
      };
      try {
        const fresh = i % 10 === 9;
        this.answers.push(
          await request(this.url, { path: '/api/v1/send_push', body, auth: this.auth(), agent: fresh ? undefined : agent, ca }),
        );
      } catch (err) {
        this.answers.push({ error: (err as Error).message, phase: this.phase, fresh: i % 10 === 9 });
      }
    }
  }

  /** How many answers so far were OK. */
  get ok(): number {
    return this.answers.filter((a) => 'text' in a && a.status === 200 && JSON.parse(a.text).status === 'OK').length;
  }

  /** Waits until `count` more answers than now are OK: the proxy keeps delivering. */
  async moreOk(count: number): Promise<void> {
    const target = this.ok + count;
    await waitUntil(`${count} more deliveries`, () => this.ok >= target);
  }

  async stop(): Promise<Load['answers']> {
    this.running = false;
    await Promise.all(this.loops);
    this.agent.destroy();
    return this.answers;
  }
}

/** A new APNs key of the fixture's team, which the peer accepts from now on (as after creating it at Apple). */
function newAcceptedKey(apns: ApnsFixture): ReturnType<typeof createAppleAuthKey> {
  const key = createAppleAuthKey(undefined, apns.authKey.teamId);
  apns.peer.addTokenKey({ keyId: key.keyId, teamId: key.teamId, publicKeyPem: key.publicKeyPem, topics: [TOPIC] });
  return key;
}

/** What the peer received with token auth (the certificate entry's notifications carry no provider token). */
function tokenAuthed(apns: ApnsFixture): Array<{ headers: Record<string, string> }> {
  return apns.peer.receivedFor(APPLE_TOKEN).filter((n) => n.auth === 'token');
}

/** The key id (`kid`) of the provider token a notification came with. */
function keyIdOf(notification: { headers: Record<string, string> }): string {
  const jwt = String(notification.headers['authorization']).replace(/^bearer /i, '');
  return (JSON.parse(Buffer.from(jwt.split('.')[0]!, 'base64url').toString()) as { kid: string }).kid;
}

function metricValue(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

function servedCertificateSerial(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
      const serial = socket.getPeerCertificate().serialNumber;
      socket.end();
      resolve(serial);
    });
    socket.on('error', reject);
  });
}

describe('hot reload under load: every kind of file, no request lost', () => {
  let apns: ApnsFixture;
  let fcm: FcmPeer;
  let cli: Cli;
  let dir: string;

  before(async () => {
    apns = await startApnsFixture();
    fcm = new FcmPeer({ tls: createServerCertificate(apns.ca, ['localhost', '127.0.0.1']) });
    await fcm.start();
  });
  after(async () => {
    cli?.child.kill('SIGKILL');
    await fcm.close();
    await apns.close();
  });

  it(
    'APNs key by SIGHUP and by file change, service account, TLS certificate, tenants, an invalid config: every request answered OK',
    SLOW,
    async () => {
      dir = tempDir();
      const caFile = writeTemp(dir, 'ca.pem', apns.ca.certPem);
      const inbound = createServerCertificate(apns.ca, ['localhost', '127.0.0.1']);
      const certFile = writeTemp(dir, 'tls.crt', inbound.certPem);
      const keyFile = writeTemp(dir, 'tls.key', inbound.keyPem);
      const first = createGoogleServiceAccount(fcm.tokenUri, 'reload-project');
      fcm.addServiceAccount(first.account.client_email, first.publicKeyPem, 'reload-project');
      const accountFile = writeTemp(dir, 'service-account.json', JSON.stringify(first.account));
      const tenantsFile = path.join(dir, 'tenants.json');
      const addTenant = (id: string): string => {
        const out = execFileSync(process.execPath, [CLI, 'tenants', 'add', id, '--tenants-file', tenantsFile], { encoding: 'utf8' });
        return /^\s+(pp_\S+)$/m.exec(out)![1]!;
      };
      const acmeKey = addTenant('acme');
      // An APNs certificate entry, renewed in place below (a new certificate in the same file).
      const appleCertificate = (days: number) => {
        const pair = createAppleClientCertificate(apns.ca, { topic: TOPIC, notAfter: new Date(Date.now() + days * 86_400_000) });
        return pair.certPem + pair.keyPem;
      };
      const certificateFile = writeTemp(dir, 'apns-cert.pem', appleCertificate(20));
      const certificateEntry = {
        ...apns.entry({ Type: 'apple_cert', AppleAuthKeyFile: '', AppleAuthKeyID: '', AppleTeamID: '' }),
        ApplePushCertPrivate: certificateFile,
      };
      const settings = (apple: ReturnType<ApnsFixture['entry']>) => ({
        Mode: 'hosted',
        AdminListenAddress: '127.0.0.1:0',
        TLSCertFile: certFile,
        TLSKeyFile: keyFile,
        TenantsFile: tenantsFile,
        // The load is one chat server sending as fast as it can: hosted mode's default budgets would refuse it.
        RateLimits: { PerClientPerSec: 0, PerServerIdPerSec: 0, PerTenantPerSec: 0 },
        EnableMetrics: true,
        ApplePushSettings: [apple, certificateEntry],
        AndroidPushSettings: [{ Type: 'android_rn', ServiceFileLocation: accountFile, FcmEndpoint: fcm.url }],
      });
      const configFile = writeTemp(dir, 'push-proxy.json', JSON.stringify(settings(apns.entry())));
      cli = runCli(['--config', configFile], { NODE_EXTRA_CA_CERTS: caFile });
      const url = await listeningUrl(cli);
      const adminUrl = String((JSON.parse(await cli.waitFor(/admin listener on/)) as { admin_url: string }).admin_url);
      const port = Number(new URL(url).port);
      const reloads = () => countLogs(cli, /configuration reloaded/);
      let auth = `acme:${acmeKey}`;
      const load = new Load(url, () => auth, apns.ca.certPem);
      try {
        await load.moreOk(20);

        load.phase = 'apns-sighup';
        // 1. A new APNs key (a new file, a new key id) by SIGHUP; then Apple revokes the old one.
        const second = newAcceptedKey(apns);
        const secondFile = writeTemp(dir, `AuthKey_${second.keyId}.p8`, second.keyPem);
        replaceFile(configFile, JSON.stringify(settings(apns.entry({ AppleAuthKeyFile: secondFile, AppleAuthKeyID: second.keyId }))));
        cli.child.kill('SIGHUP');
        await waitUntil('the SIGHUP reload', () => reloads() >= 1);
        assert.equal(logLines(cli).find((l) => /configuration reloaded/.test(String(l.msg)))?.trigger, 'SIGHUP');
        await load.moreOk(10);
        apns.peer.revokeTokenKey(apns.authKey.keyId);
        apns.peer.reset();
        await load.moreOk(20);
        assert.ok(apns.peer.receivedFor(APPLE_TOKEN).length > 0);
        assert.deepEqual(new Set(tokenAuthed(apns).map((n) => keyIdOf(n))), new Set([second.keyId]), 'signed with the new key only');

        load.phase = 'apns-file';
        // 2. Rotated again by changing the files alone, in place: the key file's content and the key id in the config.
        const third = newAcceptedKey(apns);
        replaceFile(secondFile, third.keyPem);
        replaceFile(configFile, JSON.stringify(settings(apns.entry({ AppleAuthKeyFile: secondFile, AppleAuthKeyID: third.keyId }))));
        await waitUntil('the reload on the changed key file', () => reloads() >= 2);
        assert.match(String(logLines(cli).filter((l) => /configuration reloaded/.test(String(l.msg)))[1]?.trigger), /^file changed \(/);
        await load.moreOk(10);
        apns.peer.revokeTokenKey(second.keyId);
        apns.peer.reset();
        await load.moreOk(20);
        assert.deepEqual(new Set(tokenAuthed(apns).map((n) => keyIdOf(n))), new Set([third.keyId]));

        load.phase = 'apns-certificate';
        // 2b. The APNs certificate renewed in its file: the new one's end is gauged, and sends go on.
        const certificateEnd = async () =>
          metricValue(
            (await request(adminUrl, { path: '/metrics' })).text,
            'service_certificate_expiry_timestamp_seconds{certificate="apple_cert"}',
          );
        const before = await certificateEnd();
        assert.ok(before > 0);
        replaceFile(certificateFile, appleCertificate(300));
        await waitUntil('the reload on the renewed certificate', () => reloads() >= 3);
        assert.ok((await certificateEnd()) - before > 200 * 86_400, 'the renewed certificate is in use');
        apns.peer.reset();
        await load.moreOk(20);
        assert.ok(
          apns.peer.received.some((n) => n.auth === 'certificate' && n.status === 200),
          'certificate entry delivers',
        );

        load.phase = 'fcm';
        // 3. A new service account in the same file (the proxy asks for an access token with it); then the old one is deleted.
        const rotated = createGoogleServiceAccount(fcm.tokenUri, 'reload-project');
        rotated.account.client_email = 'rotated@reload-project.iam.gserviceaccount.com';
        fcm.addServiceAccount(rotated.account.client_email, rotated.publicKeyPem, 'reload-project');
        replaceFile(accountFile, JSON.stringify(rotated.account));
        await waitUntil('the reload on the service account', () => reloads() >= 4);
        await load.moreOk(10);
        const issued = fcm.tokenRequests.find((r) => r.clientEmail === rotated.account.client_email && r.status === 200);
        assert.ok(issued?.accessToken, 'an access token was obtained with the new service account');
        fcm.removeServiceAccount(first.account.client_email);
        const fcmBefore = fcm.receivedFor(FCM_TOKEN).length;
        await load.moreOk(20);
        const since = fcm.receivedFor(FCM_TOKEN).slice(fcmBefore);
        assert.ok(since.length > 0, 'FCM still delivers');
        assert.deepEqual(new Set(since.map((m) => m.headers['authorization'])), new Set([`Bearer ${issued.accessToken}`]));

        load.phase = 'tls';
        // 4. The inbound certificate renewed (cert-manager writes both files): new connections get it.
        const renewed = createServerCertificate(apns.ca, ['localhost', '127.0.0.1']);
        const renewedSerial = new X509Certificate(renewed.certPem).serialNumber;
        assert.notEqual(await servedCertificateSerial(port, apns.ca.certPem), renewedSerial);
        replaceFile(certFile, renewed.certPem);
        replaceFile(keyFile, renewed.keyPem);
        await waitUntil('the reload on the certificate', () => reloads() >= 5);
        assert.equal((await servedCertificateSerial(port, apns.ca.certPem)).toUpperCase(), renewedSerial.toUpperCase());
        await load.moreOk(10);

        load.phase = 'tenants';
        // 5. A tenant added to the tenants file: its key works at once, and traffic moves to it.
        const betaKey = addTenant('beta');
        await waitUntil('the new tenant is accepted', async () => {
          const answer = await request(url, {
            path: '/api/v1/send_push',
            body: { platform: 'apple_rn', server_id: 'beta-server', device_id: APPLE_TOKEN, type: 'message' },
            auth: `beta:${betaKey}`,
            ca: apns.ca.certPem,
          });
          return answer.status === 200;
        });
        auth = `beta:${betaKey}`;
        await load.moreOk(10);

        load.phase = 'invalid';
        // 6. A broken configuration: refused, said, counted; the running one keeps serving.
        const good = readFileSync(configFile, 'utf8');
        const missingKey = path.join(dir, 'AuthKey_MISSING.p8');
        replaceFile(configFile, good.replace(JSON.stringify(secondFile), JSON.stringify(missingKey)));
        await waitUntil('the refusal', () => countLogs(cli, /new configuration was refused/) >= 1);
        const refusal = logLines(cli).find((l) => /new configuration was refused/.test(String(l.msg)))!;
        assert.match(String(refusal.msg), /AppleAuthKeyFile/, 'the refusal names the key');
        assert.ok(String(refusal.msg).includes(missingKey), 'and the file');
        await load.moreOk(20);
        const metrics = (await request(adminUrl, { path: '/metrics' })).text;
        assert.equal(metricValue(metrics, 'service_config_reloads_total{result="refused"}'), 1);
        assert.equal(metricValue(metrics, 'service_config_reloads_total{result="reloaded"}'), 5);
        const readiness = JSON.parse((await request(adminUrl, { path: '/readyz' })).text) as { reload?: { result: string; error: string } };
        assert.equal(readiness.reload?.result, 'refused');
        assert.match(readiness.reload!.error, /AppleAuthKeyFile/);
        // Fixed again: taken.
        replaceFile(configFile, good);
        await waitUntil('the reload of the fixed file', () => reloads() >= 6);
        await load.moreOk(10);
      } finally {
        await load.stop();
      }
      const failed = load.answers.filter((a) => !('text' in a) || a.status !== 200 || JSON.parse(a.text).status !== 'OK');
      assert.deepEqual(failed.slice(0, 5), [], `${failed.length} of ${load.answers.length} requests did not get OK`);
      assert.ok(load.answers.length > 150, `only ${load.answers.length} requests sent`);
    },
  );
});

describe('hot reload with Workers: every worker reloads', () => {
  let apns: ApnsFixture;
  let cli: Cli | undefined;

  before(async () => {
    apns = await startApnsFixture();
  });
  after(async () => {
    cli?.child.kill('SIGKILL');
    await apns.close();
  });

  it('SIGHUP to the primary: both workers switch to a rotated key, and a refused change is refused by each', SLOW, async () => {
    const dir = tempDir();
    const caFile = writeTemp(dir, 'ca.pem', apns.ca.certPem);
    const settings = (entry: ReturnType<ApnsFixture['entry']>) => JSON.stringify({ Workers: 2, ApplePushSettings: [entry] });
    const configFile = writeTemp(dir, 'push-proxy.json', settings(apns.entry()));
    cli = runCli(['--config', configFile], { NODE_EXTRA_CA_CERTS: caFile });
    const url = await listeningUrl(cli);
    const push = { platform: 'apple_rn', server_id: 'workers', device_id: APPLE_TOKEN, type: 'message' };
    const sendMany = async (count: number): Promise<string[]> =>
      Promise.all(Array.from({ length: count }, () => request(url, { path: '/api/v1/send_push', body: push }).then((a) => a.text)));
    assert.deepEqual(new Set(await sendMany(10)), new Set(['{"status":"OK"}\n']));

    const rotated = newAcceptedKey(apns);
    const rotatedFile = writeTemp(dir, `AuthKey_${rotated.keyId}.p8`, rotated.keyPem);
    replaceFile(configFile, settings(apns.entry({ AppleAuthKeyFile: rotatedFile, AppleAuthKeyID: rotated.keyId })));
    cli.child.kill('SIGHUP');
    await waitUntil('both workers reloaded', () => new Set(reloadedBy(cli!, /configuration reloaded/)).size === 2);
    assert.deepEqual(
      logLines(cli)
        .filter((l) => /configuration reloaded/.test(String(l.msg)))
        .map((l) => l.trigger),
      ['SIGHUP', 'SIGHUP'],
    );
    apns.peer.revokeTokenKey(apns.authKey.keyId);
    apns.peer.reset();
    // Successive connections go to different workers: every one of them signs with the new key.
    assert.deepEqual(new Set(await sendMany(20)), new Set(['{"status":"OK"}\n']));
    assert.deepEqual(new Set(tokenAuthed(apns).map(keyIdOf)), new Set([rotated.keyId]));
    const delivering = new Set(
      logLines(cli)
        .filter((l) => l.msg === 'push delivered')
        .map((l) => l.worker),
    );
    assert.equal(delivering.size, 2, 'both workers delivered');

    replaceFile(configFile, '{"ApplePushSettings": [');
    cli.child.kill('SIGHUP');
    await waitUntil('both workers refused', () => new Set(reloadedBy(cli!, /new configuration was refused/)).size === 2);
    assert.deepEqual(new Set(await sendMany(10)), new Set(['{"status":"OK"}\n']));
  });
});

/** The workers that logged a line matching `pattern`. */
function reloadedBy(cli: Cli, pattern: RegExp): unknown[] {
  return logLines(cli)
    .filter((l) => pattern.test(String(l.msg)))
    .map((l) => l.worker);
}
