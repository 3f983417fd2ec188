/** The trace's pure parts: record building and redaction, the ring and its ack index, the query, the merge of several workers' answers, the command's arguments and report, and the retry loop's attempt log. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { adminTarget } from '../src/commands/admin-client';
import { describeRecord, parseTraceArguments } from '../src/commands/trace';
import { deliverWithRetries, type Clock } from '../src/delivery/retry';
import { emptyPushNotification, type PushAck, type PushNotification } from '../src/notification';
import { answerTraceQuery, mergeTraceAnswers, parseTraceQuery, type TraceAnswer } from '../src/trace/query';
import { receivedFields, traceRecord, type TraceRecord } from '../src/trace/record';
import { TraceStore } from '../src/trace/store';
import { instanceTrace } from '../src/trace';
import { localQueries } from '../src/operator-queries';
import { deliveryRecord } from './unit-support';

const TOKEN = 'a1'.repeat(32);
const EAS = { messageText: false, keepSent: false };

function notification(fields: Partial<PushNotification> = {}): PushNotification {
  return {
    ...emptyPushNotification(),
    platform: 'apple_rn-v2',
    server_id: 'srv',
    device_id: TOKEN,
    type: 'message',
    message: 'secret message',
    channel_name: 'Secret Channel',
    sender_name: 'alice',
    override_username: 'webhook-bot',
    channel_id: 'ch1',
    post_id: 'p1',
    ack_id: 'a1',
    badge: 3,
    signature: 'signature-of-the-server-0123456789',
    ...fields,
  };
}

function ack(id: string, fields: Partial<PushAck> = {}): PushAck {
  return { id, received_at: 1_767_000_000_000, platform: 'apple', type: 'message', post_id: '', is_id_loaded: false, ...fields };
}

/** A store record for ack id `ackId` of server `serverId`, at a given time. */
function delivered(serverId: string, ackId: string, at = new Date()) {
  return deliveryRecord(serverId, { at, ackId, postId: `post-${ackId}`, received: notification({ server_id: serverId, ack_id: ackId }) });
}

describe('trace records', () => {
  it('outside test mode: no message text, the token and signature shortened, empty fields left out', () => {
    const received = receivedFields(notification(), false);
    assert.deepEqual(received, {
      ack_id: 'a1',
      platform: 'apple_rn-v2',
      server_id: 'srv',
      device_id: 'a1a1a1a1…',
      post_id: 'p1',
      badge: 3,
      cont_ava: 0,
      channel_id: 'ch1',
      type: 'message',
      signature: 'signatur…',
    });
    const text = JSON.stringify(received);
    for (const secret of ['secret message', 'Secret Channel', 'alice', 'webhook-bot', TOKEN]) assert.ok(!text.includes(secret), secret);
  });

  it('in test mode: the message text is kept, the token still shortened', () => {
    const received = receivedFields(notification(), true);
    assert.equal(received.message, 'secret message');
    assert.equal(received.channel_name, 'Secret Channel');
    assert.equal(received.sender_name, 'alice');
    assert.equal(received.override_username, 'webhook-bot');
    assert.equal(received.device_id, 'a1a1a1a1…');
  });

  it('a delivery becomes a record: attempts, the answer, the ids; the request as sent only when asked', () => {
    const at = new Date('2030-01-02T03:04:05.678Z');
    const delivery = deliveryRecord('srv', {
      at,
      tenant: 'acme',
      ackId: 'a1',
      postId: 'p1',
      outcome: 'FAIL',
      error: 'unknown transport error',
      reason: 'unknown transport error',
      request: { token: TOKEN, topic: 'com.example' },
      received: notification(),
      attemptLog: [
        { startMs: 0, ms: 12.5, verdict: 'retry', reason: 'unknown transport error' },
        { startMs: 1012.5, ms: 3, verdict: 'retry', status: 503, reason: 'x', providerId: 'id-2' },
      ],
    });
    const record = traceRecord(delivery, 7, EAS);
    assert.deepEqual(record, {
      id: 7,
      at: at.toISOString(),
      server_id: 'srv',
      tenant: 'acme',
      post_id: 'p1',
      ack_id: 'a1',
      platform: 'apple_rn-v2',
      type: 'message',
      transport: '',
      device: 'abcdefgh…',
      received: receivedFields(notification(), false),
      attempts: [
        { start_ms: 0, ms: 12.5, verdict: 'retry', reason: 'unknown transport error' },
        { start_ms: 1012.5, ms: 3, verdict: 'retry', status: 503, reason: 'x', provider_id: 'id-2' },
      ],
      answer: { status: 'FAIL', error: 'unknown transport error' },
      reason: 'unknown transport error',
      ms: 5,
    });
    assert.deepEqual(
      traceRecord(delivery, 7, { messageText: true, keepSent: true }).sent,
      { token: 'a1a1a1a1…', topic: 'com.example' },
      'the token shortened',
    );
    // Plain JSON: it travels between workers unchanged.
    assert.deepEqual(JSON.parse(JSON.stringify(record)), record);
  });
});

describe('TraceStore', () => {
  it('keeps at most its capacity, newest first, and filters by server, post and ack id', () => {
    const store = new TraceStore(3, EAS);
    for (let i = 1; i <= 5; i++) store.record(delivered(i % 2 === 0 ? 'even' : 'odd', `a${i}`));
    assert.deepEqual(
      store.list().map((r) => r.ack_id),
      ['a5', 'a4', 'a3'],
    );
    assert.deepEqual(
      store.list({ serverId: 'odd' }).map((r) => r.ack_id),
      ['a5', 'a3'],
    );
    assert.deepEqual(
      store.list({ postId: 'post-a4' }).map((r) => r.ack_id),
      ['a4'],
    );
    assert.deepEqual(
      store.list({ limit: 1 }).map((r) => r.ack_id),
      ['a5'],
    );
    assert.deepEqual(
      store.list({ ackId: 'a3', serverId: 'odd' }).map((r) => r.id),
      [3],
    );
    assert.deepEqual(store.list({ ackId: 'a3', serverId: 'even' }), []);
  });

  it('an evicted record leaves the ack index: its ack id finds nothing, and a late receipt is held apart', () => {
    const store = new TraceStore(2, EAS);
    store.record(delivered('s', 'old'));
    store.record(delivered('s', 'b'));
    assert.equal(store.list({ ackId: 'old' }).length, 1);
    store.record(delivered('s', 'c'));
    assert.deepEqual(store.list({ ackId: 'old' }), []);
    store.acknowledged(ack('old'));
    assert.deepEqual(
      store.heldReceipts(['old']).map((h) => h.ack_id),
      ['old'],
    );
  });

  it('the ack index follows the newest record of an ack id: evicting an older one keeps it', () => {
    const store = new TraceStore(2, EAS);
    store.record(delivered('s', 'same'));
    store.record(delivered('s', 'same'));
    store.record(delivered('s', 'other'));
    assert.deepEqual(
      store.list({ ackId: 'same' }).map((r) => r.id),
      [2],
    );
  });

  it('a receipt joins its record once (the first wins) and is told to subscribers; others are held, bounded', () => {
    const store = new TraceStore(2, EAS);
    const told: Array<[number, boolean]> = [];
    store.subscribe((r) => told.push([r.id, r.receipt !== undefined]));
    store.record(delivered('s', 'a1'));
    store.acknowledged(ack('a1', { is_id_loaded: true }), new Date('2030-01-01T00:00:00.000Z'));
    store.acknowledged(ack('a1', { received_at: 1 }));
    assert.deepEqual(store.list({ ackId: 'a1' })[0]!.receipt, {
      at: '2030-01-01T00:00:00.000Z',
      received_at: 1_767_000_000_000,
      id_loaded: true,
      platform: 'apple',
      type: 'message',
    });
    assert.deepEqual(told, [
      [1, false],
      [1, true],
    ]);
    for (const id of ['x1', 'x2', 'x3']) store.acknowledged(ack(id));
    // Held receipts are bounded by the capacity: the oldest went.
    assert.deepEqual(
      store.heldReceipts(['x1', 'x2', 'x3']).map((h) => h.ack_id),
      ['x2', 'x3'],
    );
  });

  it('capacity 0 keeps nothing', () => {
    const store = new TraceStore(0, EAS);
    store.record(delivered('s', 'a'));
    store.acknowledged(ack('a'));
    assert.deepEqual(store.list(), []);
    assert.deepEqual(store.heldReceipts(['a']), []);
  });
});

describe('parseTraceQuery', () => {
  it('ack_id or post_id (server_id may narrow them), or server_id alone; a limit from 1 to 1000 (50 by default)', () => {
    assert.deepEqual(parseTraceQuery({ ack_id: 'a' }), {
      ok: true,
      filter: { ackId: 'a', postId: undefined, serverId: undefined, limit: 50 },
    });
    assert.deepEqual(parseTraceQuery({ server_id: 's', limit: '1000' }), {
      ok: true,
      filter: { ackId: undefined, postId: undefined, serverId: 's', limit: 1000 },
    });
    assert.deepEqual(parseTraceQuery({ post_id: 'p', server_id: 's' }), {
      ok: true,
      filter: { ackId: undefined, postId: 'p', serverId: 's', limit: 50 },
    });
    const refused: Array<[unknown, RegExp]> = [
      [{}, /give one of ack_id, post_id or server_id/],
      [null, /give one of/],
      [{ ack_id: 'a', post_id: 'p' }, /^give ack_id or post_id, not both$/],
      [{ post_id: '' }, /^post_id is empty/],
      [{ server_id: ['a', 'b'] }, /^server_id must be given once, as text$/],
      [{ ack_id: { x: 'y' } }, /^ack_id must be given once/],
      [{ ack_id: 'a', limit: '0' }, /^limit must be a whole number from 1 to 1000$/],
      [{ ack_id: 'a', limit: '1001' }, /^limit must/],
      [{ ack_id: 'a', limit: '1.5' }, /^limit must/],
      [{ ack_id: 'a', limit: ['1'] }, /^limit must/],
    ];
    for (const [query, pattern] of refused) {
      const parsed = parseTraceQuery(query);
      assert.equal(parsed.ok, false, JSON.stringify(query));
      assert.match((parsed as { error: string }).error, pattern, JSON.stringify(query));
    }
  });

  it('where a server id is required: server_id always, with at most one of the others', () => {
    const required = { requireServerId: true };
    assert.match((parseTraceQuery({ ack_id: 'a' }, required) as { error: string }).error, /^server_id is required/);
    assert.equal(parseTraceQuery({ ack_id: 'a', server_id: 's' }, required).ok, true);
    assert.equal(parseTraceQuery({ server_id: 's' }, required).ok, true);
    assert.match((parseTraceQuery({ ack_id: 'a', post_id: 'p', server_id: 's' }, required) as { error: string }).error, /not both/);
  });
});

describe('merging the answers of several workers', () => {
  function answer(capacity: number, records: TraceRecord[], receipts: TraceAnswer['receipts'] = []): TraceAnswer {
    return { capacity, records, receipts };
  }
  const record = (id: number, at: string, ackId: string): TraceRecord => traceRecord(delivered('s', ackId, new Date(at)), id, EAS);

  it('newest first across workers, at most limit, receipts joined from whichever worker holds them', () => {
    const one = record(1, '2030-01-01T00:00:01.000Z', 'a');
    const two = record(1, '2030-01-01T00:00:03.000Z', 'b');
    const three = record(2, '2030-01-01T00:00:02.000Z', 'c');
    const receipt = { at: '2030-01-01T00:00:05.000Z', received_at: 5, id_loaded: false, platform: 'apple', type: 'message' };
    const merged = mergeTraceAnswers([answer(100, [one, three]), answer(100, [two], [{ ack_id: 'c', receipt }]), 'garbage', null], 2);
    assert.equal(merged.capacity, 100);
    assert.deepEqual(
      merged.records.map((r) => r.ack_id),
      ['b', 'c'],
    );
    assert.deepEqual(merged.records[1]!.receipt, receipt);
    // The worker's own record is not changed: the receipt is on a copy.
    assert.equal(three.receipt, undefined);
  });

  it('no answers: nothing, capacity 0', () => {
    assert.deepEqual(mergeTraceAnswers([], 10), { capacity: 0, records: [] });
  });

  it("a process's answer: matching records, the request as sent left out unless asked, receipts held for the ack id", () => {
    const store = new TraceStore(10, { messageText: false, keepSent: true });
    store.record({ ...delivered('s', 'a1'), request: { topic: 'x' } });
    store.acknowledged(ack('elsewhere'));
    const plain = answerTraceQuery(store, { filter: { ackId: 'a1' } }, false);
    assert.equal(plain.records[0]!.sent, undefined);
    assert.deepEqual(answerTraceQuery(store, { filter: { ackId: 'a1' } }, true).records[0]!.sent, { topic: 'x' });
    assert.deepEqual(
      answerTraceQuery(store, { receiptsFor: ['elsewhere', 'unknown'] }, false).receipts.map((h) => h.ack_id),
      ['elsewhere'],
    );
    assert.deepEqual(
      answerTraceQuery(store, { filter: { ackId: 'elsewhere' } }, false).receipts.map((h) => h.ack_id),
      ['elsewhere'],
    );
    assert.deepEqual(answerTraceQuery(store, { filter: { serverId: 's' } }, false).receipts, []);
  });
});

describe('push-proxy trace: arguments and report', () => {
  it('reads ACK_ID, --post-id, --server-id, --config and --json', () => {
    assert.deepEqual(parseTraceArguments(['ack1']), { ackId: 'ack1', json: false, configArgs: [] });
    assert.deepEqual(parseTraceArguments(['--post-id', 'p', '--server-id', 's', '--config', 'f.json', '--json']), {
      postId: 'p',
      serverId: 's',
      json: true,
      configArgs: ['--config', 'f.json'],
    });
    for (const [argv, pattern] of [
      [[], /give ACK_ID, --post-id ID or --server-id ID/],
      [['a', 'b'], /one ACK_ID only/],
      [['a', '--post-id', 'p'], /not both/],
      [['--post-id'], /--post-id needs a value/],
      [['--server-id', '--json'], /--server-id needs a value/],
      [['a', '--bogus'], /unknown option --bogus/],
    ] as const) {
      assert.throws(() => parseTraceArguments(argv), pattern);
    }
  });

  it('tells each attempt, the answer and the receipt, or its absence', () => {
    const record = traceRecord(
      deliveryRecord('srv', {
        at: new Date('2030-01-01T00:00:00.000Z'),
        ackId: 'a1',
        attemptLog: [
          { startMs: 0, ms: 5, verdict: 'retry', reason: 'unknown transport error' },
          { startMs: 1005, ms: 7, verdict: 'OK', status: 200, providerId: 'apns-id-2' },
        ],
      }),
      1,
      EAS,
    );
    const text = describeRecord(record);
    assert.match(text, /^notification ack_id a1\n/);
    assert.match(text, /\nattempt 1: retry, no HTTP answer, unknown transport error, 5 ms\n/);
    assert.match(text, /\nattempt 2: OK, HTTP 200, id apns-id-2, 7 ms \(started 1005 ms after the first\)\n/);
    assert.match(text, /\nanswer: {4}OK after 5 ms\n/);
    assert.match(text, /\nreceipt: {3}no receipt yet$/);
    record.receipt = {
      at: '2030-01-01T00:00:02.000Z',
      received_at: 1_893_456_001_000,
      id_loaded: true,
      platform: 'apple',
      type: 'message',
    };
    assert.match(
      describeRecord(record),
      /\nreceipt: {3}2030-01-01T00:00:02\.000Z \(device received it at 2030-01-01T00:00:01\.000Z, id loaded\)$/,
    );
  });
});

describe('where the command asks', () => {
  it('the admin listener over HTTP; else the single listener, over HTTPS with TLSCertFile; a wildcard host on 127.0.0.1', () => {
    const plain = { AdminListenAddress: '', ListenAddress: ':8066', TLSCertFile: '' };
    assert.deepEqual(adminTarget(plain), { host: '127.0.0.1', port: 8066, secure: false, origin: 'http://127.0.0.1:8066' });
    assert.equal(adminTarget({ ...plain, TLSCertFile: 'c.pem' }).origin, 'https://127.0.0.1:8066');
    assert.equal(adminTarget({ ...plain, AdminListenAddress: '[::]:9066', TLSCertFile: 'c.pem' }).origin, 'http://127.0.0.1:9066');
    assert.equal(adminTarget({ ...plain, AdminListenAddress: '0.0.0.0:9066' }).origin, 'http://127.0.0.1:9066');
    assert.equal(adminTarget({ ...plain, AdminListenAddress: '10.1.2.3:9066' }).origin, 'http://10.1.2.3:9066');
    assert.deepEqual(adminTarget({ ...plain, ListenAddress: '[::1]:8443' }), {
      host: '::1',
      port: 8443,
      secure: false,
      origin: 'http://[::1]:8443',
    });
  });
});

describe('the retry loop keeps each attempt when asked', () => {
  class FakeClock implements Clock {
    time = 0;
    now(): number {
      return this.time;
    }
    async sleep(ms: number): Promise<void> {
      this.time += ms;
    }
  }
  const POLICY = {
    maxAttempts: 3,
    backoffMs: [1000, 2000],
    sendTimeoutMs: 30_000,
    retryTimeoutMs: 8_000,
    budgetExhausted: { error: 'budget', reason: 'budget' },
  };

  it('one record per attempt: start, duration, verdict, status, reason, provider id', async () => {
    const clock = new FakeClock();
    const answers = [
      { kind: 'retryable' as const, error: 'e', reason: 'InternalServerError', status: 500, providerId: 'first' },
      { kind: 'final' as const, outcome: 'OK' as const, status: 200, providerId: 'second' },
    ];
    const result = await deliverWithRetries(
      async () => {
        clock.time += 10;
        return answers.shift()!;
      },
      POLICY,
      clock,
      undefined,
      undefined,
      true,
    );
    assert.deepEqual(result.attemptLog, [
      { startMs: 0, ms: 10, verdict: 'retry', status: 500, reason: 'InternalServerError', providerId: 'first' },
      { startMs: 1010, ms: 10, verdict: 'OK', status: 200, reason: undefined, providerId: 'second' },
    ]);
    assert.equal(result.providerId, 'second');
  });

  it('a send that runs out of attempts keeps them all; off, no log is built', async () => {
    const clock = new FakeClock();
    const retry = async () => ({ kind: 'retryable' as const, error: 'e', reason: 'r' });
    const failed = await deliverWithRetries(retry, POLICY, clock, undefined, undefined, true);
    assert.deepEqual(
      failed.attemptLog?.map((a) => [a.startMs, a.verdict]),
      [
        [0, 'retry'],
        [1000, 'retry'],
        [3000, 'retry'],
      ],
    );
    const first = await deliverWithRetries(async () => ({ kind: 'final', outcome: 'OK' }), POLICY, clock);
    assert.equal(first.attemptLog, undefined);
  });
});

describe('the trace of an instance', () => {
  const config = { Mode: 'eas' as const, EnableMetrics: false, Inspector: false, AdminListenAddress: '', TraceCapacity: 1000 };

  it('keeps TraceCapacity records; with the inspector shown at least its 200; with neither, none and no records built', () => {
    assert.equal(instanceTrace(config, localQueries()).store?.capacity, 1000);
    const inspected = instanceTrace({ ...config, Inspector: true, TraceCapacity: 0 }, localQueries());
    assert.equal(inspected.store?.capacity, 200);
    assert.equal(inspected.inspector?.capacity, 200);
    const none = instanceTrace({ ...config, TraceCapacity: 0 }, localQueries());
    assert.equal(none.store, undefined);
    assert.equal(none.onReceipt, undefined);
    // Hosted mode without an admin listener shows no inspector anywhere: nothing kept for it.
    assert.equal(instanceTrace({ ...config, Mode: 'hosted', Inspector: true, TraceCapacity: 0 }, localQueries()).store, undefined);
  });
});
