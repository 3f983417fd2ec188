/**
 * Hosted mode's tenants: who may send, with which credential, for which servers and platforms, at what rate.
 *
 * The file (config key `TenantsFile`), version 1. Field names are case-sensitive and unknown fields are refused,
 * because a misspelt restriction silently ignored would widen a tenant's access:
 *
 *   {
 *     "version": 1,
 *     "tenants": [
 *       {
 *         "id": "acme",                          // [a-z0-9][a-z0-9_-]{0,62}; unique
 *         "keys": [                              // several, so a key can be rotated without downtime
 *           { "hash": "scrypt$N=16384,r=8,p=1$<salt>$<hash>", "created": "2025-01-31T12:00:00.000Z", "revoked": false }
 *         ],
 *         "serverIds": ["…"],                    // optional: only these Mattermost server_ids; absent = any
 *         "platforms": ["apple_rn"],             // optional: only these platform types; absent = any
 *         "ratePerSec": 50,                      // optional: requests per second; absent = the proxy's default
 *         "revoked": false                       // optional: true refuses every key of the tenant
 *       }
 *     ]
 *   }
 *
 * Keys are never stored, only their scrypt hashes (see keys.ts); `push-proxy tenants` writes this file.
 */
import type { Stats } from 'node:fs';
import { open as openFile, stat } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import Ajv, { type ErrorObject } from 'ajv';
import type { Logger } from 'pino';
import { ConfigError } from '../config/errors';
import { TENANT_ID_PATTERN, parseKeyHash, tenantIdOfKey, verifyKey } from './keys';

export const TENANTS_FILE_VERSION = 1;

export interface TenantKeyEntry {
  hash: string;
  /** ISO date; for the operator only. */
  created: string;
  revoked?: boolean;
}

export interface TenantEntry {
  id: string;
  keys: TenantKeyEntry[];
  serverIds?: string[];
  platforms?: string[];
  ratePerSec?: number;
  revoked?: boolean;
}

export interface TenantsFileData {
  version: typeof TENANTS_FILE_VERSION;
  tenants: TenantEntry[];
}

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

export interface TenantStoreOptions {
  logger: Logger;
  /** How often the file is checked for changes; polling with stat, not inotify, sees atomic renames and Secret symlink swaps. */
  pollIntervalMs?: number;
  /** Bound on each credential cache (verified and failed). */
  cacheSize?: number;
}

export interface TenantStoreStats {
  /** scrypt computations since open: the expensive part, which the caches exist to avoid. */
  hashVerifications: number;
  reloads: number;
  failedReloads: number;
  cachedCredentials: number;
  cachedFailures: number;
}

const DEFAULT_POLL_INTERVAL_MS = 1000;
const DEFAULT_CACHE_SIZE = 10_000;
// Headers are bounded by Node (16 KiB), but nothing legitimate comes near this; avoid hashing junk.
const MAX_AUTHORIZATION_LENGTH = 1024;

const FIELDS_BY_LEVEL = {
  file: ['version', 'tenants'],
  tenant: ['id', 'keys', 'serverIds', 'platforms', 'ratePerSec', 'revoked'],
  key: ['hash', 'created', 'revoked'],
} as const;

const stringList = { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } };
const validateTenantsFile = new Ajv({ allErrors: true }).compile({
  type: 'object',
  required: ['version', 'tenants'],
  additionalProperties: false,
  properties: {
    version: { type: 'integer', const: TENANTS_FILE_VERSION },
    tenants: {
      type: 'array',
      items: {
        type: 'object',
        required: ['id', 'keys'],
        additionalProperties: false,
        properties: {
          id: { type: 'string', pattern: TENANT_ID_PATTERN.source },
          keys: {
            type: 'array',
            items: {
              type: 'object',
              required: ['hash', 'created'],
              additionalProperties: false,
              properties: { hash: { type: 'string' }, created: { type: 'string' }, revoked: { type: 'boolean' } },
            },
          },
          serverIds: stringList,
          platforms: stringList,
          ratePerSec: { type: 'number', exclusiveMinimum: 0 },
          revoked: { type: 'boolean' },
        },
      },
    },
  },
});

/** Parses and fully validates a tenants file's text; a ConfigError names the file, the tenant, the field and the fix. */
export function parseTenantsFile(text: string, file: string): TenantsFileData {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(
      `TenantsFile ${file} is not valid JSON: ${describeJsonError(err as Error, text)}. Fix the syntax, or rewrite the file with "push-proxy tenants".`,
    );
  }
  const problems: string[] = [];
  if (!validateTenantsFile(raw)) {
    problems.push(...(validateTenantsFile.errors ?? []).map((e) => describeSchemaError(e, raw)));
  } else {
    const data = raw as TenantsFileData;
    const seen = new Set<string>();
    data.tenants.forEach((tenant, i) => {
      if (seen.has(tenant.id)) problems.push(`tenant "${tenant.id}" (tenants[${i}]) appears twice: merge the two entries`);
      seen.add(tenant.id);
      tenant.keys.forEach((key, k) => {
        if (!parseKeyHash(key.hash))
          problems.push(`tenant "${tenant.id}" (tenants[${i}]) keys[${k}].hash is not a hash written by "push-proxy tenants add"`);
      });
    });
  }
  if (problems.length > 0) {
    const shown = problems.slice(0, 5).join('; ') + (problems.length > 5 ? `; and ${problems.length - 5} more` : '');
    throw new ConfigError(`TenantsFile ${file} is invalid: ${shown}. Fix the file, or rewrite it with "push-proxy tenants".`);
  }
  return raw as TenantsFileData;
}

/** V8 quotes the text around a syntax error, which may be a hash: keep only what and where. */
function describeJsonError(err: Error, text: string): string {
  const what = err.message
    .replace(/, .* is not valid JSON$/s, '')
    .replace(/ in JSON at position \d+.*$/s, '')
    .replace(/ after JSON at position \d+.*$/s, ' after the JSON');
  const position = /at position (\d+)/.exec(err.message);
  if (!position) return what;
  const before = text.slice(0, Number(position[1]));
  const line = before.split('\n').length;
  return `${what} at line ${line}, column ${before.length - before.lastIndexOf('\n')}`;
}

function describeSchemaError(error: ErrorObject, raw: unknown): string {
  const segments = error.instancePath.split('/').slice(1);
  const level = segments.length === 0 ? 'file' : segments.length <= 2 ? 'tenant' : 'key';
  let subject = 'the file';
  let field = segments;
  if (segments[0] === 'tenants' && segments[1] !== undefined) {
    const id = ((raw as { tenants: Array<{ id?: unknown }> }).tenants[Number(segments[1])] ?? {}).id;
    subject = typeof id === 'string' ? `tenant ${JSON.stringify(id)} (tenants[${segments[1]}])` : `tenants[${segments[1]}]`;
    field = segments.slice(2);
  }
  const name = field
    .map((p) => (/^\d+$/.test(p) ? `[${p}]` : `.${p}`))
    .join('')
    .replace(/^\./, '');
  const what = name ? `${subject} ${name}` : subject;
  switch (error.keyword) {
    case 'required':
      return `${what} is missing "${error.params.missingProperty}"`;
    case 'additionalProperties':
      return `${what} has unknown field "${error.params.additionalProperty}" (known fields, case-sensitive: ${FIELDS_BY_LEVEL[level].join(', ')})`;
    case 'const':
      return `${what} must be ${TENANTS_FILE_VERSION}: this Push Proxy reads version ${TENANTS_FILE_VERSION} files`;
    case 'pattern':
      return `${what} must be 1 to 63 lowercase letters, digits, "_" or "-", starting with a letter or digit`;
    case 'minItems':
      return `${what} must list at least one value, or be left out to allow any`;
    case 'minLength':
      return `${what} must not be empty`;
    case 'exclusiveMinimum':
      return `${what} must be a number above 0`;
    case 'type':
      return `${what} must be ${error.params.type === 'integer' ? 'a whole number' : `${/^[aeiou]/.test(String(error.params.type)) ? 'an' : 'a'} ${error.params.type}`}`;
    default:
      return `${what} ${error.message ?? 'is invalid'}`;
  }
}

interface TenantRecord {
  tenant: Tenant;
  activeHashes: readonly string[];
  revokedHashes: readonly string[];
}

/** One loaded file with its caches: replaced whole on reload, so a request sees one file, never a mix. */
interface State {
  tenants: ReadonlyMap<string, TenantRecord>;
  list: readonly Tenant[];
  /** SHA-256 of keys that verified: a fast, unambiguous cache key that is useless to anyone who reads memory. */
  verified: LruCache<string, true>;
  failed: LruCache<string, 'revoked' | 'invalid'>;
  /** Verifications under way, so a burst of requests with one new key costs one scrypt, not one each. */
  inFlight: Map<string, Promise<TenantAuth>>;
}

type Presented = { key: string; username: string | undefined; digest: string };

export class TenantStore {
  private state: State;
  private readonly counters = { hashVerifications: 0, reloads: 0, failedReloads: 0 };
  /** Which version of the file was last read, loaded or refused: each version is read once. */
  private seenVersion: string;
  private reloading: Promise<boolean> = Promise.resolve(true);
  private polling = false;
  private closed = false;
  private timer: NodeJS.Timeout | undefined;

  private constructor(
    private readonly file: string,
    loaded: { data: TenantsFileData; version: string },
    private readonly logger: Logger,
    private readonly cacheSize: number,
  ) {
    this.state = this.buildState(loaded.data);
    this.seenVersion = loaded.version;
  }

  /** Reads and validates the file (ConfigError if it cannot be used), then polls it for changes. */
  static async open(file: string, options: TenantStoreOptions): Promise<TenantStore> {
    let read: { text: string; version: string };
    try {
      read = await readVersioned(file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        throw new ConfigError(
          `TenantsFile ${file} does not exist. Create it with "push-proxy tenants add <tenant-id>", or point TenantsFile at the tenants file.`,
        );
      }
      throw new ConfigError(`TenantsFile ${file} cannot be read (${code ?? (err as Error).message}). Check its path and permissions.`);
    }
    const store = new TenantStore(
      file,
      { data: parseTenantsFile(read.text, file), version: read.version },
      options.logger,
      options.cacheSize ?? DEFAULT_CACHE_SIZE,
    );
    store.logLoaded('tenants loaded');
    // Not fs.watchFile: it takes its baseline asynchronously, so a change between our read and that baseline would
    // go unseen. Comparing with the version actually read cannot miss one.
    store.timer = setInterval(() => void store.poll(), options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS).unref();
    return store;
  }

  get size(): number {
    return this.state.list.length;
  }

  tenants(): readonly Tenant[] {
    return this.state.list;
  }

  get stats(): TenantStoreStats {
    return { ...this.counters, cachedCredentials: this.state.verified.size, cachedFailures: this.state.failed.size };
  }

  /**
   * `Basic base64(tenant:key)` (what Go sends for `https://tenant:key@host`) or `Bearer key`, scheme
   * case-insensitive. A key seen before under the current file costs a hash lookup; a new one, one scrypt per key
   * of its tenant at most.
   */
  async authenticate(authorization: string | undefined): Promise<TenantAuth> {
    const presented = parseAuthorization(authorization);
    if ('reason' in presented) return { ok: false, reason: presented.reason };
    const state = this.state;
    const result = await this.authenticateIn(state, presented);
    // A reload during the scrypt may have revoked this key: answer from the file now in force.
    return state === this.state ? result : this.authenticateIn(this.state, presented);
  }

  /** The tenant's server_id and platform restrictions; the error is meant for the FAIL answer's `error`. */
  allows(tenant: Tenant, request: { serverId: string; platformType: string }): { ok: true } | { ok: false; error: string } {
    if (tenant.serverIds && !tenant.serverIds.includes(request.serverId)) {
      return { ok: false, error: `Failed because server_id ${JSON.stringify(request.serverId)} is not allowed for tenant "${tenant.id}"` };
    }
    if (tenant.platforms && !tenant.platforms.includes(request.platformType)) {
      return {
        ok: false,
        error: `Failed because platform ${JSON.stringify(request.platformType)} is not allowed for tenant "${tenant.id}"`,
      };
    }
    return { ok: true };
  }

  /** Re-reads the file now (polling calls this on a change); false, with the old state kept, if it is unusable. */
  reload(): Promise<boolean> {
    // Serialised, so a slow read cannot install an older file over a newer one.
    const next = this.reloading.then(() => this.loadFile());
    this.reloading = next;
    return next;
  }

  /** Stops polling; authentication keeps working on the state loaded last. */
  close(): void {
    this.closed = true;
    clearInterval(this.timer);
  }

  private async poll(): Promise<void> {
    if (this.polling || this.closed) return;
    this.polling = true;
    try {
      const current = await stat(this.file).then(versionOf, errorVersion);
      if (current !== this.seenVersion) await this.reload();
    } finally {
      this.polling = false;
    }
  }

  private async loadFile(): Promise<boolean> {
    if (this.closed) return false;
    let data: TenantsFileData;
    try {
      const read = await readVersioned(this.file).catch((err: unknown) => {
        this.seenVersion = errorVersion(err);
        throw new ConfigError(`TenantsFile ${this.file} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
      });
      this.seenVersion = read.version;
      data = parseTenantsFile(read.text, this.file);
    } catch (err) {
      this.counters.failedReloads++;
      this.logger.error(
        { file: this.file, tenants: this.size, problem: (err as Error).message },
        'TenantsFile reload failed: keeping the tenants loaded before',
      );
      return false;
    }
    // Parsed in full before this one assignment: requests under way keep the state they started with.
    this.state = this.buildState(data);
    this.counters.reloads++;
    this.logLoaded('tenants reloaded');
    return true;
  }

  private buildState(data: TenantsFileData): State {
    const tenants = new Map<string, TenantRecord>();
    for (const entry of data.tenants) {
      const tenant: Tenant = { id: entry.id, revoked: entry.revoked === true };
      if (entry.serverIds) tenant.serverIds = Object.freeze([...entry.serverIds]) as string[];
      if (entry.platforms) tenant.platforms = Object.freeze([...entry.platforms]) as string[];
      if (entry.ratePerSec !== undefined) tenant.ratePerSec = entry.ratePerSec;
      tenants.set(entry.id, {
        tenant: Object.freeze(tenant),
        activeHashes: entry.keys.filter((k) => k.revoked !== true).map((k) => k.hash),
        revokedHashes: entry.keys.filter((k) => k.revoked === true).map((k) => k.hash),
      });
    }
    return {
      tenants,
      list: Object.freeze([...tenants.values()].map((r) => r.tenant)),
      verified: new LruCache(this.cacheSize),
      failed: new LruCache(this.cacheSize),
      inFlight: new Map(),
    };
  }

  private logLoaded(message: string): void {
    const active = this.state.list.filter((t) => !t.revoked).length;
    this.logger.info({ file: this.file, tenants: this.size, active }, message);
    if (active === 0) this.logger.warn({ file: this.file }, 'TenantsFile has no active tenant: every request will be refused');
  }

  private async authenticateIn(state: State, presented: Presented): Promise<TenantAuth> {
    const id = tenantIdOfKey(presented.key);
    if (id === null) return { ok: false, reason: 'malformed' };
    // Tenant ids are not secret (they are in the push server URL), so comparing them need not be constant-time.
    if (presented.username !== undefined && presented.username !== id) return { ok: false, reason: 'invalid' };
    const record = state.tenants.get(id);
    if (!record) return { ok: false, reason: 'unknown' };
    if (record.tenant.revoked) return { ok: false, reason: 'revoked' };
    if (state.verified.get(presented.digest)) return { ok: true, tenant: record.tenant };
    const failure = state.failed.get(presented.digest);
    if (failure) return { ok: false, reason: failure };
    let pending = state.inFlight.get(presented.digest);
    if (!pending) {
      pending = this.verify(state, record, presented).finally(() => state.inFlight.delete(presented.digest));
      state.inFlight.set(presented.digest, pending);
    }
    return pending;
  }

  private async verify(state: State, record: TenantRecord, presented: Presented): Promise<TenantAuth> {
    try {
      if (await this.matchesAny(presented.key, record.activeHashes)) {
        state.verified.set(presented.digest, true);
        return { ok: true, tenant: record.tenant };
      }
      // Only after the active keys fail: telling "revoked" from "invalid" is for the operator's log, not the hot path.
      const reason = (await this.matchesAny(presented.key, record.revokedHashes)) ? 'revoked' : 'invalid';
      state.failed.set(presented.digest, reason);
      return { ok: false, reason };
    } catch (err) {
      this.logger.error({ tenant: record.tenant.id, problem: (err as Error).message }, 'tenant key verification failed');
      return { ok: false, reason: 'invalid' };
    }
  }

  private async matchesAny(key: string, hashes: readonly string[]): Promise<boolean> {
    for (const hash of hashes) {
      this.counters.hashVerifications++;
      if (await verifyKey(key, hash)) return true;
    }
    return false;
  }
}

/** The content and the identity of what was read, from the same open file: a later swap cannot mix them up. */
async function readVersioned(file: string): Promise<{ text: string; version: string }> {
  const handle = await openFile(file, 'r');
  try {
    const version = versionOf(await handle.stat());
    return { text: await handle.readFile('utf8'), version };
  } finally {
    await handle.close();
  }
}

function versionOf(stats: Stats): string {
  return `${stats.dev}:${stats.ino}:${stats.size}:${stats.mtimeMs}:${stats.ctimeMs}`;
}

function errorVersion(err: unknown): string {
  return `unreadable:${(err as NodeJS.ErrnoException).code ?? String(err)}`;
}

function parseAuthorization(header: string | undefined): Presented | { reason: 'missing' | 'malformed' } {
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

/** Least-recently-used eviction over Map's insertion order. */
class LruCache<K, V> {
  private readonly entries = new Map<K, V>();

  constructor(private readonly capacity: number) {}

  get(key: K): V | undefined {
    const value = this.entries.get(key);
    if (value !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, value);
    }
    return value;
  }

  set(key: K, value: V): void {
    this.entries.delete(key);
    this.entries.set(key, value);
    if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value as K);
  }

  get size(): number {
    return this.entries.size;
  }
}
