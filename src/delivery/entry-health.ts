/**
 * Whether a configured entry's provider accepts its credentials, learnt from the answers themselves: an answer
 * refusing them marks the entry failed, its next delivery marks it up again. Pure: time comes from the caller.
 */
import type { EntryState } from './types';

export interface CredentialFailure {
  /** What the provider said and what the operator should check. */
  advice: string;
  since: Date;
}

export type HealthChange = 'failed' | 'recovered' | undefined;

export class EntryHealth {
  private failure: CredentialFailure | undefined;

  /** The provider refused the credentials; says `failed` when the entry was up until now. */
  refused(advice: string, at: Date): HealthChange {
    const wasUp = this.failure === undefined;
    // The latest advice wins (a revoked key may be followed by a wrong one); `since` stays the first refusal's.
    this.failure = { advice, since: this.failure?.since ?? at };
    return wasUp ? 'failed' : undefined;
  }

  /** The provider accepted the credentials (it delivered, or judged the device); says `recovered` after a failure. */
  accepted(): HealthChange {
    if (this.failure === undefined) return undefined;
    this.failure = undefined;
    return 'recovered';
  }

  get up(): boolean {
    return this.failure === undefined;
  }

  get current(): CredentialFailure | undefined {
    return this.failure;
  }
}

/**
 * /readyz's verdict: ready while at least one entry can deliver. One app whose credentials were revoked does
 * not take the instance out of service for the others; an instance with no entry that can deliver is.
 */
export function isReady(entries: readonly EntryState[]): boolean {
  return entries.some((entry) => entry.state === 'ready');
}
