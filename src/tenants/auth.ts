/**
 * Authentication: which tenant, if any, a request's Authorization header proves it is. The header carries a key
 * (keys.ts) that names its tenant; the key is checked with scrypt against that tenant's hashes from the tenants file,
 * through the KeyCache so that each distinct key is checked once. LoadedTenants holds one version of the file in
 * the form the request path needs, with its own cache: a reload replaces it whole, so a request is judged against
 * one version of the file, never a mix of two, and no verdict outlives the file it was reached under.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { TenantsFileData } from './file';
import { KeyCache, type KeyCheck } from './key-cache';
import { tenantIdOfKey, verifyKey } from './keys';

/** A tenant as the request path sees it: no key material, so it can be logged or passed around freely. */
export interface Tenant {
  id: string;
  serverIds?: string[];
  platforms?: string[];
  ratePerSec?: number;
  revoked?: boolean;
}

export type TenantAuthFailure = 'missing' | 'malformed' | 'unknown' | 'revoked' | 'invalid';
export type TenantAuth = { ok: true; tenant: Tenant } | { ok: false; reason: TenantAuthFailure };

/** The key a request presents, the tenant it names in HTTP Basic (if any), and the key's cache entry. */
export interface PresentedKey {
  key: string;
  username: string | undefined;
  digest: string;
}

/** What LoadedTenants reports to the store that owns it: the store's statistics outlive each version of the file. */
export interface AuthHooks {
  logger: Logger;
  /** Called before each scrypt computation. */
  countHashVerification(): void;
}

// Headers are bounded by Node (16 KiB), but nothing legitimate comes near this; avoid hashing junk.
const MAX_AUTHORIZATION_LENGTH = 1024;

/**
 * `Basic base64(tenant:key)` (what Go sends for `https://tenant:key@host`) or `Bearer key`, scheme
 * case-insensitive. Only the form is checked here, never the key.
 */
export function parseAuthorization(header: string | undefined): PresentedKey | { reason: 'missing' | 'malformed' } {
  if (header === undefined || header.trim() === '') return { reason: 'missing' };
  if (header.length > MAX_AUTHORIZATION_LENGTH) return { reason: 'malformed' };
  const match = /^\s*([A-Za-z]+) +(\S+)\s*$/.exec(header);
  if (!match) return { reason: 'malformed' };
  const scheme = match[1]!.toLowerCase();
  const credentials = match[2]!;
  let key: string;
  let username: string | undefined;
  if (scheme === 'bearer') {
    key = credentials;
  } else if (scheme === 'basic') {
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(credentials)) return { reason: 'malformed' };
    const decoded = Buffer.from(credentials, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return { reason: 'malformed' };
    username = decoded.slice(0, colon);
    key = decoded.slice(colon + 1);
  } else {
    return { reason: 'malformed' };
  }
  return { key, username, digest: createHash('sha256').update(key).digest('base64') };
}

interface TenantRecord {
  tenant: Tenant;
  activeHashes: readonly string[];
  revokedHashes: readonly string[];
}

/** One version of the tenants file, ready to authenticate against, with the cache of keys checked against it. */
export class LoadedTenants {
  /** The tenants in file order, frozen: callers may keep and pass them around. */
  readonly list: readonly Tenant[];
  readonly cache: KeyCache;
  private readonly records: ReadonlyMap<string, TenantRecord>;

  constructor(
    data: TenantsFileData,
    cacheSize: number,
    private readonly hooks: AuthHooks,
  ) {
    const records = new Map<string, TenantRecord>();
    for (const entry of data.tenants) {
      const tenant: Tenant = { id: entry.id, revoked: entry.revoked === true };
      if (entry.serverIds) tenant.serverIds = Object.freeze([...entry.serverIds]) as string[];
      if (entry.platforms) tenant.platforms = Object.freeze([...entry.platforms]) as string[];
      if (entry.ratePerSec !== undefined) tenant.ratePerSec = entry.ratePerSec;
      records.set(entry.id, {
        tenant: Object.freeze(tenant),
        activeHashes: entry.keys.filter((k) => k.revoked !== true).map((k) => k.hash),
        revokedHashes: entry.keys.filter((k) => k.revoked === true).map((k) => k.hash),
      });
    }
    this.records = records;
    this.list = Object.freeze([...records.values()].map((r) => r.tenant));
    this.cache = new KeyCache(cacheSize);
  }

  /** Checks, in this order, the key's form, the Basic username, the tenant, the cache, and only then the hashes. */
  async authenticate(presented: PresentedKey): Promise<TenantAuth> {
    const id = tenantIdOfKey(presented.key);
    if (id === null) return { ok: false, reason: 'malformed' };
    // Tenant ids are not secret (they are in the push server URL), so comparing them need not be constant-time.
    if (presented.username !== undefined && presented.username !== id) return { ok: false, reason: 'invalid' };
    const record = this.records.get(id);
    if (!record) return { ok: false, reason: 'unknown' };
    if (record.tenant.revoked) return { ok: false, reason: 'revoked' };
    const verdict =
      this.cache.lookup(presented.digest) ?? (await this.cache.verifyOnce(presented.digest, () => this.verify(record, presented.key)));
    if (verdict === 'verified') return { ok: true, tenant: record.tenant };
    return { ok: false, reason: verdict === 'error' ? 'invalid' : verdict };
  }

  private async verify(record: TenantRecord, key: string): Promise<KeyCheck> {
    try {
      if (await this.matchesAny(key, record.activeHashes)) return 'verified';
      // Only after the active keys fail: telling "revoked" from "invalid" is for the operator's log, not the hot path.
      return (await this.matchesAny(key, record.revokedHashes)) ? 'revoked' : 'invalid';
    } catch (err) {
      this.hooks.logger.error({ tenant: record.tenant.id, problem: (err as Error).message }, 'tenant key verification failed');
      return 'error';
    }
  }

  private async matchesAny(key: string, hashes: readonly string[]): Promise<boolean> {
    for (const hash of hashes) {
      this.hooks.countHashVerification();
      if (await verifyKey(key, hash)) return true;
    }
    return false;
  }
}
