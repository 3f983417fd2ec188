/** The arithmetic of a stop: its deadline, and when a repeated signal forces the exit. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { drainDeadlineMs, forcesExit, REPEATED_SIGNAL_WINDOW_MS } from '../src/http/drain';

describe('the deadline of a stop', () => {
  it('is the grace, one notification budget and 5 s', () => {
    assert.equal(drainDeadlineMs(5, 30_000), 40_000);
    assert.equal(drainDeadlineMs(0, 2_000), 7_000);
  });

  it('a repeated stop signal forces the exit only once the repeat window has passed', () => {
    assert.equal(forcesExit(1_000, 1_000), false);
    assert.equal(forcesExit(1_000, 1_000 + REPEATED_SIGNAL_WINDOW_MS - 1), false);
    assert.equal(forcesExit(1_000, 1_000 + REPEATED_SIGNAL_WINDOW_MS), true);
  });
});
