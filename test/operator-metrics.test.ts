/**
 * The operator metrics at /metrics of an in-process proxy talking to the sandbox APNs and FCM peers over real
 * sockets: a delivery receipt's latency, attempts and retries by verdict and reason, sends in flight, OAuth
 * refresh failures, and duration buckets that reach SendTimeoutSec.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ProxyInstance } from '../src/instance';
import { createGoogleServiceAccount } from '../src/sandbox/credentials';
import { FcmPeer } from '../src/sandbox/fcm-peer';
import { createServerCertificate } from '../src/tls/certificates';
import { SkippingClock } from './skipping-clock';
import { APPLE_TOKEN, get, post, startApnsFixture, startTestProxy, testConfig, writeTemp, type ApnsFixture } from './support';

const SLOW = { timeout: 60_000 };

function appleMessage(fields: Record<string, unknown> = {}): Record<string, unknown> {
  return { platform: 'apple_rn-v2', server_id: 'srv1', device_id: APPLE_TOKEN, type: 'message', message: 'hi', ...fields };
}

function androidMessage(deviceId: string, fields: Record<string, unknown> = {}): Record<string, unknown> {
  return { platform: 'android_rn-v2', server_id: 'srv1', device_id: deviceId, type: 'message', message: 'hi', ...fields };
}

async function send(proxy: ProxyInstance, body: Record<string, unknown>): Promise<string> {
  const answer = await post(`${proxy.url}/api/v1/send_push`, body);
  assert.equal(answer.status, 200);
  return answer.text;
}

async function ack(proxy: ProxyInstance, id: string, platform: string): Promise<string> {
  const answer = await post(`${proxy.url}/api/v1/ack`, { id, platform, type: 'message' });
  assert.equal(answer.status, 200);
  return answer.text;
}

/** One series' value at /metrics, or undefined when it is not there. */
async function metric(proxy: ProxyInstance, series: string): Promise<number | undefined> {
  const text = (await get(`${proxy.url}/metrics`)).text;
  const escaped = series.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const match = new RegExp(`^${escaped} (\\S+)$`, 'm').exec(text);
  return match ? Number(match[1]) : undefined;
}

const OK = '{"status":"OK"}\n';

describe('operator metrics against the sandbox peers', () => {
  let apns: ApnsFixture;
  let fcm: { peer: FcmPeer; clientEmail: string; publicKeyPem: string; file: string };
  let proxy: ProxyInstance;
  let clock: SkippingClock;

  before(async () => {
    apns = await startApnsFixture();
    const peer = new FcmPeer({ tls: apns.serverTls });
    await peer.start();
    const { account, publicKeyPem } = createGoogleServiceAccount(peer.tokenUri, 'metrics-test');
    peer.addServiceAccount(account.client_email, publicKeyPem, 'metrics-test');
    const file = writeTemp(apns.dir, 'service-account.json', JSON.stringify(account));
    fcm = { peer, clientEmail: account.client_email, publicKeyPem, file };
    clock = new SkippingClock();
    // Budgets far above what the attempts need: the backoff waits are skipped, the attempts take their real time.
    const config = testConfig({
      apple: [apns.entry()],
      android: [{ Type: 'android_rn', ServiceFileLocation: file, AndroidApiKey: '', FcmEndpoint: peer.url }],
      SendTimeoutSec: 20,
      RetryTimeoutSec: 10,
    });
    proxy = await startTestProxy(config, [apns.ca.certPem], undefined, { clock });
  });
  after(async () => {
    await proxy?.close();
    await fcm?.peer.close();
    await apns?.close();
  });

  it('a send with an ack id, then its ack: one observation of the ack latency, under the platform of the send', async () => {
    assert.equal(await send(proxy, appleMessage({ ack_id: 'ack-latency-1' })), OK);
    // Unknown ack ids are ignored, and a receipt counts once.
    assert.equal(await ack(proxy, 'never-sent', 'apple_rn'), OK);
    assert.equal(await metric(proxy, 'service_ack_latency_seconds_count{platform="apple"}'), undefined);
    assert.equal(await ack(proxy, 'ack-latency-1', 'apple_rn'), OK);
    assert.equal(await ack(proxy, 'ack-latency-1', 'apple_rn'), OK);
    assert.equal(await metric(proxy, 'service_ack_latency_seconds_count{platform="apple"}'), 1);
    assert.equal(await metric(proxy, 'service_ack_latency_seconds_count{platform="android"}'), undefined);
    const seconds = await metric(proxy, 'service_ack_latency_seconds_sum{platform="apple"}');
    assert.ok(seconds !== undefined && seconds > 0 && seconds < 60, `latency ${seconds}`);
  });

  it('a send retried after a 500 (INTERNAL): attempts ok=1 and retry=1, one retry with its reason', SLOW, async () => {
    const token = 'retried-fcm-token';
    fcm.peer.setTokenBehaviour(token, [{ error: 'INTERNAL' }, { ok: true }]);
    assert.equal(await send(proxy, androidMessage(token)), OK);
    assert.deepEqual(
      fcm.peer.receivedFor(token).map((m) => m.status),
      [500, 200],
    );
    assert.equal(await metric(proxy, 'service_attempts_total{platform_type="android_rn",result="ok"}'), 1);
    assert.equal(await metric(proxy, 'service_attempts_total{platform_type="android_rn",result="retry"}'), 1);
    assert.equal(await metric(proxy, 'service_attempts_total{platform_type="android_rn",result="fail"}'), 0);
    assert.equal(await metric(proxy, 'service_retries_total{platform_type="android_rn",reason="INTERNAL"}'), 1);
    assert.equal(await metric(proxy, 'service_sends_in_flight{platform_type="android_rn"}'), 0);
  });

  it('sends in flight: counted while the provider has not answered, back to 0 after the answers', async () => {
    const delayed = Array.from({ length: 3 }, (_, i) => `${'d'.repeat(62)}0${i}`);
    for (const token of delayed) apns.peer.setDeviceBehaviour(token, { delayMs: 1_500 });
    let answered = false;
    const answers = Promise.all(delayed.map((token) => send(proxy, appleMessage({ device_id: token })))).finally(() => (answered = true));
    // The answers come 1.5 s after the sends reach the peer: scrapes meanwhile see them all in flight.
    let most = 0;
    while (!answered && most < delayed.length) {
      most = Math.max(most, (await metric(proxy, 'service_sends_in_flight{platform_type="apple_rn"}')) ?? 0);
    }
    assert.equal(most, delayed.length);
    assert.deepEqual(await answers, [OK, OK, OK]);
    assert.equal(await metric(proxy, 'service_sends_in_flight{platform_type="apple_rn"}'), 0);
  });

  it('the duration histograms reach SendTimeoutSec: their largest finite bucket is 20', async () => {
    const text = (await get(`${proxy.url}/metrics`)).text;
    for (const name of [
      'service_notification_duration_seconds',
      'service_apns_request_duration_seconds',
      'service_fcm_request_duration_seconds',
      'service_request_duration_seconds',
    ]) {
      const bounds = [...text.matchAll(new RegExp(`^${name}_bucket\\{[^}]*le="([^"]+)"`, 'gm'))].map((m) => m[1]!);
      assert.ok(bounds.length > 0, `${name} has buckets`);
      const finite = bounds.filter((b) => b !== '+Inf').map(Number);
      assert.equal(Math.max(...finite), 20, name);
    }
  });
});

describe('credential refresh failures', () => {
  it('a token request Google refuses (invalid_grant) counts an OAuth refresh failure of the entry', SLOW, async () => {
    const apns = await startApnsFixture();
    const peer = new FcmPeer({ tls: createServerCertificate(apns.ca, ['localhost', '127.0.0.1']) });
    await peer.start();
    const { account } = createGoogleServiceAccount(peer.tokenUri, 'refused-project');
    // The peer knows no such account: its token requests get invalid_grant.
    const file = writeTemp(apns.dir, 'unknown-account.json', JSON.stringify(account));
    const proxy = await startTestProxy(
      testConfig({
        android: [{ Type: 'android_rn', ServiceFileLocation: file, AndroidApiKey: '', FcmEndpoint: peer.url }],
        SendTimeoutSec: 10,
        RetryTimeoutSec: 5,
      }),
      [apns.ca.certPem],
    );
    try {
      assert.match(await send(proxy, androidMessage('refused-token')), /"status":"FAIL"/);
      const refused = peer.tokenRequests.filter((r) => r.error === 'invalid_grant').length;
      assert.ok(refused >= 1);
      assert.equal(await metric(proxy, 'service_credential_refresh_failures_total{platform_type="android_rn",kind="oauth"}'), refused);
    } finally {
      await proxy.close();
      await peer.close();
      await apns.close();
    }
  });
});
