/** FCM transport helpers: where token requests go, and what an FCM answer means (classifyFcmAnswer, retryAfterSec). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { classifyFcmAnswer, retryAfterSec, tokenRequestUrl } from '../src/platforms/fcm/transport';

describe('FCM transport helpers', () => {
  it('tokenRequestUrl: Google token URLs follow FcmEndpoint, other URLs are kept', () => {
    const endpoint = new URL('https://relay.example:8443');
    assert.equal(tokenRequestUrl('https://oauth2.googleapis.com/token', endpoint).href, 'https://relay.example:8443/token');
    assert.equal(tokenRequestUrl('https://accounts.google.com/o/oauth2/token', endpoint).href, 'https://relay.example:8443/o/oauth2/token');
    assert.equal(tokenRequestUrl('https://auth.internal:9000/token', endpoint).href, 'https://auth.internal:9000/token');
    assert.equal(tokenRequestUrl('https://oauth2.googleapis.com/token', undefined).href, 'https://oauth2.googleapis.com/token');
  });

  it('classifyFcmAnswer: only the FcmError detail decides REMOVE', () => {
    const body = (status: string, code: number, errorCode?: string): string =>
      JSON.stringify({
        error: {
          code,
          message: 'm',
          status,
          ...(errorCode ? { details: [{ '@type': 'type.googleapis.com/google.firebase.fcm.v1.FcmError', errorCode }] } : {}),
        },
      });
    assert.deepEqual(classifyFcmAnswer({ status: 404, body: body('NOT_FOUND', 404, 'UNREGISTERED') }), {
      kind: 'final',
      outcome: 'REMOVE',
      error: 'm',
      reason: 'UNREGISTERED',
    });
    assert.deepEqual(classifyFcmAnswer({ status: 404, body: body('NOT_FOUND', 404) }), {
      kind: 'final',
      outcome: 'FAIL',
      error: 'm',
      reason: 'NOT_FOUND',
    });
    // SENDER_ID_MISMATCH keeps its old metrics label; the provider's own code and the suspicion travel beside it.
    const mismatch = classifyFcmAnswer({ status: 403, body: body('PERMISSION_DENIED', 403, 'SENDER_ID_MISMATCH') });
    assert.ok(mismatch.kind === 'final' && mismatch.evidence?.kind === 'suspect');
    assert.deepEqual(
      { ...mismatch, evidence: undefined },
      { kind: 'final', outcome: 'REMOVE', error: 'm', reason: 'UNREGISTERED', providerReason: 'SENDER_ID_MISMATCH', evidence: undefined },
    );
    const denied = classifyFcmAnswer({ status: 403, body: body('PERMISSION_DENIED', 403) });
    assert.ok(
      denied.kind === 'final' &&
        denied.outcome === 'FAIL' &&
        denied.reason === 'PERMISSION_DENIED' &&
        denied.evidence?.kind === 'credentials-refused',
    );
    const unauthenticated = classifyFcmAnswer({ status: 401, body: body('UNAUTHENTICATED', 401) });
    assert.ok(
      unauthenticated.kind === 'final' &&
        unauthenticated.reason === 'UNAUTHENTICATED' &&
        unauthenticated.evidence?.kind === 'credentials-refused',
    );
    assert.deepEqual(classifyFcmAnswer({ status: 500, body: body('INTERNAL', 500) }), {
      kind: 'final',
      outcome: 'FAIL',
      error: 'm',
      reason: 'INTERNAL',
    });
    assert.deepEqual(classifyFcmAnswer({ status: 500, body: body('INTERNAL', 500, 'INTERNAL') }), {
      kind: 'retryable',
      error: 'm',
      reason: 'INTERNAL',
    });
    assert.deepEqual(classifyFcmAnswer({ status: 429, body: body('RESOURCE_EXHAUSTED', 429, 'QUOTA_EXCEEDED') }), {
      kind: 'retryable',
      error: 'm',
      reason: 'QUOTA_EXCEEDED',
    });
  });

  it('classifyFcmAnswer: a 503 is retried, unless its Retry-After asks for more than a minute', () => {
    const unavailable = JSON.stringify({
      error: {
        code: 503,
        message: 'The service is currently unavailable.',
        status: 'UNAVAILABLE',
        details: [{ '@type': 'type.googleapis.com/google.firebase.fcm.v1.FcmError', errorCode: 'UNAVAILABLE' }],
      },
    });
    const retried = { kind: 'retryable', error: 'The service is currently unavailable.', reason: 'UNAVAILABLE' };
    assert.deepEqual(classifyFcmAnswer({ status: 503, body: unavailable }), retried);
    assert.deepEqual(classifyFcmAnswer({ status: 503, body: unavailable, retryAfter: '60' }), retried);
    assert.deepEqual(classifyFcmAnswer({ status: 503, body: unavailable, retryAfter: '61' }), {
      ...retried,
      kind: 'final',
      outcome: 'FAIL',
    });
    // A load balancer's own 503 is retried too; its 502 is not (docs/protocol.md, Outcome mapping).
    assert.deepEqual(classifyFcmAnswer({ status: 503, body: '<html>busy</html>' }), {
      kind: 'retryable',
      error: 'unexpected http response with status: 503\n<html>busy</html>',
      reason: 'HTTP 503',
    });
    assert.equal(classifyFcmAnswer({ status: 502, body: '<html>bad gateway</html>' }).kind, 'final');
  });

  it('retryAfterSec: seconds or an HTTP date; 0 when absent or unreadable', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    assert.equal(retryAfterSec(undefined, now), 0);
    assert.equal(retryAfterSec('120', now), 120);
    assert.equal(retryAfterSec('Thu, 01 Jan 2026 00:02:00 GMT', now), 120);
    assert.equal(retryAfterSec('Wed, 31 Dec 2025 23:59:00 GMT', now), 0);
    assert.equal(retryAfterSec('soon', now), 0);
    assert.equal(retryAfterSec('', now), 0);
  });
});
