/**
 * Tenant keys: `pp_<tenant id>_<43 chars base64url of 32 random bytes>`. The id is embedded so a Bearer key alone
 * names its tenant, and a lookup costs one hash verification instead of one per tenant. Only scrypt hashes are
 * stored, as self-describing strings `scrypt$N=16384,r=8,p=1$<salt base64>$<hash base64>`, so the parameters can
 * be raised later without invalidating existing keys.
 */
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

export const TENANT_ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;

const KEY_PREFIX = 'pp_';
const SECRET_BYTES = 32;
const SECRET_LENGTH = 43; // base64url of 32 bytes, unpadded
const SECRET_PATTERN = /^[A-Za-z0-9_-]{43}$/;

const HASH_PARAMS = { N: 16384, r: 8, p: 1 } as const;
const SALT_BYTES = 16;
const HASH_BYTES = 32;
const HASH_FORMAT = /^scrypt\$N=(\d{1,8}),r=(\d{1,3}),p=(\d{1,3})\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/;
// A tenants file is operator-written, but a typo in N must not make every request allocate gigabytes.
const MAX_SCRYPT_MEMORY = 256 * 1024 * 1024;

export interface KeyHash {
  N: number;
  r: number;
  p: number;
  salt: Buffer;
  hash: Buffer;
}

export function isValidTenantId(id: string): boolean {
  return TENANT_ID_PATTERN.test(id);
}

/** Throws an Error saying what a tenant id may hold. */
export function checkTenantId(id: string): void {
  if (!isValidTenantId(id)) {
    throw new Error(
      `tenant id ${JSON.stringify(id)} is invalid: use 1 to 63 lowercase letters, digits, "_" or "-", starting with a letter or digit`,
    );
  }
}

export function generateTenantKey(tenantId: string): string {
  checkTenantId(tenantId);
  return `${KEY_PREFIX}${tenantId}_${randomBytes(SECRET_BYTES).toString('base64url')}`;
}

/** The tenant id a key embeds, or null if it is not a key of this format. The secret is fixed-length, so ids may hold "_". */
export function tenantIdOfKey(key: string): string | null {
  if (!key.startsWith(KEY_PREFIX) || key.length < KEY_PREFIX.length + 2 + SECRET_LENGTH) return null;
  const separator = key.length - SECRET_LENGTH - 1;
  if (key[separator] !== '_' || !SECRET_PATTERN.test(key.slice(separator + 1))) return null;
  const id = key.slice(KEY_PREFIX.length, separator);
  return isValidTenantId(id) ? id : null;
}

export async function hashKey(key: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const hash = await deriveKey(key, { ...HASH_PARAMS, salt, hash: Buffer.alloc(HASH_BYTES) });
  return `scrypt$N=${HASH_PARAMS.N},r=${HASH_PARAMS.r},p=${HASH_PARAMS.p}$${unpadded(salt)}$${unpadded(hash)}`;
}

/** Parses a stored hash; null if it is not one this module wrote or could verify within sane resources. */
export function parseKeyHash(stored: string): KeyHash | null {
  const match = HASH_FORMAT.exec(stored);
  if (!match) return null;
  const [N, r, p] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const salt = Buffer.from(match[4]!, 'base64');
  const hash = Buffer.from(match[5]!, 'base64');
  // Re-encoding rejects base64 with stray bits, so one stored string means exactly one hash.
  if (unpadded(salt) !== match[4] || unpadded(hash) !== match[5]) return null;
  const powerOfTwo = N > 1 && (N & (N - 1)) === 0;
  if (!powerOfTwo || r < 1 || p < 1 || p > 16 || 128 * N * r > MAX_SCRYPT_MEMORY) return null;
  if (salt.length < 8 || hash.length < 16 || hash.length > 64) return null;
  return { N, r, p, salt, hash };
}

/** Recomputes with the stored parameters and compares in constant time; false for a hash it cannot parse. */
export async function verifyKey(key: string, stored: string): Promise<boolean> {
  const parsed = parseKeyHash(stored);
  if (!parsed) return false;
  const derived = await deriveKey(key, parsed);
  return timingSafeEqual(derived, parsed.hash);
}

/** Runs on libuv's thread pool: it costs tens of milliseconds, but never blocks the event loop. */
function deriveKey(key: string, params: KeyHash): Promise<Buffer> {
  const options: ScryptOptions = { N: params.N, r: params.r, p: params.p, maxmem: 128 * params.N * params.r + 1024 * 1024 };
  return new Promise((resolve, reject) => {
    scrypt(key, params.salt, params.hash.length, options, (err, derived) => (err ? reject(err) : resolve(derived)));
  });
}

function unpadded(buffer: Buffer): string {
  return buffer.toString('base64').replace(/=+$/, '');
}
