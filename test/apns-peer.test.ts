/**
 * The sandbox APNs peer, driven through the real @parse/node-apn client over real sockets (and a raw
 * HTTP/2 client where the library cannot express a request). The expected failure shapes double as a
 * record of how node-apn reports each APNs answer.
 */
import assert from 'node:assert/strict';
import { sign } from 'node:crypto';
import http2 from 'node:http2';
import { after, before, beforeEach, describe, it } from 'node:test';
import apn from '@parse/node-apn';
import { ApnsPeer, type ApnsPeerOptions, type ReceivedApnsNotification } from '../src/sandbox/apns-peer';
import { createAppleAuthKey, createAppleClientCertificate, type AppleAuthKey } from '../src/sandbox/credentials';
import { createCertificateAuthority, createServerCertificate, type CertificateAuthority, type PemPair } from '../src/tls/certificates';

const TOPIC = 'com.example.chat';
const OTHER_TOPIC = 'com.example.other';
const TOKEN = 'a1'.repeat(32);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ALERT = { 'apns-topic': TOPIC, 'apns-push-type': 'alert', 'apns-priority': 10 };
const VOIP = { 'apns-topic': `${TOPIC}.voip`, 'apns-push-type': 'voip', 'apns-priority': 10 };

type Headers = Record<string, string | number>;
interface SendResult {
  sent: Array<Record<string, unknown>>;
  failed: Array<{ device: string; status?: number; response?: Record<string, unknown>; error?: Error; 'apns-id'?: string }>;
}

/** node-apn only calls headers() and compile(), so a plain object can stand in for apn.Notification. */
function send(provider: apn.Provider, headers: Headers, body: unknown, token = TOKEN): Promise<SendResult> {
  const notification = { headers: () => headers, compile: () => (typeof body === 'string' ? body : JSON.stringify(body)) };
  return provider.send(notification as unknown as apn.Notification, token) as unknown as Promise<SendResult>;
}

/** The one failure of a send, checked to have no success beside it. */
async function failure(pending: Promise<SendResult>): Promise<SendResult['failed'][number]> {
  const result = await pending;
  assert.equal(result.sent.length, 0, `expected a failure, got ${JSON.stringify(result.sent)}`);
  assert.equal(result.failed.length, 1);
  return result.failed[0]!;
}

/** An APNs answer with a JSON reason: node-apn gives status and response, no error. */
async function assertRejected(pending: Promise<SendResult>, status: number, reason: string): Promise<void> {
  const failed = await failure(pending);
  assert.equal(failed.status, status, JSON.stringify(failed));
  assert.deepEqual(failed.response, { reason });
  assert.equal(failed.error, undefined);
}

async function assertSent(pending: Promise<SendResult>): Promise<Record<string, unknown>> {
  const result = await pending;
  assert.equal(result.failed.length, 0, `expected success, got ${JSON.stringify(result.failed)}`);
  assert.equal(result.sent.length, 1);
  return result.sent[0]!;
}

function tokenProvider(
  peer: ApnsPeer,
  ca: CertificateAuthority,
  key: { keyPem: string; keyId: string; teamId: string },
  requestTimeout = 2000,
): apn.Provider {
  return new apn.Provider({
    token: { key: key.keyPem, keyId: key.keyId, teamId: key.teamId },
    production: false,
    address: '127.0.0.1',
    port: peer.port,
    ca: [ca.certPem],
    connectionRetryLimit: 0,
    requestTimeout,
  });
}

function certificateProvider(peer: ApnsPeer, ca: CertificateAuthority, client: PemPair): apn.Provider {
  return new apn.Provider({
    cert: client.certPem,
    key: client.keyPem,
    production: false,
    address: '127.0.0.1',
    port: peer.port,
    ca: [ca.certPem],
    connectionRetryLimit: 0,
    requestTimeout: 2000,
  });
}

// The typings promise a Promise; the library returns undefined and only calls back.
function shutdown(provider: apn.Provider): Promise<void> {
  return new Promise((resolve) => void provider.shutdown(() => resolve()));
}

function signJwt(keyPem: string, header: object, claims: object): string {
  const encode = (part: object) => Buffer.from(JSON.stringify(part)).toString('base64url');
  const data = `${encode(header)}.${encode(claims)}`;
  return `${data}.${sign('sha256', Buffer.from(data), { key: keyPem, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
}

interface RawAnswer {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: string;
}

/** One request on a fresh HTTP/2 session, for what node-apn cannot send (other methods, hand-made JWTs). */
function rawRequest(
  peer: ApnsPeer,
  ca: CertificateAuthority,
  headers: http2.OutgoingHttpHeaders,
  body = '',
  client?: PemPair,
): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(peer.url, { ca: [ca.certPem], ...(client ? { cert: client.certPem, key: client.keyPem } : {}) });
    session.on('error', reject);
    // endStream false: Node would otherwise end a GET at once, before request.end() below.
    const request = session.request({ ':method': 'POST', ':path': `/3/device/${TOKEN}`, ...headers }, { endStream: false });
    let status = 0;
    let responseHeaders: http2.IncomingHttpHeaders = {};
    let text = '';
    request.setEncoding('utf8');
    request.on('response', (h) => {
      status = Number(h[':status']);
      responseHeaders = h;
    });
    request.on('data', (chunk: string) => (text += chunk));
    request.on('end', () => {
      session.close();
      resolve({ status, headers: responseHeaders, body: text });
    });
    request.on('error', reject);
    request.end(body);
  });
}

interface Fixture {
  ca: CertificateAuthority;
  serverTls: PemPair;
  authKey: AppleAuthKey;
}

function credentials(): Fixture {
  const ca = createCertificateAuthority('APNs peer test CA');
  return { ca, serverTls: createServerCertificate(ca, ['localhost', '127.0.0.1']), authKey: createAppleAuthKey() };
}

async function startPeer(fixture: Fixture, options: Partial<ApnsPeerOptions> = {}): Promise<ApnsPeer> {
  const peer = new ApnsPeer({
    tls: fixture.serverTls,
    tokenKeys: [
      { keyId: fixture.authKey.keyId, teamId: fixture.authKey.teamId, publicKeyPem: fixture.authKey.publicKeyPem, topics: [TOPIC] },
    ],
    ...options,
  });
  await peer.start();
  return peer;
}

describe('ApnsPeer with token auth, through @parse/node-apn', () => {
  const fixture = credentials();
  let peer: ApnsPeer;
  let provider: apn.Provider;
  const observed: ReceivedApnsNotification[] = [];

  before(async () => {
    peer = await startPeer(fixture, { onNotification: (n) => observed.push(n) });
    provider = tokenProvider(peer, fixture.ca, fixture.authKey);
  });
  after(async () => {
    await shutdown(provider);
    await peer.close();
  });
  beforeEach(() => {
    peer.reset();
    observed.length = 0;
  });

  it('delivers: 200 with apns-id and apns-unique-id, and records what arrived', async () => {
    const payload = { aps: { alert: 'hello', badge: 3 }, server_id: 'srv1' };
    const sent = await assertSent(send(provider, ALERT, payload));
    const [received] = peer.received;
    assert.ok(received);
    assert.deepEqual(Object.keys(sent).sort(), ['apns-id', 'apns-unique-id', 'device']);
    assert.equal(sent['device'], TOKEN);
    assert.equal(sent['apns-id'], received.apnsId);
    assert.match(received.apnsId, UUID);
    assert.match(String(sent['apns-unique-id']), UUID);

    assert.equal(peer.received.length, 1);
    assert.equal(received.token, TOKEN);
    assert.equal(received.method, 'POST');
    assert.equal(received.path, `/3/device/${TOKEN}`);
    assert.equal(received.auth, 'token');
    assert.equal(received.topic, TOPIC);
    assert.equal(received.status, 200);
    assert.equal(received.reason, undefined);
    assert.equal(received.behaviour, undefined);
    assert.deepEqual(received.payload, payload);
    assert.equal(received.rawBody, JSON.stringify(payload));
    assert.equal(received.headers['apns-topic'], TOPIC);
    assert.equal(received.headers['apns-push-type'], 'alert');
    assert.equal(received.headers['apns-priority'], '10');
    assert.match(received.headers['authorization']!, /^bearer [\w-]+\.[\w-]+\.[\w-]+$/);
    assert.equal(received.headers[':path'], undefined);
    assert.ok(received.receivedAt instanceof Date);
    assert.deepEqual(peer.receivedFor(TOKEN), [received]);
    assert.deepEqual(peer.receivedFor('b2'.repeat(32)), []);
    assert.deepEqual(observed, [received]);
  });

  it('a token signed by another key: 403 InvalidProviderToken', async () => {
    const impostor = { ...createAppleAuthKey(fixture.authKey.keyId, fixture.authKey.teamId) };
    const other = tokenProvider(peer, fixture.ca, impostor);
    try {
      await assertRejected(send(other, ALERT, { aps: {} }), 403, 'InvalidProviderToken');
      assert.equal(peer.received[0]!.auth, 'none');
    } finally {
      await shutdown(other);
    }
  });

  it('an unknown key id, or a team that does not own the key: 403 InvalidProviderToken', async () => {
    const unknownKid = tokenProvider(peer, fixture.ca, { ...fixture.authKey, keyId: 'UNKNOWNKID' });
    const wrongTeam = tokenProvider(peer, fixture.ca, { ...fixture.authKey, teamId: 'OTHERTEAM1' });
    try {
      await assertRejected(send(unknownKid, ALERT, { aps: {} }), 403, 'InvalidProviderToken');
      await assertRejected(send(wrongTeam, ALERT, { aps: {} }), 403, 'InvalidProviderToken');
    } finally {
      await Promise.all([shutdown(unknownKid), shutdown(wrongTeam)]);
    }
  });

  it('topic: missing → MissingTopic, another app → TopicDisallowed, recorded as sent', async () => {
    await assertRejected(send(provider, { 'apns-push-type': 'alert' }, { aps: {} }), 400, 'MissingTopic');
    await assertRejected(send(provider, { ...ALERT, 'apns-topic': OTHER_TOPIC }, { aps: {} }), 400, 'TopicDisallowed');
    assert.deepEqual(
      peer.received.map((n) => [n.topic, n.status, n.reason, n.auth]),
      [
        [undefined, 400, 'MissingTopic', 'token'],
        [OTHER_TOPIC, 400, 'TopicDisallowed', 'token'],
      ],
    );
  });

  it('VoIP: the .voip topic needs push type voip and the other way round', async () => {
    await assertSent(send(provider, VOIP, { aps: {} }));
    await assertRejected(send(provider, { ...VOIP, 'apns-push-type': 'alert' }, { aps: {} }), 400, 'InvalidPushType');
    await assertRejected(send(provider, { ...ALERT, 'apns-push-type': 'voip' }, { aps: {} }), 400, 'InvalidPushType');
    await assertRejected(send(provider, { ...ALERT, 'apns-push-type': 'banner' }, { aps: {} }), 400, 'InvalidPushType');
    await assertRejected(send(provider, { ...VOIP, 'apns-topic': `${OTHER_TOPIC}.voip` }, { aps: {} }), 400, 'TopicDisallowed');
    // Without a push type a plain topic is fine (Apple only recommends the header).
    await assertSent(send(provider, { 'apns-topic': TOPIC }, { aps: {} }));
  });

  it('header checks: priority, expiration, apns-id, collapse id', async () => {
    await assertRejected(send(provider, { ...ALERT, 'apns-priority': 7 }, { aps: {} }), 400, 'BadPriority');
    await assertRejected(send(provider, { ...ALERT, 'apns-expiration': 'tomorrow' }, { aps: {} }), 400, 'BadExpirationDate');
    await assertRejected(send(provider, { ...ALERT, 'apns-id': 'not-a-uuid' }, { aps: {} }), 400, 'BadMessageId');
    await assertRejected(send(provider, { ...ALERT, 'apns-collapse-id': 'c'.repeat(65) }, { aps: {} }), 400, 'BadCollapseId');
    // Valid values pass, and a request's apns-id comes back unchanged.
    const apnsId = '123e4567-e89b-12d3-a456-426614174000';
    const sent = await assertSent(
      send(
        provider,
        { ...ALERT, 'apns-priority': 5, 'apns-expiration': 0, 'apns-id': apnsId, 'apns-collapse-id': 'c'.repeat(64) },
        { aps: {} },
      ),
    );
    assert.equal(sent['apns-id'], apnsId);
    assert.equal(peer.received.at(-1)!.apnsId, apnsId);
    // An invalid one is not echoed: the answer gets a fresh id.
    assert.notEqual(peer.received[2]!.apnsId, 'not-a-uuid');
    assert.match(peer.received[2]!.apnsId, UUID);
  });

  it('a malformed device token: 400 BadDeviceToken', async () => {
    for (const token of ['not-hex', 'ab'.repeat(31), 'a'.repeat(65), 'ab'.repeat(101), 'zz'.repeat(32)]) {
      await assertRejected(send(provider, ALERT, { aps: {} }, token), 400, 'BadDeviceToken');
    }
    assert.deepEqual(
      peer.received.map((n) => n.token),
      ['not-hex', 'ab'.repeat(31), 'a'.repeat(65), 'ab'.repeat(101), 'zz'.repeat(32)],
    );
    await assertSent(send(provider, ALERT, { aps: {} }, 'AB'.repeat(100)));
  });

  it('an unregistered token: 410 Unregistered with the time it was unregistered', async () => {
    const before = Date.now();
    peer.unregister(TOKEN);
    const unregisteredBy = Date.now();
    const failed = await failure(send(provider, ALERT, { aps: {} }));
    assert.equal(failed.status, 410);
    assert.deepEqual(Object.keys(failed.response!), ['reason', 'timestamp']);
    assert.equal(failed.response!['reason'], 'Unregistered');
    const timestamp = failed.response!['timestamp'] as number;
    assert.ok(timestamp >= before && timestamp <= unregisteredBy, `timestamp ${timestamp}`);
    assert.match(failed['apns-id']!, UUID);
    // Other tokens are unaffected.
    await assertSent(send(provider, ALERT, { aps: {} }, 'b2'.repeat(32)));
  });

  it('a token bound to another app: 400 DeviceTokenNotForTopic', async () => {
    peer.bindTokenToTopic(TOKEN, OTHER_TOPIC);
    await assertRejected(send(provider, ALERT, { aps: {} }), 400, 'DeviceTokenNotForTopic');
    peer.bindTokenToTopic(TOKEN, TOPIC);
    await assertSent(send(provider, ALERT, { aps: {} }));
  });

  it('payload size: 4096 bytes pass, 4097 → 413 PayloadTooLarge; VoIP allows 5120', async () => {
    const sized = (bytes: number) => {
      const shell = JSON.stringify({ aps: { alert: '' } });
      return JSON.stringify({ aps: { alert: 'x'.repeat(bytes - shell.length) } });
    };
    assert.equal(sized(4096).length, 4096);
    await assertSent(send(provider, ALERT, sized(4096)));
    await assertRejected(send(provider, ALERT, sized(4097)), 413, 'PayloadTooLarge');
    await assertSent(send(provider, VOIP, sized(5120)));
    await assertRejected(send(provider, VOIP, sized(5121)), 413, 'PayloadTooLarge');
    assert.deepEqual(
      peer.received.map((n) => n.status),
      [200, 413, 200, 413],
    );
  });

  it('payload shape: empty → PayloadEmpty, not a JSON object with an aps object → BadPayload', async () => {
    await assertRejected(send(provider, ALERT, ''), 400, 'PayloadEmpty');
    // node-apn does not write a body of exactly "{}", so that too arrives empty.
    await assertRejected(send(provider, ALERT, '{}'), 400, 'PayloadEmpty');
    await assertRejected(send(provider, ALERT, 'not json'), 400, 'BadPayload');
    await assertRejected(send(provider, ALERT, '[1]'), 400, 'BadPayload');
    await assertRejected(send(provider, ALERT, { data: 1 }), 400, 'BadPayload');
    await assertRejected(send(provider, ALERT, { aps: 'alert' }), 400, 'BadPayload');
    assert.deepEqual(
      peer.received.map((n) => n.rawBody),
      ['', '', 'not json', '[1]', '{"data":1}', '{"aps":"alert"}'],
    );
    assert.deepEqual(
      peer.received.map((n) => n.payload),
      [undefined, undefined, undefined, [1], { data: 1 }, { aps: 'alert' }],
    );
  });

  it('programmed HTTP answers, and how node-apn reports each', async () => {
    const expect = async (behaviour: Parameters<ApnsPeer['setDeviceBehaviour']>[1], shape: object) => {
      peer.setDeviceBehaviour(TOKEN, behaviour);
      const failed = await failure(send(provider, ALERT, { aps: {} }));
      assert.deepEqual(
        { status: failed.status, response: failed.response, error: failed.error?.message, hasApnsId: failed['apns-id'] !== undefined },
        { status: undefined, response: undefined, error: undefined, hasApnsId: false, ...shape },
      );
    };
    // A 500 with reason InternalServerError loses its reason (and node-apn drops the session).
    await expect(
      { status: 500, reason: 'InternalServerError' },
      { status: 500, error: 'Error 500, stream ended unexpectedly', hasApnsId: true },
    );
    await expect(
      { status: 503, reason: 'ServiceUnavailable' },
      { status: 503, response: { reason: 'ServiceUnavailable' }, hasApnsId: true },
    );
    await expect({ status: 429, reason: 'TooManyRequests' }, { status: 429, response: { reason: 'TooManyRequests' }, hasApnsId: true });
    // ExpiredProviderToken makes node-apn renew its JWT; the reason moves into error and response is gone.
    await expect({ status: 403, reason: 'ExpiredProviderToken' }, { status: 403, error: 'ExpiredProviderToken', hasApnsId: true });
    // A 410 programmed with a reason carries Apple's timestamp too.
    peer.setDeviceBehaviour(TOKEN, { status: 410, reason: 'Unregistered' });
    const gone = await failure(send(provider, ALERT, { aps: {} }));
    assert.equal(gone.status, 410);
    assert.equal(typeof gone.response!['timestamp'], 'number');
    // A non-200 with an empty body loses its status.
    await expect({ status: 503, body: '' }, { error: 'stream ended unexpectedly with status 503 and empty body', hasApnsId: true });
    await expect(
      { status: 400, body: '<html>' },
      { error: 'Unexpected error processing APNs response: Unexpected token \'<\', "<html>" is not valid JSON' },
    );
    // A 200 with a body that is not JSON is a failure in node-apn.
    await expect(
      { status: 200, body: 'not json' },
      { error: 'Unexpected error processing APNs response: Unexpected token \'o\', "not json" is not valid JSON' },
    );
    assert.deepEqual(
      peer.received.map((n) => [n.status, n.reason]),
      [
        [500, 'InternalServerError'],
        [503, 'ServiceUnavailable'],
        [429, 'TooManyRequests'],
        [403, 'ExpiredProviderToken'],
        [410, 'Unregistered'],
        [503, undefined],
        [400, undefined],
        [200, undefined],
      ],
    );
    // A 200 with a JSON body: its keys are merged into the success.
    peer.setDeviceBehaviour(TOKEN, { status: 200, body: '{"extra":1}' });
    const sent = await assertSent(send(provider, ALERT, { aps: {} }));
    assert.equal(sent['extra'], 1);
  });

  it('a list of behaviours is consumed one per request, the last one sticks', async () => {
    peer.setDeviceBehaviour(TOKEN, [{ status: 429, reason: 'TooManyRequests' }, { status: 500, reason: 'Shutdown' }, { status: 200 }]);
    await assertRejected(send(provider, ALERT, { aps: {} }), 429, 'TooManyRequests');
    await assertRejected(send(provider, ALERT, { aps: {} }), 500, 'Shutdown');
    await assertSent(send(provider, ALERT, { aps: {} }));
    await assertSent(send(provider, ALERT, { aps: {} }));
    // A rejected request does not consume a behaviour.
    peer.setDeviceBehaviour(TOKEN, [{ status: 429, reason: 'TooManyRequests' }, { status: 200 }]);
    await assertRejected(send(provider, { ...ALERT, 'apns-topic': OTHER_TOPIC }, { aps: {} }), 400, 'TopicDisallowed');
    await assertRejected(send(provider, ALERT, { aps: {} }), 429, 'TooManyRequests');
    assert.deepEqual(
      peer.received.map((n) => n.status),
      [429, 500, 200, 200, 400, 429],
    );
  });

  it('reset and closeConnection: node-apn errors without a status, and the next send reconnects', async () => {
    peer.setDeviceBehaviour(TOKEN, [{ reset: true }, { closeConnection: true }, { status: 200 }]);
    const reset = await failure(send(provider, ALERT, { aps: {} }));
    assert.deepEqual(
      [reset.status, reset.error?.message],
      [undefined, 'apn write failed: Stream closed with error code NGHTTP2_INTERNAL_ERROR'],
    );
    const closed = await failure(send(provider, ALERT, { aps: {} }));
    assert.deepEqual([closed.status, closed.error?.message], [undefined, 'stream ended unexpectedly with status null and empty body']);
    await assertSent(send(provider, ALERT, { aps: {} }));
    assert.deepEqual(
      peer.received.map((n) => [n.status, n.behaviour]),
      [
        [0, 'reset'],
        [0, 'closeConnection'],
        [200, undefined],
      ],
    );
  });

  it('waitForNotifications resolves once enough arrived, and times out with a count', async () => {
    const waiting = peer.waitForNotifications(2, 2000);
    await Promise.all([send(provider, ALERT, { aps: {} }), send(provider, ALERT, { aps: {} }, 'b2'.repeat(32))]);
    const received = await waiting;
    assert.equal(received.length, 2);
    assert.deepEqual(received.map((n) => n.token).sort(), [TOKEN, 'b2'.repeat(32)]);
    assert.equal((await peer.waitForNotifications(1)).length, 2);
    await assert.rejects(peer.waitForNotifications(3, 50), { message: 'APNs peer received 2 of 3 notifications within 50 ms' });
  });
});

describe('ApnsPeer with certificate auth, through @parse/node-apn', () => {
  const fixture = credentials();
  const client = createAppleClientCertificate(fixture.ca, { topic: TOPIC, environments: ['sandbox', 'production'] });
  let peer: ApnsPeer;
  let provider: apn.Provider;

  before(async () => {
    peer = await startPeer(fixture, { clientCaPem: fixture.ca.certPem, environment: 'sandbox' });
    provider = certificateProvider(peer, fixture.ca, client);
  });
  after(async () => {
    await shutdown(provider);
    await peer.close();
  });
  beforeEach(() => peer.reset());

  it("delivers; the topic defaults to the certificate's UID", async () => {
    await assertSent(send(provider, { 'apns-push-type': 'alert' }, { aps: { alert: 'hi' } }));
    await assertSent(send(provider, ALERT, { aps: {} }));
    await assertSent(send(provider, VOIP, { aps: {} }));
    assert.deepEqual(
      peer.received.map((n) => [n.auth, n.topic, n.headers['apns-topic'], n.headers['authorization'], n.status]),
      [
        ['certificate', TOPIC, undefined, undefined, 200],
        ['certificate', TOPIC, TOPIC, undefined, 200],
        ['certificate', `${TOPIC}.voip`, `${TOPIC}.voip`, undefined, 200],
      ],
    );
  });

  it('a topic other than the UID: 400 BadTopic', async () => {
    await assertRejected(send(provider, { ...ALERT, 'apns-topic': OTHER_TOPIC }, { aps: {} }), 400, 'BadTopic');
    assert.deepEqual([peer.received[0]!.auth, peer.received[0]!.topic], ['certificate', OTHER_TOPIC]);
  });

  it('the certificate wins over an authorization header, as at Apple', async () => {
    await assertSent(send(provider, { ...ALERT, authorization: 'bearer not.a.jwt' }, { aps: {} }));
    assert.equal(peer.received[0]!.auth, 'certificate');
  });

  it('a certificate from another CA: 403 BadCertificate', async () => {
    const strangerCa = createCertificateAuthority('Stranger CA');
    const stranger = certificateProvider(
      peer,
      fixture.ca,
      createAppleClientCertificate(strangerCa, { topic: TOPIC, environments: ['sandbox', 'production'] }),
    );
    try {
      await assertRejected(send(stranger, ALERT, { aps: {} }), 403, 'BadCertificate');
      assert.equal(peer.received[0]!.auth, 'none');
    } finally {
      await shutdown(stranger);
    }
  });

  it("a certificate without this environment's mark: 403 BadCertificateEnvironment", async () => {
    // node-apn refuses such a certificate itself, so this goes through a raw client.
    const productionOnly = createAppleClientCertificate(fixture.ca, { topic: TOPIC, environments: ['production'] });
    const answer = await rawRequest(peer, fixture.ca, ALERT, '{"aps":{}}', productionOnly);
    assert.deepEqual([answer.status, answer.body], [403, '{"reason":"BadCertificateEnvironment"}']);
  });

  it('without a certificate, token auth still works on the same peer', async () => {
    const tokens = tokenProvider(peer, fixture.ca, fixture.authKey);
    try {
      await assertSent(send(tokens, ALERT, { aps: {} }));
      assert.equal(peer.received[0]!.auth, 'token');
    } finally {
      await shutdown(tokens);
    }
  });
});

describe('ApnsPeer through a raw HTTP/2 client', () => {
  const fixture = credentials();
  let peer: ApnsPeer;
  const now = () => Math.floor(Date.now() / 1000);
  const jwt = (claims: object, header: object = { alg: 'ES256', kid: fixture.authKey.keyId }) =>
    `bearer ${signJwt(fixture.authKey.keyPem, header, { iss: fixture.authKey.teamId, ...claims })}`;
  const authorized = (claims: object = { iat: now() }) => ({ ...ALERT, authorization: jwt(claims) });

  before(async () => {
    peer = await startPeer(fixture, { maxConcurrentStreams: 7 });
  });
  after(() => peer.close());
  beforeEach(() => peer.reset());

  it('method and path: GET → 405 MethodNotAllowed, other paths → 404 BadPath, no token → 400 MissingDeviceToken', async () => {
    const get = await rawRequest(peer, fixture.ca, { ':method': 'GET' });
    assert.deepEqual([get.status, get.body], [405, '{"reason":"MethodNotAllowed"}']);
    assert.match(String(get.headers['apns-id']), UUID);
    assert.equal(get.headers['apns-unique-id'], undefined);
    const badPath = await rawRequest(peer, fixture.ca, { ...authorized(), ':path': '/3/broadcast/x' }, '{"aps":{}}');
    assert.deepEqual([badPath.status, badPath.body], [404, '{"reason":"BadPath"}']);
    for (const path of ['/3/device/', '/3/device']) {
      const missing = await rawRequest(peer, fixture.ca, { ...authorized(), ':path': path }, '{"aps":{}}');
      assert.deepEqual([missing.status, missing.body], [400, '{"reason":"MissingDeviceToken"}']);
    }
    assert.deepEqual(
      peer.received.map((n) => [n.method, n.path, n.token, n.auth, n.status, n.reason]),
      [
        ['GET', `/3/device/${TOKEN}`, TOKEN, 'none', 405, 'MethodNotAllowed'],
        ['POST', '/3/broadcast/x', '', 'none', 404, 'BadPath'],
        ['POST', '/3/device/', '', 'none', 400, 'MissingDeviceToken'],
        ['POST', '/3/device', '', 'none', 400, 'MissingDeviceToken'],
      ],
    );
  });

  it('a 200 answer carries apns-id (echoed when sent) and apns-unique-id, and an empty body', async () => {
    const apnsId = 'A0B1C2D3-E4F5-4A6B-8C7D-8E9F0A1B2C3D';
    const answer = await rawRequest(peer, fixture.ca, { ...authorized(), 'apns-id': apnsId }, '{"aps":{}}');
    assert.deepEqual([answer.status, answer.body, answer.headers['apns-id']], [200, '', apnsId]);
    assert.match(String(answer.headers['apns-unique-id']), UUID);
  });

  it('provider token problems: missing, malformed, wrong algorithm', async () => {
    const cases: Array<[string | undefined, string]> = [
      [undefined, 'MissingProviderToken'],
      ['bearer', 'InvalidProviderToken'],
      ['basic dXNlcjpwYXNz', 'InvalidProviderToken'],
      ['bearer not-a-jwt', 'InvalidProviderToken'],
      ['bearer a.b.c', 'InvalidProviderToken'],
      [jwt({ iat: now() }, { alg: 'HS256', kid: fixture.authKey.keyId }), 'InvalidProviderToken'],
      [jwt({ iat: 'yesterday' }), 'InvalidProviderToken'],
    ];
    for (const [authorization, reason] of cases) {
      const headers: http2.OutgoingHttpHeaders = { ...ALERT, ...(authorization === undefined ? {} : { authorization }) };
      const answer = await rawRequest(peer, fixture.ca, headers, '{"aps":{}}');
      assert.deepEqual([answer.status, answer.body], [403, `{"reason":"${reason}"}`], String(authorization));
    }
  });

  it('token age: over an hour → ExpiredProviderToken, over a minute ahead → InvalidProviderToken', async () => {
    const cases: Array<[number, number, string]> = [
      [now() - 3601, 403, '{"reason":"ExpiredProviderToken"}'],
      [now() - 3500, 200, ''],
      [now() + 120, 403, '{"reason":"InvalidProviderToken"}'],
      [now() + 30, 200, ''],
    ];
    for (const [iat, status, body] of cases) {
      const answer = await rawRequest(peer, fixture.ca, authorized({ iat }), '{"aps":{}}');
      assert.deepEqual([answer.status, answer.body], [status, body], `iat ${iat}`);
    }
  });

  it('checks a JWT signature once, however often the token is used', async () => {
    const before = peer.jwtVerifications;
    const headers = authorized({ iat: now() - 10 });
    for (let i = 0; i < 4; i++) assert.equal((await rawRequest(peer, fixture.ca, headers, '{"aps":{}}')).status, 200);
    assert.equal(peer.jwtVerifications - before, 1);
  });

  it('advertises SETTINGS_MAX_CONCURRENT_STREAMS', async () => {
    const session = http2.connect(peer.url, { ca: [fixture.ca.certPem] });
    try {
      await new Promise<void>((resolve) => session.once('remoteSettings', () => resolve()));
      assert.equal(session.remoteSettings.maxConcurrentStreams, 7);
    } finally {
      session.close();
    }
  });
});

describe('ApnsPeer close()', () => {
  const fixture = credentials();

  it('a hanging token: the client times out, and close() still completes', async () => {
    const peer = await startPeer(fixture);
    const provider = tokenProvider(peer, fixture.ca, fixture.authKey, 300);
    try {
      peer.setDeviceBehaviour(TOKEN, { hang: true });
      const started = Date.now();
      const failed = await failure(send(provider, ALERT, { aps: {} }));
      assert.deepEqual([failed.status, failed.error?.message], [undefined, 'apn write timeout']);
      assert.ok(Date.now() - started < 1500, `timed out after ${Date.now() - started} ms`);
      assert.deepEqual(
        peer.received.map((n) => [n.status, n.behaviour, n.reason]),
        [[0, 'hang', undefined]],
      );
    } finally {
      await shutdown(provider);
    }
    const closing = Date.now();
    await peer.close();
    assert.ok(Date.now() - closing < 1000);
  });

  it('cancels answers held back by delayMs, so a closed peer keeps no timer running', async () => {
    const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    const peer = await startPeer(fixture);
    const provider = tokenProvider(peer, fixture.ca, fixture.authKey, 10_000);
    try {
      peer.setDeviceBehaviour(TOKEN, { delayMs: 60_000 });
      const pending = send(provider, ALERT, { aps: {} });
      await peer.waitForNotifications(1, 2000);
      await peer.close();
      await failure(pending);
    } finally {
      await shutdown(provider);
      await peer.close();
    }
    assert.ok(timers() <= before, `${timers() - before} timer(s) left running`);
  });

  it('destroys open sessions and streams still waiting for an answer', async () => {
    const peer = await startPeer(fixture);
    const provider = tokenProvider(peer, fixture.ca, fixture.authKey, 10_000);
    try {
      await assertSent(send(provider, ALERT, { aps: {} }, 'b2'.repeat(32)));
      peer.setDeviceBehaviour(TOKEN, { hang: true });
      const pending = send(provider, ALERT, { aps: {} });
      await peer.waitForNotifications(2, 2000);
      const closing = Date.now();
      await peer.close();
      assert.ok(Date.now() - closing < 1000, `close took ${Date.now() - closing} ms`);
      const failed = await failure(pending);
      assert.deepEqual([failed.status, failed.error?.message], [undefined, 'stream ended unexpectedly with status null and empty body']);
      // Closed for good: nothing listens any more. (A raw client: after a refused connection node-apn's
      // shutdown() never calls back.)
      await assert.rejects(rawRequest(peer, fixture.ca, ALERT), {
        message: `The pending stream has been canceled (caused by: connect ECONNREFUSED 127.0.0.1:${peer.port})`,
      });
      await peer.close();
    } finally {
      await shutdown(provider);
    }
  });

  it('port and url before start throw; close() before start is harmless', async () => {
    const peer = new ApnsPeer({ tls: fixture.serverTls });
    assert.throws(() => peer.port, { message: 'ApnsPeer is not started' });
    await peer.close();
    await peer.start();
    assert.equal(peer.url, `https://127.0.0.1:${peer.port}`);
    await peer.close();
  });
});
