/**
 * APNs and FCM through an HTTP CONNECT proxy: the real tinyproxy (Debian package `tinyproxy`) between the
 * services and the sandbox peers, so every byte to a peer is proven to have crossed the proxy. Budgets are
 * small (SendTimeoutSec 3–4 s, RetryTimeoutSec 1 s) to keep the failure cases short.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { ConfigError } from '../src/config/errors';
import type { AppleEntryConfig } from '../src/config/types';
import type { Clock } from '../src/delivery/retry';
import type { ServiceDeps } from '../src/delivery/service';
import type { DeliveryResult, PushService } from '../src/delivery/types';
import { emptyPushNotification, type PushNotification } from '../src/notification';
import { FcmPeer } from '../src/sandbox/fcm-peer';
import { createAppleClientCertificate, createGoogleServiceAccount } from '../src/sandbox/credentials';
import { createCertificateAuthority, createServerCertificate } from '../src/tls/certificates';
import { createAndroidService } from '../src/platforms/fcm';
import { createAppleService } from '../src/platforms/apns';
import { openTunnel } from '../src/transport/outbound-proxy';
import { freePort, startTinyproxy, type Tinyproxy } from './connect-proxy';
import { SkippingClock } from './skipping-clock';
import { APPLE_TOKEN, TOPIC, capturedLogger, startApnsFixture, tempDir, writeTemp, type ApnsFixture } from './support';

const TRANSPORT_FAIL = { outcome: 'FAIL', error: 'unknown transport error', reason: 'unknown transport error' } as const;
const CREDENTIAL_FAILED =
  'Credential implementation provided to initializeApp() via the "credential" property failed to fetch a valid Google OAuth2 access token with the following error: ';
const USER = 'relay';
// tinyproxy's BasicAuth takes [-_.a-zA-Z0-9] only; percent-decoding is checked against a bare TCP server.
const PASSWORD = 'pass-word.1';
const PASSWORD_IN_URL = encodeURIComponent(PASSWORD);

/** A TCP server that echoes, or one that accepts and never answers; both count their open connections. */
function startServer(
  mode: 'echo' | 'silent',
): Promise<{ port: number; open: () => number; received: () => string; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  let received = '';
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    if (mode === 'echo') socket.pipe(socket);
    else socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        port: (server.address() as net.AddressInfo).port,
        open: () => sockets.size,
        received: () => received,
        close: () => {
          for (const socket of sockets) socket.destroy();
          return new Promise((done) => server.close(() => done()));
        },
      }),
    ),
  );
}

async function until(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!condition() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  return condition();
}

/** Counts the TCP connections a peer accepts (they come from tinyproxy when everything goes through it). */
function countConnections(peer: object): () => number {
  let count = 0;
  (peer as { server: net.Server }).server.on('connection', () => count++);
  return () => count;
}

describe('through tinyproxy', () => {
  let proxy: Tinyproxy;
  let denying: Tinyproxy;
  let apns: ApnsFixture;
  let fcm: FcmPeer;
  let fcmFile: string;
  let apnsConnections: () => number;
  let fcmConnections: () => number;
  const fcmCa = createCertificateAuthority('Outbound proxy test FCM CA');
  const silent = pino({ level: 'silent' });

  before(async () => {
    // One at a time, so that after() stops whatever did start when a later one fails.
    proxy = await startTinyproxy({ basicAuth: { user: USER, password: PASSWORD } });
    denying = await startTinyproxy({ deny: true });
    apns = await startApnsFixture();
    fcm = new FcmPeer({ tls: createServerCertificate(fcmCa, ['localhost', '127.0.0.1']) });
    await fcm.start();
    const { account, publicKeyPem } = createGoogleServiceAccount(fcm.tokenUri, 'proxy-test');
    fcm.addServiceAccount(account.client_email, publicKeyPem, 'proxy-test');
    fcmFile = writeTemp(tempDir(), 'service-account.json', JSON.stringify(account));
    apnsConnections = countConnections(apns.peer);
    fcmConnections = countConnections(fcm);
  });
  after(async () => {
    await Promise.all([proxy?.stop(), denying?.stop(), apns?.close(), fcm?.close()]);
  });

  const proxyUrl = (): string => `http://${USER}:${PASSWORD_IN_URL}@127.0.0.1:${proxy.port}`;
  const apnsTarget = (): string => `127.0.0.1:${apns.peer.port}`;
  const fcmTarget = (): string => `127.0.0.1:${fcm.port}`;

  function deps(
    settings: { env?: Record<string, string>; outboundProxy?: string; sendTimeoutMs?: number; clock?: Clock },
    logger = silent,
  ): ServiceDeps {
    return {
      logger,
      sendTimeoutMs: settings.sendTimeoutMs ?? 3000,
      retryTimeoutMs: 1000,
      trustedCa: [apns.ca.certPem, fcmCa.certPem],
      env: settings.env ?? {},
      outboundProxy: settings.outboundProxy,
      clock: settings.clock,
    };
  }

  function apple(d: ServiceDeps, entry: Partial<AppleEntryConfig> = {}): PushService {
    const result = createAppleService(apns.entry(entry), d);
    if (!('service' in result)) assert.fail(result.skipped);
    return result.service;
  }

  function certificateEntry(): Partial<AppleEntryConfig> {
    const pair = createAppleClientCertificate(apns.ca, { topic: TOPIC });
    return {
      AppleAuthKeyFile: '',
      AppleAuthKeyID: '',
      AppleTeamID: '',
      ApplePushCertPrivate: writeTemp(apns.dir, 'push.pem', pair.certPem + pair.keyPem),
    };
  }

  function android(d: ServiceDeps): PushService {
    const result = createAndroidService({ Type: 'android_rn', ServiceFileLocation: fcmFile, AndroidApiKey: '', FcmEndpoint: fcm.url }, d);
    if (!('service' in result)) assert.fail(result.skipped);
    return result.service;
  }

  let fcmTokens = 0;
  function push(platform: 'apple' | 'android'): PushNotification {
    const device = platform === 'apple' ? APPLE_TOKEN : `proxy-device-${++fcmTokens}:APA91b${'x'.repeat(40)}`;
    return {
      ...emptyPushNotification(),
      platform: `${platform}_rn-v2`,
      server_id: 'srv1',
      device_id: device,
      type: 'message',
      version: 'v2',
      message: 'through the proxy',
    };
  }

  /** Delivers once and reports what the proxy and the peers saw meanwhile. */
  async function deliver(
    service: PushService,
    platform: 'apple' | 'android',
    timing: { ms?: number } = {},
  ): Promise<{ result: DeliveryResult; connects: string[]; apnsConnections: number; fcmConnections: number }> {
    const connectsBefore = proxy.connects().length;
    const [apnsBefore, fcmBefore] = [apnsConnections(), fcmConnections()];
    try {
      const started = Date.now();
      const { outcome, error, reason, attempts } = await service.deliver(push(platform), { appVersion: 2 });
      // The answer's time, not close()'s (which may wait for a session that died unconnected).
      timing.ms = Date.now() - started;
      // Logged by tinyproxy before it dials: already written when the delivery is over.
      return {
        result: { outcome, error, reason, attempts },
        connects: proxy.connects().slice(connectsBefore),
        apnsConnections: apnsConnections() - apnsBefore,
        fcmConnections: fcmConnections() - fcmBefore,
      };
    } finally {
      await service.close();
    }
  }

  const OK = { outcome: 'OK', error: undefined, reason: undefined, attempts: 1 };

  describe('openTunnel', () => {
    it('tunnels to the target with Proxy-Authorization from the URL', async () => {
      const echo = await startServer('echo');
      try {
        const socket = await openTunnel(new URL(proxyUrl()), { host: '127.0.0.1', port: echo.port }, 2000);
        const answer = new Promise<string>((resolve) => socket.once('data', (chunk: Buffer) => resolve(chunk.toString())));
        socket.write('ping');
        assert.equal(await answer, 'ping');
        socket.destroy();
        assert.equal(proxy.connects().at(-1), `127.0.0.1:${echo.port}`);
      } finally {
        await echo.close();
      }
    });

    it('sends CONNECT with the Host header and percent-decoded credentials', async () => {
      const mute = await startServer('silent');
      try {
        const url = new URL(`http://${USER}:${encodeURIComponent('pa:ss@wörd')}@127.0.0.1:${mute.port}`);
        const opening = openTunnel(url, { host: 'API.push.apple.com', port: 443 }, 300);
        await assert.rejects(opening, { code: 'ERR_PROXY_TIMEOUT' });
        const credentials = Buffer.from(`${USER}:pa:ss@wörd`).toString('base64');
        assert.equal(
          mute.received(),
          `CONNECT API.push.apple.com:443 HTTP/1.1\r\nhost: API.push.apple.com:443\r\nconnection: keep-alive\r\nproxy-authorization: Basic ${credentials}\r\n\r\n`,
        );
      } finally {
        await mute.close();
      }
    });

    it('a refused CONNECT rejects with the status line, never the credentials', async () => {
      const target = { host: 'api.push.apple.com', port: 443 };
      await assert.rejects(openTunnel(new URL(`http://127.0.0.1:${proxy.port}`), target, 2000), {
        message: `outbound proxy http://127.0.0.1:${proxy.port} refused CONNECT api.push.apple.com:443: HTTP/1.0 407 Proxy Authentication Required`,
        code: 'ERR_PROXY_REFUSED',
      });
      // tinyproxy's answer to wrong credentials.
      await assert.rejects(openTunnel(new URL(`http://${USER}:not-the-password@127.0.0.1:${proxy.port}`), target, 2000), {
        message: `outbound proxy http://127.0.0.1:${proxy.port} refused CONNECT api.push.apple.com:443: HTTP/1.0 401 Unauthorized`,
        code: 'ERR_PROXY_REFUSED',
      });
      await assert.rejects(openTunnel(new URL(`http://127.0.0.1:${denying.port}`), { host: '::1', port: 443 }, 2000), {
        message: `outbound proxy http://127.0.0.1:${denying.port} refused CONNECT [::1]:443: HTTP/1.0 403 Access denied`,
        code: 'ERR_PROXY_REFUSED',
      });
    });

    it('a closed proxy port rejects at once', async () => {
      const port = await freePort();
      await assert.rejects(openTunnel(new URL(`http://127.0.0.1:${port}`), { host: 'fcm.googleapis.com', port: 443 }, 2000), {
        message: `outbound proxy http://127.0.0.1:${port}: cannot open a tunnel to fcm.googleapis.com:443: connect ECONNREFUSED 127.0.0.1:${port}`,
        code: 'ECONNREFUSED',
      });
    });

    it('a proxy that never answers: rejects after the timeout and closes its connection; an abort does the same at once', async () => {
      const mute = await startServer('silent');
      try {
        const started = Date.now();
        await assert.rejects(openTunnel(new URL(`http://127.0.0.1:${mute.port}`), { host: 'fcm.googleapis.com', port: 443 }, 300), {
          message: `outbound proxy http://127.0.0.1:${mute.port} did not answer CONNECT fcm.googleapis.com:443 within 300 ms`,
          code: 'ERR_PROXY_TIMEOUT',
        });
        assert.ok(Date.now() - started < 1000);
        assert.equal(await until(() => mute.open() === 0, 1000), true);

        const abort = new AbortController();
        const opening = openTunnel(
          new URL(`http://127.0.0.1:${mute.port}`),
          { host: 'fcm.googleapis.com', port: 443 },
          10_000,
          abort.signal,
        );
        assert.equal(await until(() => mute.open() === 1, 1000), true);
        abort.abort();
        await assert.rejects(opening, { code: 'ABORT_ERR' });
        assert.equal(await until(() => mute.open() === 0, 1000), true);
      } finally {
        await mute.close();
      }
    });
  });

  describe('HTTPS_PROXY / HTTP_PROXY: everything goes through the proxy', () => {
    it('APNs token auth', async () => {
      apns.peer.reset();
      const seen = await deliver(apple(deps({ env: { HTTPS_PROXY: proxyUrl() } })), 'apple');
      assert.deepEqual(seen, { result: OK, connects: [apnsTarget()], apnsConnections: 1, fcmConnections: 0 });
      assert.deepEqual(
        apns.peer.received.map((r) => [r.auth, r.token, r.status]),
        [['token', APPLE_TOKEN, 200]],
      );
    });

    it('APNs certificate auth (the client certificate survives the tunnel), from https_proxy', async () => {
      apns.peer.reset();
      const seen = await deliver(apple(deps({ env: { https_proxy: proxyUrl() } }), certificateEntry()), 'apple');
      assert.deepEqual(seen, { result: OK, connects: [apnsTarget()], apnsConnections: 1, fcmConnections: 0 });
      assert.deepEqual(
        apns.peer.received.map((r) => [r.auth, r.topic, r.status]),
        [['certificate', TOPIC, 200]],
      );
    });

    it('FCM: the token request and the send, from HTTP_PROXY', async () => {
      fcm.reset();
      const seen = await deliver(android(deps({ env: { HTTP_PROXY: proxyUrl() } })), 'android');
      // One tunnel for the token request, one for the send (each has its own agent).
      assert.deepEqual(seen, { result: OK, connects: [fcmTarget(), fcmTarget()], apnsConnections: 0, fcmConnections: 2 });
      assert.deepEqual(
        fcm.tokenRequests.map((t) => t.status),
        [200],
      );
      assert.deepEqual(
        fcm.received.map((m) => [m.status, m.headers.host]),
        [[200, 'fcm.googleapis.com']],
      );
    });
  });

  describe('NO_PROXY and OutboundProxy', () => {
    it('NO_PROXY=127.0.0.1: straight to the peers, the proxy sees nothing', async () => {
      const env = { HTTPS_PROXY: proxyUrl(), NO_PROXY: '127.0.0.1' };
      assert.deepEqual(await deliver(apple(deps({ env })), 'apple'), { result: OK, connects: [], apnsConnections: 1, fcmConnections: 0 });
      assert.deepEqual(await deliver(android(deps({ env })), 'android'), {
        result: OK,
        connects: [],
        apnsConnections: 0,
        fcmConnections: 2,
      });
    });

    it('OutboundProxy overrides the environment (and its NO_PROXY)', async () => {
      const env = { HTTPS_PROXY: `http://127.0.0.1:${await freePort()}`, NO_PROXY: '127.0.0.1' };
      const settings = { env, outboundProxy: proxyUrl() };
      assert.deepEqual(await deliver(apple(deps(settings)), 'apple'), {
        result: OK,
        connects: [apnsTarget()],
        apnsConnections: 1,
        fcmConnections: 0,
      });
      assert.deepEqual(await deliver(android(deps(settings)), 'android'), {
        result: OK,
        connects: [fcmTarget(), fcmTarget()],
        apnsConnections: 0,
        fcmConnections: 2,
      });
    });

    it('an unusable proxy setting stops start-up (ConfigError)', () => {
      assert.throws(
        () => apple(deps({ env: { HTTPS_PROXY: 'socks5://127.0.0.1:1080' } })),
        (err: Error) => {
          assert.ok(err instanceof ConfigError);
          assert.equal(
            err.message,
            `HTTPS_PROXY "socks5://127.0.0.1:1080": only http:// proxies are supported (CONNECT over plain HTTP): use http://[user:password@]host:port (needed for ApplePushSettings entry "apple_rn", which connects to ${apnsTarget()})`,
          );
          return true;
        },
      );
      assert.throws(() => android(deps({ outboundProxy: 'ftp://user:pw@proxy' })), {
        name: 'ConfigError',
        message: `OutboundProxy "ftp://***@proxy": only http:// proxies are supported (CONNECT over plain HTTP): use http://[user:password@]host:port (needed for AndroidPushSettings entry "android_rn", which connects to ${fcmTarget()})`,
      });
    });
  });

  describe('a proxy that does not carry the traffic: FAIL within SendTimeoutSec', () => {
    it('proxy port closed: APNs retries then FAILs, FCM FAILs at once; the log says why', async () => {
      const port = await freePort();
      const log = capturedLogger('warn');
      // The backoff waits pass at once: what is checked is their sequence, not the time they take.
      const clock = new SkippingClock();
      const d = deps({ env: { HTTPS_PROXY: `http://127.0.0.1:${port}` }, sendTimeoutMs: 4000, clock }, log.logger);
      const [apnsTime, fcmTime] = [{ ms: -1 }, { ms: -1 }];
      const [apnsSeen, fcmSeen] = await Promise.all([deliver(apple(d), 'apple', apnsTime), deliver(android(d), 'android', fcmTime)]);
      // Attempts at 0, 1 and 3 s, each refused at once.
      assert.deepEqual(apnsSeen, { result: { ...TRANSPORT_FAIL, attempts: 3 }, connects: [], apnsConnections: 0, fcmConnections: 0 });
      assert.deepEqual(clock.sleeps, [1000, 2000]);
      assert.deepEqual(fcmSeen.result, {
        outcome: 'FAIL',
        error: `${CREDENTIAL_FAILED}"outbound proxy http://127.0.0.1:${port}: cannot open a tunnel to ${fcmTarget()}: connect ECONNREFUSED 127.0.0.1:${port}".`,
        reason: 'UNAUTHENTICATED',
        attempts: 1,
      });
      assert.ok(apnsTime.ms + 3000 < 4000, `APNs answered after ${apnsTime.ms} ms and 3000 ms of skipped backoff`);
      assert.ok(fcmTime.ms < 500, `FCM answered after ${fcmTime.ms} ms`);
      const warnings = log.lines().filter((l) => l.msg === 'APNs connection through the outbound proxy failed');
      assert.equal(warnings.length, 3);
      assert.deepEqual(
        warnings[0]!.err,
        `outbound proxy http://127.0.0.1:${port}: cannot open a tunnel to ${apnsTarget()}: connect ECONNREFUSED 127.0.0.1:${port}`,
      );
    });

    it('proxy killed after deliveries went through it: the next ones FAIL', async () => {
      const doomed = await startTinyproxy();
      try {
        const clock = new SkippingClock();
        const d = deps({ outboundProxy: doomed.url, sendTimeoutMs: 4000, clock });
        const [appleService, androidService] = [apple(d), android(d)];
        try {
          const ok = await Promise.all([
            appleService.deliver(push('apple'), { appVersion: 2 }),
            androidService.deliver(push('android'), { appVersion: 2 }),
          ]);
          assert.deepEqual(
            ok.map((r) => r.outcome),
            ['OK', 'OK'],
          );
          assert.deepEqual(doomed.connects().sort(), [apnsTarget(), fcmTarget(), fcmTarget()].sort());
          await doomed.stop();
          const started = Date.now();
          const [appleResult, androidResult] = await Promise.all([
            appleService.deliver(push('apple'), { appVersion: 2 }),
            androidService.deliver(push('android'), { appVersion: 2 }),
          ]);
          const elapsed = Date.now() - started;
          assert.deepEqual({ ...appleResult, request: undefined }, { ...TRANSPORT_FAIL, attempts: 3, request: undefined });
          assert.deepEqual(clock.sleeps, [1000, 2000]);
          assert.deepEqual(
            { ...androidResult, request: undefined },
            {
              outcome: 'FAIL',
              error: `Error while making request: outbound proxy http://127.0.0.1:${doomed.port}: cannot open a tunnel to ${fcmTarget()}: connect ECONNREFUSED 127.0.0.1:${doomed.port}. Error code: ECONNREFUSED`,
              reason: 'UNAVAILABLE',
              attempts: 1,
              request: undefined,
            },
          );
          assert.ok(elapsed + 3000 < 4000, `answered after ${elapsed} ms and 3000 ms of skipped backoff`);
        } finally {
          await Promise.all([appleService.close(), androidService.close()]);
        }
      } finally {
        await doomed.stop();
      }
    });

    it('a proxy that accepts and never answers: FAIL when the budget is spent, no connection left open', async () => {
      const mute = await startServer('silent');
      try {
        const d = deps({ env: { HTTPS_PROXY: `http://127.0.0.1:${mute.port}` }, sendTimeoutMs: 3000 });
        const [apnsTime, fcmTime] = [{ ms: -1 }, { ms: -1 }];
        const [apnsSeen, fcmSeen] = await Promise.all([deliver(apple(d), 'apple', apnsTime), deliver(android(d), 'android', fcmTime)]);
        // Attempts at 0 and 2 s, 1 s each; a third would start at 5 s, past the budget.
        assert.deepEqual(apnsSeen.result, { ...TRANSPORT_FAIL, attempts: 2 });
        assert.deepEqual(fcmSeen.result, {
          outcome: 'FAIL',
          error: 'context deadline exceeded',
          reason: 'context deadline exceeded',
          attempts: 2,
        });
        for (const ms of [apnsTime.ms, fcmTime.ms]) assert.ok(ms >= 2900 && ms < 3500, `answered after ${ms} ms`);
        assert.equal(await until(() => mute.open() === 0, 1500), true, `${mute.open()} connections to the proxy left open`);
      } finally {
        await mute.close();
      }
    });

    it('a proxy that refuses the CONNECT (403): FAIL, and the reason is told', async () => {
      const log = capturedLogger('warn');
      const clock = new SkippingClock();
      const d = deps({ env: { HTTPS_PROXY: `http://127.0.0.1:${denying.port}` }, sendTimeoutMs: 4000, clock }, log.logger);
      const [apnsTime, fcmTime] = [{ ms: -1 }, { ms: -1 }];
      const [apnsSeen, fcmSeen] = await Promise.all([deliver(apple(d), 'apple', apnsTime), deliver(android(d), 'android', fcmTime)]);
      assert.ok(apnsTime.ms + 3000 < 4000, `APNs answered after ${apnsTime.ms} ms and 3000 ms of skipped backoff`);
      assert.ok(fcmTime.ms < 500, `FCM answered after ${fcmTime.ms} ms`);
      assert.deepEqual(apnsSeen, { result: { ...TRANSPORT_FAIL, attempts: 3 }, connects: [], apnsConnections: 0, fcmConnections: 0 });
      assert.deepEqual(clock.sleeps, [1000, 2000]);
      assert.deepEqual(fcmSeen.result, {
        outcome: 'FAIL',
        error: `${CREDENTIAL_FAILED}"outbound proxy http://127.0.0.1:${denying.port} refused CONNECT ${fcmTarget()}: HTTP/1.0 403 Access denied".`,
        reason: 'UNAUTHENTICATED',
        attempts: 1,
      });
      const warnings = log.lines().filter((l) => l.msg === 'APNs connection through the outbound proxy failed');
      assert.deepEqual(warnings[0], {
        ...warnings[0],
        proxy: `http://127.0.0.1:${denying.port}`,
        target: apnsTarget(),
        err: `outbound proxy http://127.0.0.1:${denying.port} refused CONNECT ${apnsTarget()}: HTTP/1.0 403 Access denied`,
      });
      assert.equal(denying.connects().length, 0);
    });
  });
});
