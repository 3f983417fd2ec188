/** What an APNs answer means for the notification and for the entry's credentials (classifyAnswer); signing failures counted. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { classifyAnswer, countSigningFailures } from '../src/platforms/apns/transport';

describe('classifyAnswer: what an answer says about the entry', () => {
  const answer = (status: number, reason: string) => classifyAnswer(status, reason);

  it("device refusals a wrong environment or topic also causes are suspect, with the provider's code; the outcome is unchanged", () => {
    for (const [reason, outcome] of [
      ['BadDeviceToken', 'REMOVE'],
      ['DeviceTokenNotForTopic', 'REMOVE'],
      ['TopicDisallowed', 'FAIL'],
    ] as const) {
      const verdict = answer(400, reason);
      assert.ok(verdict.kind === 'final');
      assert.equal(verdict.outcome, outcome);
      assert.equal(verdict.reason, reason);
      assert.equal(verdict.providerReason, reason);
      assert.equal(verdict.evidence?.kind, 'suspect');
      assert.match(verdict.evidence.advice, /ApplePushUseDevelopment/);
    }
  });

  it('Unregistered is about the device alone', () => {
    assert.deepEqual(answer(410, 'Unregistered'), { kind: 'final', outcome: 'REMOVE', reason: 'Unregistered' });
  });

  it('403s refusing our credentials say so, with what to check', () => {
    const expected: Array<[string, RegExp]> = [
      ['InvalidProviderToken', /AppleAuthKeyID and AppleTeamID.*Apple Developer > Keys/],
      ['ExpiredProviderToken', /clock/],
      ['MissingProviderToken', /AppleAuthKeyFile/],
      ['BadCertificate', /ApplePushCertPrivate/],
      ['BadCertificateEnvironment', /ApplePushUseDevelopment/],
    ];
    for (const [reason, advice] of expected) {
      const verdict = answer(403, reason);
      assert.ok(verdict.kind === 'final' && verdict.outcome === 'FAIL');
      assert.equal(verdict.evidence?.kind, 'credentials-refused', reason);
      assert.match(verdict.evidence.advice, advice);
      assert.match(verdict.evidence.advice, new RegExp(`\\(${reason}\\)`));
    }
  });

  it('a 400 or 413 about the message says the credentials were accepted', () => {
    for (const [status, reason] of [
      [400, 'BadPayload'],
      [413, 'PayloadTooLarge'],
      [400, 'InvalidProviderToken'],
    ] as const) {
      assert.deepEqual(answer(status, reason), {
        kind: 'final',
        outcome: 'FAIL',
        error: 'unknown send response error',
        reason,
        evidence: { kind: 'credentials-accepted' },
      });
    }
  });

  it('any other answer carries no evidence, whatever its reason is called', () => {
    for (const [status, reason] of [
      [403, 'constructor'],
      [403, '__proto__'],
      [403, 'Forbidden'],
      [500, 'InternalServerError'],
      [429, 'TooManyRequests'],
      [503, 'ServiceUnavailable'],
    ] as const) {
      const verdict = answer(status, reason);
      assert.ok(verdict.kind === 'final');
      assert.equal(verdict.evidence, undefined, `${status} ${reason}`);
    }
  });
});

describe('classifyAnswer: what the body left out', () => {
  it('a 500 whose JSON names no reason is InternalServerError; an empty body leaves the reason empty', () => {
    assert.deepEqual(classifyAnswer(500, undefined), {
      kind: 'final',
      outcome: 'FAIL',
      error: 'unknown send response error',
      reason: 'InternalServerError',
    });
    assert.deepEqual(classifyAnswer(500, ''), { kind: 'final', outcome: 'FAIL', error: 'unknown send response error', reason: '' });
    assert.deepEqual(classifyAnswer(400, ''), {
      kind: 'final',
      outcome: 'FAIL',
      error: 'unknown send response error',
      reason: '',
      evidence: { kind: 'credentials-accepted' },
    });
  });
});

describe('countSigningFailures: a provider token that cannot be signed anew', () => {
  it('is counted once per failed signing and still fails the send as before; a signing that works counts nothing', () => {
    const kinds: string[] = [];
    let fail = false;
    const token = {
      generation: 0,
      regenerate(generation: number): void {
        if (generation !== this.generation) return;
        this.generation++;
        if (fail) throw new Error('signing failed');
      },
    };
    countSigningFailures(token, { credentialRefreshFailed: (kind) => kinds.push(kind) });
    token.regenerate(0);
    assert.equal(token.generation, 1);
    assert.deepEqual(kinds, []);
    fail = true;
    assert.throws(() => token.regenerate(1), /signing failed/);
    assert.deepEqual(kinds, ['apns_token']);
  });
});
