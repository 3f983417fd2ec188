/**
 * docs/protocol.md, Processing order and refusals, after decoding: check the ids, truncate, route by platform,
 * deliver, and turn the result into the answer a chat server acts on. Counts and logs every outcome.
 */
import type { Logger } from 'pino';
import { logFlat, redactToken } from '../logging';
import type { NotificationCounters, ProxyMetrics } from '../metrics';
import type { PushNotification, PushResponse } from '../notification';
import { truncateNotification } from '../payload/truncate';
import { appVersionLabel, parsePlatform, type ParsedPlatform } from './platform-string';
import type { AttemptRecord, DeliveryResult, PushService } from './types';

/**
 * One answered notification, for the trace (src/trace) and the usage counts. No full device token in any field
 * but `received` and `request`, which an observer must redact in anything it shows or passes on (the trace builds
 * its records through src/trace/record.ts, which does).
 */
export interface DeliveryRecord {
  at: Date;
  serverId: string;
  /** The tenant that sent it (hosted mode with a tenants file); undefined otherwise. */
  tenant?: string;
  /** The notification's ack_id and post_id, when it had them. */
  ackId?: string;
  postId?: string;
  /** The platform as sent (`apple_rn-v2`). */
  platform: string;
  pushType: string;
  transport: string;
  outcome: 'OK' | 'REMOVE' | 'FAIL';
  reason?: string;
  error?: string;
  attempts: number;
  ms: number;
  device: string;
  /** What went to APNs or FCM, as built (with the full token: observers redact what they keep); absent when refused before building. */
  request?: unknown;
  /** The notification as decoded, before truncation: full token and message text; observers redact what they keep. */
  received?: PushNotification;
  /** Each attempt, when the services keep them (the trace is on). */
  attemptLog?: AttemptRecord[];
  /** The provider's id for the final answer (`apns-id`, FCM's message name). */
  providerId?: string;
}

export type DeliveryObserver = (record: DeliveryRecord) => void;

// Platforms come from requests: the memo of parsed ones stays bounded.
const MAX_MEMOIZED_PLATFORMS = 1000;

export class PushDispatcher {
  private readonly platforms = new Map<string, ParsedPlatform>();

  constructor(
    private readonly services: ReadonlyMap<string, PushService>,
    private readonly metrics: ProxyMetrics,
    private readonly logger: Logger,
    private readonly observe?: DeliveryObserver,
  ) {}

  /**
   * docs/protocol.md, Processing order and refusals: the check every notification passes first. The refusal
   * (missing server or device id), or the platform string parsed, for access control and then `send`.
   */
  preflight(received: PushNotification): ParsedPlatform | string {
    if (received.server_id === '') return 'Failed because of missing server Id';
    if (received.device_id === '') return `Failed because of missing device Id serverId=${received.server_id}`;
    return this.parsed(received.platform);
  }

  /**
   * `platform`: what `preflight` said of this notification. `tenant`: who sent it, in hosted mode, for the
   * per-tenant metric. Never rejects.
   */
  send(received: PushNotification, platform: ParsedPlatform | string = this.preflight(received), tenant?: string): Promise<PushResponse> {
    if (typeof platform === 'string') return Promise.resolve(this.refuse(received, platform, tenant));
    const notification = truncateNotification(received);
    const { type, appVersion } = platform;
    const service = this.services.get(type);
    if (!service) {
      return Promise.resolve(
        this.refuse(
          notification,
          `Did not send message because of missing platform property type=${type} serverId=${notification.server_id}`,
          tenant,
        ),
      );
    }
    this.metrics.countAppVersion(type, appVersionLabel(appVersion));

    // A `transport` the service does not honour (VoIP on Android) is sent, and counted, as a standard push.
    const transport = service.transports.has(notification.transport) ? notification.transport : '';
    const counters = this.metrics.notificationCounters(service.platform, notification.type, transport);
    counters.notifications.inc();

    const started = performance.now();
    const answer = (result: DeliveryResult): PushResponse => {
      this.record(notification, type, service.platform, transport, counters, result, performance.now() - started, tenant, received);
      if (tenant !== undefined) this.metrics.tenantNotifications.inc({ tenant, outcome: result.outcome });
      if (result.outcome === 'OK') return OK;
      if (result.outcome === 'REMOVE') return REMOVE;
      return { status: 'FAIL', error: result.error ?? 'unknown error' };
    };
    // A bug in a service must still give the chat server a definite answer.
    const broken = (err: unknown): PushResponse => {
      this.logger.error({ err, platform: type }, 'delivery failed unexpectedly');
      return answer({ outcome: 'FAIL', error: 'internal error', reason: 'internal error', attempts: 0 });
    };
    try {
      return service.deliver(notification, { appVersion }).then(answer, broken);
    } catch (err) {
      return Promise.resolve(broken(err));
    }
  }

  /**
   * Hands a record to the observers (trace, usage). A bug there must not change the answer: the notification was
   * delivered (or refused) whatever the trace makes of it, so the error is logged and the answer stands.
   */
  private tell(record: DeliveryRecord): void {
    try {
      this.observe!(record);
    } catch (err) {
      this.logger.error({ err }, 'recording a notification for the trace or usage failed: a bug; the answer is unchanged');
    }
  }

  /** A chat server sends a handful of platforms: each is parsed once. */
  private parsed(platform: string): ParsedPlatform {
    let parsed = this.platforms.get(platform);
    if (parsed === undefined) {
      parsed = parsePlatform(platform);
      if (this.platforms.size < MAX_MEMOIZED_PLATFORMS) this.platforms.set(platform, parsed);
    }
    return parsed;
  }

  private refuse(n: PushNotification, error: string, tenant: string | undefined): PushResponse {
    this.metrics.badRequest.inc();
    this.logger.info({ error }, 'push refused');
    if (this.observe)
      this.tell(deliveryRecord(n, tenant, n, n.transport, { outcome: 'FAIL', reason: 'bad request', error, attempts: 0 }, 0));
    return { status: 'FAIL', error };
  }

  private record(
    n: PushNotification,
    platformType: string,
    platform: string,
    transport: string,
    counters: NotificationCounters,
    result: DeliveryResult,
    elapsedMs: number,
    tenant: string | undefined,
    received: PushNotification,
  ): void {
    if (result.outcome === 'OK') {
      counters.success.inc();
      if (n.ack_id !== '') {
        counters.successWithAck.inc();
        this.metrics.answeredWithAck(n.ack_id, platform);
      }
    } else {
      const reason = result.reason ?? '';
      if (result.badRequest) this.metrics.badRequest.inc();
      counters.failure.inc();
      this.metrics.failureWithReason.inc({ platform, type: n.type, transport, reason });
      if (result.outcome === 'REMOVE') this.metrics.removal.inc({ platform, transport, reason });
    }
    const ms = Math.round(elapsedMs);
    if (this.observe) this.tell(deliveryRecord(n, tenant, received, transport, result, ms));
    const failed = result.outcome === 'FAIL';
    // At `warn` a delivered notification logs nothing: its fields are not even built.
    if (!this.logger.isLevelEnabled(failed ? 'warn' : 'info')) return;
    const fields = {
      platform: platformType,
      push_type: n.type,
      transport: transport || undefined,
      server_id: n.server_id,
      device: redactToken(n.device_id),
      ack_id: n.ack_id || undefined,
      outcome: result.outcome,
      reason: result.reason || undefined,
      attempts: result.attempts,
      ms,
    };
    if (failed) logFlat(this.logger, 'warn', fields, 'push failed');
    else
      logFlat(this.logger, 'info', fields, result.outcome === 'OK' ? 'push delivered' : 'push rejected: device token is no longer valid');
  }
}

const OK: PushResponse = Object.freeze({ status: 'OK' });
const REMOVE: PushResponse = Object.freeze({ status: 'REMOVE' });

/**
 * The record of notification `n` (truncated; `received` as decoded), refused or answered. Every record has the
 * same keys in the same order: one object shape for the observers' hot code.
 */
function deliveryRecord(
  n: PushNotification,
  tenant: string | undefined,
  received: PushNotification,
  transport: string,
  result: DeliveryResult,
  ms: number,
): DeliveryRecord {
  return {
    at: new Date(),
    serverId: n.server_id,
    tenant,
    ackId: n.ack_id || undefined,
    postId: n.post_id || undefined,
    platform: n.platform,
    pushType: n.type,
    transport,
    outcome: result.outcome,
    reason: result.reason || undefined,
    error: result.error,
    attempts: result.attempts,
    ms,
    device: redactToken(n.device_id),
    request: result.request,
    received,
    attemptLog: result.attemptLog,
    providerId: result.providerId,
  };
}
