/**
 * Prometheus metrics with the original's names and labels (docs/protocol.md, Metrics names), so existing dashboards keep working.
 * One registry per proxy instance: no global state.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { AttemptResult } from './delivery/types';
import { PendingAcks } from './delivery/pending-acks';
import { DurationHistogram, type DurationSeries } from './duration-histogram';
import type { EntryMetrics } from './delivery/service';
import { PLATFORMS } from './platforms/registry';

/** One label set of a counter, as the hot path increments it. */
export interface Tally {
  inc(): void;
}

/** The counters one notification touches, for one platform/type/transport. */
export interface NotificationCounters {
  notifications: Tally;
  success: Tally;
  successWithAck: Tally;
  failure: Tally;
}

/**
 * Counted in a plain number and added to its prom-client child whenever the registry is read: prom-client
 * hashes and validates the labels on every `inc()`, even a child's, which was a few per cent of the CPU
 * a notification costs.
 */
class FoldedTally implements Tally {
  private pending = 0;

  constructor(private readonly child: Counter.Internal) {}

  inc(): void {
    this.pending++;
  }

  fold(): void {
    if (this.pending === 0) return;
    this.child.inc(this.pending);
    this.pending = 0;
  }
}

/** One configured entry as the per-entry gauges see it. */
export interface EntryGaugeSource {
  type: string;
  up: boolean;
  suspect: boolean;
}

// Label values such as the push type come from requests: memos stay bounded, the rest is counted uncached.
const MAX_MEMOIZED = 1000;

export interface ProxyMetricsOptions {
  /** `SendTimeoutSec` (0 means its default, 30): the duration histograms' largest finite bucket. */
  sendTimeoutSec?: number;
}

export class ProxyMetrics {
  readonly registry = new Registry();
  /** Upper bounds of the duration histograms, up to the longest a notification may take. */
  readonly durationBuckets: readonly number[];

  readonly notifications = this.counter('service_notifications_total', 'Notifications built', ['platform', 'type', 'transport']);
  readonly notificationsByAppVersion = this.counter('service_notifications_by_app_version_total', 'Notifications by app version', [
    'platform',
    'app_version',
  ]);
  readonly success = this.counter('service_success_total', 'Notifications delivered', ['platform', 'type', 'transport']);
  readonly successWithAck = this.counter('service_success_with_ack_total', 'Notifications delivered that carry an ack id', [
    'platform',
    'type',
    'transport',
  ]);
  readonly failure = this.counter('service_failure_total', 'Notifications that ended in FAIL or REMOVE', ['platform', 'type', 'transport']);
  readonly failureWithReason = this.counter('service_failure_with_reason_total', 'Failed notifications by reason', [
    'platform',
    'type',
    'transport',
    'reason',
  ]);
  readonly removal = this.counter('service_removal_total', 'Device tokens the chat server was told to forget', [
    'platform',
    'transport',
    'reason',
  ]);
  readonly badRequest = this.counter('service_bad_request_total', 'send_push and ack requests refused as malformed', []);
  /** Never exported by the original (it forgot to register it); acks count here. */
  readonly delivered = this.counter('service_delivered_total', 'Delivery receipts (acks) from devices', ['platform', 'type']);

  // Push Proxy's own, beyond the original's set. Tenant labels are ids from the tenants file: bounded.
  readonly tenantNotifications = this.counter('service_tenant_notifications_total', 'Notifications by tenant and outcome', [
    'tenant',
    'outcome',
  ]);
  readonly authFailures = this.counter(
    'service_auth_failures_total',
    'Requests refused for missing, invalid or restricted tenant credentials',
    ['reason'],
  );
  readonly rateLimited = this.counter('service_rate_limited_total', 'Requests refused by a rate limit', ['limit', 'tenant']);
  readonly rateLimitFallback = new Gauge({
    name: 'service_rate_limit_fallback',
    help: '1 while the shared rate-limit store (Redis) is unreachable and limits are per instance',
    // With workers: 1 if any of them is in fallback, not the number of them.
    aggregator: 'max',
    registers: [this.registry],
  });
  // One series per certificate that expires: an APNs certificate entry (its Type) and `inbound_tls` (TLSCertFile).
  readonly certificateExpiry = new Gauge({
    name: 'service_certificate_expiry_timestamp_seconds',
    help: 'When the certificate stops being valid (its notAfter), in Unix seconds',
    labelNames: ['certificate'],
    // With workers: each read the same files; the earliest end is the one to act on.
    aggregator: 'min',
    registers: [this.registry],
  });

  // result: `reloaded`, or `refused` (the new configuration failed the start-up checks; the old one still serves).
  readonly configReloads = this.counter(
    'service_config_reloads_total',
    'Reloads of the configuration and the files it names (SIGHUP or a changed file), by result',
    ['result'],
  );
  readonly configReloadedAt = new Gauge({
    name: 'service_config_last_reload_success_timestamp_seconds',
    help: 'When the configuration in use was loaded (start-up or the last successful reload), in Unix seconds',
    // With workers: the oldest, so a worker that missed a reload shows.
    aggregator: 'min',
    registers: [this.registry],
  });

  // Per configured entry; `platform_type` is the entry's Type from the config: bounded.
  readonly removeWithheld = this.counter(
    'service_remove_withheld_total',
    'REMOVE answers turned into FAIL because most recent device tokens of the entry got the same kind of refusal',
    ['platform_type', 'reason'],
  );
  readonly entryRemoveGuardSuspect = this.entryGauge(
    'service_entry_remove_guard_suspect',
    '1 while the entry withholds REMOVE answers (most recent device tokens got a refusal its misconfiguration also causes)',
    'max',
  );
  // With workers: 0 if any of them saw the credentials refused.
  readonly entryUp = this.entryGauge(
    'service_entry_up',
    "1 while the provider accepts the entry's credentials, 0 after it refused them (until an answer shows them accepted again)",
    'min',
  );

  // Operator metrics: sends and attempts per entry, delivery receipts, credential refreshes.
  readonly ackLatency = new Histogram({
    name: 'service_ack_latency_seconds',
    help: "Time from a notification's OK answer to its delivery receipt (/api/v1/ack with the same ack_id)",
    labelNames: ['platform'],
    buckets: ACK_LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly attempts = this.counter('service_attempts_total', 'Attempts the retry loop made, by entry and verdict', [
    'platform_type',
    'result',
  ]);
  readonly retries = this.counter('service_retries_total', 'Attempts made again, by entry and the reason of the attempt before', [
    'platform_type',
    'reason',
  ]);
  readonly sendsInFlight = new Gauge({
    name: 'service_sends_in_flight',
    help: 'Attempts under way (waiting for a send slot or sent and not answered), by entry',
    labelNames: ['platform_type'],
    registers: [this.registry],
    collect: () => this.collectInFlight(),
  });
  readonly sendSlotWaits = this.counter(
    'service_send_slot_waits_total',
    'Attempts that found every send slot of the entry taken and waited',
    ['platform_type'],
  );
  readonly credentialRefreshFailures = this.counter(
    'service_credential_refresh_failures_total',
    'Failed refreshes of an APNs provider token or an FCM OAuth access token, by entry',
    ['platform_type', 'kind'],
  );
  private readonly entryCounters = new Map<string, EntryCounters>();
  /** Ack ids answered OK, awaiting their delivery receipt. */
  private readonly pendingAcks = new PendingAcks<Histogram.Internal<string>>();
  private readonly ackLatencyByPlatform = new Map<string, Histogram.Internal<string>>();

  /** Each delivery service's own attempt histogram (`service_apns_request_duration_seconds`, …), by platform. */
  readonly providerRequestDuration: ReadonlyMap<string, DurationHistogram>;
  readonly notificationDuration: DurationHistogram;
  readonly requestDuration: DurationHistogram;

  private readonly countersByLabels = new Map<string, NotificationCounters>();
  private readonly byAppVersion = new Map<string, Tally>();
  private readonly tallies: FoldedTally[] = [];
  private readonly requestDurations: DurationSeries;
  private entries: () => Iterable<EntryGaugeSource> = () => [];

  constructor(options: ProxyMetricsOptions = {}) {
    collectDefaultMetrics({ register: this.registry });
    this.durationBuckets = durationBuckets(options.sendTimeoutSec || DEFAULT_SEND_TIMEOUT_SEC);
    // Built here, not as fields: they need the buckets, and field initializers run before the constructor body.
    this.providerRequestDuration = new Map(
      PLATFORMS.map(({ id, requestDurationMetric: { name, help } }) => [id, this.histogram(name, help, [])] as const),
    );
    this.notificationDuration = this.histogram('service_notification_duration_seconds', 'Duration of each delivery attempt by platform', [
      'platform',
    ]);
    this.requestDuration = this.histogram('service_request_duration_seconds', 'Duration of each send_push or ack request', []);
    this.requestDurations = this.requestDuration.labels();
  }

  notificationCounters(platform: string, type: string, transport: string): NotificationCounters {
    const key = `${platform}\0${type}\0${transport}`;
    let counters = this.countersByLabels.get(key);
    if (!counters) {
      const memoized = this.countersByLabels.size < MAX_MEMOIZED;
      counters = {
        notifications: this.tally(this.notifications.labels(platform, type, transport), memoized),
        success: this.tally(this.success.labels(platform, type, transport), memoized),
        successWithAck: this.tally(this.successWithAck.labels(platform, type, transport), memoized),
        failure: this.tally(this.failure.labels(platform, type, transport), memoized),
      };
      if (memoized) this.countersByLabels.set(key, counters);
    }
    return counters;
  }

  countAppVersion(platform: string, appVersion: string): void {
    const key = `${platform}\0${appVersion}`;
    let counter = this.byAppVersion.get(key);
    if (!counter) {
      const memoized = this.byAppVersion.size < MAX_MEMOIZED;
      counter = this.tally(this.notificationsByAppVersion.labels(platform, appVersion), memoized);
      if (memoized) this.byAppVersion.set(key, counter);
    }
    counter.inc();
  }

  /** Where the per-entry gauges read their values when scraped (their state also changes with time alone). */
  watchEntries(entries: () => Iterable<EntryGaugeSource>): void {
    this.entries = entries;
  }

  private collectEntries(): void {
    // Only the entries configured now: one a reload removed leaves the gauges.
    this.entryUp.reset();
    this.entryRemoveGuardSuspect.reset();
    for (const entry of this.entries()) {
      this.entryUp.set({ platform_type: entry.type }, entry.up ? 1 : 0);
      this.entryRemoveGuardSuspect.set({ platform_type: entry.type }, entry.suspect ? 1 : 0);
    }
  }

  /** The metrics of one configured entry: its attempts, retries, sends in flight, slot waits and credential refreshes. */
  entryMetrics(platform: string, platformType: string): EntryMetrics {
    let counters = this.entryCounters.get(platformType);
    if (!counters) {
      counters = new EntryCounters(this, platform, platformType, (child) => this.tally(child, true));
      this.entryCounters.set(platformType, counters);
    }
    return counters;
  }

  /** A notification with an ack id was answered OK by a service of `platform`: its receipt's latency is measured. */
  answeredWithAck(ackId: string, platform: string): void {
    let child = this.ackLatencyByPlatform.get(platform);
    if (!child) {
      child = this.ackLatency.labels(platform);
      this.ackLatencyByPlatform.set(platform, child);
    }
    this.pendingAcks.answered(ackId, performance.now(), child);
  }

  /** A delivery receipt: observed when its ack id was answered OK recently by this instance; ignored otherwise. */
  acknowledged(ackId: string): void {
    const now = performance.now();
    const pending = this.pendingAcks.take(ackId, now);
    if (pending) pending.label.observe((now - pending.at) / 1000);
  }

  private collectInFlight(): void {
    for (const [type, counters] of this.entryCounters) this.sendsInFlight.set({ platform_type: type }, counters.inFlight);
  }

  /** One send_push or ack request, from its body read to its answer. */
  observeRequest(seconds: number): void {
    this.requestDurations.observe(seconds);
  }

  /** A memoized label set is tallied and folded in when read; any other is counted at once, so it can be forgotten. */
  private tally(child: Counter.Internal, memoized: boolean): Tally {
    if (!memoized) return child;
    const tally = new FoldedTally(child);
    this.tallies.push(tally);
    return tally;
  }

  private counter<L extends string>(name: string, help: string, labelNames: L[]): Counter<L> {
    // Every read of any counter folds all tallies in: a scrape sees every notification counted so far.
    return new Counter({ name, help, labelNames, registers: [this.registry], collect: () => this.foldTallies() });
  }

  private foldTallies(): void {
    for (const tally of this.tallies) tally.fold();
  }

  /** A gauge per configured entry, read from the entries when scraped; `aggregator` sums it up over workers. */
  private entryGauge(name: string, help: string, aggregator: 'min' | 'max'): Gauge<'platform_type'> {
    return new Gauge({
      name,
      help,
      labelNames: ['platform_type'],
      aggregator,
      registers: [this.registry],
      collect: () => this.collectEntries(),
    });
  }

  /** A duration histogram of the hot path (src/duration-histogram.ts), up to the notification's budget. */
  private histogram(name: string, help: string, labelNames: string[]): DurationHistogram {
    return new DurationHistogram(name, help, labelNames, this.durationBuckets, this.registry);
  }
}

const DEFAULT_SEND_TIMEOUT_SEC = 30;
/** prom-client's default buckets, then coarser ones, as far as the budget of a notification reaches. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600];
/** Receipts come from phones: from a fraction of a second to the pending acks' maximum age. */
const ACK_LATENCY_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

/** Buckets up to `sendTimeoutSec`, which is the last: no attempt or send_push lasts longer than the budget. */
export function durationBuckets(sendTimeoutSec: number): number[] {
  return [...DURATION_BUCKETS.filter((bound) => bound < sendTimeoutSec), sendTimeoutSec];
}

/**
 * The counters of one configured entry, as the retry loop and the transports call them on the hot path: plain
 * numbers folded in when the registry is read (FoldedTally), and the sends in flight read when scraped.
 */
class EntryCounters implements EntryMetrics {
  /** Attempts started and not yet ended. */
  inFlight = 0;
  private readonly ok: Tally;
  private readonly remove: Tally;
  private readonly fail: Tally;
  private readonly retryable: Tally;
  private readonly slotWaits: Tally;
  private readonly retriesByReason = new Map<string, Tally>();
  private readonly provider: DurationSeries | undefined;
  private readonly byPlatform: DurationSeries;

  constructor(
    private readonly metrics: ProxyMetrics,
    platform: string,
    private readonly type: string,
    private readonly tally: (child: Counter.Internal) => Tally,
  ) {
    // Every entry's series exist from the start, at 0: a rate over them needs no first event.
    const zeroed = (child: Counter.Internal): Tally => {
      child.inc(0);
      return tally(child);
    };
    this.ok = zeroed(metrics.attempts.labels(type, 'ok'));
    this.remove = zeroed(metrics.attempts.labels(type, 'remove'));
    this.fail = zeroed(metrics.attempts.labels(type, 'fail'));
    this.retryable = zeroed(metrics.attempts.labels(type, 'retry'));
    this.slotWaits = zeroed(metrics.sendSlotWaits.labels(type));
    this.provider = metrics.providerRequestDuration.get(platform)?.labels();
    this.byPlatform = metrics.notificationDuration.labels(platform);
  }

  started(): void {
    this.inFlight++;
  }

  ended(seconds: number, result: AttemptResult | undefined): void {
    this.inFlight--;
    this.provider?.observe(seconds);
    this.byPlatform.observe(seconds);
    // An attempt that threw is a failure of this attempt: the dispatcher answers FAIL for it.
    if (result === undefined) return this.fail.inc();
    if (result.kind === 'retryable') return this.retryable.inc();
    if (result.outcome === 'OK') return this.ok.inc();
    if (result.outcome === 'REMOVE') return this.remove.inc();
    this.fail.inc();
  }

  retrying(reason: string): void {
    let tally = this.retriesByReason.get(reason);
    if (!tally) {
      // Reasons are the providers' codes: few, but memoized only up to a bound, like every label from outside.
      const child = this.metrics.retries.labels(this.type, reason);
      if (this.retriesByReason.size >= MAX_MEMOIZED) return child.inc();
      tally = this.tally(child);
      this.retriesByReason.set(reason, tally);
    }
    tally.inc();
  }

  slotWaited(): void {
    this.slotWaits.inc();
  }

  credentialRefreshFailed(kind: 'apns_token' | 'oauth'): void {
    // Rare (a refresh an hour at most when it works): counted at once.
    this.metrics.credentialRefreshFailures.inc({ platform_type: this.type, kind });
  }
}
