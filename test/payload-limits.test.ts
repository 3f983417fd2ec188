/**
 * Payload limits end to end: the worst requests a chat server can send (every field as long as the request body
 * limit allows, emoji-dense and escape-heavy messages, VoIP) go through an in-process proxy to the sandbox APNs
 * and FCM peers, which refuse what Apple and Google refuse. Each must arrive within the limits; what cannot fit
 * gets a FAIL naming the field. The peers' own checks are shown to refuse one byte over.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, beforeEach, describe, it } from 'node:test';
import pino from 'pino';
import { MAX_BODY_BYTES } from '../src/http/push-api';
import type { AttemptResult } from '../src/delivery/types';
import type { ApnsRequest } from '../src/platforms/apns/payload';
import { APNS_PAYLOAD_LIMIT_BYTES, APNS_VOIP_PAYLOAD_LIMIT_BYTES, FCM_DATA_LIMIT_BYTES } from '../src/payload/fit';
import type { ProxyInstance } from '../src/instance';
import { dataPayloadBytes, FCM_MAX_DATA_BYTES, FcmPeer } from '../src/sandbox/fcm-peer';
import { createGoogleServiceAccount } from '../src/sandbox/credentials';
import { createCertificateAuthority, createServerCertificate } from '../src/tls/certificates';
import { loadServiceAccount } from '../src/platforms/fcm/credentials';
import { ApnsTransport } from '../src/platforms/apns/transport';
import { FcmTransport } from '../src/platforms/fcm/transport';
import {
  APPLE_TOKEN,
  TOPIC,
  get,
  post,
  startApnsFixture,
  startTestProxy,
  tempDir,
  testConfig,
  writeTemp,
  type ApnsFixture,
  mostGrowingEmojiCode,
} from './support';

const OK = '{"status":"OK"}\n';

/** An attempt the provider accepted, carrying the provider's id for it (apns-id or FCM's message name). */
function assertAccepted(result: AttemptResult): void {
  const { providerId, ...verdict } = result as AttemptResult & { providerId?: string };
  assert.deepEqual(verdict, { kind: 'final', outcome: 'OK', status: 200 });
  assert.ok(providerId, 'the provider answered with an id');
}
const FCM_TOKEN = `dGVzdC1kZXZpY2U:APA91bF${'q'.repeat(140)}`;
const fcmCa = createCertificateAuthority('payload limits FCM CA');

/** Four free-text fields this long, with escapes and multi-byte characters, take most of the 1 MiB body limit. */
const HUGE = '"\\é€😀\u0001 :smile: x'.repeat(7_000);

const ORDINARY = {
  server_id: 'srv1',
  type: 'message',
  version: 'v2',
  channel_id: 'c'.repeat(26),
  team_id: 't'.repeat(26),
  post_id: 'p'.repeat(26),
  root_id: 'r'.repeat(26),
  sender_id: 's'.repeat(26),
  ack_id: randomUUID(),
  category: 'CAN_REPLY',
  badge: 12,
  is_crt_enabled: true,
  signature: 'g'.repeat(600),
  from_webhook: 'true',
  override_icon_url: 'https://chat.example.com/api/v4/users/abc/image?_=1700000000000',
  message: 'hello',
  sender_name: 'alice',
  channel_name: 'Town Square',
  override_username: 'bot',
};

const WORST_CASES: Record<string, Record<string, unknown>> = {
  'every free-text field as long as the body limit allows': {
    message: HUGE,
    sender_name: HUGE,
    channel_name: HUGE,
    override_username: HUGE,
  },
  'an emoji-dense message': { message: mostGrowingEmojiCode().repeat(5_000) },
  'an escape-heavy message': { message: '\u0001"\\\n\u001f'.repeat(20_000) },
  'an ID-loaded push with a huge message': { is_id_loaded: true, message: '\u0002'.repeat(150_000) },
  'large ids leave the message little room': { signature: 'g'.repeat(3_300), message: '€'.repeat(5_000), sender_name: '😀'.repeat(500) },
  'a session push with names only': { type: 'session', message: '', sender_name: HUGE, override_username: HUGE },
};

describe("payload limits: the worst requests reach the sandbox peers within Apple's and Google's limits", () => {
  let apns: ApnsFixture;
  let fcm: FcmPeer;
  let proxy: ProxyInstance;
  let send: string;

  before(async () => {
    apns = await startApnsFixture();
    fcm = new FcmPeer({ tls: createServerCertificate(fcmCa, ['localhost', '127.0.0.1']) });
    await fcm.start();
    const { account, publicKeyPem } = createGoogleServiceAccount(fcm.tokenUri, 'limits-test');
    fcm.addServiceAccount(account.client_email, publicKeyPem, 'limits-test');
    const file = writeTemp(tempDir(), 'service-account.json', JSON.stringify(account));
    const android = { Type: 'android_rn', ServiceFileLocation: file, AndroidApiKey: '', FcmEndpoint: fcm.url };
    proxy = await startTestProxy(testConfig({ apple: [apns.entry()], android: [android], SendTimeoutSec: 10, RetryTimeoutSec: 5 }), [
      apns.ca.certPem,
      fcmCa.certPem,
    ]);
    send = `${proxy.url}/api/v1/send_push`;
  });
  after(async () => {
    await proxy.close();
    await fcm.close();
    await apns.close();
  });
  beforeEach(() => {
    apns.peer.reset();
    fcm.reset();
  });

  for (const [name, fields] of Object.entries(WORST_CASES)) {
    it(`${name}: APNs, APNs VoIP and FCM accept it`, async () => {
      const body = JSON.stringify({ ...ORDINARY, ...fields });
      assert.ok(Buffer.byteLength(body) <= MAX_BODY_BYTES, `the request (${Buffer.byteLength(body)} bytes) must pass the body limit`);

      assert.equal((await post(send, { ...ORDINARY, ...fields, platform: 'apple_rn-v2', device_id: APPLE_TOKEN })).text, OK);
      assert.equal(
        (await post(send, { ...ORDINARY, ...fields, platform: 'apple_rn-v2', device_id: APPLE_TOKEN, transport: 'voip' })).text,
        OK,
      );
      assert.equal((await post(send, { ...ORDINARY, ...fields, platform: 'android_rn-v2', device_id: FCM_TOKEN })).text, OK);

      const [standard, voip] = apns.peer.received;
      assert.equal(standard!.status, 200);
      assert.equal(voip!.status, 200);
      assert.ok(Buffer.byteLength(standard!.rawBody) <= APNS_PAYLOAD_LIMIT_BYTES, `APNs body ${Buffer.byteLength(standard!.rawBody)}`);
      assert.ok(Buffer.byteLength(voip!.rawBody) <= APNS_VOIP_PAYLOAD_LIMIT_BYTES, `VoIP body ${Buffer.byteLength(voip!.rawBody)}`);
      const [android] = fcm.receivedFor(FCM_TOKEN);
      assert.equal(android!.status, 200);
      assert.ok(Buffer.byteLength(JSON.stringify(android!.data)) <= FCM_DATA_LIMIT_BYTES);
      // Ids travel whole, whatever was shortened.
      assert.equal((standard!.payload as Record<string, unknown>).signature, fields.signature ?? ORDINARY.signature);
      assert.equal(android!.data!.post_id, ORDINARY.post_id);
    });
  }

  it('a field that cannot be shortened and does not fit: FAIL naming it and the limit, nothing sent, a bad request counted', async () => {
    const before = await counters();
    const huge = { ...ORDINARY, signature: 'g'.repeat(5_000) };
    const apple = JSON.parse((await post(send, { ...huge, platform: 'apple_rn-v2', device_id: APPLE_TOKEN })).text) as {
      status: string;
      error: string;
    };
    const voip = JSON.parse(
      (await post(send, { ...huge, platform: 'apple_rn-v2', device_id: APPLE_TOKEN, transport: 'voip', signature: 'g'.repeat(6_000) }))
        .text,
    ) as { status: string; error: string };
    const android = JSON.parse((await post(send, { ...huge, platform: 'android_rn-v2', device_id: FCM_TOKEN })).text) as {
      status: string;
      error: string;
    };
    // The sizes are the whole payload with message and names emptied: the ack id is a UUID, always 36 characters.
    assert.deepEqual(apple, {
      status: 'FAIL',
      error:
        'Did not send message because the APNs payload would be 5613 bytes with message and names emptied, over its limit of 4096; the largest field that cannot be shortened is signature (5000 bytes as sent) serverId=srv1',
    });
    assert.deepEqual(voip, {
      status: 'FAIL',
      error:
        'Did not send message because the APNs VoIP payload would be 6325 bytes with message and names emptied, over its limit of 5120; the largest field that cannot be shortened is signature (6000 bytes as sent) serverId=srv1',
    });
    assert.deepEqual(android, {
      status: 'FAIL',
      error:
        'Did not send message because the FCM data would be 5568 bytes with message and names emptied, over its limit of 4096; the largest field that cannot be shortened is signature (5000 bytes as sent) serverId=srv1',
    });
    assert.equal(apns.peer.received.length, 0);
    assert.equal(fcm.received.length, 0);
    const now = await counters();
    assert.equal(now.badRequest - before.badRequest, 3);
    assert.equal(now.tooLarge - before.tooLarge, 3);
  });

  async function counters(): Promise<{ badRequest: number; tooLarge: number }> {
    const text = (await get(`${proxy.url}/metrics`)).text;
    const badRequest = Number(/^service_bad_request_total (\d+)/m.exec(text)?.[1] ?? 0);
    let tooLarge = 0;
    for (const match of text.matchAll(/^service_failure_with_reason_total\{[^}]*reason="payload too large"\} (\d+)/gm))
      tooLarge += Number(match[1]);
    return { badRequest, tooLarge };
  }
});

/** An answer about the message itself: the provider took the credentials (the entry stays up). */
const ACCEPTED = { kind: 'credentials-accepted' } as const;

describe("payload limits: the sandbox peers refuse one byte over, on the transports' own wire path", () => {
  it('APNs: 4096 bytes accepted, 4097 → 413 PayloadTooLarge; VoIP 5120 accepted, 5121 refused', async () => {
    const apns = await startApnsFixture();
    const transport = new ApnsTransport({
      credentials: { kind: 'token', keyPem: apns.authKey.keyPem, keyId: apns.authKey.keyId, teamId: apns.authKey.teamId },
      production: false,
      endpoint: new URL(apns.peer.url),
      trustedCa: [apns.ca.certPem],
      requestTimeoutMs: 5_000,
    });
    try {
      const sized = (bytes: number, voip: boolean): ApnsRequest => {
        const shell = JSON.stringify({ aps: { alert: '' } }).length;
        return {
          token: APPLE_TOKEN,
          headers: {
            'apns-topic': voip ? `${TOPIC}.voip` : TOPIC,
            'apns-priority': 10,
            'apns-push-type': voip ? 'voip' : 'alert',
            'content-type': 'application/json; charset=utf-8',
          },
          payload: { aps: { alert: 'x'.repeat(bytes - shell) } },
          transport: voip ? 'voip' : '',
        };
      };
      assertAccepted(await transport.attempt(sized(APNS_PAYLOAD_LIMIT_BYTES, false), 5_000));
      assert.deepEqual(await transport.attempt(sized(APNS_PAYLOAD_LIMIT_BYTES + 1, false), 5_000), {
        kind: 'final',
        outcome: 'FAIL',
        error: 'unknown send response error',
        reason: 'PayloadTooLarge',
        evidence: ACCEPTED,
        status: 413,
        providerId: apns.peer.received.at(-1)!.apnsId,
      });
      assertAccepted(await transport.attempt(sized(APNS_VOIP_PAYLOAD_LIMIT_BYTES, true), 5_000));
      assert.deepEqual(await transport.attempt(sized(APNS_VOIP_PAYLOAD_LIMIT_BYTES + 1, true), 5_000), {
        kind: 'final',
        outcome: 'FAIL',
        error: 'unknown send response error',
        reason: 'PayloadTooLarge',
        evidence: ACCEPTED,
        status: 413,
        providerId: apns.peer.received.at(-1)!.apnsId,
      });
      assert.deepEqual(
        apns.peer.received.map((n) => n.status),
        [200, 413, 200, 413],
      );
    } finally {
      await transport.close();
      await apns.close();
    }
  });

  it('FCM: a data map of 4096 bytes (keys and values) accepted, 4097 → 400 INVALID_ARGUMENT "Android message is too big"', async () => {
    const peer = new FcmPeer({ tls: createServerCertificate(fcmCa, ['localhost', '127.0.0.1']) });
    await peer.start();
    const { account, publicKeyPem } = createGoogleServiceAccount(peer.tokenUri, 'limits-peer');
    peer.addServiceAccount(account.client_email, publicKeyPem, 'limits-peer');
    const file = writeTemp(tempDir(), 'service-account.json', JSON.stringify(account));
    const transport = new FcmTransport({
      appName: `limits-${randomUUID()}`,
      account: loadServiceAccount({ Type: 'android_rn', ServiceFileLocation: file, AndroidApiKey: '', FcmEndpoint: peer.url }),
      endpoint: new URL(peer.url),
      trustedCa: [fcmCa.certPem],
      logger: pino({ level: 'silent' }),
    });
    try {
      // Multi-byte values: Google counts bytes, not characters.
      const sized = (bytes: number) => {
        const data = {
          type: 'message',
          message: '€'.repeat(Math.floor((bytes - 'type'.length - 'message'.length * 2 - 'message'.length) / 3)),
        };
        data.message += 'x'.repeat(bytes - dataPayloadBytes(data));
        assert.equal(dataPayloadBytes(data), bytes);
        return { token: FCM_TOKEN, data, android: { priority: 'high' as const } };
      };
      assert.equal(FCM_MAX_DATA_BYTES, FCM_DATA_LIMIT_BYTES);
      assertAccepted(await transport.attempt(sized(FCM_MAX_DATA_BYTES), 5_000));
      const refused = await transport.attempt(sized(FCM_MAX_DATA_BYTES + 1), 5_000);
      assert.deepEqual(refused, {
        kind: 'final',
        outcome: 'FAIL',
        error: 'Android message is too big',
        reason: 'INVALID_ARGUMENT',
        evidence: ACCEPTED,
        status: 400,
      });
      assert.deepEqual(
        peer.received.map((m) => m.status),
        [200, 400],
      );
    } finally {
      await transport.close();
      await peer.close();
    }
  });
});
