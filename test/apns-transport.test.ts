/**
 * ApnsTransport against the sandbox APNs peer over real sockets: a send that cannot get a slot in time never
 * reaches APNs, a slot comes back when the library settles, also after the attempt's own timer has answered,
 * and sends share one connection until a 500 closes it. What an answer means: apns-transport.unit.test.ts.
 */
import assert from 'node:assert/strict';
import apn from '@parse/node-apn';
import { after, before, beforeEach, describe, it } from 'node:test';
import { emptyPushNotification } from '../src/notification';
import { buildApnsRequest, type ApnsRequest } from '../src/platforms/apns/payload';
import type { AttemptResult } from '../src/delivery/types';
import { ApnsPeer } from '../src/sandbox/apns-peer';
import { createAppleAuthKey } from '../src/sandbox/credentials';
import { createCertificateAuthority, createServerCertificate } from '../src/tls/certificates';
import { ApnsTransport, clientOf, UnsupportedApnsLibraryError } from '../src/platforms/apns/transport';

const TOPIC = 'com.example.chat';
const SLOW = 'a1'.repeat(32);
const FAST = 'b2'.repeat(32);
const WAITING = 'c3'.repeat(32);
const TIMED_OUT = { kind: 'retryable', error: 'unknown transport error', reason: 'unknown transport error' };
const DELIVERED = { kind: 'final', outcome: 'OK', status: 200 };
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A delivery, carrying the apns-id APNs answered with (the peer gives every answer one). */
function assertDelivered(result: AttemptResult): void {
  const { providerId, ...verdict } = result as AttemptResult & { providerId?: string };
  assert.deepEqual(verdict, DELIVERED);
  assert.match(providerId ?? '', UUID);
}

function request(token: string): ApnsRequest {
  return buildApnsRequest(
    { ...emptyPushNotification(), device_id: token, server_id: 's', type: 'message', message: 'hi' },
    { topic: TOPIC, appVersion: 2 },
  );
}

/** What the transport counts, written down. */
const counted = { slotWaits: 0, refreshFailures: 0 };
const countingMetrics = {
  slotWaited: () => counted.slotWaits++,
  credentialRefreshFailed: () => counted.refreshFailures++,
};

/** The sandbox APNs peer with token auth, and a transport to it; `maxInFlight` as given. */
async function startPeerAndTransport(maxInFlight?: number): Promise<{ peer: ApnsPeer; transport: ApnsTransport }> {
  const ca = createCertificateAuthority('APNs transport test CA');
  const authKey = createAppleAuthKey();
  const peer = new ApnsPeer({
    tls: createServerCertificate(ca, ['localhost', '127.0.0.1']),
    tokenKeys: [{ keyId: authKey.keyId, teamId: authKey.teamId, publicKeyPem: authKey.publicKeyPem, topics: [TOPIC] }],
  });
  await peer.start();
  const transport = new ApnsTransport({
    credentials: { kind: 'token', keyPem: authKey.keyPem, keyId: authKey.keyId, teamId: authKey.teamId },
    production: false,
    endpoint: new URL(peer.url),
    trustedCa: [ca.certPem],
    requestTimeoutMs: 5_000,
    ...(maxInFlight === undefined ? {} : { maxInFlight }),
    metrics: countingMetrics,
  });
  return { peer, transport };
}

describe('ApnsTransport in-flight bound (maxInFlight 1)', () => {
  let peer: ApnsPeer;
  let transport: ApnsTransport;

  before(async () => {
    ({ peer, transport } = await startPeerAndTransport(1));
  });
  after(async () => {
    await transport.close();
    await peer.close();
  });
  beforeEach(() => peer.reset());

  it('a send that gets no slot before its time is up never reaches APNs; the next one waits its turn', async () => {
    peer.setDeviceBehaviour(SLOW, { delayMs: 400 });
    const waitsBefore = counted.slotWaits;
    const slow = transport.attempt(request(SLOW), 5_000);
    const dropped = transport.attempt(request(WAITING), 100);
    const waiting = transport.attempt(request(FAST), 5_000);
    assert.deepEqual(await dropped, TIMED_OUT);
    assertDelivered(await slow);
    assertDelivered(await waiting);
    assert.deepEqual(
      peer.received.map((n) => n.token),
      [SLOW, FAST],
    );
    // Both sends behind the slow one waited for the slot, the dropped one too.
    assert.equal(counted.slotWaits - waitsBefore, 2);
  });

  it('an attempt that times out cancels its stream and gives its slot back at once', { timeout: 15_000 }, async () => {
    peer.setDeviceBehaviour(SLOW, { hang: true });
    assert.deepEqual(await transport.attempt(request(SLOW), 100), TIMED_OUT);
    // APNs never answers the first send: only the time-out can free the one slot for this one.
    assertDelivered(await transport.attempt(request(FAST), 3_000));
    const [hung, delivered] = peer.received;
    assert.deepEqual([hung?.token, hung?.behaviour, delivered?.token, delivered?.status], [SLOW, 'hang', FAST, 200]);
    // The hanging stream was cancelled, not left open on the connection.
    for (let i = 0; i < 100 && hung?.endedAt === undefined; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.ok(hung?.endedAt, 'the hanging stream is still open');
    assert.equal(hung.delivered, false);
  });
});

describe('ApnsTransport connections', () => {
  const BROKEN = 'd4'.repeat(32);
  let peer: ApnsPeer;
  let transport: ApnsTransport;

  before(async () => {
    ({ peer, transport } = await startPeerAndTransport());
  });
  after(async () => {
    await transport.close();
    await peer.close();
  });

  it('sends share one connection, and a 500 closes it: the next send opens a new one', async () => {
    peer.setDeviceBehaviour(BROKEN, { status: 500, reason: 'InternalServerError' });
    assertDelivered(await transport.attempt(request(FAST), 5_000));
    assertDelivered(await transport.attempt(request(SLOW), 5_000));
    assert.deepEqual(await transport.attempt(request(BROKEN), 5_000), {
      kind: 'final',
      outcome: 'FAIL',
      error: 'unknown send response error',
      reason: 'InternalServerError',
      status: 500,
      providerId: peer.receivedFor(BROKEN)[0]!.apnsId,
    });
    // The close is not awaited by the answer: wait until the peer has seen it go.
    for (let i = 0; i < 100 && peer.openConnections > 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    assertDelivered(await transport.attempt(request(FAST), 5_000));
    assert.deepEqual(
      peer.received.map((n) => [n.token, n.status, n.connection]),
      [
        [FAST, 200, 1],
        [SLOW, 200, 1],
        [BROKEN, 500, 1],
        [FAST, 200, 2],
      ],
    );
  });

  it('a 500 for one device leaves the answers in flight to others on that connection alone', async () => {
    // The peer answers the closing connection's GOAWAY with its own, as HTTP/2 servers do; the library would
    // then destroy the connection, cutting off the slow answer (which the soak saw as retries and FAILs).
    peer.reset();
    peer.setDeviceBehaviour(BROKEN, { status: 500, reason: 'InternalServerError' });
    peer.setDeviceBehaviour(SLOW, { delayMs: 300 });
    assertDelivered(await transport.attempt(request(FAST), 5_000));
    const slow = transport.attempt(request(SLOW), 5_000);
    await peer.waitForNotifications(2);
    assert.equal((await transport.attempt(request(BROKEN), 5_000)).kind, 'final');
    assertDelivered(await slow);
    const slowRecord = peer.received.find((n) => n.token === SLOW)!;
    assert.equal(slowRecord.delivered, true);
    assert.equal(slowRecord.connectionLost, false);
  });
});

describe('ApnsTransport and the installed @parse/node-apn', () => {
  it('finds the client it sends through inside a Provider', async () => {
    const authKey = createAppleAuthKey();
    const provider = new apn.Provider({ token: { key: authKey.keyPem, keyId: authKey.keyId, teamId: authKey.teamId }, production: false });
    try {
      assert.equal(typeof clientOf(provider).connect, 'function');
    } finally {
      await new Promise<void>((resolve) => void provider.shutdown(() => resolve()));
    }
  });

  it('refuses a Provider without that client, saying what to install', () => {
    assert.throws(
      () => clientOf({} as apn.Provider),
      (err: Error) => err instanceof UnsupportedApnsLibraryError && /package-lock\.json/.test(err.message),
    );
  });
});

describe("ApnsTransport's own request and what the peer does to it", () => {
  const EXPIRED = 'e5'.repeat(32);
  const RESET = 'f6'.repeat(32);
  const CUT = 'a7'.repeat(32);
  let peer: ApnsPeer;
  let transport: ApnsTransport;

  before(async () => {
    ({ peer, transport } = await startPeerAndTransport());
  });
  after(async () => {
    await transport.close();
    await peer.close();
  });
  beforeEach(() => peer.reset());

  it('ExpiredProviderToken: that attempt FAILs with the advice, the next one carries a newly signed token', async () => {
    peer.setDeviceBehaviour(EXPIRED, [{ status: 403, reason: 'ExpiredProviderToken' }, { status: 200 }]);
    const refused = await transport.attempt(request(EXPIRED), 5_000);
    assert.ok(refused.kind === 'final');
    assert.equal(refused.outcome, 'FAIL');
    assert.equal(refused.reason, 'ExpiredProviderToken');
    assert.equal(refused.status, 403);
    assert.equal(refused.evidence?.kind, 'credentials-refused');
    assert.equal(refused.providerId, peer.receivedFor(EXPIRED)[0]!.apnsId);
    assertDelivered(await transport.attempt(request(EXPIRED), 5_000));
    assertDelivered(await transport.attempt(request(FAST), 5_000));
    const [first, second, third] = peer.received.map((n) => n.headers['authorization']);
    assert.match(first ?? '', /^bearer \S+$/);
    assert.notEqual(second, first, 'the attempt after ExpiredProviderToken signed anew');
    // One refusal signs once: later sends keep the new token.
    assert.equal(third, second);
  });

  it('a stream reset before any answer is a retryable transport error, never a delivery', async () => {
    peer.setDeviceBehaviour(RESET, { reset: true });
    assert.deepEqual(await transport.attempt(request(RESET), 5_000), TIMED_OUT);
    assert.equal(peer.receivedFor(RESET)[0]!.behaviour, 'reset');
    // The session is still good for the others.
    assertDelivered(await transport.attempt(request(FAST), 5_000));
  });

  it('an answer whose body is not JSON is retryable, with the status and apns-id it came with', async () => {
    peer.setDeviceBehaviour(RESET, { status: 500, body: 'not json' });
    const result = await transport.attempt(request(RESET), 5_000);
    assert.deepEqual(result, { ...TIMED_OUT, status: 500, providerId: peer.receivedFor(RESET)[0]!.apnsId });
  });

  it('a connection dropped before the answer is a retryable transport error; the next send connects anew', async () => {
    peer.setDeviceBehaviour(CUT, { closeConnection: true });
    assertDelivered(await transport.attempt(request(FAST), 5_000));
    assert.deepEqual(await transport.attempt(request(CUT), 5_000), TIMED_OUT);
    assertDelivered(await transport.attempt(request(FAST), 5_000));
    const [before, cut, after] = peer.received.map((n) => n.connection);
    assert.equal(cut, before);
    assert.equal(after, before! + 1);
  });

  it("sends what APNs expects: POST to the device path, addressed to Apple's host, with the request's headers", async () => {
    assertDelivered(await transport.attempt(request(FAST), 5_000));
    const sent = peer.received[0]!;
    assert.equal(sent.method, 'POST');
    assert.equal(sent.path, `/3/device/${FAST}`);
    assert.equal(sent.authority, 'api.sandbox.push.apple.com');
    assert.deepEqual(
      [sent.headers['apns-topic'], sent.headers['apns-push-type'], sent.headers['apns-priority'], sent.headers['content-type']],
      [TOPIC, 'alert', '10', 'application/json; charset=utf-8'],
    );
    assert.deepEqual(sent.payload, request(FAST).payload);
  });
});
