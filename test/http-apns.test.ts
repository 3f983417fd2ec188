/**
 * The HTTP API end to end: a chat server's request → the proxy → the real @parse/node-apn client → the
 * sandbox APNs peer over HTTP/2 + TLS, and the answer back.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, beforeEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { PushDispatcher } from '../src/delivery/dispatcher';
import { createPushApi, requestPath, SEND_PUSH_PATH } from '../src/http/push-api';
import { ProxyMetrics } from '../src/metrics';
import { emptyPushNotification } from '../src/notification';
import { buildApnsRequest } from '../src/platforms/apns/payload';
import type { ProxyInstance } from '../src/instance';
import { createAppleClientCertificate, toPkcs12 } from '../src/sandbox/credentials';
import { createCertificateAuthority } from '../src/tls/certificates';
import { SkippingClock } from './skipping-clock';
import {
  APPLE_TOKEN,
  TOPIC,
  capturedLogger,
  get,
  post,
  startApnsFixture,
  startTestProxy,
  testConfig,
  writeTemp,
  type ApnsFixture,
} from './support';

const OK = '{"status":"OK"}\n';
const REMOVE = '{"status":"REMOVE"}\n';
const fail = (error: string) => JSON.stringify({ error, status: 'FAIL' }) + '\n';

function message(fields: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    platform: 'apple_rn-v2',
    server_id: 'srv1',
    device_id: APPLE_TOKEN,
    type: 'message',
    version: 'v2',
    message: 'Hello :smile:',
    channel_name: 'Town Square',
    channel_id: 'ch1',
    ack_id: 'ack1',
    category: 'CAN_REPLY',
    sender_name: 'alice',
    badge: 2,
    is_crt_enabled: false,
    is_id_loaded: false,
    signature: 'sig',
    ...fields,
  };
}

describe('HTTP API → APNs sandbox', () => {
  let apns: ApnsFixture;
  let proxy: ProxyInstance;
  let send: string;
  /** The same proxy on a clock whose backoff waits pass at once, for tests of the retry sequence alone. */
  let skipping: { proxy: ProxyInstance; clock: SkippingClock; send: string };
  const log = capturedLogger('info');

  before(async () => {
    apns = await startApnsFixture();
    // Short budgets keep retry and timeout tests quick: 4 s per notification, 1 s per attempt.
    const config = testConfig({ apple: [apns.entry()], SendTimeoutSec: 4, RetryTimeoutSec: 1 });
    proxy = await startTestProxy(config, [apns.ca.certPem], log.logger);
    send = `${proxy.url}/api/v1/send_push`;
    const clock = new SkippingClock();
    const fast = await startTestProxy(config, [apns.ca.certPem], undefined, { clock });
    skipping = { proxy: fast, clock, send: `${fast.url}/api/v1/send_push` };
  });
  after(async () => {
    await Promise.all([proxy?.close(), skipping?.proxy.close()]);
    await apns.close();
  });
  beforeEach(() => apns.peer.reset());

  it('delivers a message: HTTP 200, the original JSON, the payload of docs/protocol.md at the peer', async () => {
    const answer = await post(send, message());
    assert.equal(answer.status, 200);
    assert.equal(answer.text, OK);
    assert.equal(answer.headers.get('content-type'), 'text/plain; charset=utf-8');

    const [received] = apns.peer.received;
    assert.ok(received);
    assert.equal(received.token, APPLE_TOKEN);
    assert.equal(received.auth, 'token');
    assert.equal(received.headers['apns-topic'], TOPIC);
    assert.equal(received.headers['apns-push-type'], 'alert');
    assert.equal(received.headers['apns-priority'], '10');
    assert.equal(received.headers['apns-expiration'], undefined);
    assert.equal(received.headers['apns-collapse-id'], undefined);
    const expected = buildApnsRequest({ ...emptyPushNotification(), ...(message() as object) } as never, { topic: TOPIC, appVersion: 2 });
    assert.deepEqual(received.payload, expected.payload);
    assert.deepEqual((received.payload as { aps: { alert: unknown } }).aps.alert, { body: 'Hello 😄 ', title: 'Town Square' });
  });

  it('a clear to a v2 app carries badge 1', async () => {
    assert.equal((await post(send, message({ type: 'clear', badge: 0, message: '' }))).text, OK);
    assert.deepEqual((apns.peer.received[0]!.payload as { aps: unknown }).aps, { badge: 1, 'content-available': 1, 'thread-id': 'ch1' });
  });

  it('VoIP goes to the .voip topic with push type voip', async () => {
    assert.equal((await post(send, message({ transport: 'voip', sub_type: 'calls' }))).text, OK);
    const received = apns.peer.received[0]!;
    assert.equal(received.headers['apns-topic'], `${TOPIC}.voip`);
    assert.equal(received.headers['apns-push-type'], 'voip');
    assert.deepEqual((received.payload as { aps: unknown }).aps, { 'content-available': 1 });
  });

  it('truncates a long message at a character boundary before sending', async () => {
    assert.equal((await post(send, message({ message: '€'.repeat(1000), version: '' }))).text, OK);
    const alert = (apns.peer.received[0]!.payload as { aps: { alert: string } }).aps.alert;
    assert.equal(alert, '€'.repeat(682));
    assert.ok(Buffer.byteLength(alert) <= 2046);
  });

  it('an unregistered device: REMOVE', async () => {
    apns.peer.unregister(APPLE_TOKEN);
    assert.equal((await post(send, message())).text, REMOVE);
  });

  it('a malformed token: REMOVE (BadDeviceToken)', async () => {
    assert.equal((await post(send, message({ device_id: 'not-hex' }))).text, REMOVE);
    assert.equal(apns.peer.received[0]!.reason, 'BadDeviceToken');
  });

  it('a token for another app: REMOVE (DeviceTokenNotForTopic)', async () => {
    apns.peer.bindTokenToTopic(APPLE_TOKEN, 'com.other.app');
    assert.equal((await post(send, message())).text, REMOVE);
  });

  it('any HTTP answer is final: a 500 and a 429 reach APNs once each and FAIL', async () => {
    apns.peer.setDeviceBehaviour(APPLE_TOKEN, { status: 500, reason: 'InternalServerError' });
    assert.equal((await post(send, message())).text, fail('unknown send response error'));
    assert.equal(apns.peer.receivedFor(APPLE_TOKEN).length, 1);

    apns.peer.reset();
    apns.peer.setDeviceBehaviour(APPLE_TOKEN, { status: 429, reason: 'TooManyRequests' });
    assert.equal((await post(send, message())).text, fail('unknown send response error'));
    assert.equal(apns.peer.receivedFor(APPLE_TOKEN).length, 1);
  });

  it('a non-200 with an empty body is a final FAIL too', async () => {
    apns.peer.setDeviceBehaviour(APPLE_TOKEN, { status: 503, body: '' });
    assert.equal((await post(send, message())).text, fail('unknown send response error'));
    assert.equal(apns.peer.receivedFor(APPLE_TOKEN).length, 1);
  });

  it('no usable answer is retried with backoff, and a later success is OK', async () => {
    apns.peer.setDeviceBehaviour(APPLE_TOKEN, [{ reset: true }, { status: 200, body: 'not json' }, { status: 200 }]);
    const sleepsBefore = skipping.clock.sleeps.length;
    assert.equal((await post(skipping.send, message())).text, OK);
    assert.equal(apns.peer.receivedFor(APPLE_TOKEN).length, 3);
    assert.deepEqual(skipping.clock.sleeps.slice(sleepsBefore), [1000, 2000]);
  });

  it('a peer that never answers: FAIL within the budget, then nothing more reaches it', async () => {
    apns.peer.setDeviceBehaviour(APPLE_TOKEN, { hang: true });
    const sleepsBefore = skipping.clock.sleeps.length;
    const started = Date.now();
    const answer = await post(skipping.send, message());
    const elapsed = Date.now() - started;
    assert.equal(answer.text, fail('unknown transport error'));
    // Attempts at 0 s and 2 s (1 s each, 1 s backoff); a third would start at 5 s, past the 4 s budget.
    assert.equal(apns.peer.receivedFor(APPLE_TOKEN).length, 2);
    assert.deepEqual(skipping.clock.sleeps.slice(sleepsBefore), [1000]);
    assert.ok(elapsed < 8_000, `answered after ${elapsed} ms`);
    await sleep(2_500);
    assert.equal(apns.peer.receivedFor(APPLE_TOKEN).length, 2);
  });

  it('a hanging send never blocks the others', async () => {
    const stuck = 'cd'.repeat(32);
    apns.peer.setDeviceBehaviour(stuck, { hang: true });
    const hanging = post(send, message({ device_id: stuck }));
    const others = await Promise.all(
      Array.from({ length: 30 }, (_, i) => post(send, message({ device_id: (i + 16).toString(16).padStart(64, 'e') }))),
    );
    assert.deepEqual(new Set(others.map((a) => a.text)), new Set([OK]));
    assert.equal((await hanging).text, fail('unknown transport error'));
  });

  it('never logs a full device token or the message text', async () => {
    const secretText = 'the launch code is 0000';
    await post(send, message({ message: secretText }));
    const text = log.text();
    assert.ok(text.includes('push delivered'));
    assert.ok(!text.includes(APPLE_TOKEN), 'full token in the log');
    assert.ok(!text.includes(secretText), 'message text in the log');
  });

  it('counts with the original metric names and labels', async () => {
    await post(send, message());
    const metrics = (await get(`${proxy.url}/metrics`)).text;
    assert.match(metrics, /service_success_total\{platform="apple",type="message",transport=""\} \d+/);
    assert.match(metrics, /service_success_with_ack_total\{platform="apple",type="message",transport=""\} \d+/);
    assert.match(metrics, /service_notifications_by_app_version_total\{platform="apple_rn",app_version="2"\} \d+/);
    assert.match(metrics, /service_failure_with_reason_total\{platform="apple",type="message",transport="",reason="Unregistered"\} \d+/);
    assert.match(metrics, /service_removal_total\{platform="apple",transport="",reason="Unregistered"\} \d+/);
    assert.match(metrics, /service_apns_request_duration_seconds_count \d+/);
    assert.match(metrics, /service_notification_duration_seconds_count\{platform="apple"\} [1-9]/);
    assert.match(metrics, /service_notifications_total\{platform="apple",type="message",transport=""\} [1-9]/);
    assert.match(metrics, /service_bad_request_total \d+/);
  });

  it('times each request and each APNs attempt once', async () => {
    const counts = async (): Promise<number[]> => {
      const text = (await get(`${proxy.url}/metrics`)).text;
      return [
        /^service_request_duration_seconds_count (\d+)$/m,
        /^service_apns_request_duration_seconds_count (\d+)$/m,
        /^service_notification_duration_seconds_count\{platform="apple"\} (\d+)$/m,
      ].map((pattern) => Number(pattern.exec(text)?.[1] ?? NaN));
    };
    const before = await counts();
    assert.equal((await post(send, message())).text, OK);
    const after = await counts();
    assert.deepEqual(
      after.map((n, i) => n - before[i]!),
      [1, 1, 1],
    );
  });
});

describe('HTTP API: validation, routing and the original texts', () => {
  let apns: ApnsFixture;
  let proxy: ProxyInstance;
  let base: string;

  before(async () => {
    apns = await startApnsFixture();
    proxy = await startTestProxy(
      testConfig({
        apple: [apns.entry(), apns.entry({ Type: 'apple', AppleAuthKeyFile: '', AppleAuthKeyID: '', AppleTeamID: '' })],
        ThrottlePerSec: 300,
      }),
      [apns.ca.certPem],
    );
    base = proxy.url;
  });
  after(async () => {
    await proxy.close();
    await apns.close();
  });

  const cases: Array<[string, string | object, string]> = [
    ['empty body', '', fail('Failed to read message body: EOF')],
    ['truncated JSON', '{"server_id":', fail('Failed to read message body: unexpected EOF')],
    ['not JSON', 'hello', fail("Failed to read message body: invalid character 'h' looking for beginning of value")],
    [
      'wrong type',
      { server_id: 's', device_id: 'd', badge: '3' },
      fail('Failed to read message body: json: cannot unmarshal string into Go struct field PushNotification.badge of type int'),
    ],
    ['missing server id', { device_id: 'd', platform: 'apple_rn' }, fail('Failed because of missing server Id')],
    ['missing device id', { server_id: 's', platform: 'apple_rn' }, fail('Failed because of missing device Id serverId=s')],
    [
      'unknown platform',
      { server_id: 's', device_id: 'd', platform: 'windows-v2' },
      fail('Did not send message because of missing platform property type=windows serverId=s'),
    ],
    [
      'a skipped entry routes nowhere',
      { server_id: 's', device_id: 'd', platform: 'apple' },
      fail('Did not send message because of missing platform property type=apple serverId=s'),
    ],
  ];
  for (const [name, body, expected] of cases) {
    it(`send_push, ${name}: HTTP 200 and the original text`, async () => {
      const answer = await post(`${base}/api/v1/send_push`, body);
      assert.equal(answer.status, 200);
      assert.equal(answer.text, expected);
    });
  }

  it('keys are matched case-insensitively and trailing bytes ignored', async () => {
    const answer = await post(
      `${base}/api/v1/send_push`,
      `{"Platform":"apple_rn","SERVER_ID":"s","device_id":"${APPLE_TOKEN}","type":"clear"} trailing`,
    );
    assert.equal(answer.text, OK);
  });

  it('a body over the limit gets a JSON FAIL, and the next request is served', async () => {
    const answer = await post(`${base}/api/v1/send_push`, '{"message":"' + 'x'.repeat(1_100_000) + '"}');
    assert.equal(answer.status, 200);
    assert.match(answer.text, /^\{"error":"Failed to read message body: request body larger than 1048576 bytes","status":"FAIL"\}\n$/);
    assert.equal((await post(`${base}/api/v1/send_push`, { server_id: 's', device_id: APPLE_TOKEN, platform: 'apple_rn' })).text, OK);
  });

  it('a chunked body over the limit gets a JSON FAIL; a client that leaves mid-body costs nothing', async () => {
    const url = new URL(`${base}/api/v1/send_push`);
    const chunked = await new Promise<string>((resolve, reject) => {
      const req = http.request(url, { method: 'POST', agent: false }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve(text));
      });
      req.on('error', reject);
      for (let i = 0; i < 12; i++) req.write('x'.repeat(100_000));
      req.end();
    });
    assert.equal(chunked, fail('Failed to read message body: request body larger than 1048576 bytes'));

    await new Promise<void>((resolve) => {
      const req = http.request(url, { method: 'POST', agent: false, headers: { 'content-length': '1000' } });
      req.on('error', () => resolve());
      req.write('{"server_id":"s",', () => setTimeout(() => req.destroy(), 50));
      req.on('close', () => resolve());
    });
    assert.equal(
      (await post(`${base}/api/v1/send_push?from=query`, { server_id: 's', device_id: APPLE_TOKEN, platform: 'apple_rn' })).text,
      OK,
    );
  });

  const ackCases: Array<[string, string | object, string]> = [
    ['complete', { id: 'a', platform: 'ios', type: 'message', received_at: 1700000000000, post_id: 'p', is_id_loaded: false }, OK],
    ['empty body', '', fail('Failed to read ack body: EOF')],
    ['missing id', { platform: 'ios', type: 'message' }, fail('Failed because of missing ack Id')],
    ['missing platform', { id: 'a', type: 'message' }, fail('Failed because of missing ack platform')],
    ['missing type', { id: 'a', platform: 'ios' }, fail('Failed because of missing ack type')],
    [
      'wrong type',
      { id: 'a', platform: 'ios', type: 'm', received_at: 'now' },
      fail('Failed to read ack body: json: cannot unmarshal string into Go struct field PushNotificationAck.received_at of type int64'),
    ],
  ];
  for (const [name, body, expected] of ackCases) {
    it(`ack, ${name}`, async () => {
      const answer = await post(`${base}/api/v1/ack`, body);
      assert.equal(answer.status, 200);
      assert.equal(answer.text, expected);
    });
  }

  it('GET / and /version', async () => {
    const root = await get(`${base}/`);
    assert.equal(root.status, 200);
    assert.equal(root.text, '<html><body>Mattermost Push Proxy</body></html>');
    assert.equal(root.headers.get('content-type'), 'text/html; charset=utf-8');
    const version = await get(`${base}/version`);
    assert.match(version.text, /^\{"hash":"[^"]+","version":"[^"]+","mode":"eas","config":"built-in"\}\n$/);
  });

  it('exact paths: 404 with Go text, 405 with an empty body', async () => {
    const missing = await get(`${base}/version/`);
    assert.equal(missing.status, 404);
    assert.equal(missing.text, '404 page not found\n');
    assert.equal((await get(`${base}/nothing`)).status, 404);
    const wrongMethod = await get(`${base}/api/v1/send_push`);
    assert.equal(wrongMethod.status, 405);
    assert.equal(wrongMethod.text, '');
    assert.equal((await get(`${base}/`, 'HEAD')).status, 405);
    assert.equal((await post(`${base}/version`, '')).status, 405);
  });

  it('every response carries the original throttle headers, and nothing is denied', async () => {
    const answers = await Promise.all([
      ...Array.from({ length: 5 }, () => get(`${base}/`)),
      post(`${base}/api/v1/send_push`, { server_id: 's', device_id: APPLE_TOKEN, platform: 'apple_rn' }),
      post(`${base}/api/v1/ack`, { id: 'a', platform: 'ios', type: 'message' }),
    ]);
    for (const answer of answers) {
      assert.equal(answer.status, 200);
      assert.equal(answer.headers.get('x-ratelimit-limit'), '300');
      assert.equal(answer.headers.get('x-ratelimit-remaining'), '299');
      assert.equal(answer.headers.get('x-ratelimit-reset'), '1');
    }
  });

  it('/healthz and /readyz list each entry', async () => {
    assert.equal((await get(`${base}/healthz`)).status, 200);
    const ready = await get(`${base}/readyz`);
    assert.equal(ready.status, 200);
    const body = JSON.parse(ready.text) as { entries: Array<{ type: string; state: string; reason?: string }> };
    assert.deepEqual(
      body.entries.map((e) => [e.type, e.state]),
      [
        ['apple_rn', 'ready'],
        ['apple', 'skipped'],
      ],
    );
    assert.match(body.entries[1]!.reason!, /no credentials/);
  });
});

describe('HTTP API: an APNs endpoint that refuses connections', () => {
  it('FAILs with unknown transport error after three attempts', async () => {
    const apns = await startApnsFixture();
    const endpoint = apns.peer.url;
    await apns.close();
    // The backoff between the attempts passes at once: what counts here is the sequence, not the waiting.
    const clock = new SkippingClock();
    const proxy = await startTestProxy(
      testConfig({ apple: [apns.entry({ AppleEndpoint: endpoint })], SendTimeoutSec: 10, RetryTimeoutSec: 2 }),
      [apns.ca.certPem],
      undefined,
      { clock },
    );
    try {
      const answer = await post(`${proxy.url}/api/v1/send_push`, message());
      assert.equal(answer.text, fail('unknown transport error'));
      assert.deepEqual(clock.sleeps, [1000, 2000], 'three attempts');
    } finally {
      await proxy.close();
    }
  });
});

describe('HTTP API → APNs sandbox with certificate auth', () => {
  const noToken = { AppleAuthKeyFile: '', AppleAuthKeyID: '', AppleTeamID: '' };

  async function deliverWith(
    entryFields: (apns: ApnsFixture) => Record<string, unknown>,
  ): Promise<{ text: string; auth?: string; topic?: string }> {
    const apns = await startApnsFixture();
    const proxy = await startTestProxy(
      testConfig({ apple: [apns.entry({ ...noToken, ...entryFields(apns) })], SendTimeoutSec: 3, RetryTimeoutSec: 1 }),
      [apns.ca.certPem],
    );
    try {
      const answer = await post(`${proxy.url}/api/v1/send_push`, message());
      const received = apns.peer.received[0];
      return { text: answer.text, auth: received?.auth, topic: received?.topic };
    } finally {
      await proxy.close();
      await apns.close();
    }
  }

  it('a PEM file with certificate and key', async () => {
    const result = await deliverWith((apns) => {
      const pair = createAppleClientCertificate(apns.ca, { topic: TOPIC });
      return { ApplePushCertPrivate: writeTemp(apns.dir, 'push.pem', pair.certPem + pair.keyPem) };
    });
    assert.deepEqual(result, { text: OK, auth: 'certificate', topic: TOPIC });
  });

  it('a password-protected .p12, topic taken from the certificate', async () => {
    const result = await deliverWith((apns) => {
      const pair = createAppleClientCertificate(apns.ca, { topic: TOPIC });
      return {
        ApplePushCertPrivate: writeTemp(apns.dir, 'push.p12', toPkcs12(pair, 's3cret')),
        ApplePushCertPassword: 's3cret',
        ApplePushTopic: '',
      };
    });
    assert.deepEqual(result, { text: OK, auth: 'certificate', topic: TOPIC });
  });

  it('a certificate APNs does not trust: FAIL, as any non-200 answer', async () => {
    const result = await deliverWith((apns) => {
      const pair = createAppleClientCertificate(createCertificateAuthority('Some Other CA'), { topic: TOPIC });
      return { ApplePushCertPrivate: writeTemp(apns.dir, 'push.pem', pair.certPem + pair.keyPem) };
    });
    assert.equal(result.text, fail('unknown send response error'));
  });
});

describe('push API: a delivery that throws or rejects still gets an answer', () => {
  const servers: http.Server[] = [];
  after(() => servers.forEach((server) => server.close()));

  const serve = async (
    send: () => Promise<unknown>,
  ): Promise<{ url: string; lines: () => Array<Record<string, unknown>>; metrics: ProxyMetrics }> => {
    const { logger, lines } = capturedLogger();
    const metrics = new ProxyMetrics();
    const api = createPushApi({
      dispatcher: { preflight: () => ({ type: 'apple_rn', appVersion: 1 }), send } as unknown as PushDispatcher,
      metrics,
      logger,
      commonHeaders: {},
    });
    const server = http.createServer((req, res) => api(req, res, requestPath(req.url)));
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    return { url: `http://127.0.0.1:${port}${SEND_PUSH_PATH}`, lines, metrics };
  };

  for (const [how, send] of [
    [
      'throws',
      () => {
        throw new Error('dispatcher bug');
      },
    ],
    ['rejects', () => Promise.reject(new Error('dispatcher bug'))],
    ['rejects with nothing', () => Promise.reject(undefined)],
  ] as const) {
    it(`FAIL "internal error" when the dispatcher ${how}, the cause only in the log, and the next request is served`, async () => {
      const { url, lines, metrics } = await serve(send);
      for (let i = 0; i < 2; i++) {
        const answer = await post(url, message());
        assert.equal(answer.status, 200);
        assert.equal(answer.text, fail('internal error'));
      }
      const logged = lines().filter((line) => line.msg === 'request failed');
      assert.equal(logged.length, 2);
      if (how !== 'rejects with nothing') assert.match(JSON.stringify(logged[0]!.err), /dispatcher bug/);
      // Our bug is not a malformed request.
      assert.match(await metrics.registry.metrics(), /^service_bad_request_total 0$/m);
    });
  }
});
