/**
 * The trace end to end over real sockets: a proxy delivering to the sandbox APNs and FCM peers, the first
 * attempt answered with something retried and the second accepted; `GET /api/v1/trace` on the admin listener
 * shows both attempts with the provider's status and ids, the answer, and the device's receipt once the app
 * acknowledged. A final APNs error answer carries its status and apns-id too.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import express from 'express';
import type { ProxyInstance } from '../src/instance';
import { QueryHandlers, type OperatorQueries } from '../src/operator-queries';
import { emptyPushNotification } from '../src/notification';
import { answerTraceQuery, TRACE_QUERY } from '../src/trace/query';
import { traceRoutes } from '../src/trace/routes';
import { TraceStore } from '../src/trace/store';
import { deliveryRecord } from './unit-support';
import { createGoogleServiceAccount } from '../src/sandbox/credentials';
import { FcmPeer } from '../src/sandbox/fcm-peer';
import type { TraceRecord } from '../src/trace/record';
import { getAdminJson } from '../src/commands/admin-client';
import { createCertificateAuthority, createServerCertificate } from '../src/tls/certificates';
import { SkippingClock } from './skipping-clock';
import {
  APPLE_TOKEN,
  get,
  post,
  serveOnLoopback,
  startApnsFixture,
  startTestProxy,
  tempDir,
  testConfig,
  writeTemp,
  type ApnsFixture,
} from './support';

const OK = '{"status":"OK"}\n';
const FCM_TOKEN = `dHJhY2UtdGVzdA:APA91bF${'t'.repeat(60)}`;
const SECRET = 'the launch code is 0000';

function message(fields: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    platform: 'apple_rn-v2',
    server_id: 'srv-trace',
    device_id: APPLE_TOKEN,
    type: 'message',
    version: 'v2',
    message: SECRET,
    channel_name: 'Secret Channel',
    sender_name: 'alice',
    channel_id: 'ch1',
    post_id: 'post-1',
    ...fields,
  };
}

interface TraceAnswer {
  status: number;
  text: string;
  body: { notifications?: TraceRecord[]; status?: string; error?: string };
}

async function trace(base: string, query: string): Promise<TraceAnswer> {
  const answer = await get(`${base}/api/v1/trace${query}`);
  return { status: answer.status, text: answer.text, body: JSON.parse(answer.text) as TraceAnswer['body'] };
}

describe('trace on the admin listener (eas mode)', () => {
  let apns: ApnsFixture;
  let fcm: FcmPeer;
  let proxy: ProxyInstance;
  let admin: string;

  before(async () => {
    apns = await startApnsFixture();
    fcm = new FcmPeer({ tls: apns.serverTls });
    await fcm.start();
    const { account, publicKeyPem } = createGoogleServiceAccount(fcm.tokenUri, 'trace-project');
    fcm.addServiceAccount(account.client_email, publicKeyPem, 'trace-project');
    const serviceFile = writeTemp(tempDir(), 'service-account.json', JSON.stringify(account));
    proxy = await startTestProxy(
      testConfig({
        apple: [apns.entry()],
        android: [{ Type: 'android_rn', ServiceFileLocation: serviceFile, AndroidApiKey: '', FcmEndpoint: fcm.url }],
        AdminListenAddress: '127.0.0.1:0',
        SendTimeoutSec: 20,
        RetryTimeoutSec: 5,
      }),
      [apns.ca.certPem],
      undefined,
      // Backoff waits pass at once: the test is about what the trace shows, not about time.
      { clock: new SkippingClock() },
    );
    admin = proxy.admin!.url;
  });
  after(async () => {
    await proxy?.close();
    await apns?.close();
    await fcm?.close();
  });

  it('APNs: a retried send shows two attempts with their apns-ids, the answer OK, then the receipt', async () => {
    apns.peer.setDeviceBehaviour(APPLE_TOKEN, [{ status: 200, body: 'not json' }, { status: 200 }]);
    assert.equal((await post(`${proxy.url}/api/v1/send_push`, message({ ack_id: 'ack-apns' }))).text, OK);
    const peerSaw = apns.peer.receivedFor(APPLE_TOKEN);
    assert.equal(peerSaw.length, 2);

    const first = await trace(admin, '?ack_id=ack-apns');
    assert.equal(first.status, 200);
    const [record] = first.body.notifications!;
    assert.equal(first.body.notifications!.length, 1);
    assert.equal(record!.ack_id, 'ack-apns');
    assert.equal(record!.server_id, 'srv-trace');
    assert.equal(record!.post_id, 'post-1');
    assert.deepEqual(record!.answer, { status: 'OK' });
    assert.equal(record!.attempts.length, 2);
    const [retried, accepted] = record!.attempts;
    // An answer whose body cannot be parsed is retried, and still shows the status and apns-id it came with.
    assert.deepEqual(
      { verdict: retried!.verdict, status: retried!.status, reason: retried!.reason, id: retried!.provider_id },
      { verdict: 'retry', status: 200, reason: 'unknown transport error', id: peerSaw[0]!.apnsId },
    );
    assert.equal(accepted!.verdict, 'OK');
    assert.equal(accepted!.status, 200);
    assert.match(peerSaw[1]!.apnsId, /^[0-9a-f-]{36}$/i);
    assert.equal(accepted!.provider_id, peerSaw[1]!.apnsId);
    assert.ok(accepted!.start_ms >= retried!.start_ms + retried!.ms);
    assert.equal(record!.receipt, undefined);

    const ack = {
      id: 'ack-apns',
      platform: 'apple',
      type: 'message',
      post_id: 'post-1',
      received_at: 1_767_000_000_000,
      is_id_loaded: true,
    };
    assert.equal((await post(`${proxy.url}/api/v1/ack`, ack)).text, OK);
    const second = await trace(admin, '?ack_id=ack-apns');
    const receipt = second.body.notifications![0]!.receipt!;
    assert.ok(receipt, 'the receipt joined its record');
    assert.equal(receipt.received_at, 1_767_000_000_000);
    assert.equal(receipt.id_loaded, true);
    assert.equal(receipt.platform, 'apple');
    assert.equal(receipt.type, 'message');
    assert.ok(!Number.isNaN(Date.parse(receipt.at)));
  });

  it('APNs: a refusal shows its status, reason and apns-id; the answer REMOVE', async () => {
    const dead = 'de'.repeat(32);
    apns.peer.unregister(dead);
    const answer = await post(`${proxy.url}/api/v1/send_push`, message({ device_id: dead, ack_id: 'ack-dead' }));
    assert.equal(answer.text, '{"status":"REMOVE"}\n');
    const record = (await trace(admin, '?ack_id=ack-dead')).body.notifications![0]!;
    assert.deepEqual(record.answer, { status: 'REMOVE' });
    assert.deepEqual(
      record.attempts.map(({ verdict, status, reason, provider_id }) => ({ verdict, status, reason, provider_id })),
      [{ verdict: 'REMOVE', status: 410, reason: 'Unregistered', provider_id: apns.peer.receivedFor(dead)[0]!.apnsId }],
    );
  });

  it('FCM: a retried send (INTERNAL, then accepted) shows both attempts and the message name', async () => {
    fcm.setTokenBehaviour(FCM_TOKEN, [{ error: 'INTERNAL' }, { ok: true }]);
    const sent = await post(`${proxy.url}/api/v1/send_push`, message({ platform: 'android_rn', device_id: FCM_TOKEN, ack_id: 'ack-fcm' }));
    assert.equal(sent.text, OK);
    const { body } = await trace(admin, '?ack_id=ack-fcm');
    const record = body.notifications![0]!;
    assert.equal(record.attempts.length, 2);
    assert.equal(record.attempts[0]!.verdict, 'retry');
    assert.equal(record.attempts[0]!.status, 500);
    assert.equal(record.attempts[0]!.reason, 'INTERNAL');
    assert.equal(record.attempts[1]!.verdict, 'OK');
    assert.equal(record.attempts[1]!.status, 200);
    const name = (fcm.receivedFor(FCM_TOKEN).at(-1)!.answer as { name: string }).name;
    assert.match(name, /^projects\/trace-project\/messages\//);
    assert.equal(record.attempts[1]!.provider_id, name);
    assert.deepEqual(record.answer, { status: 'OK' });

    await post(`${proxy.url}/api/v1/ack`, { id: 'ack-fcm', platform: 'android', type: 'message', received_at: 1_767_000_000_500 });
    assert.equal((await trace(admin, '?ack_id=ack-fcm')).body.notifications![0]!.receipt?.platform, 'android');
  });

  it('post_id and server_id questions: newest first, bounded by limit', async () => {
    for (const ack of ['order-1', 'order-2', 'order-3']) {
      assert.equal(
        (await post(`${proxy.url}/api/v1/send_push`, message({ server_id: 'srv-order', post_id: 'post-order', ack_id: ack }))).text,
        OK,
      );
    }
    const byPost = await trace(admin, '?post_id=post-order');
    assert.deepEqual(
      byPost.body.notifications!.map((n) => n.ack_id),
      ['order-3', 'order-2', 'order-1'],
    );
    const byServer = await trace(admin, '?server_id=srv-order&limit=2');
    assert.deepEqual(
      byServer.body.notifications!.map((n) => n.ack_id),
      ['order-3', 'order-2'],
    );
  });

  it('eas mode: the request as received, without message text, the device token shortened', async () => {
    const { text, body } = await trace(admin, '?server_id=srv-trace');
    assert.ok(body.notifications!.length >= 2);
    for (const secret of [SECRET, 'Secret Channel', 'alice', APPLE_TOKEN, FCM_TOKEN])
      assert.ok(!text.includes(secret), `"${secret}" in the trace`);
    const received = body.notifications!.at(-1)!.received;
    assert.equal(received.device_id, `${APPLE_TOKEN.slice(0, 8)}…`);
    assert.equal(received.channel_id, 'ch1');
    assert.equal(received.message, undefined);
    assert.equal(received.sent, undefined);
  });

  it('400 naming the parameter for bad questions; 404 saying how many are kept', async () => {
    for (const [query, pattern] of [
      ['', /give one of ack_id, post_id or server_id/],
      ['?ack_id=a&post_id=b', /give ack_id or post_id, not both/],
      ['?ack_id=', /ack_id is empty/],
      ['?ack_id=a&ack_id=b', /ack_id must be given once/],
      ['?server_id=s&limit=0', /limit must be a whole number from 1 to 1000/],
    ] as const) {
      const answer = await trace(admin, query);
      assert.equal(answer.status, 400, query);
      assert.equal(answer.body.status, 'FAIL');
      assert.match(answer.body.error!, pattern, query);
    }
    // server_id narrows an ack id: another server's notification is not found.
    assert.equal((await trace(admin, '?ack_id=ack-apns&server_id=srv-trace')).status, 200);
    assert.equal((await trace(admin, '?ack_id=ack-apns&server_id=other')).status, 404);
    const missing = await trace(admin, '?ack_id=never-sent');
    assert.equal(missing.status, 404);
    assert.equal(missing.body.status, 'FAIL');
    assert.match(missing.body.error!, /no notification with ack_id "never-sent" among the last 1000/);
    assert.equal((await get(`${admin}/api/v1/trace?ack_id=x`, 'POST')).status, 405);
  });

  it('the public listener does not serve the trace when there is an admin listener', async () => {
    const answer = await get(`${proxy.url}/api/v1/trace?ack_id=ack-apns`);
    assert.equal(answer.status, 404);
    assert.ok(!answer.text.includes('ack-apns'));
  });
});

describe('trace on a test service without an admin listener', () => {
  let apns: ApnsFixture;
  let proxy: ProxyInstance;

  before(async () => {
    apns = await startApnsFixture();
    proxy = await startTestProxy(testConfig({ apple: [apns.entry()], Mode: 'test' }), [apns.ca.certPem]);
    assert.equal((await post(`${proxy.url}/api/v1/send_push`, message({ server_id: 'alice', ack_id: 'ack-alice' }))).text, OK);
  });
  after(async () => {
    await proxy?.close();
    await apns?.close();
  });

  it('requires server_id: an ack id alone must not reveal another evaluator’s notification', async () => {
    const alone = await trace(proxy.url, '?ack_id=ack-alice');
    assert.equal(alone.status, 400);
    assert.match(alone.body.error!, /server_id is required/);
    assert.equal((await trace(proxy.url, '?server_id=bob&ack_id=ack-alice')).status, 404);
    const own = await trace(proxy.url, '?server_id=alice&ack_id=ack-alice');
    assert.equal(own.status, 200);
    // Test mode keeps the message text: an evaluator's own test messages.
    assert.equal(own.body.notifications![0]!.received.message, SECRET);
  });
});

describe('trace with several workers: every worker is asked, and a receipt finds its notification in another', () => {
  let served: Awaited<ReturnType<typeof serveOnLoopback>>;
  let base: string;
  const sender = new TraceStore(10, { messageText: false, keepSent: false });
  const acker = new TraceStore(10, { messageText: false, keepSent: false });

  before(async () => {
    // Two workers' memories behind one `ask`, as the primary would gather them.
    const workers = [sender, acker].map((store) => {
      const handlers = new QueryHandlers();
      handlers.set(TRACE_QUERY, (params) => answerTraceQuery(store, params, false));
      return handlers;
    });
    const queries: OperatorQueries = {
      answer: () => {},
      ask: async (name, params) => (await Promise.all(workers.map((w) => w.run(name, params)))).map((r) => r.value),
    };
    const received = { ...emptyPushNotification(), server_id: 'srv', device_id: APPLE_TOKEN, ack_id: 'ack-w', post_id: 'post-w' };
    sender.record(deliveryRecord('srv', { ackId: 'ack-w', postId: 'post-w', received, at: new Date('2030-01-01T00:00:00.000Z') }));
    acker.record(deliveryRecord('srv', { ackId: 'ack-newer', received, at: new Date('2030-01-01T00:00:01.000Z') }));
    acker.acknowledged({ id: 'ack-w', received_at: 42, platform: 'apple', type: 'message', post_id: 'post-w', is_id_loaded: false });
    const app = express();
    app.use(traceRoutes({ queries }));
    served = await serveOnLoopback(app);
    base = served.base;
  });
  after(() => served.close());

  it('by ack id, by post id and by server id (newest first across workers), each with the receipt the other worker holds', async () => {
    for (const query of ['?ack_id=ack-w', '?post_id=post-w']) {
      const { body } = await trace(base, query);
      assert.equal(body.notifications!.length, 1, query);
      assert.equal(body.notifications![0]!.receipt?.received_at, 42, query);
    }
    const { body } = await trace(base, '?server_id=srv');
    assert.deepEqual(
      body.notifications!.map((n) => [n.ack_id, n.receipt?.received_at]),
      [
        ['ack-newer', undefined],
        ['ack-w', 42],
      ],
    );
  });
});

describe('the command asks a single HTTPS listener', () => {
  it('over HTTPS, accepting its certificate (issued for the public name, not 127.0.0.1)', async () => {
    const ca = createCertificateAuthority('trace HTTPS CA');
    const server = createServerCertificate(ca, ['push.example.com']);
    const dir = tempDir();
    const TLSCertFile = writeTemp(dir, 'server.pem', server.certPem);
    const proxy = await startTestProxy(testConfig({ TLSCertFile, TLSKeyFile: writeTemp(dir, 'server-key.pem', server.keyPem) }), []);
    try {
      const answer = await getAdminJson(
        { AdminListenAddress: '', ListenAddress: `127.0.0.1:${proxy.port}`, TLSCertFile },
        '/api/v1/trace?ack_id=x',
      );
      assert.equal(answer.origin, `https://127.0.0.1:${proxy.port}`);
      assert.equal(answer.status, 404);
      assert.match((answer.body as { error: string }).error, /no notification with ack_id "x"/);
    } finally {
      await proxy.close();
    }
  });
});
