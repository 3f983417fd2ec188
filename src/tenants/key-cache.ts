/**
 * The cache of keys already checked against one version of the tenants file. Checking a key costs an scrypt
 * computation (tens of milliseconds on the thread pool) per hash of its tenant, and a push server sends its key with
 * every request, so each distinct key is checked once: the verdict is remembered, and requests that present the same
 * new key while it is being checked wait for that one check. Entries are the SHA-256 of the key, never the key: a
 * fast, unambiguous lookup that is useless to anyone who reads the process's memory. A cache belongs to one version
 * of the file and is dropped with it (see auth.ts), so a key revoked in a new version is refused at once, even if it
 * was verified a moment before.
 */
import { LRUCache } from 'lru-cache';

/** Each of the two caches (keys verified, keys refused) holds at most this many entries by default. */
export const DEFAULT_CACHE_SIZE = 10_000;

/**
 * What checking a key against its tenant's hashes found. 'error' (the hash could not be computed) is not remembered,
 * so the next request with that key is checked again.
 */
export type KeyCheck = 'verified' | 'revoked' | 'invalid' | 'error';
type RememberedFailure = 'revoked' | 'invalid';

export class KeyCache {
  // Bounded, and least recently used first out, because anyone can present keys: a stream of made-up keys for a real
  // tenant (each one refused, each one remembered) must not grow memory without end, while the keys in use stay.
  private readonly verified: LRUCache<string, true>;
  private readonly failed: LRUCache<string, RememberedFailure>;
  /** Checks under way, so a burst of requests with one new key costs one scrypt, not one each. */
  private readonly inFlight = new Map<string, Promise<KeyCheck>>();

  /** `size` bounds each of the two caches, and must be at least 1. */
  constructor(size: number = DEFAULT_CACHE_SIZE) {
    this.verified = new LRUCache({ max: size });
    this.failed = new LRUCache({ max: size });
  }

  /** The remembered verdict on the key with this digest, or undefined if it has not been checked (or was evicted). */
  lookup(digest: string): Exclude<KeyCheck, 'error'> | undefined {
    if (this.verified.get(digest)) return 'verified';
    return this.failed.get(digest);
  }

  /** Runs `verify` for this digest unless a check of it is under way (then waits for that), and remembers the verdict. */
  verifyOnce(digest: string, verify: () => Promise<KeyCheck>): Promise<KeyCheck> {
    let pending = this.inFlight.get(digest);
    if (!pending) {
      pending = verify()
        .then((verdict) => {
          if (verdict === 'verified') this.verified.set(digest, true);
          else if (verdict !== 'error') this.failed.set(digest, verdict);
          return verdict;
        })
        .finally(() => this.inFlight.delete(digest));
      this.inFlight.set(digest, pending);
    }
    return pending;
  }

  /** How many verified keys are remembered. */
  get verifiedCount(): number {
    return this.verified.size;
  }

  /** How many refused keys are remembered. */
  get failedCount(): number {
    return this.failed.size;
  }
}
