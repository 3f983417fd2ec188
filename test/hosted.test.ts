/**
 * Hosted mode through real clients: HTTPS and mTLS handshakes, tenant credentials from a URL with userinfo
 * (as Go's HTTP client sends them) or a Bearer header, tenant restrictions and reloads, trusted proxies, and
 * rate limits in memory and in a real redis-server shared by two proxy instances.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import { after, before, describe, it } from 'node:test';
import forge from 'node-forge';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ProxyInstance } from '../src/instance';
import {
  createCertificateAuthority,
  createClientCertificate,
  createServerCertificate,
  type CertificateAuthority,
  type PemPair,
} from '../src/tls/certificates';
import { tenantsAdd, tenantsRevoke } from '../src/commands/tenants';
import { startRedis, type RedisServer } from './redis-server';
import {
  APPLE_TOKEN,
  capturedLogger,
  get,
  startApnsFixture,
  startTestProxy,
  tempDir,
  testConfig,
  writeTemp,
  type ApnsFixture,
} from './support';

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

/** node:http(s) with a URL object: userinfo becomes Basic credentials, as Go's client does. */
function request(
  url: string,
  options: { body?: string | object; headers?: Record<string, string>; ca?: string; client?: PemPair; method?: string } = {},
): Promise<Answer> {
  const target = new URL(url);
  const body = options.body === undefined ? undefined : typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
  const requestOptions: https.RequestOptions = {
    method: options.method ?? (body === undefined ? 'GET' : 'POST'),
    headers: { 'User-Agent': 'Mattermost-Bot/1.1', ...options.headers },
    ca: options.ca,
    cert: options.client?.certPem,
    key: options.client?.keyPem,
    agent: false,
  };
  const client = target.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.request(target, requestOptions, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function push(fields: Record<string, unknown> = {}): Record<string, unknown> {
  return { platform: 'apple_rn-v2', server_id: 'srv-1', device_id: APPLE_TOKEN, type: 'message', message: 'hi', ...fields };
}

const OK = '{"status":"OK"}\n';
const failBody = (error: string) => JSON.stringify({ error, status: 'FAIL' }) + '\n';

function keyFrom(addOutput: string): string {
  const match = /^\s+(pp_\S+)$/m.exec(addOutput);
  assert.ok(match, `no key in: ${addOutput}`);
  return match[1]!;
}

function withCredentials(base: string, user: string, password: string): string {
  const url = new URL(base);
  url.username = user;
  url.password = password;
  return url.toString().replace(/\/$/, '');
}

interface TlsFiles {
  ca: CertificateAuthority;
  certFile: string;
  keyFile: string;
  caFile: string;
}

function tlsFiles(): TlsFiles {
  const ca = createCertificateAuthority('Proxy Test CA');
  const server = createServerCertificate(ca, ['localhost', '127.0.0.1']);
  const dir = tempDir();
  return {
    ca,
    certFile: writeTemp(dir, 'server.pem', server.certPem),
    keyFile: writeTemp(dir, 'server-key.pem', server.keyPem),
    caFile: writeTemp(dir, 'ca.pem', ca.certPem),
  };
}

describe('inbound TLS and mTLS', () => {
  let apns: ApnsFixture;
  let files: TlsFiles;
  let proxy: ProxyInstance;
  let mtlsProxy: ProxyInstance;

  before(async () => {
    apns = await startApnsFixture();
    files = tlsFiles();
    proxy = await startTestProxy(testConfig({ apple: [apns.entry()], TLSCertFile: files.certFile, TLSKeyFile: files.keyFile }), [
      apns.ca.certPem,
    ]);
    mtlsProxy = await startTestProxy(
      testConfig({ apple: [apns.entry()], TLSCertFile: files.certFile, TLSKeyFile: files.keyFile, TLSClientCAFile: files.caFile }),
      [apns.ca.certPem],
    );
  });
  after(async () => {
    await Promise.all([proxy.close(), mtlsProxy.close()]);
    await apns.close();
  });

  it('serves HTTPS with TLS 1.2 or newer and delivers', async () => {
    assert.match(proxy.url, /^https:\/\//);
    const answer = await request(`${proxy.url}/api/v1/send_push`, { body: push(), ca: files.ca.certPem });
    assert.equal(answer.text, OK);
    const protocol = await new Promise<string | null>((resolve, reject) => {
      const req = https.get(`${proxy.url}/healthz`, { ca: files.ca.certPem, agent: false }, (res) => {
        resolve((res.socket as import('node:tls').TLSSocket).getProtocol());
        res.resume();
      });
      req.on('error', reject);
    });
    assert.ok(protocol === 'TLSv1.3' || protocol === 'TLSv1.2', `negotiated ${protocol}`);
  });

  it('a client that does not trust the certificate cannot connect', async () => {
    await assert.rejects(request(`${proxy.url}/healthz`), /self-signed|unable to verify|certificate/i);
  });

  it('mTLS: a client certificate from the configured CA is served', async () => {
    const client = createClientCertificate(files.ca);
    const answer = await request(`${mtlsProxy.url}/api/v1/send_push`, { body: push(), ca: files.ca.certPem, client });
    assert.equal(answer.text, OK);
  });

  it('mTLS: no client certificate, no connection', async () => {
    await assert.rejects(request(`${mtlsProxy.url}/healthz`, { ca: files.ca.certPem }), /certificate|socket hang up|ECONNRESET|alert/i);
  });

  it('a TLSClientCAFile OpenSSL cannot read stops start-up, naming the certificate', async () => {
    // A redundant leading zero in the serial: OpenSSL would drop this CA silently and refuse every client.
    const ca = createCertificateAuthority('Padded CA');
    ca.cert.serialNumber = '000078' + 'ab'.repeat(13);
    ca.cert.sign(ca.key, forge.md.sha256.create());
    const caFile = writeTemp(tempDir(), 'ca.pem', files.ca.certPem + forge.pki.certificateToPem(ca.cert));
    await assert.rejects(
      startTestProxy(testConfig({ TLSCertFile: files.certFile, TLSKeyFile: files.keyFile, TLSClientCAFile: caFile }), []),
      /TLSClientCAFile .*ca\.pem: certificate 2 of 2 cannot be read \(.*illegal padding\)/,
    );
    await assert.rejects(
      startTestProxy(
        testConfig({
          TLSCertFile: files.certFile,
          TLSKeyFile: files.keyFile,
          TLSClientCAFile: writeTemp(tempDir(), 'empty.pem', 'no pem here'),
        }),
        [],
      ),
      /TLSClientCAFile .*empty\.pem holds no PEM certificate/,
    );
  });

  it('mTLS: a certificate from another CA, no connection', async () => {
    const client = createClientCertificate(createCertificateAuthority('Another CA'));
    await assert.rejects(
      request(`${mtlsProxy.url}/healthz`, { ca: files.ca.certPem, client }),
      /certificate|socket hang up|ECONNRESET|alert|unknown ca/i,
    );
  });
});

describe('hosted mode: tenants', () => {
  let apns: ApnsFixture;
  let files: TlsFiles;
  let proxy: ProxyInstance;
  let tenantsFile: string;
  let acmeKey: string;
  let limitedKey: string;
  // Shown when a delivery fails: the proxy's warnings say why.
  const log = capturedLogger('warn');

  before(async () => {
    apns = await startApnsFixture();
    files = tlsFiles();
    tenantsFile = `${tempDir()}/tenants.json`;
    acmeKey = keyFrom(await tenantsAdd(tenantsFile, { id: 'acme' }));
    limitedKey = keyFrom(await tenantsAdd(tenantsFile, { id: 'limited', serverIds: ['srv-ok'], platforms: ['apple_rn'] }));
    proxy = await startTestProxy(
      testConfig({
        Mode: 'hosted',
        apple: [apns.entry(), apns.entry({ Type: 'apple' })],
        TLSCertFile: files.certFile,
        TLSKeyFile: files.keyFile,
        TenantsFile: tenantsFile,
        // Hosted mode serves /metrics on the admin listener only.
        AdminListenAddress: '127.0.0.1:0',
      }),
      [apns.ca.certPem],
      log.logger,
    );
  });
  after(async () => {
    await proxy.close();
    await apns.close();
  });

  const send = (base: string, body: object, headers?: Record<string, string>) =>
    request(`${base}/api/v1/send_push`, { body, ca: files.ca.certPem, headers });

  it('an unmodified client with https://TENANT:KEY@host is served', async () => {
    apns.peer.reset();
    const answer = await send(withCredentials(proxy.url, 'acme', acmeKey), push());
    assert.equal(answer.status, 200);
    assert.equal(answer.text, OK, log.text());
    assert.equal(apns.peer.received.length, 1);
  });

  it('Authorization: Bearer KEY is served', async () => {
    assert.equal((await send(proxy.url, push(), { Authorization: `Bearer ${acmeKey}` })).text, OK, log.text());
  });

  it('no credentials: 401 with a JSON FAIL and a Basic challenge, nothing delivered', async () => {
    apns.peer.reset();
    const answer = await send(proxy.url, push());
    assert.equal(answer.status, 401);
    assert.equal(answer.text, failBody('Missing credentials: set the push server URL to https://TENANT:KEY@host'));
    assert.match(String(answer.headers['www-authenticate']), /^Basic realm="push-proxy"/);
    assert.equal(apns.peer.received.length, 0);
  });

  it('a wrong key, or a key under another tenant name: 401', async () => {
    assert.equal((await send(withCredentials(proxy.url, 'acme', acmeKey.slice(0, -2) + 'xx'), push())).status, 401);
    assert.equal((await send(withCredentials(proxy.url, 'limited', acmeKey), push())).status, 401);
    const ack = await request(`${proxy.url}/api/v1/ack`, { body: { id: 'a', platform: 'ios', type: 'message' }, ca: files.ca.certPem });
    assert.equal(ack.status, 401);
  });

  it("a tenant's restrictions: other server ids and platform types get 403", async () => {
    const limited = withCredentials(proxy.url, 'limited', limitedKey);
    assert.equal((await send(limited, push({ server_id: 'srv-ok' }))).text, OK);
    const otherServer = await send(limited, push({ server_id: 'srv-other' }));
    assert.equal(otherServer.status, 403);
    assert.match(otherServer.text, /"status":"FAIL"/);
    assert.match(otherServer.text, /srv-other/);
    const otherPlatform = await send(limited, push({ server_id: 'srv-ok', platform: 'apple' }));
    assert.equal(otherPlatform.status, 403);
    assert.match(otherPlatform.text, /apple/);
  });

  it('the original FAIL texts still come with HTTP 200 for an authenticated tenant', async () => {
    const answer = await send(withCredentials(proxy.url, 'acme', acmeKey), { device_id: 'x' });
    assert.equal(answer.status, 200);
    assert.equal(answer.text, failBody('Failed because of missing server Id'));
  });

  it('metrics count auth failures and tenant outcomes, never keys', async () => {
    const metrics = (await get(`${proxy.admin!.url}/metrics`)).text;
    assert.match(metrics, /service_auth_failures_total\{reason="missing"\} [1-9]/);
    assert.match(metrics, /service_auth_failures_total\{reason="restricted"\} [1-9]/);
    assert.match(metrics, /service_tenant_notifications_total\{tenant="acme",outcome="OK"\} [1-9]/);
    assert.ok(!metrics.includes(acmeKey.slice(3, 20)));
  });

  it('a revoked tenant is refused once the file changes, without a restart', async () => {
    const revokedLater = keyFrom(await tenantsAdd(tenantsFile, { id: 'leaving' }));
    const url = withCredentials(proxy.url, 'leaving', revokedLater);
    // The running proxy polls the file about once a second.
    let status = 0;
    for (let i = 0; i < 50 && status !== 200; i++) {
      status = (await send(url, push())).status;
      if (status !== 200) await sleep(200);
    }
    assert.equal(status, 200);
    await tenantsRevoke(tenantsFile, 'leaving');
    for (let i = 0; i < 50 && status !== 401; i++) {
      await sleep(200);
      status = (await send(url, push())).status;
    }
    assert.equal(status, 401);
    assert.equal((await send(withCredentials(proxy.url, 'acme', acmeKey), push())).text, OK);
  });
});

describe('hosted mode behind a trusted load balancer', () => {
  let apns: ApnsFixture;
  let proxy: ProxyInstance;
  let key: string;

  before(async () => {
    apns = await startApnsFixture();
    const tenantsFile = `${tempDir()}/tenants.json`;
    key = keyFrom(await tenantsAdd(tenantsFile, { id: 'acme' }));
    proxy = await startTestProxy(
      testConfig({
        Mode: 'hosted',
        apple: [apns.entry()],
        TrustedProxies: ['127.0.0.0/8'],
        TenantsFile: tenantsFile,
        RateLimits: { PerClientPerSec: 3, PerServerIdPerSec: 0, PerTenantPerSec: 0 },
        AdminListenAddress: '127.0.0.1:0',
      }),
      [apns.ca.certPem],
    );
  });
  after(async () => {
    await proxy.close();
    await apns.close();
  });

  const send = (forwardedFor: string, proto = 'https') =>
    request(`${proxy.url}/api/v1/send_push`, {
      body: push(),
      headers: { Authorization: `Bearer ${key}`, 'X-Forwarded-Proto': proto, 'X-Forwarded-For': forwardedFor },
    });

  it('HTTPS at the balancer (X-Forwarded-Proto) is accepted; plain HTTP is refused', async () => {
    assert.equal((await send('198.51.100.7')).text, OK);
    const plain = await send('198.51.100.8', 'http');
    assert.equal(plain.status, 403);
    assert.equal(plain.text, failBody('HTTPS is required: use an https:// push server URL'));
  });

  it('the per-client limit counts the forwarded client address: 429 with Retry-After and a JSON FAIL', async () => {
    const answers = await Promise.all(Array.from({ length: 8 }, () => send('203.0.113.1')));
    const refused = answers.filter((a) => a.status === 429);
    assert.ok(refused.length >= 2, `statuses: ${answers.map((a) => a.status).join(',')}`);
    assert.ok(answers.filter((a) => a.status === 200).length <= 6);
    assert.match(refused[0]!.text, /^\{"error":"Rate limit exceeded \(client\): retry after \d+ s","status":"FAIL"\}\n$/);
    assert.match(String(refused[0]!.headers['retry-after']), /^\d+$/);
    // Another client behind the same balancer has its own budget.
    assert.equal((await send('203.0.113.2')).status, 200);
    const metrics = (await get(`${proxy.admin!.url}/metrics`)).text;
    assert.match(metrics, /service_rate_limited_total\{limit="client",tenant=""\} [1-9]/);
  });
});

describe('rate limits shared by two instances through Redis', () => {
  let redis: RedisServer;
  let apns: ApnsFixture;
  let proxies: ProxyInstance[];
  let key: string;

  before(async () => {
    redis = await startRedis();
    apns = await startApnsFixture();
    const tenantsFile = `${tempDir()}/tenants.json`;
    key = keyFrom(await tenantsAdd(tenantsFile, { id: 'acme', ratePerSec: 5 }));
    const config = () =>
      testConfig({
        Mode: 'hosted',
        apple: [apns.entry()],
        TrustedProxies: ['127.0.0.0/8'],
        TenantsFile: tenantsFile,
        RateLimits: { PerClientPerSec: 0, PerServerIdPerSec: 0 },
        RateLimitStore: { Type: 'redis', URL: redis.url },
        AdminListenAddress: '127.0.0.1:0',
      });
    proxies = [await startTestProxy(config(), [apns.ca.certPem]), await startTestProxy(config(), [apns.ca.certPem])];
  });
  after(async () => {
    await Promise.all(proxies.map((p) => p.close()));
    await apns.close();
    await redis.stop();
  });

  const sendTo = (proxy: ProxyInstance) =>
    request(`${proxy.url}/api/v1/send_push`, { body: push(), headers: { Authorization: `Bearer ${key}`, 'X-Forwarded-Proto': 'https' } });

  it('one tenant budget (5/s) for both instances together', async () => {
    // Windows start at a budget's first request, so a burst well inside one second sees exactly one window.
    const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => sendTo(proxies[i % 2]!)));
    const allowed = answers.filter((a) => a.status === 200).length;
    assert.equal(allowed, 5, `statuses: ${answers.map((a) => a.status).join(',')}`);
    assert.equal(answers.filter((a) => a.status === 429).length, 7);
  });

  it('Redis killed: both keep serving under the per-instance fallback and say so; Redis back: shared again', async () => {
    await redis.kill();
    await sleep(1100);
    const during = await Promise.all(Array.from({ length: 4 }, (_, i) => sendTo(proxies[i % 2]!)));
    for (const answer of during) assert.ok(answer.status === 200 || answer.status === 429, `status ${answer.status}`);
    assert.ok(during.some((a) => a.status === 200));
    const ready = JSON.parse((await get(`${proxies[0]!.admin!.url}/readyz`)).text) as { rateLimits: { fallback: boolean; store: string } };
    assert.equal(ready.rateLimits.store, 'redis');
    assert.equal(ready.rateLimits.fallback, true);
    assert.match((await get(`${proxies[0]!.admin!.url}/metrics`)).text, /service_rate_limit_fallback 1/);

    await redis.restart();
    let fallback = true;
    for (let i = 0; i < 60 && fallback; i++) {
      await sleep(250);
      await sendTo(proxies[0]!);
      await sendTo(proxies[1]!);
      const a = JSON.parse((await get(`${proxies[0]!.admin!.url}/readyz`)).text) as { rateLimits: { fallback: boolean } };
      const b = JSON.parse((await get(`${proxies[1]!.admin!.url}/readyz`)).text) as { rateLimits: { fallback: boolean } };
      fallback = a.rateLimits.fallback || b.rateLimits.fallback;
    }
    assert.equal(fallback, false);
    assert.match((await get(`${proxies[1]!.admin!.url}/metrics`)).text, /service_rate_limit_fallback 0/);
    await sleep(1100);
    const after = await Promise.all(Array.from({ length: 12 }, (_, i) => sendTo(proxies[i % 2]!)));
    assert.equal(after.filter((a) => a.status === 200).length, 5);
  });
});
