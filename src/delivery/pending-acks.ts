/**
 * Ack ids of notifications answered OK, awaiting their delivery receipt (`/api/v1/ack` with the same id), so the
 * time between the two can be measured. Bounded in number and age: receipts that never come (an app that sends
 * none, a phone that is off) must not grow memory, and one that comes after the maximum age measures nothing.
 */
import { LRUCache } from 'lru-cache';

/**
 * Ack ids kept at most: the oldest answered is forgotten first. Receipts come within seconds when they come, so
 * 10,000 covers a minute and more of a busy server's answers; 100,000 added about 45 MB to the peak memory of a
 * proxy under load (measured with `npm run bench`), for receipts that mostly arrive long before they are evicted.
 */
export const MAX_PENDING_ACKS = 10_000;
/** How long an answered ack id waits for its receipt. */
export const MAX_PENDING_ACK_AGE_MS = 10 * 60_000;

export interface PendingAck<Label> {
  /** When the OK was answered, on the clock the caller passes (milliseconds). */
  at: number;
  /** What the receipt is counted under (the histogram of the notification's platform). */
  label: Label;
}

export class PendingAcks<Label> {
  // The age is checked against the answer time each entry keeps anyway: lru-cache's own ttl would read the
  // clock and keep timestamps of its own on every set, on the hot path.
  private readonly pending: LRUCache<string, PendingAck<Label>>;

  constructor(
    max = MAX_PENDING_ACKS,
    private readonly maxAgeMs = MAX_PENDING_ACK_AGE_MS,
  ) {
    this.pending = new LRUCache({ max });
  }

  /** An OK answered at `now` for `ackId`; a second OK for the same id starts its wait anew. */
  answered(ackId: string, now: number, label: Label): void {
    this.pending.set(ownCopy(ackId), { at: now, label });
  }

  /** The answer `ackId` awaited, once: undefined for an unknown id, one already taken, or one older than the maximum age. */
  take(ackId: string, now: number): PendingAck<Label> | undefined {
    const pending = this.pending.get(ackId);
    if (pending === undefined) return undefined;
    this.pending.delete(ackId);
    return now - pending.at <= this.maxAgeMs ? pending : undefined;
  }

  get size(): number {
    return this.pending.size;
  }
}

/**
 * The id as a string of its own. A decoded ack id is a slice of the request's body text, and V8 keeps the
 * whole body alive for as long as the slice lives: kept for minutes in this map, 100,000 ids held about 70 MB
 * of bodies instead of 16 MB of ids. Concatenating, then slicing, makes V8 copy the characters into a new
 * string the slice refers to instead.
 */
function ownCopy(id: string): string {
  return (' ' + id).slice(1);
}
