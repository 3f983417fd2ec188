/**
 * The one small interface every delivery service implements, and the verdicts that flow back.
 * A service = a pure builder + a transport that does the I/O + a retry policy, from its folder in src/platforms.
 */
import type { PushNotification } from '../notification';

export type Outcome = 'OK' | 'REMOVE' | 'FAIL';

export interface DeliveryResult {
  outcome: Outcome;
  /** The text a chat server sees in a FAIL answer. */
  error?: string;
  /** Metrics label: APNs reason, FCM error code, `unknown transport error`, … */
  reason?: string;
  /** How many attempts reached the transport. */
  attempts: number;
  /** The request as built for the service (APNs headers and payload, or the FCM message), for inspection. */
  request?: unknown;
  /** The provider's own code when `reason` is a compatibility label (FCM's SENDER_ID_MISMATCH is reason UNREGISTERED). */
  providerReason?: string;
  /** What the answer says about the configured entry itself, beyond this device. */
  evidence?: EntryEvidence;
  /** The notification itself was unfit to send (e.g. too large): refused before any attempt, a bad request. */
  badRequest?: boolean;
  /** The provider's id for the final answer, when its transport exposes one: APNs' `apns-id`, FCM's message name. */
  providerId?: string;
  /** Each attempt in order, only when the service was built to keep them (the trace): most sends never build it. */
  attemptLog?: AttemptRecord[];
}

/** One attempt as the trace shows it: one small object, built by the retry loop when the service keeps attempts. */
export interface AttemptRecord {
  /** Milliseconds from the notification's first attempt to this one's start. */
  startMs: number;
  /** How long this attempt took, in milliseconds. */
  ms: number;
  /** Its verdict: a final outcome, `retry` (a retryable answer or none), or `threw` (a bug in the transport). */
  verdict: Outcome | 'retry' | 'threw';
  /** The provider's HTTP status, when it answered. */
  status?: number;
  reason?: string;
  /** The provider's id for this answer: APNs' `apns-id`, FCM's message name. */
  providerId?: string;
}

/**
 * What a provider's answer says about the configured entry (its credentials, environment, topic or project)
 * rather than about one device. The transport that knows the provider decides; the entry watch acts on it.
 */
export type EntryEvidence =
  /** A device refusal that the entry's own misconfiguration also causes; `advice` names the likely cause. */
  | { kind: 'suspect'; advice: string }
  /** The provider refused our credentials: `advice` says what the operator should check. */
  | { kind: 'credentials-refused'; advice: string }
  /** A refusal of the message or device that the provider gives only after accepting our credentials. */
  | { kind: 'credentials-accepted' };

/** One attempt's verdict as the transport sees it. */
export type AttemptResult =
  /** The service answered: final, never retried by the caller. */
  | {
      kind: 'final';
      outcome: Outcome;
      error?: string;
      reason?: string;
      providerReason?: string;
      evidence?: EntryEvidence;
      providerId?: string;
      /** The provider's HTTP status, when the transport had one (for the trace). */
      status?: number;
    }
  /** No usable answer (or an answer the service's policy retries): try again while the budget lasts. */
  | { kind: 'retryable'; error: string; reason: string; status?: number; providerId?: string };

/** Does the I/O for one service: exactly one attempt per call, bounded by `timeoutMs`. */
export interface Transport<Request> {
  attempt(request: Request, timeoutMs: number): Promise<AttemptResult>;
  close(): Promise<void>;
}

/** A service's platform label (`apple`, `android`): the `id` of its folder's PlatformDefinition. */
export type ServicePlatform = string;

export interface DeliveryContext {
  /** App version parsed from the platform suffix (`-v2` → 2); 1 when absent or unparsable. */
  appVersion: number;
}

/** A configured platform type (`apple_rn`, `android_rn`, …) that can deliver a notification. */
export interface PushService {
  /** The configured `Type` this service answers for. */
  readonly type: string;
  /** Metrics platform label. */
  readonly platform: ServicePlatform;
  /** `transport` values it honours beyond the standard push (`voip` on APNs); any other is sent as a standard push. */
  readonly transports: ReadonlySet<string>;
  deliver(notification: PushNotification, context: DeliveryContext): Promise<DeliveryResult>;
  /** The request `deliver` would send for this notification, built and not sent (a dry run); throws as building does. */
  preview(notification: PushNotification, context: DeliveryContext): unknown;
  close(): Promise<void>;
}

/** How the REMOVE guard judges an entry's recent answers (src/delivery/remove-guard.ts), for /readyz. */
export interface RemoveGuardStatus {
  /** True while suspect answers are answered FAIL instead of REMOVE. */
  suspect: boolean;
  /** Distinct device tokens judged recently, and how many of them got a suspect answer. */
  judgedTokens: number;
  suspectTokens: number;
  /** REMOVEs withheld since start-up. */
  withheld: number;
  /** Why, while suspect. */
  advice?: string;
}

/**
 * How a configured entry stands, for /readyz: `failed` at start-up, or at runtime while the provider refuses
 * its credentials (`since` says from when; it is ready again after its next delivery).
 */
export type EntryState =
  | { type: string; platform: ServicePlatform; state: 'ready'; removeGuard?: RemoveGuardStatus }
  | { type: string; platform: ServicePlatform; state: 'skipped'; reason: string }
  | { type: string; platform: ServicePlatform; state: 'failed'; reason: string; since?: string; removeGuard?: RemoveGuardStatus };
