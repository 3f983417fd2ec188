/**
 * The REMOVE guard's judgement and the entry health state, pure: no sockets, time given by the test.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { EntryHealth, isReady } from '../src/delivery/entry-health';
import { RemoveGuard, type RemoveGuardSettings } from '../src/delivery/remove-guard';
import type { EntryState } from '../src/delivery/types';

/** The defaults documented in the README and the schema. */
const DEFAULTS: RemoveGuardSettings = { enabled: true, window: 100, minSuspect: 5, ratio: 0.5, maxAgeMs: 3_600_000 };

const token = (prefix: string, i: number): string => `${prefix}${i.toString(16).padStart(8, '0')}`;

/** A small seeded generator, so a property's random layout is reproducible from its seed. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('RemoveGuard', () => {
  it('a burst of 200 distinct suspect tokens: the first 4 pass as REMOVE, every later one is withheld', () => {
    const guard = new RemoveGuard(DEFAULTS);
    const withheld = Array.from({ length: 200 }, (_, i) => guard.record(token('bad', i), 'suspect', i).withhold);
    assert.deepEqual(withheld.slice(0, 5), [false, false, false, false, true]);
    assert.equal(withheld.filter((w) => !w).length, 4);
    assert.equal(guard.suspect(200), true);
    assert.deepEqual(guard.counts(200), { judged: 100, suspect: 100 });
  });

  it('property: however the answers of a burst of 200 distinct suspect tokens interleave and are timed, at most 4 pass', () => {
    fc.assert(
      fc.property(
        // The order answers arrive in (a concurrent burst answers in any order) and the gaps between them.
        fc.shuffledSubarray(
          Array.from({ length: 200 }, (_, i) => i),
          { minLength: 200, maxLength: 200 },
        ),
        fc.array(fc.integer({ min: 0, max: 10_000 }), { minLength: 200, maxLength: 200 }),
        (order, gaps) => {
          const guard = new RemoveGuard(DEFAULTS);
          let now = 0;
          let removed = 0;
          order.forEach((i, k) => {
            now += gaps[k]!;
            if (!guard.record(token('bad', i), 'suspect', now).withhold) removed++;
          });
          return removed <= DEFAULTS.minSuspect - 1;
        },
      ),
    );
  });

  it('property: in 2,000 sends where 1 % of the distinct tokens are dead and the rest delivered, every dead one passes as REMOVE', () => {
    fc.assert(
      fc.property(
        fc.noBias(fc.integer()),
        // Distinct tokens in the traffic: each sent once, up to about ten times each.
        fc.integer({ min: 200, max: 2000 }),
        (seed, distinct) => {
          const next = random(seed);
          const bad = new Set<number>();
          while (bad.size < Math.round(distinct / 100)) bad.add(Math.floor(next() * distinct));
          // Every token is sent at least once, the rest of the 2,000 sends pick tokens at random.
          const sends = Array.from({ length: 2000 }, (_, i) => (i < distinct ? i : Math.floor(next() * distinct)));
          for (let i = sends.length - 1; i > 0; i--) {
            const j = Math.floor(next() * (i + 1));
            [sends[i], sends[j]] = [sends[j]!, sends[i]!];
          }
          const guard = new RemoveGuard(DEFAULTS);
          let now = 0;
          for (const t of sends) {
            now += Math.floor(next() * 2000);
            const { withhold } = guard.record(token('t', t), bad.has(t) ? 'suspect' : 'healthy', now);
            if (withhold) return false;
          }
          return true;
        },
      ),
      { numRuns: 200 },
    );
  });

  it('one dead device sent to again and again counts once: every answer passes', () => {
    const guard = new RemoveGuard(DEFAULTS);
    for (let i = 0; i < 50; i++) assert.equal(guard.record('dead', 'suspect', i).withhold, false);
    assert.deepEqual(guard.counts(50), { judged: 1, suspect: 1 });
  });

  it('clears by itself: deliveries to other tokens bring the suspect share under the ratio', () => {
    const guard = new RemoveGuard(DEFAULTS);
    for (let i = 0; i < 20; i++) guard.record(token('bad', i), 'suspect', i);
    assert.equal(guard.suspect(20), true);
    let healthy = 0;
    while (guard.suspect(20 + healthy)) {
      guard.record(token('ok', healthy), 'healthy', 20 + healthy);
      healthy++;
    }
    // 20 suspect of 41 is under half: the 21st delivery clears it.
    assert.equal(healthy, 21);
    for (let i = healthy; i < 60; i++) guard.record(token('ok', i), 'healthy', 20 + i);
    assert.equal(guard.record(token('bad', 1000), 'suspect', 100).withhold, false);
  });

  it('clears by itself with time: answers older than the age limit leave the window', () => {
    const guard = new RemoveGuard({ ...DEFAULTS, maxAgeMs: 1000 });
    for (let i = 0; i < 10; i++) guard.record(token('bad', i), 'suspect', i);
    assert.equal(guard.suspect(1000), true);
    // At 1005 the answers at 5 … 9 are left: still five.
    assert.equal(guard.suspect(1005), true);
    assert.equal(guard.suspect(1006), false);
    assert.deepEqual(guard.counts(1010), { judged: 0, suspect: 0 });
  });

  it('a token answered healthy after a suspect answer counts as healthy, once', () => {
    const guard = new RemoveGuard({ ...DEFAULTS, minSuspect: 2 });
    guard.record('a', 'suspect', 0);
    guard.record('a', 'healthy', 1);
    assert.deepEqual(guard.counts(1), { judged: 1, suspect: 0 });
    assert.equal(guard.record('b', 'suspect', 2).withhold, false);
  });

  it('the window keeps the latest distinct tokens only', () => {
    const guard = new RemoveGuard({ ...DEFAULTS, window: 10 });
    for (let i = 0; i < 10; i++) guard.record(token('bad', i), 'suspect', i);
    for (let i = 0; i < 10; i++) guard.record(token('ok', i), 'healthy', 10 + i);
    assert.deepEqual(guard.counts(20), { judged: 10, suspect: 0 });
  });

  it('property: judges as the plain rule says (the window as a list, re-judged tokens moved to its end), runs of one token included', () => {
    const settings: RemoveGuardSettings = { enabled: true, window: 6, minSuspect: 2, ratio: 0.5, maxAgeMs: 50 };
    const step = fc.record({
      token: fc.integer({ min: 0, max: 7 }),
      suspect: fc.boolean(),
      repeat: fc.integer({ min: 1, max: 3 }),
      wait: fc.integer({ min: 0, max: 30 }),
    });
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
        const guard = new RemoveGuard(settings);
        let window: Array<{ token: number; suspect: boolean; at: number }> = [];
        let now = 0;
        for (const { token: t, suspect, repeat, wait } of steps) {
          now += wait;
          for (let r = 0; r < repeat; r++) {
            window = window.filter((judged) => judged.token !== t);
            window.push({ token: t, suspect, at: now });
            window = window.filter((judged) => judged.at >= now - settings.maxAgeMs).slice(-settings.window);
            const suspects = window.filter((judged) => judged.suspect).length;
            const withhold = suspect && suspects >= settings.minSuspect && suspects >= settings.ratio * window.length;
            assert.equal(guard.record(token('t', t), suspect ? 'suspect' : 'healthy', now).withhold, withhold);
            assert.deepEqual(guard.counts(now), { judged: window.length, suspect: suspects });
          }
        }
      }),
      { numRuns: 500 },
    );
  });

  it('disabled: never withholds', () => {
    const guard = new RemoveGuard({ ...DEFAULTS, enabled: false });
    for (let i = 0; i < 200; i++) assert.equal(guard.record(token('bad', i), 'suspect', i).withhold, false);
    assert.equal(guard.suspect(200), false);
  });
});

describe('EntryHealth and readiness', () => {
  it("refused → failed with the advice and the first refusal's time; accepted → up again", () => {
    const health = new EntryHealth();
    assert.equal(health.up, true);
    assert.equal(health.accepted(), undefined);
    const first = new Date('2026-01-01T00:00:00Z');
    assert.equal(health.refused('key revoked', first), 'failed');
    assert.equal(health.refused('key still revoked', new Date('2026-01-01T00:01:00Z')), undefined);
    assert.equal(health.up, false);
    assert.deepEqual(health.current, { advice: 'key still revoked', since: first });
    assert.equal(health.accepted(), 'recovered');
    assert.equal(health.up, true);
    assert.equal(health.current, undefined);
  });

  const entry = (type: string, state: 'ready' | 'skipped' | 'failed'): EntryState =>
    state === 'ready' ? { type, platform: 'apple', state } : { type, platform: 'apple', state, reason: 'r' };

  it('ready while at least one entry can deliver; 503 only when every configured entry failed', () => {
    assert.equal(isReady([entry('a', 'ready'), entry('b', 'failed')]), true);
    assert.equal(isReady([entry('a', 'ready'), entry('b', 'skipped')]), true);
    assert.equal(isReady([entry('a', 'failed'), entry('b', 'failed'), entry('c', 'skipped')]), false);
    assert.equal(isReady([entry('a', 'skipped')]), false);
    assert.equal(isReady([]), false);
  });
});
