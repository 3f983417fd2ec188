/**
 * What a provider's answers say about a configured entry, end to end: chat server request → in-process proxy
 * → the real APNs and FCM clients → the sandbox peers. The REMOVE guard (suspect REMOVEs withheld while most
 * recent tokens get them) and the runtime health (credentials refused → entry failed in /readyz).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { AndroidEntryConfig } from '../src/config/types';
import pino from 'pino';
import { emptyPushNotification, type PushNotification } from '../src/notification';
import { type ProxyInstance } from '../src/instance';
import { createServices } from '../src/platforms/registry';
import { FcmPeer } from '../src/sandbox/fcm-peer';
import { createGoogleServiceAccount } from '../src/sandbox/credentials';
import { createServerCertificate } from '../src/tls/certificates';
import { TOPIC, capturedLogger, get, post, startApnsFixture, startTestProxy, testConfig, writeTemp, type ApnsFixture } from './support';

const SLOW = { timeout: 60_000 };

/** A distinct, well-formed APNs device token per group and number. */
const apnsToken = (group: string, i: number): string => `${group}${i.toString(16).padStart(8, '0')}`.padStart(64, 'c');

function apnsMessage(deviceId: string): Record<string, unknown> {
  return {
    platform: 'apple_rn-v2',
    server_id: 'srv1',
    device_id: deviceId,
    type: 'message',
    version: 'v2',
    message: 'hi',
    channel_name: 'Town Square',
  };
}

function fcmMessage(deviceId: string): Record<string, unknown> {
  return { platform: 'android_rn-v2', server_id: 'srv1', device_id: deviceId, type: 'message', message: 'hi' };
}

interface Answer {
  status: string;
  error?: string;
}

async function send(proxy: ProxyInstance, body: Record<string, unknown>): Promise<Answer> {
  const answer = await post(`${proxy.url}/api/v1/send_push`, body);
  assert.equal(answer.status, 200);
  return JSON.parse(answer.text) as Answer;
}

/** Sends every body, at most `parallel` at a time, answers in the bodies' order. */
async function sendAll(proxy: ProxyInstance, bodies: Array<Record<string, unknown>>, parallel = bodies.length): Promise<Answer[]> {
  const answers: Answer[] = new Array(bodies.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < bodies.length) {
      const i = next++;
      answers[i] = await send(proxy, bodies[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, bodies.length) }, worker));
  return answers;
}

async function metric(proxy: ProxyInstance, name: string, labels: string): Promise<number | undefined> {
  const text = (await get(`${proxy.url}/metrics`)).text;
  const escaped = `${name}{${labels}}`.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const match = new RegExp(`^${escaped} (\\S+)$`, 'm').exec(text);
  return match ? Number(match[1]) : undefined;
}

interface Readiness {
  httpStatus: number;
  status: string;
  entries: Array<{
    type: string;
    state: string;
    reason?: string;
    since?: string;
    removeGuard?: { suspect: boolean; judgedTokens: number; suspectTokens: number; withheld: number; advice?: string };
  }>;
}

async function readiness(proxy: ProxyInstance): Promise<Readiness> {
  const answer = await get(`${proxy.url}/readyz`);
  return { httpStatus: answer.status, ...(JSON.parse(answer.text) as Omit<Readiness, 'httpStatus'>) };
}

const entryOf = (r: Readiness, type: string): Readiness['entries'][number] =>
  r.entries.find((e) => e.type === type) ?? assert.fail(`no entry ${type}`);

interface FcmFixture {
  peer: FcmPeer;
  clientEmail: string;
  publicKeyPem: string;
  project: string;
  entry(overrides?: Partial<AndroidEntryConfig>): AndroidEntryConfig;
}

/** An FCM peer whose device tokens belong to `tokenProject`, and a service account of `accountProject`. */
async function startFcm(apns: ApnsFixture, accountProject: string, tokenProject?: string): Promise<FcmFixture> {
  const peer = new FcmPeer({ tls: createServerCertificate(apns.ca, ['localhost', '127.0.0.1']), tokenProject });
  await peer.start();
  const { account, publicKeyPem } = createGoogleServiceAccount(peer.tokenUri, accountProject);
  peer.addServiceAccount(account.client_email, publicKeyPem, accountProject);
  const file = writeTemp(apns.dir, `service-account-${accountProject}-${peer.port}.json`, JSON.stringify(account));
  return {
    peer,
    clientEmail: account.client_email,
    publicKeyPem,
    project: accountProject,
    entry: (overrides = {}) => ({ Type: 'android_rn', ServiceFileLocation: file, AndroidApiKey: '', FcmEndpoint: peer.url, ...overrides }),
  };
}

describe('REMOVE guard: APNs', () => {
  let apns: ApnsFixture;
  before(async () => {
    apns = await startApnsFixture();
  });
  after(() => apns.close());

  it(
    '200 distinct tokens answered BadDeviceToken at once: at most 5 REMOVE, the rest FAIL naming the cause; counted, gauged, in /readyz; Unregistered still REMOVE; deliveries clear it',
    SLOW,
    async () => {
      const log = capturedLogger('info');
      const proxy = await startTestProxy(
        testConfig({ apple: [apns.entry()], SendTimeoutSec: 10, RetryTimeoutSec: 5 }),
        [apns.ca.certPem],
        log.logger,
      );
      try {
        const bad = Array.from({ length: 200 }, (_, i) => apnsToken('ba', i));
        for (const token of bad) apns.peer.setDeviceBehaviour(token, { status: 400, reason: 'BadDeviceToken' });
        const answers = await sendAll(proxy, bad.map(apnsMessage));

        const removed = answers.filter((a) => a.status === 'REMOVE').length;
        const failed = answers.filter((a) => a.status === 'FAIL');
        assert.ok(removed <= 5, `${removed} REMOVEs`);
        assert.equal(removed + failed.length, 200);
        for (const answer of failed) {
          assert.match(answer.error!, /ApplePushUseDevelopment/);
          assert.match(answer.error!, /ApplePushTopic/);
          assert.match(answer.error!, /answered BadDeviceToken; \d+ of the last \d+ device tokens got such answers/);
        }
        assert.equal(
          await metric(proxy, 'service_remove_withheld_total', 'platform_type="apple_rn",reason="BadDeviceToken"'),
          failed.length,
        );
        assert.equal(await metric(proxy, 'service_entry_remove_guard_suspect', 'platform_type="apple_rn"'), 1);
        // The original's removal counter counts only what was answered REMOVE.
        assert.equal(await metric(proxy, 'service_removal_total', 'platform="apple",transport="",reason="BadDeviceToken"'), removed);

        const ready = await readiness(proxy);
        assert.equal(ready.httpStatus, 200, 'a suspect entry still delivers: it stays ready');
        const guard = entryOf(ready, 'apple_rn').removeGuard!;
        assert.deepEqual([guard.suspect, guard.judgedTokens, guard.suspectTokens, guard.withheld], [true, 100, 100, failed.length]);
        assert.match(guard.advice!, /ApplePushUseDevelopment/);
        const errors = log.lines().filter((l) => typeof l.msg === 'string' && l.msg.startsWith('REMOVE withheld'));
        assert.equal(errors.length, 1, 'one error log line a minute per entry');
        assert.equal(errors[0]!.level, 50);
        assert.ok(!log.text().includes(bad[0]!), 'no full device token in the log');

        // While suspect: Unregistered is about the device alone and stays REMOVE.
        const gone = apnsToken('de', 1);
        apns.peer.unregister(gone);
        assert.deepEqual(await send(proxy, apnsMessage(gone)), { status: 'REMOVE' });
        // TopicDisallowed stays FAIL, now with the cause.
        const disallowed = apnsToken('d1', 1);
        apns.peer.setDeviceBehaviour(disallowed, { status: 400, reason: 'TopicDisallowed' });
        assert.match((await send(proxy, apnsMessage(disallowed))).error!, /ApplePushTopic/);

        // Deliveries to other devices bring the suspect share under half: REMOVE passes again.
        const good = Array.from({ length: 60 }, (_, i) => apnsMessage(apnsToken('a0', i)));
        assert.ok((await sendAll(proxy, good, 10)).every((a) => a.status === 'OK'));
        assert.equal(await metric(proxy, 'service_entry_remove_guard_suspect', 'platform_type="apple_rn"'), 0);
        assert.equal(entryOf(await readiness(proxy), 'apple_rn').removeGuard!.suspect, false);
        const oneBad = apnsToken('b1', 1);
        apns.peer.setDeviceBehaviour(oneBad, { status: 400, reason: 'BadDeviceToken' });
        assert.deepEqual(await send(proxy, apnsMessage(oneBad)), { status: 'REMOVE' });
        assert.ok(log.lines().some((l) => typeof l.msg === 'string' && l.msg.includes('answered normally again')));
      } finally {
        await proxy.close();
        apns.peer.reset();
      }
    },
  );

  it(
    '2,000 sends of which 1 % of the distinct tokens are dead (BadDeviceToken), the rest delivered: every dead one gets REMOVE',
    SLOW,
    async () => {
      const proxy = await startTestProxy(testConfig({ apple: [apns.entry()], SendTimeoutSec: 10, RetryTimeoutSec: 5 }), [apns.ca.certPem]);
      try {
        const tokens = Array.from({ length: 2000 }, (_, i) => apnsToken('f0', i));
        // Spread through the traffic, as dead devices are: one in each hundred, at a varying place.
        const dead = new Set(Array.from({ length: 20 }, (_, i) => i * 100 + ((i * 37) % 100)));
        for (const i of dead) apns.peer.setDeviceBehaviour(tokens[i]!, { status: 400, reason: 'BadDeviceToken' });
        const answers = await sendAll(proxy, tokens.map(apnsMessage), 20);
        answers.forEach((answer, i) => assert.deepEqual(answer, { status: dead.has(i) ? 'REMOVE' : 'OK' }, `send ${i}`));
        assert.equal(await metric(proxy, 'service_entry_remove_guard_suspect', 'platform_type="apple_rn"'), 0);
        assert.equal(entryOf(await readiness(proxy), 'apple_rn').removeGuard!.withheld, 0);
      } finally {
        await proxy.close();
        apns.peer.reset();
      }
    },
  );
});

describe('REMOVE guard: a wrong ApplePushUseDevelopment, as the APNs peer sees it', () => {
  it('development device tokens sent to the production host: BadDeviceToken for each; after 4 REMOVEs the rest FAIL', SLOW, async () => {
    const apns = await startApnsFixture({ peer: { tokenEnvironment: 'sandbox' } });
    // A .p8 key works in both environments: nothing at start-up tells the operator that this is wrong.
    const proxy = await startTestProxy(
      testConfig({ apple: [apns.entry({ ApplePushUseDevelopment: false })], SendTimeoutSec: 10, RetryTimeoutSec: 5 }),
      [apns.ca.certPem],
    );
    try {
      const answers = await sendAll(
        proxy,
        Array.from({ length: 40 }, (_, i) => apnsMessage(apnsToken('e0', i))),
        1,
      );
      assert.deepEqual(
        answers.slice(0, 4).map((a) => a.status),
        ['REMOVE', 'REMOVE', 'REMOVE', 'REMOVE'],
      );
      assert.ok(answers.slice(4).every((a) => a.status === 'FAIL' && /ApplePushUseDevelopment/.test(a.error!)));
      assert.ok(apns.peer.received.every((n) => n.reason === 'BadDeviceToken' && n.authority === 'api.push.apple.com'));
    } finally {
      await proxy.close();
      await apns.close();
    }
  });
});

describe('REMOVE guard: FCM', () => {
  it(
    'a service account of another Firebase project: SENDER_ID_MISMATCH for each token; REMOVE withheld naming ServiceFileLocation; UNREGISTERED still REMOVE',
    SLOW,
    async () => {
      const apns = await startApnsFixture();
      const fcm = await startFcm(apns, 'another-project', 'the-apps-project');
      const proxy = await startTestProxy(testConfig({ android: [fcm.entry()], SendTimeoutSec: 10, RetryTimeoutSec: 5 }), [apns.ca.certPem]);
      try {
        const answers = await sendAll(
          proxy,
          Array.from({ length: 50 }, (_, i) => fcmMessage(`fcm-mismatch-${i}`)),
        );
        const removed = answers.filter((a) => a.status === 'REMOVE').length;
        assert.ok(removed <= 5, `${removed} REMOVEs`);
        const failed = answers.filter((a) => a.status === 'FAIL');
        assert.equal(removed + failed.length, 50);
        assert.ok(
          failed.every(
            (a) => /ServiceFileLocation/.test(a.error!) && /answered SENDER_ID_MISMATCH; \d+ of the last \d+ device tokens/.test(a.error!),
          ),
          JSON.stringify(failed[0]),
        );
        assert.ok(fcm.peer.received.every((m) => m.errorCode === 'SENDER_ID_MISMATCH'));
        assert.equal(
          await metric(proxy, 'service_remove_withheld_total', 'platform_type="android_rn",reason="SENDER_ID_MISMATCH"'),
          failed.length,
        );
        // The original's label for it stays UNREGISTERED.
        assert.equal(await metric(proxy, 'service_removal_total', 'platform="android",transport="",reason="UNREGISTERED"'), removed);
        assert.equal(await metric(proxy, 'service_entry_remove_guard_suspect', 'platform_type="android_rn"'), 1);

        fcm.peer.unregister('fcm-uninstalled');
        assert.deepEqual(await send(proxy, fcmMessage('fcm-uninstalled')), { status: 'REMOVE' });
        assert.equal(await metric(proxy, 'service_entry_remove_guard_suspect', 'platform_type="android_rn"'), 1);
      } finally {
        await proxy.close();
        await fcm.peer.close();
        await apns.close();
      }
    },
  );
});

describe('readiness at runtime: an entry whose credentials the provider refuses', () => {
  it(
    'APNs: a revoked token key marks the entry failed (reason in /readyz, gauge 0, 503 as the only entry); the key back, the next delivery brings it up',
    SLOW,
    async () => {
      const apns = await startApnsFixture();
      const log = capturedLogger('info');
      const proxy = await startTestProxy(
        testConfig({ apple: [apns.entry()], SendTimeoutSec: 10, RetryTimeoutSec: 5 }),
        [apns.ca.certPem],
        log.logger,
      );
      try {
        assert.deepEqual(await send(proxy, apnsMessage(apnsToken('0a', 1))), { status: 'OK' });
        assert.equal(await metric(proxy, 'service_entry_up', 'platform_type="apple_rn"'), 1);

        apns.peer.revokeTokenKey(apns.authKey.keyId);
        for (let i = 2; i < 5; i++) assert.equal((await send(proxy, apnsMessage(apnsToken('0a', i)))).status, 'FAIL');
        assert.equal(apns.peer.received.at(-1)!.reason, 'InvalidProviderToken');
        const down = await readiness(proxy);
        assert.equal(down.httpStatus, 503);
        const entry = entryOf(down, 'apple_rn');
        assert.equal(entry.state, 'failed');
        assert.match(entry.reason!, /InvalidProviderToken/);
        assert.match(entry.reason!, /AppleAuthKeyID and AppleTeamID/);
        assert.match(entry.reason!, /Apple Developer > Keys/);
        assert.ok(!Number.isNaN(Date.parse(entry.since!)));
        assert.equal(await metric(proxy, 'service_entry_up', 'platform_type="apple_rn"'), 0);
        const errors = log.lines().filter((l) => typeof l.msg === 'string' && l.msg.startsWith('entry "apple_rn" failed'));
        assert.equal(errors.length, 1, 'one error log line a minute per entry');

        apns.peer.addTokenKey({
          keyId: apns.authKey.keyId,
          teamId: apns.authKey.teamId,
          publicKeyPem: apns.authKey.publicKeyPem,
          topics: [TOPIC],
        });
        assert.deepEqual(await send(proxy, apnsMessage(apnsToken('0a', 9))), { status: 'OK' });
        const up = await readiness(proxy);
        assert.equal(up.httpStatus, 200);
        assert.equal(entryOf(up, 'apple_rn').state, 'ready');
        assert.equal(await metric(proxy, 'service_entry_up', 'platform_type="apple_rn"'), 1);
        assert.ok(log.lines().some((l) => l.msg === 'entry "apple_rn" is up again: the provider accepted its credentials'));
      } finally {
        await proxy.close();
        await apns.close();
      }
    },
  );

  it(
    'FCM: a token request refused with invalid_grant marks the entry failed; the account back, the next delivery brings it up',
    SLOW,
    async () => {
      const apns = await startApnsFixture();
      const fcm = await startFcm(apns, 'the-apps-project');
      fcm.peer.removeServiceAccount(fcm.clientEmail);
      const proxy = await startTestProxy(testConfig({ android: [fcm.entry()], SendTimeoutSec: 10, RetryTimeoutSec: 5 }), [apns.ca.certPem]);
      try {
        const refused = await send(proxy, fcmMessage('fcm-token-1'));
        assert.equal(refused.status, 'FAIL');
        assert.ok(fcm.peer.tokenRequests.some((r) => r.error === 'invalid_grant'));
        const down = await readiness(proxy);
        assert.equal(down.httpStatus, 503);
        const entry = entryOf(down, 'android_rn');
        assert.equal(entry.state, 'failed');
        assert.match(entry.reason!, /invalid_grant/);
        assert.match(entry.reason!, /ServiceFileLocation/);
        assert.equal(await metric(proxy, 'service_entry_up', 'platform_type="android_rn"'), 0);

        fcm.peer.addServiceAccount(fcm.clientEmail, fcm.publicKeyPem, fcm.project);
        assert.deepEqual(await send(proxy, fcmMessage('fcm-token-2')), { status: 'OK' });
        assert.equal((await readiness(proxy)).httpStatus, 200);
        assert.equal(await metric(proxy, 'service_entry_up', 'platform_type="android_rn"'), 1);
      } finally {
        await proxy.close();
        await fcm.peer.close();
        await apns.close();
      }
    },
  );

  it('two entries: one failed → /readyz 200 listing it failed; both failed → 503', SLOW, async () => {
    const apns = await startApnsFixture();
    const fcm = await startFcm(apns, 'the-apps-project');
    const proxy = await startTestProxy(
      testConfig({ apple: [apns.entry()], android: [fcm.entry()], SendTimeoutSec: 10, RetryTimeoutSec: 5 }),
      [apns.ca.certPem],
    );
    try {
      assert.deepEqual(await send(proxy, fcmMessage('fcm-token-1')), { status: 'OK' });
      apns.peer.revokeTokenKey(apns.authKey.keyId);
      assert.equal((await send(proxy, apnsMessage(apnsToken('0b', 1)))).status, 'FAIL');
      const one = await readiness(proxy);
      assert.equal(one.httpStatus, 200);
      assert.equal(one.status, 'ready');
      assert.deepEqual(
        one.entries.map((e) => [e.type, e.state]),
        [
          ['apple_rn', 'failed'],
          ['android_rn', 'ready'],
        ],
      );

      // The service account's access tokens revoked (and no new one to be had): FCM answers 401 UNAUTHENTICATED,
      // and the token endpoint refuses the new token asked for then.
      fcm.peer.removeServiceAccount(fcm.clientEmail);
      fcm.peer.revokeAccessTokens();
      const refused = await send(proxy, fcmMessage('fcm-token-2'));
      assert.equal(refused.status, 'FAIL');
      assert.match(refused.error!, /invalid_grant/);
      const none = await readiness(proxy);
      assert.equal(none.httpStatus, 503);
      assert.deepEqual(
        none.entries.map((e) => [e.type, e.state]),
        [
          ['apple_rn', 'failed'],
          ['android_rn', 'failed'],
        ],
      );
      assert.match(entryOf(none, 'android_rn').reason!, /invalid_grant/);
    } finally {
      await proxy.close();
      await fcm.peer.close();
      await apns.close();
    }
  });
});

/** Polls `check` until it holds; fails after `timeoutMs`. */
async function waitFor(check: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('readiness at runtime: a failed entry checks its credentials again by itself', () => {
  const silent = pino({ level: 'silent' });
  const budgets = { sendTimeoutMs: 4000, retryTimeoutMs: 2000 };
  const notification = (platform: string, deviceId: string): PushNotification => ({
    ...emptyPushNotification(),
    platform,
    server_id: 'srv1',
    device_id: deviceId,
    type: 'message',
    message: 'hi',
  });

  it('APNs: probes a made-up token while failed (no traffic needed); the key back, the entry comes up', SLOW, async () => {
    const apns = await startApnsFixture();
    const probeToken = '0'.repeat(64);
    // What Apple answers for a token it never issued, once it has accepted the provider token.
    apns.peer.setDeviceBehaviour(probeToken, { status: 400, reason: 'BadDeviceToken' });
    const { services, states } = createServices(
      testConfig({ apple: [apns.entry()] }),
      { logger: silent, ...budgets, trustedCa: [apns.ca.certPem] },
      { recheckMs: 200 },
    );
    const service = services.get('apple_rn')!;
    try {
      apns.peer.revokeTokenKey(apns.authKey.keyId);
      assert.equal((await service.deliver(notification('apple_rn', apnsToken('0c', 1)), { appVersion: 2 })).outcome, 'FAIL');
      assert.equal(states()[0]!.state, 'failed');
      await waitFor(() => apns.peer.receivedFor(probeToken).length >= 2, 'two probes');
      assert.ok(apns.peer.receivedFor(probeToken).every((n) => n.reason === 'InvalidProviderToken'));
      assert.equal(states()[0]!.state, 'failed');
      // A silent push: nothing a person could see, had the token been a device's.
      assert.deepEqual((apns.peer.receivedFor(probeToken)[0]!.payload as { aps: unknown }).aps, { 'content-available': 1 });

      apns.peer.addTokenKey({
        keyId: apns.authKey.keyId,
        teamId: apns.authKey.teamId,
        publicKeyPem: apns.authKey.publicKeyPem,
        topics: [TOPIC],
      });
      await waitFor(() => states()[0]!.state === 'ready', 'the entry to come up');
      assert.equal(apns.peer.receivedFor(probeToken).at(-1)!.reason, 'BadDeviceToken');
      // Probes are not traffic: the REMOVE guard never saw them.
      const state = states()[0]!;
      assert.ok(state.state === 'ready');
      assert.equal(state.removeGuard!.judgedTokens, 0);
      const probes = apns.peer.receivedFor(probeToken).length;
      await new Promise((resolve) => setTimeout(resolve, 600));
      assert.equal(apns.peer.receivedFor(probeToken).length, probes, 'no probe once the entry is up');
    } finally {
      await service.close();
      await apns.close();
    }
  });

  it('FCM: a refused token grant is asked again while failed; the account back, the entry comes up', SLOW, async () => {
    const apns = await startApnsFixture();
    const fcm = await startFcm(apns, 'the-apps-project');
    // What FCM answers for a string that is no registration token, once it has accepted the access token.
    fcm.peer.setTokenBehaviour('push-proxy-credential-check', { error: 'INVALID_ARGUMENT' });
    fcm.peer.removeServiceAccount(fcm.clientEmail);
    const { services, states } = createServices(
      testConfig({ android: [fcm.entry()] }),
      { logger: silent, ...budgets, trustedCa: [apns.ca.certPem] },
      { recheckMs: 200 },
    );
    const service = services.get('android_rn')!;
    try {
      assert.equal((await service.deliver(notification('android_rn', 'fcm-token-1'), { appVersion: 2 })).outcome, 'FAIL');
      assert.equal(states()[0]!.state, 'failed');
      const refusals = fcm.peer.tokenRequests.length;
      await waitFor(() => fcm.peer.tokenRequests.length >= refusals + 2, 'two more token requests');
      assert.equal(states()[0]!.state, 'failed');

      fcm.peer.addServiceAccount(fcm.clientEmail, fcm.publicKeyPem, fcm.project);
      await waitFor(() => states()[0]!.state === 'ready', 'the entry to come up');
      assert.equal(fcm.peer.receivedFor('push-proxy-credential-check').at(-1)!.errorCode, 'INVALID_ARGUMENT');
    } finally {
      await service.close();
      await fcm.peer.close();
      await apns.close();
    }
  });
});
