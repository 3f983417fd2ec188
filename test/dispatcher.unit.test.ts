/** The dispatcher's answer does not depend on what the observers (trace, usage) make of a record. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PushDispatcher } from '../src/delivery/dispatcher';
import type { PushService } from '../src/delivery/types';
import { ProxyMetrics } from '../src/metrics';
import { emptyPushNotification } from '../src/notification';
import { capturedLogger } from './unit-support';

/** A service that answers OK without sending anything: the dispatcher alone is under test here. */
const delivering: PushService = {
  type: 'apple_rn',
  platform: 'apple',
  transports: new Set(),
  deliver: () => Promise.resolve({ outcome: 'OK', attempts: 1 }),
  preview: () => ({}),
  close: () => Promise.resolve(),
};

describe('PushDispatcher and its observers', () => {
  it('an observer that throws leaves the answer as it is, and the error is logged', async () => {
    const log = capturedLogger('info');
    const seen: string[] = [];
    const dispatcher = new PushDispatcher(
      new Map([['apple_rn', delivering]]),
      new ProxyMetrics({ sendTimeoutSec: 30 }),
      log.logger,
      (record) => {
        seen.push(record.outcome);
        throw new Error('a bug in the trace');
      },
    );
    const notification = { ...emptyPushNotification(), platform: 'apple_rn', server_id: 's', device_id: 'a1'.repeat(32), type: 'message' };
    assert.deepEqual(await dispatcher.send(notification), { status: 'OK' });
    assert.deepEqual(await dispatcher.send({ ...notification, platform: 'nowhere' }), {
      status: 'FAIL',
      error: 'Did not send message because of missing platform property type=nowhere serverId=s',
    });
    assert.deepEqual(seen, ['OK', 'FAIL']);
    assert.equal(log.lines().filter((l) => /recording a notification for the trace or usage failed/.test(String(l.msg))).length, 2);
  });
});
