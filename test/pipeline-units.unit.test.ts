/** Pure pieces of the pipeline: truncation, platform parsing, the retry loop (docs/protocol.md, the headings of each), the semaphore, the heap setting, the counters' tallies. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { emptyPushNotification } from '../src/notification';
import { truncateNotification, truncateUtf8 } from '../src/payload/truncate';
import { appVersionLabel, parsePlatform } from '../src/delivery/platform-string';
import { deliverWithRetries, retryBounds, type AttemptObserver, type Clock, type RetryPolicy } from '../src/delivery/retry';
import type { AttemptResult } from '../src/delivery/types';
import { ProxyMetrics } from '../src/metrics';
import { heapTuningFlag } from '../src/runtime';
import { Semaphore } from '../src/transport/semaphore';

describe('truncation', () => {
  it('keeps a message of exactly 2047 bytes', () => {
    const text = 'a'.repeat(2047);
    assert.equal(truncateUtf8(text, 2047, 2046), text);
  });

  it('cuts a 2048-byte message to 2046 bytes (the original is off by one)', () => {
    assert.equal(truncateUtf8('a'.repeat(2048), 2047, 2046), 'a'.repeat(2046));
  });

  it('moves the cut back to a character boundary: no U+FFFD', () => {
    const text = 'a'.repeat(2045) + '€' + 'b'.repeat(10); // € is 3 bytes, spanning bytes 2045..2047
    const cut = truncateUtf8(text, 2047, 2046);
    assert.equal(cut, 'a'.repeat(2045));
    assert.equal(cut.includes('\ufffd'), false);
  });

  it('keeps a 4-byte emoji whole or drops it whole', () => {
    const text = 'a'.repeat(2043) + '😀' + 'x'; // emoji at bytes 2043..2046, x at 2047: 2048 bytes
    assert.equal(truncateUtf8(text, 2047, 2046), 'a'.repeat(2043));
    const fits = 'a'.repeat(2042) + '😀' + 'xx'; // emoji at 2042..2045, 2048 bytes total
    assert.equal(truncateUtf8(fits, 2047, 2046), 'a'.repeat(2042) + '😀');
  });

  it('channel name is cut at 64 bytes on a boundary', () => {
    const n = { ...emptyPushNotification(), channel_name: 'é'.repeat(40), message: 'short' }; // 80 bytes
    const t = truncateNotification(n);
    assert.equal(t.channel_name, 'é'.repeat(32));
    assert.equal(t.message, 'short');
    assert.equal(Buffer.byteLength(t.channel_name), 64);
  });

  it('returns the same object when nothing is cut', () => {
    const n = { ...emptyPushNotification(), message: 'hi', channel_name: 'c' };
    assert.equal(truncateNotification(n), n);
  });
});

describe('parsePlatform', () => {
  it('strips -vN and reads the version', () => assert.deepEqual(parsePlatform('apple_rn-v2'), { type: 'apple_rn', appVersion: 2 }));
  it('no suffix: version 1', () => assert.deepEqual(parsePlatform('android'), { type: 'android', appVersion: 1 }));
  it('garbage version is still stripped, version 1', () => assert.deepEqual(parsePlatform('apple-vx'), { type: 'apple', appVersion: 1 }));
  it('first -v wins', () => assert.deepEqual(parsePlatform('a-v3-v4'), { type: 'a', appVersion: 1 }));
  it('signed versions parse as Go Atoi does', () => {
    assert.deepEqual(parsePlatform('a-v+5'), { type: 'a', appVersion: 5 });
    assert.deepEqual(parsePlatform('a-v-1'), { type: 'a', appVersion: -1 });
  });
  it('empty suffix: version 1', () => assert.deepEqual(parsePlatform('apple_rnbeta-v'), { type: 'apple_rnbeta', appVersion: 1 }));
  it('out of int64 range: version 1', () => assert.deepEqual(parsePlatform('a-v99999999999999999999'), { type: 'a', appVersion: 1 }));
  it('app version labels', () => assert.deepEqual([1, 2, 3, 0].map(appVersionLabel), ['1', '2', 'other', 'other']));
});

/** A clock that moves only when the code under test sleeps or an attempt says how long it took. */
class FakeClock implements Clock {
  time = 0;
  sleeps: number[] = [];
  now(): number {
    return this.time;
  }
  async sleep(ms: number): Promise<void> {
    this.sleeps.push(ms);
    this.time += ms;
  }
}

const POLICY: RetryPolicy = {
  maxAttempts: 3,
  backoffMs: [1000, 2000],
  sendTimeoutMs: 30_000,
  retryTimeoutMs: 8_000,
  budgetExhausted: { error: 'budget', reason: 'budget' },
};

describe('deliverWithRetries', () => {
  it('a final answer ends it at once', async () => {
    const clock = new FakeClock();
    const request = { payload: 'built once' };
    const result = await deliverWithRetries(
      async () => ({ kind: 'final', outcome: 'REMOVE', reason: 'Unregistered' }),
      POLICY,
      clock,
      request,
    );
    assert.deepEqual(result, { outcome: 'REMOVE', error: undefined, reason: 'Unregistered', attempts: 1, request });
    assert.deepEqual(clock.sleeps, []);
  });

  it('retries with 1 s then 2 s backoff and gives the last error after three attempts', async () => {
    const clock = new FakeClock();
    const timeouts: number[] = [];
    const result = await deliverWithRetries(
      async (timeout) => {
        timeouts.push(timeout);
        clock.time += 100;
        return { kind: 'retryable', error: `e${timeouts.length}`, reason: 'r' };
      },
      POLICY,
      clock,
      'the request',
    );
    assert.deepEqual(result, { outcome: 'FAIL', error: 'e3', reason: 'r', attempts: 3, request: 'the request' });
    assert.deepEqual(clock.sleeps, [1000, 2000]);
    assert.deepEqual(timeouts, [8000, 8000, 8000]);
  });

  it('uses attemptsExhausted when the policy names one', async () => {
    const clock = new FakeClock();
    const result = await deliverWithRetries(
      async () => ({ kind: 'retryable', error: 'x', reason: 'y' }),
      { ...POLICY, attemptsExhausted: { error: 'unknown transport error', reason: 'unknown transport error' } },
      clock,
    );
    assert.equal(result.error, 'unknown transport error');
  });

  it('succeeds on the second attempt', async () => {
    const clock = new FakeClock();
    const answers: AttemptResult[] = [
      { kind: 'retryable', error: 'timeout', reason: 't' },
      { kind: 'final', outcome: 'OK' },
    ];
    const result = await deliverWithRetries(async () => answers.shift()!, POLICY, clock);
    assert.equal(result.outcome, 'OK');
    assert.equal(result.attempts, 2);
  });

  it('the last attempt gets only what is left of the budget', async () => {
    const clock = new FakeClock();
    const timeouts: number[] = [];
    await deliverWithRetries(
      async (timeout) => {
        timeouts.push(timeout);
        clock.time += timeout;
        return { kind: 'retryable', error: 'timeout', reason: 't' };
      },
      { ...POLICY, sendTimeoutMs: 10_000, retryTimeoutMs: 4_000 },
      clock,
    );
    // 0–4 s, wait 1 s, 5–9 s, wait 2 s would pass the 10 s budget: stop.
    assert.deepEqual(timeouts, [4000, 4000]);
  });

  it('stops with the budget error when the budget ends during a wait', async () => {
    const clock = new FakeClock();
    const result = await deliverWithRetries(
      async (timeout) => {
        clock.time += timeout;
        return { kind: 'retryable', error: 'context deadline exceeded', reason: 't' };
      },
      { ...POLICY, sendTimeoutMs: 3_000, retryTimeoutMs: 2_500 },
      clock,
    );
    assert.deepEqual(result, { outcome: 'FAIL', error: 'budget', reason: 'budget', attempts: 1, request: undefined });
  });

  it('each attempt is bounded by what is left of the budget, not only by the per-attempt timeout', async () => {
    const clock = new FakeClock();
    const timeouts: number[] = [];
    const result = await deliverWithRetries(
      async (timeout) => {
        timeouts.push(timeout);
        clock.time += 3000;
        return { kind: 'retryable', error: 'slow', reason: 's' };
      },
      { ...POLICY, sendTimeoutMs: 10_000, retryTimeoutMs: 8_000 },
      clock,
    );
    // 0–3 s, wait 1 s, 4–7 s with 6 s left, wait 2 s, from 9 s with 1 s left.
    assert.deepEqual(timeouts, [8000, 6000, 1000]);
    assert.deepEqual(clock.sleeps, [1000, 2000]);
    assert.equal(result.attempts, 3);
  });

  it('the first attempt is bounded by the budget when the budget is the smaller', async () => {
    const timeouts: number[] = [];
    await deliverWithRetries(
      async (timeout) => {
        timeouts.push(timeout);
        return { kind: 'final', outcome: 'OK' };
      },
      { ...POLICY, sendTimeoutMs: 3_000, retryTimeoutMs: 8_000 },
      new FakeClock(),
    );
    assert.deepEqual(timeouts, [3000]);
  });

  it('the last backoff is repeated for attempts beyond the list', async () => {
    const clock = new FakeClock();
    const result = await deliverWithRetries(
      async () => ({ kind: 'retryable', error: 'again', reason: 'a' }),
      { ...POLICY, maxAttempts: 5, sendTimeoutMs: 60_000 },
      clock,
    );
    assert.deepEqual(clock.sleeps, [1000, 2000, 2000, 2000]);
    assert.equal(result.attempts, 5);
  });

  it('no wait is started that would end at or past the budget: the answer comes at once, without sleeping', async () => {
    const clock = new FakeClock();
    const result = await deliverWithRetries(
      async () => {
        clock.time += 1500;
        return { kind: 'retryable', error: 'again', reason: 'a' };
      },
      { ...POLICY, sendTimeoutMs: 4_500 },
      clock,
    );
    // 0–1.5 s, wait 1 s, 2.5–4 s; a 2 s wait would end at 6 s, past 4.5 s.
    assert.deepEqual(clock.sleeps, [1000]);
    assert.deepEqual(result, { outcome: 'FAIL', error: 'budget', reason: 'budget', attempts: 2, request: undefined });
  });

  it('a budget spent during an attempt ends the loop before the next wait', async () => {
    const clock = new FakeClock();
    let attempts = 0;
    const result = await deliverWithRetries(
      async () => {
        attempts++;
        clock.time += 5000;
        return { kind: 'retryable', error: 'late', reason: 'l' };
      },
      { ...POLICY, sendTimeoutMs: 4_000 },
      clock,
    );
    assert.equal(attempts, 1);
    assert.deepEqual(clock.sleeps, []);
    assert.equal(result.error, 'budget');
  });

  it('a negative budget fails without any attempt', async () => {
    let attempts = 0;
    const result = await deliverWithRetries(
      async () => {
        attempts++;
        return { kind: 'final', outcome: 'OK' };
      },
      { ...POLICY, sendTimeoutMs: -1000 },
      new FakeClock(),
    );
    assert.equal(attempts, 0);
    assert.equal(result.error, 'budget');
  });

  /** An observer that writes down what it hears, in order. */
  function recordingObserver(): AttemptObserver & { heard: string[] } {
    const heard: string[] = [];
    return {
      heard,
      started: () => heard.push('started'),
      ended: (seconds, result) =>
        heard.push(`ended ${seconds} ${result === undefined ? 'threw' : result.kind === 'retryable' ? 'retry' : result.outcome}`),
      retrying: (reason) => heard.push(`retrying ${reason}`),
    };
  }

  it('tells the observer each attempt, how long it took and its verdict, including one that threw, and each retry with its reason', async () => {
    const clock = new FakeClock();
    const observer = recordingObserver();
    const answers: Array<[number, AttemptResult]> = [
      [400, { kind: 'retryable', error: 'timeout', reason: 't' }],
      [1500, { kind: 'retryable', error: 'internal', reason: 'INTERNAL' }],
      [100, { kind: 'final', outcome: 'OK' }],
    ];
    const result = await deliverWithRetries(
      async () => {
        const [ms, answer] = answers.shift()!;
        clock.time += ms;
        return answer;
      },
      POLICY,
      clock,
      undefined,
      observer,
    );
    assert.equal(result.attempts, 3);
    assert.deepEqual(observer.heard, [
      'started',
      'ended 0.4 retry',
      'retrying t',
      'started',
      'ended 1.5 retry',
      'retrying INTERNAL',
      'started',
      'ended 0.1 OK',
    ]);

    // A retryable last attempt is no retry: the loop gives up.
    const givingUp = recordingObserver();
    await deliverWithRetries(
      async () => ({ kind: 'retryable', error: 'x', reason: 'y' }),
      { ...POLICY, maxAttempts: 1 },
      clock,
      undefined,
      givingUp,
    );
    assert.deepEqual(givingUp.heard, ['started', 'ended 0 retry']);

    // A transport that throws, at the first attempt or a later one.
    for (const before of [0, 1]) {
      const thrown = recordingObserver();
      let calls = 0;
      await assert.rejects(
        deliverWithRetries(
          async () => {
            clock.time += 250;
            if (calls++ < before) return { kind: 'retryable', error: 'x', reason: 'y' };
            throw new Error('a bug in the transport');
          },
          POLICY,
          clock,
          undefined,
          thrown,
        ),
        /a bug in the transport/,
      );
      const retried = before === 0 ? [] : ['started', 'ended 0.25 retry', 'retrying y'];
      assert.deepEqual(thrown.heard, [...retried, 'started', 'ended 0.25 threw']);
    }
  });

  it('bounds from the config: defaults and the cap', () => {
    assert.deepEqual(retryBounds(0, 0), { sendTimeoutMs: 30_000, retryTimeoutMs: 8_000 });
    assert.deepEqual(retryBounds(5, 8), { sendTimeoutMs: 5_000, retryTimeoutMs: 5_000 });
    assert.deepEqual(retryBounds(-1, 0), { sendTimeoutMs: -1_000, retryTimeoutMs: -1_000 });
  });
});

describe('Semaphore', () => {
  it('runs at most `limit` tasks at once and drops a waiter whose deadline passes', async () => {
    const semaphore = new Semaphore(1);
    let release!: () => void;
    const first = semaphore.run(performance.now() + 10_000, () => new Promise<string>((r) => (release = () => r('first'))));
    const dropped = semaphore.run(performance.now() + 20, async () => 'dropped');
    const second = semaphore.run(performance.now() + 10_000, async () => 'second');
    assert.equal(await dropped, undefined);
    assert.equal(semaphore.inUse, 1);
    release();
    assert.equal(await first, 'first');
    assert.equal(await second, 'second');
    assert.equal(semaphore.inUse, 0);
  });
});

describe('Semaphore slots taken by hand', () => {
  it('tryAcquire takes free slots only; release hands the slot to the oldest waiter, in order', async () => {
    const semaphore = new Semaphore(1);
    assert.equal(semaphore.tryAcquire(), true);
    assert.equal(semaphore.tryAcquire(), false);
    const order: string[] = [];
    const first = semaphore.acquire(performance.now() + 10_000).then((got) => order.push(`first ${got}`));
    const second = semaphore.acquire(performance.now() + 10_000).then((got) => order.push(`second ${got}`));
    semaphore.release();
    await first;
    assert.deepEqual(order, ['first true']);
    assert.equal(semaphore.inUse, 1);
    semaphore.release();
    await second;
    assert.deepEqual(order, ['first true', 'second true']);
    semaphore.release();
    assert.equal(semaphore.inUse, 0);
  });

  it('acquire gives up holding nothing when its deadline passes', async () => {
    const semaphore = new Semaphore(1);
    assert.equal(semaphore.tryAcquire(), true);
    assert.equal(await semaphore.acquire(performance.now() + 20), false);
    semaphore.release();
    assert.equal(semaphore.inUse, 0);
    assert.equal(await semaphore.acquire(performance.now() + 20), true);
  });
});

describe('heap setting', () => {
  it('sets the old generation to grow to twice its live size', () => {
    assert.equal(heapTuningFlag([]), '--heap-growing-percent=100');
    assert.equal(heapTuningFlag(['--max-semi-space-size=4', '--enable-source-maps']), '--heap-growing-percent=100');
  });

  it("keeps the operator's own choice given to node, in either spelling", () => {
    assert.equal(heapTuningFlag(['--heap-growing-percent=300']), undefined);
    assert.equal(heapTuningFlag(['--enable-source-maps', '--heap_growing_percent=50']), undefined);
  });
});

describe('metrics: tallied counters', () => {
  const valueOf = async (metrics: ProxyMetrics, name: string, labels: Record<string, string>): Promise<number | undefined> => {
    const metric = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === name);
    const values = (metric?.values ?? []) as { value: number; labels: Record<string, string | number> }[];
    return values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value;
  };

  it('every increment shows in the next read, and is counted once', async () => {
    const metrics = new ProxyMetrics();
    const counters = metrics.notificationCounters('apple', 'message', '');
    counters.notifications.inc();
    counters.notifications.inc();
    counters.success.inc();
    metrics.countAppVersion('apple_rn', '2');
    const labels = { platform: 'apple', type: 'message', transport: '' };
    assert.equal(await valueOf(metrics, 'service_notifications_total', labels), 2);
    assert.equal(await valueOf(metrics, 'service_success_total', labels), 1);
    assert.equal(await valueOf(metrics, 'service_notifications_by_app_version_total', { platform: 'apple_rn', app_version: '2' }), 1);
    counters.notifications.inc();
    assert.equal(await valueOf(metrics, 'service_notifications_total', labels), 3);
    assert.match(await metrics.registry.metrics(), /service_notifications_total\{platform="apple",type="message",transport=""\} 3\n/);
  });

  it('label sets beyond the memo are counted at once, not lost', async () => {
    const metrics = new ProxyMetrics();
    for (let i = 0; i < 1005; i++) metrics.notificationCounters('apple', `type-${i}`, '').notifications.inc();
    metrics.notificationCounters('apple', 'type-1004', '').notifications.inc();
    assert.equal(await valueOf(metrics, 'service_notifications_total', { type: 'type-0' }), 1);
    assert.equal(await valueOf(metrics, 'service_notifications_total', { type: 'type-1004' }), 2);
  });
});
