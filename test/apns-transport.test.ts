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

  it('the slot is given back when APNs answers, even after the attempt timed out', async () => {
    peer.setDeviceBehaviour(SLOW, { delayMs: 300 });
    assert.deepEqual(await transport.attempt(request(SLOW), 50), TIMED_OUT);
    // The late answer frees the one slot; without it this send could never start.
    assertDelivered(await transport.attempt(request(FAST), 5_000));
    assert.deepEqual(
      peer.received.map((n) => [n.token, n.status]),
      [
        [SLOW, 200],
        [FAST, 200],
      ],
    );
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
      assert.equal(typeof clientOf(provider).request, 'function');
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

describe('ApnsTransport and what the library reports', () => {
  let peer: ApnsPeer;
  let transport: ApnsTransport;

  before(async () => {
    ({ peer, transport } = await startPeerAndTransport());
    // A first send opens the session, so the next ones go through Client.request.
    assertDelivered(await transport.attempt(request(FAST), 5_000));
  });
  after(async () => {
    await transport.close();
    await peer.close();
  });

  it('a rejection that carries neither a status nor an error is a transport error, not a delivery', async () => {
    // The library's own failures always carry one; this stands in for one that does not (its contract, not its I/O).
    const client = (transport as unknown as { client: { request: () => Promise<unknown> } }).client;
    const original = client.request;
    client.request = () => Promise.reject({});
    try {
      assert.deepEqual(await transport.attempt(request(FAST), 5_000), TIMED_OUT);
    } finally {
      client.request = original;
    }
    assertDelivered(await transport.attempt(request(FAST), 5_000));
  });
});
