/**
 * Prometheus metrics with the original's names and labels (spec §12), so existing dashboards keep working.
 * One registry per proxy instance: no global state.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The counters one notification touches, for one platform/type/transport. */
export interface NotificationCounters {
  notifications: Counter.Internal;
  success: Counter.Internal;
  successWithAck: Counter.Internal;
  failure: Counter.Internal;
}

// Label values such as the push type come from requests: memos stay bounded, the rest is counted uncached.
const MAX_MEMOIZED = 1000;

export class ProxyMetrics {
  readonly registry = new Registry();

  readonly notifications = this.counter('service_notifications_total', 'Notifications built', ['platform', 'type', 'transport']);
  readonly notificationsByAppVersion = this.counter('service_notifications_by_app_version_total', 'Notifications by app version', ['platform', 'app_version']);
  readonly success = this.counter('service_success_total', 'Notifications delivered', ['platform', 'type', 'transport']);
  readonly successWithAck = this.counter('service_success_with_ack_total', 'Notifications delivered that carry an ack id', ['platform', 'type', 'transport']);
  readonly failure = this.counter('service_failure_total', 'Notifications that ended in FAIL or REMOVE', ['platform', 'type', 'transport']);
  readonly failureWithReason = this.counter('service_failure_with_reason_total', 'Failed notifications by reason', ['platform', 'type', 'transport', 'reason']);
  readonly removal = this.counter('service_removal_total', 'Device tokens the chat server was told to forget', ['platform', 'transport', 'reason']);
  readonly badRequest = this.counter('service_bad_request_total', 'send_push and ack requests refused as malformed', []);
  /** Never exported by the original (it forgot to register it); acks count here. */
  readonly delivered = this.counter('service_delivered_total', 'Delivery receipts (acks) from devices', ['platform', 'type']);

  // Push Proxy's own, beyond the original's set. Tenant labels are ids from the tenants file: bounded.
  readonly tenantNotifications = this.counter('service_tenant_notifications_total', 'Notifications by tenant and outcome', ['tenant', 'outcome']);
  readonly authFailures = this.counter('service_auth_failures_total', 'Requests refused for missing, invalid or restricted tenant credentials', ['reason']);
  readonly rateLimited = this.counter('service_rate_limited_total', 'Requests refused by a rate limit', ['limit', 'tenant']);
  readonly rateLimitFallback = new Gauge({
    name: 'service_rate_limit_fallback',
    help: '1 while the shared rate-limit store (Redis) is unreachable and limits are per instance',
    // With workers: 1 if any of them is in fallback, not the number of them.
    aggregator: 'max',
    registers: [this.registry],
  });

  readonly apnsRequestDuration = this.histogram('service_apns_request_duration_seconds', 'Duration of each APNs attempt', []);
  readonly fcmRequestDuration = this.histogram('service_fcm_request_duration_seconds', 'Duration of each FCM attempt', []);
  readonly notificationDuration = this.histogram('service_notification_duration_seconds', 'Duration of each delivery attempt by platform', ['platform']);
  readonly requestDuration = this.histogram('service_request_duration_seconds', 'Duration of each send_push or ack request', []);

  // `inc({labels})` hashes its labels on every call; labelled children are looked up once.
  private readonly countersByLabels = new Map<string, NotificationCounters>();
  private readonly byAppVersion = new Map<string, Counter.Internal>();
  private readonly attemptDurations = {
    apple: this.notificationDuration.labels('apple'),
    android: this.notificationDuration.labels('android'),
  };
  // Children of the unlabelled histograms too: observe() on the metric itself builds a closure every call.
  private readonly serviceDurations = {
    apple: this.apnsRequestDuration.labels(),
    android: this.fcmRequestDuration.labels(),
  };
  private readonly requestDurations = this.requestDuration.labels();

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  notificationCounters(platform: string, type: string, transport: string): NotificationCounters {
    const key = `${platform}\0${type}\0${transport}`;
    let counters = this.countersByLabels.get(key);
    if (!counters) {
      counters = {
        notifications: this.notifications.labels(platform, type, transport),
        success: this.success.labels(platform, type, transport),
        successWithAck: this.successWithAck.labels(platform, type, transport),
        failure: this.failure.labels(platform, type, transport),
      };
      if (this.countersByLabels.size < MAX_MEMOIZED) this.countersByLabels.set(key, counters);
    }
    return counters;
  }

  countAppVersion(platform: string, appVersion: string): void {
    const key = `${platform}\0${appVersion}`;
    let counter = this.byAppVersion.get(key);
    if (!counter) {
      counter = this.notificationsByAppVersion.labels(platform, appVersion);
      if (this.byAppVersion.size < MAX_MEMOIZED) this.byAppVersion.set(key, counter);
    }
    counter.inc();
  }

  observeAttempt(platform: 'apple' | 'android', seconds: number): void {
    this.serviceDurations[platform].observe(seconds);
    this.attemptDurations[platform].observe(seconds);
  }

  /** One send_push or ack request, from its body read to its answer. */
  observeRequest(seconds: number): void {
    this.requestDurations.observe(seconds);
  }

  private counter<L extends string>(name: string, help: string, labelNames: L[]): Counter<L> {
    return new Counter({ name, help, labelNames, registers: [this.registry] });
  }

  private histogram<L extends string>(name: string, help: string, labelNames: L[]): Histogram<L> {
    return new Histogram({ name, help, labelNames, registers: [this.registry] });
  }
}
