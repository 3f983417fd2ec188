/**
 * Prometheus metrics with the original's names and labels (docs/protocol.md, Metrics names), so existing dashboards keep working.
 * One registry per proxy instance: no global state.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
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

export class ProxyMetrics {
  readonly registry = new Registry();

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

  /** Each delivery service's own attempt histogram (`service_apns_request_duration_seconds`, …), by platform. */
  readonly providerRequestDuration = new Map(
    PLATFORMS.map(({ id, requestDurationMetric: { name, help } }) => [id, this.histogram(name, help, [])] as const),
  );
  readonly notificationDuration = this.histogram('service_notification_duration_seconds', 'Duration of each delivery attempt by platform', [
    'platform',
  ]);
  readonly requestDuration = this.histogram('service_request_duration_seconds', 'Duration of each send_push or ack request', []);

  private readonly countersByLabels = new Map<string, NotificationCounters>();
  private readonly byAppVersion = new Map<string, Tally>();
  private readonly tallies: FoldedTally[] = [];
  private readonly requestDurations = this.requestDuration.labels();
  private entries: () => Iterable<EntryGaugeSource> = () => [];

  constructor() {
    collectDefaultMetrics({ register: this.registry });
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
    for (const entry of this.entries()) {
      this.entryUp.set({ platform_type: entry.type }, entry.up ? 1 : 0);
      this.entryRemoveGuardSuspect.set({ platform_type: entry.type }, entry.suspect ? 1 : 0);
    }
  }

  /** What a service of `platform` calls with each attempt's duration, in seconds. */
  attemptObserver(platform: string): (seconds: number) => void {
    // Children, even of an unlabelled histogram: observe() on the metric itself builds a closure every call.
    const byPlatform = this.notificationDuration.labels(platform);
    const provider = this.providerRequestDuration.get(platform)?.labels();
    return (seconds) => {
      provider?.observe(seconds);
      byPlatform.observe(seconds);
    };
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

  private histogram<L extends string>(name: string, help: string, labelNames: L[]): Histogram<L> {
    return new Histogram({ name, help, labelNames, registers: [this.registry] });
  }
}
