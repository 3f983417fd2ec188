/**
 * A delivery service assembled from its three parts: the pure builder, the transport and the retry policy.
 * Every service (Apple, Android, and whatever comes next) is one of these.
 */
import type { Logger } from 'pino';
import type { PushNotification } from '../notification';
import { PayloadTooLargeError } from '../payload/fit';
import { deliverWithRetries, systemClock, type Clock, type RetryPolicy } from './retry';
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
  /** Called with each attempt's duration, for the per-service request histograms. */
  observeAttempt?: (platform: ServicePlatform, seconds: number) => void;
  /** What the retry loop reads the time from and waits on between attempts; the system clock unless a test drives it. */
  clock?: Clock;
}

/** Metrics reason of a notification refused because it cannot fit the provider's payload limit. */
export const PAYLOAD_TOO_LARGE = 'payload too large';

export class TransportService<Request> implements PushService {
  private readonly observe?: (seconds: number) => void;

  constructor(
    readonly type: string,
    readonly platform: ServicePlatform,
    private readonly build: (notification: PushNotification, context: DeliveryContext) => Request,
    private readonly transport: Transport<Request>,
    private readonly policy: RetryPolicy,
    observeAttempt?: (platform: ServicePlatform, seconds: number) => void,
    private readonly clock: Clock = systemClock,
  ) {
    if (observeAttempt) this.observe = (seconds) => observeAttempt(platform, seconds);
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
    return deliverWithRetries((timeoutMs) => this.transport.attempt(request, timeoutMs), this.policy, this.clock, request, this.observe);
  }

  close(): Promise<void> {
    return this.transport.close();
  }
}
