/**
 * Where usage counts live. In memory, each process counts its own notifications and a question to every worker
 * (src/operator-queries.ts) sums them. With a Redis store (RateLimitStore.Type "redis") every instance adds its
 * counts to Redis, so any instance answers for the whole deployment. Counting never waits for anything: the Redis
 * store counts in memory too and adds what it counted to Redis in one transaction about once a second.
 */
import Redis from 'ioredis';
import type { Logger } from 'pino';
import type { ProxyConfig } from '../config/types';
import type { DeliveryRecord } from '../delivery/dispatcher';
import { parsePlatform } from '../delivery/platform-string';
import type { OperatorQueries } from '../operator-queries';
import type { PlatformDefinition } from '../platforms/platform';
import { entriesOf, PLATFORMS, type PlatformSettings } from '../platforms/registry';
import {
  addDays,
  dayStartMs,
  fieldKey,
  isDay,
  mergeRows,
  NO_TENANT,
  oldestKeptDay,
  OTHER_PLATFORM,
  parseFieldKey,
  UsageCounts,
  usageRowsOf,
  utcDay,
  type UsageQuery,
  type UsageRow,
} from './counts';

export interface UsageStore {
  readonly kind: 'memory' | 'redis';
  /** Counts one answered notification: a Map increment, never I/O, never throws. */
  readonly record: (record: DeliveryRecord) => void;
  /** The counts asked for, for the whole deployment (every worker's memory, or Redis). */
  read(query: UsageQuery): Promise<UsageRow[]>;
  /** Counts this instance could not save (Redis away too long); 0 for the memory store. */
  dropped(): number;
  /** The configuration a reload switched to: its entries' Types are counted under their names from now on. */
  configured(config: ProxyConfig): void;
  close(): Promise<void>;
}

export interface UsageStoreOptions {
  logger: Logger;
  queries: OperatorQueries;
  /** The clock for pruning; Date.now by default. */
  now?: () => number;
  /** The Redis store's flush interval; 1 s by default. */
  flushIntervalMs?: number;
}

/** The question every worker answers from its own memory. */
export const USAGE_QUESTION = 'usage';

const DAY_MS = 86_400_000;
const KEY_PREFIX = 'pushproxy:usage:';
const FLUSH_INTERVAL_MS = 1000;
/** Counts waiting for Redis are bounded: past this many (day, tenant, platform, outcome) the oldest days go. */
const MAX_PENDING_FIELDS = 20_000;
const WARN_INTERVAL_MS = 60_000;
/** Saving counts can wait longer than a rate-limit check: nothing waits for it. */
const REDIS_TIMING = { connectTimeoutMs: 2000, commandTimeoutMs: 2000, retryCapMs: 2000 } as const;
/** Platforms come from requests: the memo of their labels stays bounded. */
const MAX_MEMOIZED_PLATFORMS = 1000;

/** The store the configuration asks for: Redis when RateLimitStore is redis, memory otherwise. */
export function openUsageStore(config: ProxyConfig, options: UsageStoreOptions): UsageStore {
  const labels = new UsageLabels(config);
  const retentionDays = config.UsageRetentionDays;
  return config.RateLimitStore.Type === 'redis'
    ? new RedisUsageStore(config.RateLimitStore.URL, labels, retentionDays, options)
    : new MemoryUsageStore(labels, retentionDays, options);
}

/**
 * The day, tenant and platform a notification is counted under. The platform is the entry's Type (`apple_rn`,
 * without the app version suffix): it tells the apps of a tenant apart, and with `other` for a Type no entry has,
 * the labels are bounded by the configuration, not by what requests send.
 */
export class UsageLabels {
  private readonly types = new Set<string>();
  private readonly platforms = new Map<string, string>();
  private day = '';
  private dayStart = 0;

  constructor(config: PlatformSettings) {
    this.configure(config);
  }

  /**
   * Adds the Types of `config`'s entries (a reload's). Types a reload removed stay known: they were configured
   * today, and the labels stay bounded by the configurations this process has run.
   */
  configure(config: PlatformSettings): void {
    for (const definition of PLATFORMS as readonly PlatformDefinition[]) {
      for (const entry of entriesOf(config, definition)) this.types.add(entry.Type);
    }
    this.platforms.clear();
  }

  /** The UTC day of `at`; the string is made once a day. */
  dayOf(at: Date): string {
    const ms = at.getTime();
    if (ms < this.dayStart || ms >= this.dayStart + DAY_MS) {
      this.day = utcDay(ms);
      this.dayStart = dayStartMs(this.day);
    }
    return this.day;
  }

  keyOf(record: DeliveryRecord): string {
    return fieldKey(record.tenant ?? NO_TENANT, this.platformOf(record.platform), record.outcome);
  }

  private platformOf(sent: string): string {
    let label = this.platforms.get(sent);
    if (label === undefined) {
      const { type } = parsePlatform(sent);
      label = this.types.has(type) ? type : OTHER_PLATFORM;
      if (this.platforms.size < MAX_MEMOIZED_PLATFORMS) this.platforms.set(sent, label);
    }
    return label;
  }
}

/** Each process's own counts; `read` asks every worker and sums their answers. */
export class MemoryUsageStore implements UsageStore {
  readonly kind = 'memory';
  private readonly counts = new UsageCounts();
  private newestDay = '';
  private readonly now: () => number;
  private readonly queries: OperatorQueries;

  constructor(
    private readonly labels: UsageLabels,
    private readonly retentionDays: number,
    options: Pick<UsageStoreOptions, 'queries' | 'now'>,
  ) {
    this.now = options.now ?? Date.now;
    this.queries = options.queries;
    this.queries.answer(USAGE_QUESTION, (params) => this.localRows(params));
  }

  readonly record = (record: DeliveryRecord): void => {
    const day = this.labels.dayOf(record.at);
    // A new day is the moment the oldest one leaves the window.
    if (day > this.newestDay) {
      this.newestDay = day;
      this.counts.pruneBefore(oldestKeptDay(day, this.retentionDays));
    }
    this.counts.add(day, this.labels.keyOf(record));
  };

  /** This process's counts for a query that came as JSON (from another process, perhaps); nothing for a malformed one. */
  localRows(params: unknown): UsageRow[] {
    const query = usageQueryOf(params);
    if (!query) return [];
    this.counts.pruneBefore(oldestKeptDay(utcDay(this.now()), this.retentionDays));
    return this.counts.rows(query);
  }

  async read(query: UsageQuery): Promise<UsageRow[]> {
    const answers = await this.queries.ask(USAGE_QUESTION, query);
    return mergeRows(answers.map(usageRowsOf));
  }

  dropped(): number {
    return 0;
  }

  configured(config: ProxyConfig): void {
    this.labels.configure(config);
  }

  async close(): Promise<void> {}
}

/**
 * One hash per day in Redis (`pushproxy:usage:YYYY-MM-DD`, a field per tenant, platform and outcome), which
 * expires when the day leaves the retention window. Counts wait in memory and go in one MULTI about once a
 * second and at close, so no notification waits for Redis and a clean stop loses nothing. While Redis is away the
 * counts wait (the oldest days dropped beyond a bound, and counted), a warning is logged at most once a minute,
 * and the next flush tries again.
 */
export class RedisUsageStore implements UsageStore {
  readonly kind = 'redis';
  private pending = new UsageCounts();
  private client: Redis | undefined;
  private lastError: string | undefined;
  private lastWarnAt = -Infinity;
  private droppedCounts = 0;
  private flushing: Promise<void> = Promise.resolve();
  private readonly timer: NodeJS.Timeout;
  private closing: Promise<void> | undefined;
  private readonly logger: Logger;
  private readonly now: () => number;

  constructor(
    private readonly url: string,
    private readonly labels: UsageLabels,
    private readonly retentionDays: number,
    options: UsageStoreOptions,
  ) {
    this.logger = options.logger;
    this.now = options.now ?? Date.now;
    this.timer = setInterval(() => void this.flush().catch(() => undefined), options.flushIntervalMs ?? FLUSH_INTERVAL_MS);
    this.timer.unref();
  }

  readonly record = (record: DeliveryRecord): void => {
    this.pending.add(this.labels.dayOf(record.at), this.labels.keyOf(record));
    if (this.pending.size > MAX_PENDING_FIELDS) this.drop(this.pending.trimOldest(MAX_PENDING_FIELDS));
  };

  /** Saves this instance's counts first, so its own answers are never behind. */
  async read(query: UsageQuery): Promise<UsageRow[]> {
    await this.flush().catch(() => undefined);
    const client = await this.connected();
    const days: string[] = [];
    for (let day = query.from; day <= query.to; day = addDays(day, 1)) days.push(day);
    const pipeline = client.pipeline();
    for (const day of days) pipeline.hgetall(KEY_PREFIX + day);
    const results = (await pipeline.exec()) ?? [];
    const rows: UsageRow[] = [];
    results.forEach(([err, hash], i) => {
      if (err) throw err;
      for (const [key, value] of Object.entries(hash as Record<string, string>)) {
        const field = parseFieldKey(key);
        const count = Number(value);
        if (!field || !Number.isSafeInteger(count) || (query.tenant !== undefined && field.tenant !== query.tenant)) continue;
        rows.push({ day: days[i]!, ...field, count });
      }
    });
    return rows;
  }

  dropped(): number {
    return this.droppedCounts;
  }

  configured(config: ProxyConfig): void {
    this.labels.configure(config);
  }

  /** Adds the waiting counts to Redis; one flush at a time. Rejects when Redis did not take them (they wait for the next). */
  flush(): Promise<void> {
    const run = this.flushing.then(() => this.flushOnce());
    this.flushing = run.catch(() => undefined);
    return run;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      clearInterval(this.timer);
      await this.flush().catch((err: unknown) => {
        this.logger.warn({ err, counts: this.waitingCounts() }, 'usage counts not saved to Redis before stopping: they are lost');
      });
      await this.disconnect();
    })();
    return this.closing;
  }

  private async flushOnce(): Promise<void> {
    this.drop(this.pending.pruneBefore(oldestKeptDay(utcDay(this.now()), this.retentionDays)));
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new UsageCounts();
    try {
      const client = await this.connected();
      const multi = client.multi();
      for (const [day, fields] of batch.entries()) {
        const key = KEY_PREFIX + day;
        for (const [field, count] of fields) multi.hincrby(key, field, count);
        // The day leaves the window at the start of the day `retentionDays` later.
        multi.expireat(key, Math.floor(dayStartMs(addDays(day, this.retentionDays)) / 1000));
      }
      const results = await multi.exec();
      const failed = results?.find(([err]) => err)?.[0];
      if (!results || failed) throw failed ?? new Error('transaction discarded');
    } catch (err) {
      // Nothing of a failed transaction was applied: the counts wait for the next flush.
      batch.merge(this.pending);
      this.pending = batch;
      if (this.pending.size > MAX_PENDING_FIELDS) this.drop(this.pending.trimOldest(MAX_PENDING_FIELDS));
      this.warn(err as Error);
      throw err;
    }
  }

  private drop(counts: number): void {
    if (counts === 0) return;
    this.droppedCounts += counts;
    this.logger.warn(
      { counts, dropped: this.droppedCounts },
      'usage counts dropped: Redis has been away too long or they left the retention window',
    );
  }

  private warn(err: Error): void {
    const now = Date.now();
    if (now - this.lastWarnAt < WARN_INTERVAL_MS) return;
    this.lastWarnAt = now;
    this.logger.warn(
      { err: err.message, waiting: this.waitingCounts() },
      'usage counts not saved to Redis; kept in memory and tried again every second (logged at most once a minute)',
    );
  }

  private waitingCounts(): number {
    return this.pending.rows({ from: '0000-00-00', to: '9999-99-99' }).reduce((sum, row) => sum + row.count, 0);
  }

  /** The connection, opened on first use, once it is ready (or an error within the connect timeout). */
  private async connected(): Promise<Redis> {
    this.client ??= this.open();
    const client = this.client;
    if (client.status === 'ready') return client;
    await new Promise<void>((resolve, reject) => {
      const onReady = () => settle();
      const timer = setTimeout(
        () =>
          settle(
            new Error(
              `Redis not ready within ${REDIS_TIMING.connectTimeoutMs} ms (${client.status}${this.lastError ? `: ${this.lastError}` : ''})`,
            ),
          ),
        REDIS_TIMING.connectTimeoutMs,
      );
      function settle(err?: Error): void {
        clearTimeout(timer);
        client.off('ready', onReady);
        if (err) reject(err);
        else resolve();
      }
      client.once('ready', onReady);
    });
    return client;
  }

  private open(): Redis {
    // Commands fail at once while disconnected (the counts wait in memory), and reconnection goes on forever, jittered.
    const retryStrategy = (attempt: number) =>
      Math.min(50 * 2 ** Math.min(attempt - 1, 10), REDIS_TIMING.retryCapMs) * (0.8 + Math.random() * 0.2);
    const client = new Redis(this.url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      connectTimeout: REDIS_TIMING.connectTimeoutMs,
      commandTimeout: REDIS_TIMING.commandTimeoutMs,
      disconnectTimeout: 200,
      retryStrategy,
    });
    client.on('error', (err: Error) => {
      this.lastError = err.message;
    });
    return client;
  }

  private async disconnect(): Promise<void> {
    const client = this.client;
    if (!client || client.status === 'end') return;
    if (client.status === 'ready') {
      const ended = new Promise<void>((resolve) => client.once('end', () => resolve()));
      client.quit().catch(() => undefined);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([ended, new Promise<void>((resolve) => (timer = setTimeout(resolve, 1000)))]);
      clearTimeout(timer);
      if ((client.status as string) === 'end') return;
    }
    client.disconnect();
  }
}

/** A query that came as JSON, checked; undefined when it is not one. */
function usageQueryOf(params: unknown): UsageQuery | undefined {
  if (params === null || typeof params !== 'object') return undefined;
  const { tenant, from, to } = params as Record<string, unknown>;
  if (typeof from !== 'string' || typeof to !== 'string' || !isDay(from) || !isDay(to)) return undefined;
  if (tenant !== undefined && typeof tenant !== 'string') return undefined;
  return { ...(tenant === undefined ? {} : { tenant }), from, to };
}
