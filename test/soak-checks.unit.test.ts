/**
 * The soak's judge (bench/soak-checks.ts) on hand-made answers and peer receipts: each kind of failure it must
 * report, and the connection drops it must not blame on a notification.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { faultKinds, judge, judgeRss, planFaults, type PeerReceipt, type SentRequest } from '../bench/soak-checks';

const LIMITS = { answerWithinMs: 6000, orderingToleranceMs: 20 };

function sent(ackId: string, answer: Partial<SentRequest> = {}): SentRequest {
  return {
    ackId,
    platform: 'apple',
    kindId: 'healthy',
    expected: 'OK',
    sentAt: 1000,
    answeredAt: 1010,
    httpStatus: 200,
    outcome: 'OK',
    ...answer,
  };
}

function receipt(ackId: string | undefined, fields: Partial<PeerReceipt> = {}): PeerReceipt {
  return { platform: 'apple', ackId, receivedAt: 1005, endedAt: 1006, delivery: 'yes', drop: false, collateral: false, ...fields };
}

describe('the soak judge', () => {
  it('passes an OK delivered once, a REMOVE and a FAIL that were not delivered', () => {
    const verdict = judge(
      [
        sent('a'),
        sent('b', { kindId: 'dead-token', expected: 'REMOVE', outcome: 'REMOVE' }),
        sent('c', { kindId: 'hang-always', expected: 'FAIL', outcome: 'FAIL', answeredAt: 4000 }),
      ],
      [
        receipt('a'),
        receipt('b', { delivery: 'no' }),
        receipt('c', { delivery: 'no' }),
        receipt('c', { delivery: 'no', receivedAt: 3000, endedAt: 3990 }),
      ],
      LIMITS,
    );
    assert.deepEqual(verdict.problems, []);
    assert.equal(verdict.okDeliveredOnce, 1);
  });

  it('reports a duplicate delivery: a slow 200 that left after the attempt timed out, then the retry', () => {
    const verdict = judge(
      [sent('a', { kindId: 'slow-1500ms-then-ok', answeredAt: 3100 })],
      [receipt('a', { receivedAt: 1001, endedAt: 2501 }), receipt('a', { receivedAt: 3000, endedAt: 3001 })],
      LIMITS,
    );
    assert.deepEqual(
      verdict.problems.map((p) => p.check),
      ['duplicate delivery'],
    );
    assert.equal(verdict.okDeliveredOnce, 0);
  });

  it('reports a request that reached the peer after its notification was answered (beyond the ordering tolerance)', () => {
    const requests = [
      sent('a', { expected: 'FAIL', outcome: 'FAIL', answeredAt: 4000 }),
      sent('b', { expected: 'FAIL', outcome: 'FAIL', answeredAt: 4000 }),
    ];
    const verdict = judge(
      requests,
      [
        receipt('a', { delivery: 'no', receivedAt: 4200, endedAt: 4300 }),
        receipt('b', { delivery: 'no', receivedAt: 4020, endedAt: 4030 }),
      ],
      LIMITS,
    );
    assert.deepEqual(
      verdict.problems.map((p) => [p.ackId, p.check]),
      [['a', 'received after its answer']],
    );
    assert.equal(verdict.maxReceiptAfterAnswerMs, 200);
  });

  it('reports a request without an answer, an answer that is not definite, and a late one', () => {
    const verdict = judge(
      [
        sent('none', { answeredAt: 9000, httpStatus: undefined, outcome: undefined, problem: 'no answer: socket hang up' }),
        sent('http500', { httpStatus: 500, outcome: undefined, problem: 'HTTP 500: oops' }),
        sent('late', { answeredAt: 1000 + 6001 }),
      ],
      [receipt('none'), receipt('http500'), receipt('late')],
      LIMITS,
    );
    assert.deepEqual(
      verdict.problems.map((p) => [p.ackId, p.check]),
      [
        ['none', 'no definite answer'],
        ['http500', 'no definite answer'],
        ['late', 'late answer'],
      ],
    );
  });

  it('reports an OK that was never delivered (fail closed) and a FAIL that was', () => {
    const verdict = judge(
      [sent('ok'), sent('fail', { kindId: 'hang-always', expected: 'FAIL', outcome: 'FAIL' })],
      [receipt('ok', { delivery: 'no' }), receipt('fail')],
      LIMITS,
    );
    assert.deepEqual(
      verdict.problems.map((p) => [p.ackId, p.check]),
      [
        ['ok', 'OK but not delivered'],
        ['fail', 'delivered but not OK'],
      ],
    );
  });

  it('reports an outcome its fault kind does not expect, an exchange left open, and a receipt of no request', () => {
    const verdict = judge(
      [sent('a', { kindId: 'dead-token', expected: 'REMOVE' }), sent('b', { kindId: 'hang-always', expected: 'FAIL', outcome: 'FAIL' })],
      [receipt('a'), receipt('b', { delivery: 'no', endedAt: undefined }), receipt('stranger'), receipt(undefined)],
      LIMITS,
    );
    assert.deepEqual(verdict.problems.map((p) => p.check).sort(), [
      'exchange never ended',
      'receipt matches no request',
      'receipt matches no request',
      'unexpected outcome',
    ]);
  });

  it("excuses the outcome, not the delivery, of a notification exposed to another one's connection drop", () => {
    const requests = [
      // An attempt vanished (2 attempts, 1 receipt) while `dropper` dropped the connection: may FAIL although its kind expects OK.
      sent('exposed', { kindId: 'hang-then-ok', sentAt: 1000, answeredAt: 4000, outcome: 'FAIL', attempts: 2 }),
      // In flight then too, but every attempt reached the peer and none was cut off: no excuse.
      sent('intact', { kindId: 'hang-then-ok', sentAt: 1000, answeredAt: 4000, outcome: 'FAIL', attempts: 1 }),
      // Its own receipt was cut off by the drop; an OK backed by a 200 of unknown fate is no failure.
      sent('cut', { kindId: 'healthy', sentAt: 1000, answeredAt: 1100 }),
      // Answered before the drop: not exposed, so the wrong outcome stands.
      sent('before', { kindId: 'hang-then-ok', sentAt: 1000, answeredAt: 1500, outcome: 'FAIL', attempts: 2 }),
      // Exposed, but REMOVE is never excused, nor a delivery with FAIL.
      sent('remove', { kindId: 'healthy', sentAt: 1500, answeredAt: 2500, outcome: 'REMOVE', attempts: 2 }),
      sent('delivered', { kindId: 'hang-then-ok', sentAt: 1500, answeredAt: 2500, outcome: 'FAIL', attempts: 2 }),
      sent('dropper', { kindId: 'close-then-ok', sentAt: 1900, answeredAt: 3000 }),
    ];
    const receipts = [
      receipt('exposed', { delivery: 'no' }),
      receipt('intact', { delivery: 'no' }),
      receipt('cut', { delivery: 'unknown', collateral: true }),
      receipt('before', { delivery: 'no' }),
      receipt('remove', { delivery: 'no', receivedAt: 1501 }),
      receipt('delivered', { receivedAt: 1501 }),
      receipt('dropper', { delivery: 'no', drop: true, receivedAt: 2000 }),
      receipt('dropper', { receivedAt: 2900 }),
    ];
    const verdict = judge(requests, receipts, LIMITS);
    assert.deepEqual(
      verdict.problems.map((p) => [p.ackId, p.check]),
      [
        ['intact', 'unexpected outcome'],
        ['before', 'unexpected outcome'],
        ['remove', 'unexpected outcome'],
        ['delivered', 'delivered but not OK'],
      ],
    );
    assert.equal(verdict.kinds.find((k) => k.kindId === 'hang-then-ok')!.exposed, 2);
  });

  it('reports a notification the log records with another outcome, twice, or not at all', () => {
    const verdict = judge(
      [
        sent('a', { logged: ['OK'] }),
        sent('b', { logged: ['FAIL'] }),
        sent('c', { logged: ['OK', 'OK'] }),
        sent('d', { logged: [] }),
        sent('e'),
      ],
      ['a', 'b', 'c', 'd', 'e'].map((ack) => receipt(ack)),
      LIMITS,
    );
    assert.deepEqual(
      verdict.problems.map((p) => [p.ackId, p.check]),
      [
        ['b', 'log disagrees with the answer'],
        ['c', 'log disagrees with the answer'],
        ['d', 'log disagrees with the answer'],
      ],
    );
  });

  it('counts a possible duplicate (one delivery and one of unknown fate) without failing it', () => {
    const verdict = judge([sent('a')], [receipt('a', { delivery: 'unknown', collateral: true }), receipt('a')], LIMITS);
    assert.deepEqual(verdict.problems, []);
    assert.equal(verdict.possibleDuplicates, 1);
  });
});

describe('the soak RSS check', () => {
  it('allows growth up to the bound after warm-up, and no more', () => {
    assert.equal(judgeRss(100_000, 120_000, 0.2).ok, true);
    assert.equal(judgeRss(100_000, 80_000, 0.2).ok, true);
    assert.equal(judgeRss(100_000, 120_001, 0.2).ok, false);
    assert.equal(judgeRss(0, 1, 0.2).ok, false);
  });
});

describe('the soak fault plan', () => {
  it('alternates platforms and gives every cycle the weights of every kind', () => {
    const kinds = faultKinds(1000);
    const cycle = kinds.reduce((n, k) => n + k.weight.apple, 0);
    assert.equal(
      kinds.reduce((n, k) => n + k.weight.android, 0),
      cycle,
    );
    const plan = planFaults(cycle * 2, kinds);
    assert.deepEqual([plan[0]!.platform, plan[1]!.platform, plan[2]!.platform], ['apple', 'android', 'apple']);
    for (const kind of kinds) {
      assert.equal(plan.filter((p) => p.platform === 'apple' && p.kind === kind).length, kind.weight.apple, kind.id);
      assert.equal(plan.filter((p) => p.platform === 'android' && p.kind === kind).length, kind.weight.android, kind.id);
    }
    // Faults are spread, not bunched: no run of ten notifications of one fault kind on a platform.
    const apple = plan.filter((p) => p.platform === 'apple').map((p) => p.kind.id);
    for (let i = 0; i + 10 <= apple.length; i++) {
      const run = new Set(apple.slice(i, i + 10));
      assert.ok(run.size > 1 || run.has('healthy'), `a run of ${[...run][0]} at ${i}`);
    }
  });
});
