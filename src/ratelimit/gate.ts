/**
 * Push Proxy's own rate limits (docs/protocol.md, Throttling): per client address, per server_id and per tenant, in fixed
 * 1-second windows, kept in memory or in Redis so that several instances share one budget. Unlike the
 * original's Throttle* keys, which never deny, these really deny.
 *
 * With Redis, the proxy never stops deciding: while Redis is unreachable each limiter's insurance
 * limiter (in memory, per instance) decides, and the gate returns to Redis by itself once it answers.
 */
import { createHash } from 'node:crypto';
import Redis from 'ioredis';
import type pino from 'pino';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { parseIp, stripBrackets, unmapIPv4 } from '../net/addresses';
import type { RateLimitSettings } from './settings';

/**
 * `fallbackDivisor` (default 1): while Redis is unreachable each instance allows the per-second limits
 * divided by it (at least 1). 1 keeps one instance's allowance equal to the shared one, so an outage never
 * denies traffic that would have passed; set it to the instance count to keep the fleet-wide total.
 */
export type RateLimitStoreSettings = { type: 'memory' } | { type: 'redis'; url: string; keyPrefix?: string; fallbackDivisor?: number };

/** What a request is counted against; an absent or empty key skips that limit. `tenant.ratePerSec` replaces perTenantPerSec (0: no limit for that tenant). */
export type RateLimitKeys = { clientAddress?: string; serverId?: string; tenant?: { id: string; ratePerSec?: number } };

export type RateLimitDecision = { allowed: true } | { allowed: false; limit: 'client' | 'server_id' | 'tenant'; retryAfterSec: number };

/**
 * `fallback`: decisions are per instance because Redis is unreachable. `since`: when the current state
 * (fallback, or back on Redis) began. `lastError`: the latest Redis problem, kept after recovery for diagnosis.
 */
export interface RateLimitStatus {
  store: 'memory' | 'redis';
  fallback: boolean;
  since?: string;
  lastError?: string;
}

const DEFAULT_KEY_PREFIX = 'pushproxy:rl';
/** A rate-limit answer is worth nothing late: past this the insurance limiter decides. */
const REDIS_COMMAND_TIMEOUT_MS = 500;
const REDIS_CONNECT_TIMEOUT_MS = 2000;
const REDIS_RETRY_CAP_MS = 2000;
/** In fallback over a connection that looks fine (a hung Redis never re-emits 'ready'), one check this often asks Redis whether it is back. */
const PROBE_INTERVAL_MS = 1000;
/** How long ready() waits for the first connection before declaring the fallback. */
const READY_TIMEOUT_MS = 3000;
/** Distinct tenant rates come from tenant configuration, so this is never reached in practice; it only bounds memory. */
const MAX_TENANT_RATE_LIMITERS = 256;
/** Keys that are safe and short stay readable in Redis; anything else is hashed. */
const READABLE_KEY = /^[A-Za-z0-9_.-]{1,64}$/;

type LimitName = 'client' | 'server_id' | 'tenant';
/** `local` is the insurance limiter of `shared` (Redis); a memory store has `shared` only. */
type Limiter = { shared: RateLimiterAbstract; local?: RateLimiterAbstract };
type RedisStore = { client: Redis; keyPrefix: string; fallbackDivisor: number };

/** Passed as consume()'s options; the store and the insurance limiter receive the same object and mark it. */
class ConsumeProbe {
  decidedByInsurance = false;
  storeError?: Error;
}

type Upsert = (...args: unknown[]) => Promise<unknown>;

/**
 * Keeps the error that sent a call to the insurance limiter, for the log and /readyz (the library drops it).
 * `_upsert(rlKey, points, msDuration, forceExpire, options)` is rate-limiter-flexible's store hook (version
 * pinned); should it change, this is simply not called and the gate reports a less precise reason.
 */
class ObservedRateLimiterRedis extends RateLimiterRedis {
  async _upsert(...args: unknown[]): Promise<unknown> {
    try {
      return await (RateLimiterRedis.prototype as unknown as { _upsert: Upsert })._upsert.apply(this, args);
    } catch (error) {
      const options = args[4];
      if (options instanceof ConsumeProbe && error instanceof Error) options.storeError = error;
      throw error;
    }
  }
}

/** Marks the probe so the gate learns, per call, that Redis did not decide. */
class InsuranceLimiter extends RateLimiterMemory {
  override consume(key: string | number, points?: number, options?: { [key: string]: unknown }): Promise<RateLimiterRes> {
    if (options instanceof ConsumeProbe) options.decidedByInsurance = true;
    return super.consume(key, points, options);
  }
}

export class RateLimitGate {
  private readonly logger: pino.Logger;
  private readonly onFallbackChange?: (active: boolean) => void;
  private readonly redis?: RedisStore;
  private readonly clientLimiter?: Limiter;
  private readonly serverIdLimiter?: Limiter;
  private readonly defaultTenantRate: number;
  /** One limiter per distinct tenant rate: a limiter's points are fixed, and rates are few. */
  private readonly tenantLimiters = new Map<number, Limiter>();

  private fallback = false;
  private since?: Date;
  private lastError?: string;
  private lastRedisError?: Error;
  /** Bumped on every state change so that a check that started before one cannot undo it. */
  private stateEpoch = 0;
  private nextProbeAt = 0;
  private closing = false;
  private readyPromise?: Promise<void>;
  private resolveReady?: () => void;
  private readyTimer?: NodeJS.Timeout;

  constructor(options: {
    settings: RateLimitSettings;
    store: RateLimitStoreSettings;
    logger: pino.Logger;
    onFallbackChange?: (active: boolean) => void;
  }) {
    this.logger = options.logger;
    this.onFallbackChange = options.onFallbackChange;
    const { settings, store } = options;
    const setting = (name: keyof RateLimitSettings): number => {
      const rate = wholeRate(settings[name]);
      if (rate === undefined) throw new RangeError(`rate limits: ${name} must be a number >= 0, got ${String(settings[name])}`);
      return rate;
    };
    const perClient = setting('perClientPerSec');
    const perServerId = setting('perServerIdPerSec');
    this.defaultTenantRate = setting('perTenantPerSec');

    if (store.type === 'redis') {
      const divisor = store.fallbackDivisor ?? 1;
      if (!Number.isFinite(divisor) || divisor < 1)
        throw new RangeError(`rate limits: fallbackDivisor must be a number >= 1, got ${String(store.fallbackDivisor)}`);
      this.redis = { client: this.connect(store.url), keyPrefix: store.keyPrefix ?? DEFAULT_KEY_PREFIX, fallbackDivisor: divisor };
    }
    this.clientLimiter = perClient > 0 ? this.makeLimiter('client', perClient) : undefined;
    this.serverIdLimiter = perServerId > 0 ? this.makeLimiter('sid', perServerId) : undefined;
  }

  /** Consumes one point from each applicable limiter, client first: a request denied by its client's limit does not spend its server's or tenant's budget. */
  async check(keys: RateLimitKeys): Promise<RateLimitDecision> {
    try {
      const clientKey = this.clientLimiter && clientAddressKey(keys?.clientAddress);
      const clientDenied = clientKey && (await this.consume(this.clientLimiter, clientKey, 'client'));
      if (clientDenied) return clientDenied;

      const serverIdKey = this.serverIdLimiter && opaqueKey(keys?.serverId);
      const serverIdDenied = serverIdKey && (await this.consume(this.serverIdLimiter, serverIdKey, 'server_id'));
      if (serverIdDenied) return serverIdDenied;

      const tenantKey = opaqueKey(keys?.tenant?.id);
      // An invalid override is ignored rather than trusted: the default still applies.
      const tenantLimiter = tenantKey && this.tenantLimiter(wholeRate(keys?.tenant?.ratePerSec) ?? this.defaultTenantRate);
      const tenantDenied = tenantLimiter && (await this.consume(tenantLimiter, tenantKey, 'tenant'));
      if (tenantDenied) return tenantDenied;

      return { allowed: true };
    } catch (error) {
      // Not reachable by design (store errors go to the insurance limiter); a limiter bug must not drop pushes.
      this.logger.error({ err: error }, 'rate limit check failed; request allowed');
      return { allowed: true };
    }
  }

  status(): RateLimitStatus {
    return {
      store: this.redis ? 'redis' : 'memory',
      fallback: this.fallback,
      ...(this.since ? { since: this.since.toISOString() } : {}),
      ...(this.lastError ? { lastError: this.lastError } : {}),
    };
  }

  /** Resolves when Redis first became ready or the gate fell back, at most READY_TIMEOUT_MS later. */
  ready(): Promise<void> {
    const redis = this.redis;
    if (!redis) return Promise.resolve();
    this.readyPromise ??= new Promise<void>((resolve) => {
      if (redis.client.status === 'ready' || this.fallback || this.closing) return resolve();
      this.resolveReady = resolve;
      this.readyTimer = setTimeout(() => {
        this.enterFallback(new Error(`Redis not ready within ${READY_TIMEOUT_MS} ms (connection ${redis.client.status})`));
        this.settleReady();
      }, READY_TIMEOUT_MS);
      this.readyTimer.unref();
    });
    return this.readyPromise;
  }

  async close(): Promise<void> {
    this.closing = true;
    this.settleReady();
    const client = this.redis?.client;
    if (!client) return;
    if (client.status === 'end') return;
    if (client.status === 'ready') {
      // Wait for the end after QUIT: disconnect() on a socket that has just closed would start ioredis's disconnect timer.
      const ended = new Promise<void>((resolve) => client.once('end', () => resolve()));
      client.quit().catch(() => undefined);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        ended,
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, 1000);
        }),
      ]);
      clearTimeout(timer);
      if (connectionStatus(client) === 'end') return;
    }
    client.disconnect();
  }

  /** A denial, or undefined when allowed. */
  private async consume(limiter: Limiter, key: string, limit: LimitName): Promise<RateLimitDecision | undefined> {
    const target = this.useRedis(limiter) ? limiter.shared : (limiter.local ?? limiter.shared);
    const probe = new ConsumeProbe();
    const epoch = this.stateEpoch;
    try {
      await target.consume(key, 1, probe);
      return undefined;
    } catch (rejection) {
      if (!(rejection instanceof RateLimiterRes)) throw rejection;
      return { allowed: false, limit, retryAfterSec: Math.max(1, Math.ceil(rejection.msBeforeNext / 1000)) };
    } finally {
      // Only a call that went to Redis says anything about Redis; a state change meanwhile has the last word.
      if (target === limiter.shared && limiter.local && epoch === this.stateEpoch) {
        if (probe.decidedByInsurance) this.enterFallback(this.insuranceReason(probe.storeError));
        else this.leaveFallback();
      }
    }
  }

  /**
   * In fallback, checks go straight to the per-instance limiters instead of each waiting for Redis to fail
   * (up to the command timeout if it hangs). Once a second, if the connection looks up, one check tries Redis.
   */
  private useRedis(limiter: Limiter): boolean {
    if (!this.fallback || !limiter.local) return true;
    const now = Date.now();
    if (this.redis?.client.status !== 'ready' || now < this.nextProbeAt) return false;
    this.nextProbeAt = now + PROBE_INTERVAL_MS;
    return true;
  }

  private tenantLimiter(rate: number): Limiter | undefined {
    if (rate <= 0) return undefined;
    let limiter = this.tenantLimiters.get(rate);
    if (!limiter) {
      if (this.tenantLimiters.size >= MAX_TENANT_RATE_LIMITERS) {
        // Evicting only loses in-memory counts for that rate (Redis keeps them): a bounded cost of an unexpected config.
        this.tenantLimiters.delete(this.tenantLimiters.keys().next().value!);
      }
      // All rates share one key space, so a tenant whose rate changes keeps its current window's count.
      limiter = this.makeLimiter('tenant', rate);
      this.tenantLimiters.set(rate, limiter);
    }
    return limiter;
  }

  private makeLimiter(kind: 'client' | 'sid' | 'tenant', points: number): Limiter {
    if (!this.redis) return { shared: new RateLimiterMemory({ points, duration: 1, keyPrefix: `${DEFAULT_KEY_PREFIX}:${kind}` }) };
    const { client, keyPrefix, fallbackDivisor } = this.redis;
    const local = new InsuranceLimiter({
      points: Math.max(1, Math.floor(points / fallbackDivisor)),
      duration: 1,
      keyPrefix: `fallback:${kind}`,
    });
    const shared = new ObservedRateLimiterRedis({
      storeClient: client,
      points,
      duration: 1,
      keyPrefix: `${keyPrefix}:${kind}`,
      rejectIfRedisNotReady: true,
      insuranceLimiter: local,
    });
    return { shared, local };
  }

  private connect(url: string): Redis {
    const client = new Redis(url, {
      // Commands must fail at once when Redis is away (the insurance limiter decides), never queue.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
      connectTimeout: REDIS_CONNECT_TIMEOUT_MS,
      // ioredis holds the process this long when disconnecting a connection that is already gone.
      disconnectTimeout: 200,
      // Forever, capped and jittered, so the gate comes back by itself and instances do not reconnect in step.
      retryStrategy: (attempt) => Math.min(50 * 2 ** Math.min(attempt - 1, 10), REDIS_RETRY_CAP_MS) * (0.8 + Math.random() * 0.2),
    });
    client.on('ready', () => {
      if (this.closing) return;
      this.leaveFallback();
      this.settleReady();
    });
    client.on('error', (error: Error) => {
      this.lastRedisError = error;
      if (this.closing) return;
      if (client.status !== 'ready') this.enterFallback(error);
      else this.lastError = error.message;
    });
    const onDisconnect = () => {
      if (!this.closing) this.enterFallback(this.lastRedisError ?? new Error('Redis connection closed'));
    };
    client.on('close', onDisconnect);
    client.on('end', onDisconnect);
    return client;
  }

  /** The store's own error when it says more than "not ready" (a timeout, OOM, a refused command). */
  private insuranceReason(storeError: Error | undefined): Error {
    const status = this.redis?.client.status;
    if (storeError && (status === 'ready' || !this.lastRedisError)) return storeError;
    return new Error(`Redis connection ${status}${this.lastRedisError ? `: ${this.lastRedisError.message}` : ''}`);
  }

  private enterFallback(error: Error): void {
    this.lastError = error.message;
    if (this.fallback || this.closing) return;
    this.fallback = true;
    this.since = new Date();
    this.nextProbeAt = Date.now() + PROBE_INTERVAL_MS;
    this.stateEpoch++;
    this.logger.warn({ err: error }, 'rate limits: Redis unreachable, using per-instance fallback limits until it returns');
    this.settleReady();
    this.notify(true);
  }

  private leaveFallback(): void {
    if (this.closing) return;
    if (!this.fallback) {
      this.since ??= new Date();
      return;
    }
    this.fallback = false;
    this.since = new Date();
    this.stateEpoch++;
    this.logger.info('rate limits: Redis is back, limits are shared again');
    this.notify(false);
  }

  private notify(active: boolean): void {
    try {
      this.onFallbackChange?.(active);
    } catch (error) {
      this.logger.error({ err: error }, 'rate limits: onFallbackChange failed');
    }
  }

  private settleReady(): void {
    clearTimeout(this.readyTimer);
    this.readyTimer = undefined;
    this.resolveReady?.();
    this.resolveReady = undefined;
  }
}

/** Read afresh: TypeScript would keep a narrowing of `client.status` across an await. */
function connectionStatus(client: Redis): string {
  return client.status;
}

/**
 * A rate as a limiter counts it (whole requests per 1-second window, 0 = no limit), or undefined when `value`
 * is not a number >= 0. A fraction of a request per window would deny everything: round down, but keep a set limit on.
 */
function wholeRate(value: unknown): number | undefined {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) return undefined;
  return value === 0 ? 0 : Math.max(1, Math.floor(value));
}

/** Untrusted strings become bounded keys with no separators; hashed ones cannot collide with readable ones (`#`). */
function opaqueKey(value: unknown): string | undefined {
  if (typeof value !== 'string' || value === '') return undefined;
  return READABLE_KEY.test(value) ? value : `#${createHash('sha256').update(value).digest('base64url').slice(0, 27)}`;
}

/**
 * IPv4 as is; IPv4-mapped IPv6 as its IPv4; other IPv6 by its /64, since one host can rotate through a /64
 * at will; anything else (a unix socket, a malformed value) hashed.
 */
function clientAddressKey(value: unknown): string | undefined {
  if (typeof value !== 'string' || value === '') return undefined;
  // The zone id goes first, whatever it holds: it names the receiving interface, not the client.
  const parsed = parseIp(stripBrackets(value).replace(/%.*$/, ''));
  if (!parsed) return opaqueKey(value);
  const address = unmapIPv4(parsed);
  if (!('parts' in address)) return address.toString(); // IPv4: only IPv6 has groups
  // Groups in hex without leading zeros and without `::`, as these keys have always been written.
  return `${address.parts
    .slice(0, 4)
    .map((group) => group.toString(16))
    .join(':')}::/64`;
}
