/**
 * A delivery service assembled from its three parts: the pure builder, the transport and the retry policy.
 * Every service (Apple, Android, and whatever comes next) is one of these.
 */
import type { Logger } from 'pino';
import type { PushNotification } from '../notification';
import { PayloadTooLargeError } from '../payload/fit';
import { deliverWithRetries, systemClock, type AttemptObserver, type Clock, type RetryPolicy } from './retry';
import type { DeliveryContext, DeliveryResult, PushService, ServicePlatform, Transport } from './types';

export interface ServiceDeps {
  logger: Logger;
  sendTimeoutMs: number;
  retryTimeoutMs: number;
  /** CAs trusted on top of Node's own, for peers started by this process (operators use NODE_EXTRA_CA_CERTS). */
  trustedCa?: string[];
  /** `OutboundProxy` from the config: an http:// CONNECT proxy for APNs, FCM and token traffic; overrides the environment. */
  outboundProxy?: string;
  /** Where HTTPS_PROXY / HTTP_PROXY / NO_PROXY are read from (process.env in production). */
  env?: Record<string, string | undefined>;
  /** The metrics of the entry of platform type `type` (one object per entry), served by `platform`. */
  entryMetrics?: (platform: ServicePlatform, type: string) => EntryMetrics;
  /** What the retry loop reads the time from and waits on between attempts; the system clock unless a test drives it. */
  clock?: Clock;
  /**
   * Sends only ask the provider to check each notification, never to deliver it (`push-proxy send-test --dry-run`).
   * A service whose provider has no such mode refuses to be built with it: it must never deliver by mistake.
   */
  validateOnly?: boolean;
  /** Results carry each attempt (`attemptLog`) for the trace; off, the retry loop builds no such record. */
  traceAttempts?: boolean;
}

/** What one configured entry counts: its attempts (through the retry loop), its waits for a send slot, its credential refreshes. */
export interface EntryMetrics extends AttemptObserver {
  /** A send found every slot of the transport taken and waited for one. */
  slotWaited(): void;
  /** The transport could not refresh what authenticates it: an APNs provider token or an OAuth access token. */
  credentialRefreshFailed(kind: 'apns_token' | 'oauth'): void;
}

/** Metrics reason of a notification refused because it cannot fit the provider's payload limit. */
export const PAYLOAD_TOO_LARGE = 'payload too large';

/** What a service is made of: its builder, its transport, its retry policy. */
export interface ServiceParts<Request> {
  /** The configured `Type` the service answers for. */
  type: string;
  /** Its platform label (`apple`, `android`). */
  platform: ServicePlatform;
  /** The pure payload builder; throws PayloadTooLargeError for a notification that cannot fit. */
  build: (notification: PushNotification, context: DeliveryContext) => Request;
  transport: Transport<Request>;
  policy: RetryPolicy;
  /** `transport` values of a notification the service honours beyond the standard push (`voip` on APNs). */
  transports?: readonly string[];
}

export class TransportService<Request> implements PushService {
  readonly type: string;
  readonly platform: ServicePlatform;
  readonly transports: ReadonlySet<string>;
  private readonly build: ServiceParts<Request>['build'];
  private readonly transport: Transport<Request>;
  private readonly policy: RetryPolicy;
  private readonly observer?: AttemptObserver;
  private readonly clock: Clock;
  private readonly traceAttempts: boolean;

  constructor(parts: ServiceParts<Request>, deps: Pick<ServiceDeps, 'entryMetrics' | 'clock' | 'traceAttempts'>) {
    ({ type: this.type, platform: this.platform, build: this.build, transport: this.transport, policy: this.policy } = parts);
    this.transports = new Set(parts.transports);
    this.clock = deps.clock ?? systemClock;
    this.traceAttempts = deps.traceAttempts ?? false;
    this.observer = deps.entryMetrics?.(this.platform, this.type);
  }

  deliver(notification: PushNotification, context: DeliveryContext): Promise<DeliveryResult> {
    let request: Request;
    try {
      request = this.build(notification, context);
    } catch (err) {
      // A notification that cannot fit the provider's limit is the sender's fault: refused, nothing sent.
      if (err instanceof PayloadTooLargeError)
        return Promise.resolve({ outcome: 'FAIL', error: err.message, reason: PAYLOAD_TOO_LARGE, attempts: 0, badRequest: true });
      throw err;
    }
    return deliverWithRetries(
      (timeoutMs) => this.transport.attempt(request, timeoutMs),
      this.policy,
      this.clock,
      request,
      this.observer,
      this.traceAttempts,
    );
  }

  preview(notification: PushNotification, context: DeliveryContext): Request {
    return this.build(notification, context);
  }

  close(): Promise<void> {
    return this.transport.close();
  }
}
