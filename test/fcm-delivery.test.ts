/**
 * Android delivery end to end: createAndroidService → FcmTransport's own HTTP/1.1 requests → real TLS sockets → FcmPeer.
 * Small budgets (SendTimeoutSec 4, RetryTimeoutSec 1) keep the slow cases short; timing bounds are generous.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, beforeEach, describe, it } from 'node:test';
import { getApps } from 'firebase-admin/app';
import pino from 'pino';
import { ConfigError } from '../src/config/errors';
import type { AndroidEntryConfig } from '../src/config/types';
import type { ServiceDeps } from '../src/delivery/service';
import type { AttemptResult, DeliveryResult, PushService } from '../src/delivery/types';
import { emptyPushNotification, type PushNotification } from '../src/notification';
import { buildFcmMessage } from '../src/platforms/fcm/payload';
import { FCM_ERRORS, FcmPeer, GOOGLE_TOKEN_URI } from '../src/sandbox/fcm-peer';
import { createGoogleServiceAccount, type GoogleServiceAccount } from '../src/sandbox/credentials';
import { createCertificateAuthority, createServerCertificate } from '../src/tls/certificates';
import { createAndroidService } from '../src/platforms/fcm';
import { loadServiceAccount } from '../src/platforms/fcm/credentials';
import { FcmTransport } from '../src/platforms/fcm/transport';
import type { ServiceResult as AndroidServiceResult } from '../src/platforms/platform';
import { SkippingClock } from './skipping-clock';
import { capturedLogger, tempDir, writeTemp } from './support';

const ca = createCertificateAuthority('FCM delivery test CA');
const serverTls = createServerCertificate(ca, ['localhost', '127.0.0.1']);
const silent = pino({ level: 'silent' });
const SLOW = { timeout: 30_000 };
const execFileAsync = promisify(execFile);

interface Fixture {
  peer: FcmPeer;
  account: GoogleServiceAccount;
  publicKeyPem: string;
  file: string;
  dir: string;
  entry(overrides?: Partial<AndroidEntryConfig>): AndroidEntryConfig;
  close(): Promise<void>;
}

async function startFixture(project = 'delivery-test'): Promise<Fixture> {
  const peer = new FcmPeer({ tls: serverTls });
  await peer.start();
  const { account, publicKeyPem } = createGoogleServiceAccount(peer.tokenUri, project);
  peer.addServiceAccount(account.client_email, publicKeyPem, project);
  const dir = tempDir();
  const file = writeTemp(dir, 'service-account.json', JSON.stringify(account, null, 2));
  return {
    peer,
    account,
    publicKeyPem,
    file,
    dir,
    entry: (overrides = {}) => ({ Type: 'android_rn', ServiceFileLocation: file, AndroidApiKey: '', FcmEndpoint: peer.url, ...overrides }),
    close: () => peer.close(),
  };
}

function deps(overrides: Partial<ServiceDeps> = {}): ServiceDeps {
  return { logger: silent, sendTimeoutMs: 4000, retryTimeoutMs: 1000, trustedCa: [ca.certPem], ...overrides };
}

function ready(result: AndroidServiceResult): PushService {
  if (!('service' in result)) assert.fail(`expected a service, got: skipped, ${result.skipped}`);
  return result.service;
}

let tokenCounter = 0;
/** A fresh FCM-looking device token per use, so cases never see each other's records. */
function newToken(): string {
  return `dGVzdC1kZXZpY2U${++tokenCounter}:APA91bF${'q'.repeat(60)}${tokenCounter}`;
}

function push(fields: Partial<PushNotification> = {}): PushNotification {
  return {
    ...emptyPushNotification(),
    platform: 'android_rn-v2',
    server_id: 'srv1',
    device_id: newToken(),
    type: 'message',
    version: 'v2',
    message: 'hello :smile:',
    channel_id: 'ch1',
    channel_name: 'Town Square',
    sender_name: 'alice',
    ack_id: 'ack1',
    badge: 2,
    signature: 'sig',
    ...fields,
  };
}

/** The verdict alone; the built request that travels with it is checked at the peer. */
async function deliver(service: PushService, n: PushNotification): Promise<Omit<DeliveryResult, 'request'>> {
  const { request, ...verdict } = await service.deliver(n, { appVersion: 2 });
  assert.equal((request as { token?: string } | undefined)?.token, n.device_id);
  return verdict;
}

/** The message name FCM answered the latest send to `token` with: the id a delivery carries. */
function nameAnswered(peer: FcmPeer, token: string): string {
  return (peer.receivedFor(token).at(-1)?.answer as { name?: string } | undefined)?.name ?? '(no name answered)';
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('Android delivery to the FCM peer', () => {
  let fx: Fixture;
  let service: PushService;

  before(async () => {
    fx = await startFixture();
    service = ready(createAndroidService(fx.entry(), deps()));
  });
  after(async () => {
    await service.close();
    await fx.close();
  });
  beforeEach(() => fx.peer.reset());

  it('OK: the peer receives exactly the data map of docs/protocol.md, FCM message, high priority, as FCM HTTP v1 over HTTP/1.1', async () => {
    const n = push({ root_id: 'root1', is_crt_enabled: true });
    const result = await deliver(service, n);
    assert.deepEqual(result, {
      outcome: 'OK',
      error: undefined,
      reason: undefined,
      attempts: 1,
      providerId: nameAnswered(fx.peer, n.device_id),
    });
    const received = fx.peer.receivedFor(n.device_id);
    assert.equal(received.length, 1);
    const [message] = received;
    assert.deepEqual(message!.message, { token: n.device_id, data: buildFcmMessage(n).data, android: { priority: 'high' } });
    assert.equal(message!.data!.message, 'hello 😄 ');
    assert.equal(message!.project, 'delivery-test');
    assert.equal(message!.validateOnly, false);
    assert.equal(message!.httpVersion, '1.1');
    // The Host stays FCM's: a relay at FcmEndpoint sees what Google would.
    assert.equal(message!.headers.host, 'fcm.googleapis.com');
    assert.match(String(message!.headers.authorization), /^Bearer ya29\./);
    assert.match(String(message!.headers['content-type']), /^application\/json/);
  });

  it('REMOVE (reason UNREGISTERED) for an unregistered token, without retrying', async () => {
    const n = push();
    fx.peer.unregister(n.device_id);
    const result = await deliver(service, n);
    assert.equal(result.outcome, 'REMOVE');
    assert.equal(result.reason, 'UNREGISTERED');
    assert.equal(result.attempts, 1);
    assert.equal(fx.peer.receivedFor(n.device_id).length, 1);
  });

  it('REMOVE (reason UNREGISTERED) for SENDER_ID_MISMATCH', async () => {
    const n = push();
    fx.peer.setTokenBehaviour(n.device_id, { error: 'SENDER_ID_MISMATCH' });
    const result = await deliver(service, n);
    assert.deepEqual([result.outcome, result.reason, result.attempts], ['REMOVE', 'UNREGISTERED', 1]);
  });

  for (const code of ['INVALID_ARGUMENT', 'THIRD_PARTY_AUTH_ERROR'] as const) {
    it(`FAIL for ${code}: Google's error message, reason ${code}, one attempt`, async () => {
      const n = push();
      fx.peer.setTokenBehaviour(n.device_id, { error: code });
      const { evidence, providerReason, ...result } = await deliver(service, n);
      assert.deepEqual(result, { outcome: 'FAIL', error: FCM_ERRORS[code].message, reason: code, attempts: 1 });
      assert.equal(fx.peer.receivedFor(n.device_id).length, 1);
      // Apple or Web Push refusing the project's credentials says something about the entry, not the device.
      if (code === 'THIRD_PARTY_AUTH_ERROR') {
        assert.equal(evidence?.kind, 'credentials-refused');
        assert.equal(providerReason, code);
      } else {
        // FCM checks a message only after accepting the access token.
        assert.deepEqual(evidence, { kind: 'credentials-accepted' });
      }
    });
  }

  it('FAIL INVALID_ARGUMENT for a malformed device token (never REMOVE: the token is malformed, not known dead)', async () => {
    const result = await deliver(service, push({ device_id: 'not a token!' }));
    assert.deepEqual(result, {
      outcome: 'FAIL',
      error: 'The registration token is not a valid FCM registration token',
      reason: 'INVALID_ARGUMENT',
      attempts: 1,
      evidence: { kind: 'credentials-accepted' },
    });
  });

  it('FAIL UNAVAILABLE at once when FCM asks to come back later than any retry would (Retry-After > 60 s)', async () => {
    const n = push();
    fx.peer.setTokenBehaviour(n.device_id, { error: 'UNAVAILABLE', retryAfterSec: 120 });
    const result = await deliver(service, n);
    assert.deepEqual(result, { outcome: 'FAIL', error: FCM_ERRORS.UNAVAILABLE.message, reason: 'UNAVAILABLE', attempts: 1 });
    assert.equal(fx.peer.receivedFor(n.device_id).length, 1);
  });

  it('a bare 403 PERMISSION_DENIED (wrong project_id) is a FAIL, never a REMOVE', async () => {
    const other = await startFixture('registered-project');
    try {
      const { account, publicKeyPem } = createGoogleServiceAccount(other.peer.tokenUri, 'not-this-project');
      other.peer.addServiceAccount(account.client_email, publicKeyPem, 'registered-project');
      const file = writeTemp(other.dir, 'wrong-project.json', JSON.stringify(account));
      const wrong = ready(createAndroidService(other.entry({ ServiceFileLocation: file }), deps()));
      try {
        const result = await deliver(wrong, push());
        assert.equal(result.outcome, 'FAIL');
        assert.equal(result.reason, 'PERMISSION_DENIED');
        assert.match(result.error!, /^Permission 'cloudmessaging\.messages\.create' denied/);
      } finally {
        await wrong.close();
      }
    } finally {
      await other.close();
    }
  });

  it('FAIL for a success status with a body that is not JSON', async () => {
    const n = push();
    fx.peer.setTokenBehaviour(n.device_id, { status: 200, body: 'not json' });
    const result = await deliver(service, n);
    assert.equal(result.outcome, 'FAIL');
    assert.match(result.error!, /^error while parsing response: /);
    assert.equal(result.attempts, 1);
  });

  it('FAIL with the status and body when an error answer is not a Google error', async () => {
    const n = push();
    fx.peer.setTokenBehaviour(n.device_id, { status: 502, body: '<html>Bad Gateway</html>', headers: { 'content-type': 'text/html' } });
    const result = await deliver(service, n);
    assert.deepEqual(result, {
      outcome: 'FAIL',
      error: 'unexpected http response with status: 502\n<html>Bad Gateway</html>',
      reason: 'HTTP 502',
      attempts: 1,
    });
  });

  it('fetches one access token for many concurrent sends', async () => {
    const own = ready(createAndroidService(fx.entry(), deps()));
    try {
      const results = await Promise.all(Array.from({ length: 25 }, () => deliver(own, push())));
      assert.ok(results.every((r) => r.outcome === 'OK'));
      assert.equal(fx.peer.tokenRequests.length, 1);
      assert.equal(fx.peer.tokenRequests[0]!.status, 200);
      assert.equal(new Set(fx.peer.received.map((m) => m.headers.authorization)).size, 1);
    } finally {
      await own.close();
    }
  });

  it('a hanging send does not hold up others', async () => {
    const stuck = push();
    fx.peer.setTokenBehaviour(stuck.device_id, { hang: true });
    let stuckAnswered = false;
    const hanging = deliver(service, stuck).finally(() => (stuckAnswered = true));
    await fx.peer.waitForMessages(1);
    const results = await Promise.all(Array.from({ length: 5 }, () => deliver(service, push())));
    assert.ok(results.every((r) => r.outcome === 'OK'));
    assert.equal(stuckAnswered, false, 'the others were answered while the first one still hung');
    assert.equal((await hanging).outcome, 'FAIL');
  });

  it('TLS to FcmEndpoint is verified: without the sandbox CA nothing is sent', async () => {
    const untrusting = ready(createAndroidService(fx.entry(), deps({ trustedCa: undefined })));
    try {
      const n = push();
      const result = await deliver(untrusting, n);
      assert.equal(result.outcome, 'FAIL');
      assert.match(result.error!, /certificate/);
      assert.equal(fx.peer.receivedFor(n.device_id).length, 0);
      assert.equal(fx.peer.tokenRequests.length, 0);
    } finally {
      await untrusting.close();
    }
  });

  it("TLS to FcmEndpoint is checked against the endpoint's host name", async () => {
    // The sandbox certificate names localhost and 127.0.0.1; this one names localhost only.
    const localhostOnly = new FcmPeer({ tls: createServerCertificate(ca, ['localhost']) });
    await localhostOnly.start();
    try {
      const { account, publicKeyPem } = createGoogleServiceAccount(GOOGLE_TOKEN_URI, 'delivery-test');
      localhostOnly.addServiceAccount(account.client_email, publicKeyPem, 'delivery-test');
      const file = writeTemp(fx.dir, 'names.json', JSON.stringify(account));
      const byName = ready(
        createAndroidService(fx.entry({ ServiceFileLocation: file, FcmEndpoint: `https://localhost:${localhostOnly.port}` }), deps()),
      );
      // Tokens from the main peer (a non-Google token_uri is kept), sends to the endpoint by IP: refused in TLS.
      const byIp = ready(createAndroidService(fx.entry({ FcmEndpoint: `https://127.0.0.1:${localhostOnly.port}` }), deps()));
      try {
        assert.equal((await deliver(byName, push())).outcome, 'OK');
        const result = await deliver(byIp, push());
        assert.equal(fx.peer.tokenRequests.length, 1);
        assert.equal(result.outcome, 'FAIL');
        assert.equal(result.reason, 'UNAVAILABLE');
        assert.match(result.error!, /IP: 127\.0\.0\.1 is not in the cert's list/);
        assert.equal(localhostOnly.received.length, 1, 'only the send by name got through');
      } finally {
        await Promise.all([byName.close(), byIp.close()]);
      }
    } finally {
      await localhostOnly.close();
    }
  });

  it("FcmEndpoint also takes token requests meant for Google (token_uri path kept, aud stays Google's)", async () => {
    const { account, publicKeyPem } = createGoogleServiceAccount(GOOGLE_TOKEN_URI, 'delivery-test');
    fx.peer.addServiceAccount(account.client_email, publicKeyPem, 'delivery-test');
    const file = writeTemp(fx.dir, 'google-token-uri.json', JSON.stringify(account));
    const viaGoogle = ready(createAndroidService(fx.entry({ ServiceFileLocation: file }), deps()));
    try {
      assert.equal((await deliver(viaGoogle, push())).outcome, 'OK');
      assert.equal(fx.peer.tokenRequests.length, 1);
      assert.equal(fx.peer.tokenRequests[0]!.clientEmail, account.client_email);
    } finally {
      await viaGoogle.close();
    }
  });

  it('close() deletes the firebase-admin app it created', async () => {
    const own = ready(createAndroidService(fx.entry({ Type: 'android_closing' }), deps()));
    const named = (): number => getApps().filter((app) => app.name.startsWith('push-proxy:android_closing:')).length;
    assert.equal(named(), 1);
    await own.close();
    assert.equal(named(), 0);
  });
});

describe('Android delivery: retries and bounded attempts', { concurrency: true }, () => {
  let fx: Fixture;
  let service: PushService;

  before(async () => {
    fx = await startFixture();
    service = ready(createAndroidService(fx.entry(), deps()));
  });
  after(async () => {
    await service.close();
    await fx.close();
  });

  /** A service of its own whose backoff waits pass at once (the attempts still go to the peer in real time). */
  async function withSkippingClock<T>(run: (service: PushService, clock: SkippingClock, observed: string[]) => Promise<T>): Promise<T> {
    const clock = new SkippingClock();
    const observed: string[] = [];
    // The skipped waits still count against the budget, and a busy machine slows each real attempt (the first one
    // fetches an OAuth token too): budgets far above what these attempts need keep the test about retries, not speed.
    const own = ready(
      createAndroidService(
        fx.entry(),
        deps({
          sendTimeoutMs: 30_000,
          retryTimeoutMs: 10_000,
          clock,
          entryMetrics: (platform) => ({
            started() {},
            ended: () => observed.push(platform),
            retrying() {},
            slotWaited() {},
            credentialRefreshFailed() {},
          }),
        }),
      ),
    );
    try {
      return await run(own, clock, observed);
    } finally {
      await own.close();
    }
  }

  for (const code of ['INTERNAL', 'QUOTA_EXCEEDED', 'UNAVAILABLE'] as const) {
    it(`${code} is retried: 3 attempts after 1 s and 2 s, the peer saw exactly 3, then FAIL with the last error`, async () => {
      await withSkippingClock(async (skipping, clock) => {
        const n = push();
        fx.peer.setTokenBehaviour(n.device_id, { error: code });
        const result = await deliver(skipping, n);
        assert.deepEqual(result, { outcome: 'FAIL', error: FCM_ERRORS[code].message, reason: code, attempts: 3 });
        assert.equal(fx.peer.receivedFor(n.device_id).length, 3);
        assert.deepEqual(clock.sleeps, [1000, 2000]);
      });
    });
  }

  it('an attempt that fails then one that succeeds: OK after 2 attempts', async () => {
    await withSkippingClock(async (skipping, clock, observed) => {
      const n = push();
      fx.peer.setTokenBehaviour(n.device_id, [{ error: 'INTERNAL' }, { ok: true }]);
      const result = await deliver(skipping, n);
      assert.deepEqual(result, {
        outcome: 'OK',
        error: undefined,
        reason: undefined,
        attempts: 2,
        providerId: nameAnswered(fx.peer, n.device_id),
      });
      assert.deepEqual(
        fx.peer.receivedFor(n.device_id).map((m) => m.status),
        [500, 200],
      );
      assert.deepEqual(clock.sleeps, [1000]);
      assert.deepEqual(observed, ['android', 'android'], 'each attempt is observed for the histograms');
    });
  });

  it('a kept-alive connection dropped under a send is re-sent at once within the same attempt', async () => {
    await withSkippingClock(async (skipping, clock) => {
      // The first send leaves an idle kept-alive connection, which the next one reuses.
      assert.equal((await deliver(skipping, push())).outcome, 'OK');
      const n = push();
      fx.peer.setTokenBehaviour(n.device_id, [{ reset: true }, { ok: true }]);
      const result = await deliver(skipping, n);
      assert.deepEqual(result, {
        outcome: 'OK',
        error: undefined,
        reason: undefined,
        attempts: 1,
        providerId: nameAnswered(fx.peer, n.device_id),
      });
      assert.deepEqual(
        fx.peer.receivedFor(n.device_id).map((m) => m.behaviour ?? m.status),
        ['reset', 200],
      );
      assert.deepEqual(clock.sleeps, []);
    });
  });

  it('a new connection dropped before any answer is retried as another attempt, never OK without an answer', async () => {
    await withSkippingClock(async (skipping, clock) => {
      const n = push();
      fx.peer.setTokenBehaviour(n.device_id, [{ reset: true }, { ok: true }]);
      const result = await deliver(skipping, n);
      assert.deepEqual(result, {
        outcome: 'OK',
        error: undefined,
        reason: undefined,
        attempts: 2,
        providerId: nameAnswered(fx.peer, n.device_id),
      });
      assert.deepEqual(clock.sleeps, [1000]);
      const always = push();
      fx.peer.setTokenBehaviour(always.device_id, { reset: true });
      const failed = await deliver(skipping, always);
      assert.equal(failed.outcome, 'FAIL');
      assert.equal(failed.reason, 'UNAVAILABLE');
      assert.equal(failed.attempts, 3);
      assert.match(failed.error!, /^Error while making request: socket hang up\. Error code: ECONNRESET$/);
    });
  });

  it('a hanging peer: FAIL "context deadline exceeded" within the budget, and nothing reaches FCM afterwards', SLOW, async () => {
    const n = push();
    fx.peer.setTokenBehaviour(n.device_id, { hang: true });
    const started = performance.now();
    const result = await deliver(service, n);
    const elapsed = performance.now() - started;
    assert.deepEqual(result, { outcome: 'FAIL', error: 'context deadline exceeded', reason: 'context deadline exceeded', attempts: 2 });
    // Attempts at 0 s and 1+1 s, each cut at 1 s; the third would not fit in the 4 s budget.
    assert.ok(elapsed > 2500 && elapsed < 6000, `answered after ${Math.round(elapsed)} ms`);
    assert.equal(fx.peer.receivedFor(n.device_id).length, 2);
    await sleep(3000);
    assert.equal(fx.peer.receivedFor(n.device_id).length, 2, 'no request after the attempts ended');
  });
});

describe('Android delivery: no async context tracking', () => {
  let fx: Fixture;

  before(async () => {
    fx = await startFixture();
  });
  after(() => fx.close());

  it('an FCM send never makes Node track promises (APNs sends would pay for it)', SLOW, async () => {
    const slow = push();
    fx.peer.setTokenBehaviour(slow.device_id, { hang: true });
    const probe = path.join(__dirname, 'fcm-tracking-probe.js');
    const { sendTimeoutMs, retryTimeoutMs } = deps();
    const settings = { entry: fx.entry(), ca: ca.certPem, budgets: { sendTimeoutMs, retryTimeoutMs }, slow, fast: push() };
    const { stdout } = await execFileAsync(process.execPath, [probe, JSON.stringify(settings)], { timeout: 20_000 });
    const seen = JSON.parse(stdout) as Record<string, unknown>;
    // On Node 20 and 22 an enabled AsyncLocalStorage tracks every promise; Node 24's does not, so there the probe proves less.
    assert.deepEqual(seen, {
      storageTracks: Number(process.versions.node.split('.')[0]) < 24,
      before: false,
      duringSlow: false,
      fastOutcome: 'OK',
      afterFast: false,
      slowReason: 'context deadline exceeded',
      afterAll: false,
    });
  });
});

/**
 * A fixture and one service on it, both closed after `run`. `make` builds the service, after whatever set-up of
 * the fixture it needs; by default an entry of the fixture with the usual dependencies.
 */
async function withAndroidService(
  run: (fx: Fixture, service: PushService) => Promise<void>,
  make: (fx: Fixture) => AndroidServiceResult = (fx) => createAndroidService(fx.entry(), deps()),
): Promise<void> {
  const fx = await startFixture();
  let service: PushService | undefined;
  try {
    service = ready(make(fx));
    await run(fx, service);
  } finally {
    await service?.close();
    await fx.close();
  }
}

describe('Android delivery: access tokens', () => {
  it('asks for a new token once less than 5 minutes of the current one are left', SLOW, () =>
    withAndroidService(
      async (fx, service) => {
        assert.equal((await deliver(service, push())).outcome, 'OK');
        assert.equal((await deliver(service, push())).outcome, 'OK');
        assert.equal(fx.peer.tokenRequests.length, 1);
        await sleep(2500);
        assert.equal((await deliver(service, push())).outcome, 'OK');
        assert.equal(fx.peer.tokenRequests.length, 2);
        const [first, second] = fx.peer.tokenRequests;
        assert.notEqual(first!.accessToken, second!.accessToken);
        assert.equal(fx.peer.received.at(-1)!.headers.authorization, `Bearer ${second!.accessToken}`);
      },
      (fx) => {
        // firebase-admin refreshes when <= 5 min remain: a 302 s token is good for about 2 s.
        fx.peer.setTokenLifetime(302);
        return createAndroidService(fx.entry(), deps());
      },
    ),
  );

  it('an access token revoked before its expiry: one new token, the send re-sent within the same attempt, OK', () =>
    withAndroidService(async (fx, service) => {
      assert.equal((await deliver(service, push())).outcome, 'OK');
      fx.peer.revokeAccessTokens();
      const n = push();
      const result = await deliver(service, n);
      assert.deepEqual([result.outcome, result.attempts], ['OK', 1]);
      // FCM refuses the token before it reads the message: the 401 is not recorded under the device token.
      assert.deepEqual(
        fx.peer.received.map((m) => m.status),
        [200, 401, 200],
      );
      assert.equal(fx.peer.tokenRequests.length, 2);
      const renewed = `Bearer ${fx.peer.tokenRequests[1]!.accessToken}`;
      assert.equal(fx.peer.receivedFor(n.device_id)[0]!.headers.authorization, renewed);
      // Many sends meeting the same revoked token share one refresh (over connections already open, so that
      // their 401s come back together).
      const many = (): Promise<Array<Omit<DeliveryResult, 'request'>>> =>
        Promise.all(Array.from({ length: 20 }, () => deliver(service, push())));
      assert.ok((await many()).every((r) => r.outcome === 'OK'));
      fx.peer.revokeAccessTokens();
      assert.ok((await many()).every((r) => r.outcome === 'OK' && r.attempts === 1));
      assert.equal(fx.peer.tokenRequests.length, 3);
    }));

  it("a 401 to a renewed or a fresh token: FAIL with Google's UNAUTHENTICATED message and advice, never REMOVE", () => {
    const unauthenticated = {
      status: 401,
      body: JSON.stringify({ error: { code: 401, message: 'Request had invalid authentication credentials.', status: 'UNAUTHENTICATED' } }),
    };
    return withAndroidService(async (fx, service) => {
      // The first send fetches its token: a 401 to it is final at once.
      const first = push();
      fx.peer.setTokenBehaviour(first.device_id, unauthenticated);
      const fresh = await deliver(service, first);
      assert.deepEqual([fresh.outcome, fresh.reason, fresh.attempts], ['FAIL', 'UNAUTHENTICATED', 1]);
      assert.equal(fx.peer.receivedFor(first.device_id).length, 1);
      assert.equal(fx.peer.tokenRequests.length, 1);
      // A held token refused: renewed once, and refused again.
      const n = push();
      fx.peer.setTokenBehaviour(n.device_id, unauthenticated);
      const { evidence, ...result } = await deliver(service, n);
      assert.deepEqual(result, {
        outcome: 'FAIL',
        error: 'Request had invalid authentication credentials.',
        reason: 'UNAUTHENTICATED',
        providerReason: 'UNAUTHENTICATED',
        attempts: 1,
      });
      assert.equal(evidence?.kind, 'credentials-refused');
      assert.equal(fx.peer.receivedFor(n.device_id).length, 2);
      assert.equal(fx.peer.tokenRequests.length, 2);
    });
  });

  it('a revoked token and no new one to be had: FAIL naming the refusal; once the account is back, the next send gets a token', () =>
    withAndroidService(async (fx, service) => {
      assert.equal((await deliver(service, push())).outcome, 'OK');
      fx.peer.removeServiceAccount(fx.account.client_email);
      fx.peer.revokeAccessTokens();
      const { evidence, ...result } = await deliver(service, push());
      assert.deepEqual(
        [result.outcome, result.reason, result.providerReason, result.attempts],
        ['FAIL', 'UNAUTHENTICATED', 'invalid_grant', 1],
      );
      assert.match(result.error!, /invalid_grant/);
      assert.equal(evidence?.kind, 'credentials-refused');
      // firebase-admin still holds the revoked token as valid: the next ask must force a refresh again.
      fx.peer.addServiceAccount(fx.account.client_email, fx.publicKeyPem, 'delivery-test');
      const back = await deliver(service, push());
      assert.deepEqual([back.outcome, back.attempts], ['OK', 1]);
      assert.equal(fx.peer.tokenRequests.at(-1)!.status, 200);
    }));

  it('a refused token grant: FAIL naming the OAuth error, logged as a warning without secrets', () => {
    const log = capturedLogger('debug');
    return withAndroidService(
      async (fx, service) => {
        const n = push();
        const result = await deliver(service, n);
        assert.equal(result.outcome, 'FAIL');
        assert.equal(result.reason, 'UNAUTHENTICATED');
        assert.match(result.error!, /oauth2: "invalid_grant" "Invalid JWT Signature\."/);
        assert.equal(fx.peer.receivedFor(n.device_id).length, 0);
        const warning = log.lines().find((l) => l.msg === 'FCM access token request failed');
        assert.ok(warning, log.text());
        assert.equal(warning.level, 40);
        assert.ok(!log.text().includes('PRIVATE KEY'));
        assert.ok(!log.text().includes(n.device_id));
      },
      (fx) => {
        // A key the peer does not know for this account: Google answers "Invalid JWT Signature."
        const stranger = createGoogleServiceAccount(fx.peer.tokenUri, 'delivery-test').account;
        const file = writeTemp(fx.dir, 'stranger.json', JSON.stringify({ ...fx.account, private_key: stranger.private_key }));
        return createAndroidService(fx.entry({ ServiceFileLocation: file }), deps({ logger: log.logger }));
      },
    );
  });
});

describe('createAndroidService: configuration', () => {
  let fx: Fixture;
  before(async () => {
    fx = await startFixture();
  });
  after(() => fx.close());

  const create = (overrides: Partial<AndroidEntryConfig>): AndroidServiceResult => createAndroidService(fx.entry(overrides), deps());

  function assertConfigError(overrides: Partial<AndroidEntryConfig>, expected: RegExp): void {
    assert.throws(
      () => create(overrides),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
        assert.match(err.message, /^AndroidPushSettings entry "android_rn": /);
        assert.match(err.message, expected);
        return true;
      },
    );
  }

  const file = (name: string, content: unknown): string =>
    writeTemp(fx.dir, name, typeof content === 'string' ? content : JSON.stringify(content));

  it('empty ServiceFileLocation: skipped with a reason', () => {
    const result = create({ ServiceFileLocation: '' });
    assert.ok('skipped' in result);
    assert.match(result.skipped, /ServiceFileLocation/);
  });

  it('AndroidApiKey set: a notice that it is legacy and ignored; delivery still works', async () => {
    const result = create({ AndroidApiKey: 'AAAA-legacy-server-key' });
    const service = ready(result);
    try {
      assert.ok('notices' in result);
      assert.equal(result.notices.length, 1);
      assert.match(result.notices[0]!, /AndroidApiKey/);
      assert.match(result.notices[0]!, /legacy/);
      assert.match(result.notices[0]!, /ignored/);
      assert.ok(!result.notices[0]!.includes('AAAA-legacy-server-key'), 'the key itself is never logged');
      assert.equal((await deliver(service, push())).outcome, 'OK');
    } finally {
      await service.close();
    }
  });

  it('AndroidApiKey alone (no ServiceFileLocation): skipped, saying the legacy key no longer works', () => {
    const result = create({ ServiceFileLocation: '', AndroidApiKey: 'AAAA' });
    assert.ok('skipped' in result);
    assert.match(result.skipped, /AndroidApiKey/);
  });

  it('a missing file', () => {
    const missing = path.join(fx.dir, 'nope.json');
    assertConfigError(
      { ServiceFileLocation: missing },
      new RegExp(`ServiceFileLocation ${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} cannot be read \\(ENOENT\\)\\. Check the path`),
    );
  });

  it('an unreadable path (a directory)', () => {
    const dir = path.join(fx.dir, 'a-directory');
    mkdirSync(dir, { recursive: true });
    assertConfigError({ ServiceFileLocation: dir }, /cannot be read \(EISDIR\)/);
  });

  it('not JSON', () => {
    assertConfigError(
      { ServiceFileLocation: file('not-json.json', '{"type": "service_account",') },
      /ServiceFileLocation .*not-json\.json is not JSON \(.+\)\. Use the service-account key file from the Firebase console/,
    );
  });

  it('JSON that is not an object', () => {
    assertConfigError({ ServiceFileLocation: file('array.json', [1, 2]) }, /is not a service-account JSON object/);
  });

  it('another kind of Google credential', () => {
    assertConfigError(
      { ServiceFileLocation: file('user.json', { type: 'authorized_user', client_id: 'x', refresh_token: 'y' }) },
      /holds a "authorized_user" credential, not a service account/,
    );
  });

  for (const key of ['project_id', 'client_email', 'private_key', 'token_uri'] as const) {
    it(`lacking ${key}`, () => {
      const { [key]: _dropped, ...rest } = fx.account;
      assertConfigError(
        { ServiceFileLocation: file(`no-${key}.json`, rest) },
        new RegExp(`lacks ${key}\\. Use the service-account key file`),
      );
    });
  }

  it('names every missing key at once', () => {
    assertConfigError(
      { ServiceFileLocation: file('empty.json', { type: 'service_account', project_id: '' }) },
      /lacks project_id, client_email, private_key, token_uri\./,
    );
  });

  it('an unparsable private key', () => {
    // The generated key's PEM armour around a body that is not a key.
    const lines = fx.account.private_key.trim().split('\n');
    const damaged = `${lines[0]}\nnot a key\n${lines[lines.length - 1]}\n`;
    assertConfigError(
      { ServiceFileLocation: file('bad-key.json', { ...fx.account, private_key: damaged }) },
      /the private_key in ServiceFileLocation .* cannot be read/,
    );
  });

  it('a private key that is not RSA', () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    assertConfigError({ ServiceFileLocation: file('ec-key.json', { ...fx.account, private_key: ec }) }, /is not an RSA key/);
  });

  it('a token_uri that is not an https URL', () => {
    assertConfigError(
      { ServiceFileLocation: file('bad-uri.json', { ...fx.account, token_uri: 'oauth2.googleapis.com/token' }) },
      /the token_uri .* is not a URL/,
    );
    assertConfigError(
      { ServiceFileLocation: file('http-uri.json', { ...fx.account, token_uri: 'http://oauth2.googleapis.com/token' }) },
      /must be an https URL/,
    );
  });

  it('an FcmEndpoint that is not https://host[:port]', () => {
    for (const endpoint of ['http://127.0.0.1:1', 'https://127.0.0.1:1/v1', 'not a url']) {
      assertConfigError({ FcmEndpoint: endpoint }, /FcmEndpoint ".*" must be https:\/\/host or https:\/\/host:port, with no path/);
    }
  });

  it('loadServiceAccount returns what the transport needs', () => {
    const account = loadServiceAccount(fx.entry());
    assert.equal(account.projectId, 'delivery-test');
    assert.equal(account.clientEmail, fx.account.client_email);
    assert.equal(account.tokenUri, fx.account.token_uri);
    assert.equal(account.privateKeyId, fx.account.private_key_id);
    assert.equal(account.privateKey.asymmetricKeyType, 'rsa');
  });
});

describe('FCM send slots', () => {
  it('a send that finds every connection busy (maxSockets) waits for one, and that wait is counted', SLOW, async () => {
    const fx = await startFixture('slots');
    let slotWaits = 0;
    const transport = new FcmTransport({
      appName: `slots-${randomUUID()}`,
      account: loadServiceAccount(fx.entry()),
      endpoint: new URL(fx.peer.url),
      trustedCa: [ca.certPem],
      logger: silent,
      maxSockets: 1,
      metrics: { slotWaited: () => slotWaits++, credentialRefreshFailed: () => {} },
    });
    try {
      const slow = newToken();
      const fast = newToken();
      // The first send fetches the access token (its own agent), then holds the one connection for a while.
      const verdict = ({ kind, outcome }: AttemptResult & { outcome?: string }) => ({ kind, outcome });
      assert.deepEqual(verdict(await transport.attempt(buildFcmMessage(push({ device_id: newToken() })), 10_000)), {
        kind: 'final',
        outcome: 'OK',
      });
      assert.equal(slotWaits, 0);
      fx.peer.setTokenBehaviour(slow, { delayMs: 500 });
      const answers = await Promise.all([
        transport.attempt(buildFcmMessage(push({ device_id: slow })), 10_000),
        transport.attempt(buildFcmMessage(push({ device_id: fast })), 10_000),
      ]);
      assert.deepEqual(answers.map(verdict), [
        { kind: 'final', outcome: 'OK' },
        { kind: 'final', outcome: 'OK' },
      ]);
      assert.equal(slotWaits, 1);
    } finally {
      await transport.close();
      await fx.close();
    }
  });
});
