/**
 * A clock for tests that drive the retry loop against real peers: every wait passes at once and is added to
 * the time, so attempts still take their real time but the backoff between them costs none. The loop sees the
 * same sequence of times as with the system clock, only shorter in real time by the waits it skipped.
 */
import type { Clock } from '../src/delivery/retry';

export class SkippingClock implements Clock {
  /** Every wait asked for, in order. */
  readonly sleeps: number[] = [];
  private skippedMs = 0;

  now(): number {
    return performance.now() + this.skippedMs;
  }

  async sleep(ms: number): Promise<void> {
    this.sleeps.push(ms);
    this.skippedMs += ms;
    // Still a turn of the event loop, as a real timer would be: answers already on their way are read first.
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}
