/**
 * The trace's record of one answered notification, built from the dispatcher's DeliveryRecord by pure functions:
 * what was received (device token shortened, message text only in test mode), each attempt with the provider's
 * answer, the answer given to the chat server, and later the device's receipt. Records travel as JSON between
 * workers: plain objects, times as ISO strings.
 */
import type { DeliveryRecord } from '../delivery/dispatcher';
import type { AttemptRecord } from '../delivery/types';
import { redactToken } from '../logging';
import type { PushAck, PushNotification } from '../notification';

/** One attempt sent to APNs or FCM. */
export interface TraceAttempt {
  /** Milliseconds from the first attempt's start to this one's. */
  start_ms: number;
  ms: number;
  /** `OK`, `REMOVE`, `FAIL` (a final answer), `retry` (retryable, or no answer), `threw` (a bug). */
  verdict: AttemptRecord['verdict'];
  /** The provider's HTTP status, when it answered. */
  status?: number;
  reason?: string;
  /** APNs' `apns-id` or FCM's message name. */
  provider_id?: string;
}

/** The delivery receipt: the app's `POST /api/v1/ack` for the notification's ack_id. */
export interface TraceReceipt {
  /** When the proxy received the ack. */
  at: string;
  /** When the device says it received the notification (milliseconds since the epoch, as the app sends it). */
  received_at: number;
  id_loaded: boolean;
  platform: string;
  type: string;
}

export interface TraceRecord {
  /** Increasing per process: the inspector page orders and de-duplicates by it. */
  id: number;
  at: string;
  server_id: string;
  tenant?: string;
  post_id?: string;
  ack_id?: string;
  /** The platform as sent (`apple_rn-v2`). */
  platform: string;
  type: string;
  transport: string;
  /** The device token, shortened. */
  device: string;
  /** The notification as received: see `receivedFields`. */
  received: Record<string, unknown>;
  attempts: TraceAttempt[];
  /** What the chat server was answered. */
  answer: { status: 'OK' | 'REMOVE' | 'FAIL'; error?: string };
  /** The metrics label of the outcome (the provider's code, `bad request`, …). */
  reason?: string;
  /** From the notification's dispatch to its answer. */
  ms: number;
  /** What went to APNs or FCM (token shortened), for the inspector; absent unless the inspector is on or in test mode. */
  sent?: unknown;
  receipt?: TraceReceipt;
}

/** How records are built: set once per instance from its mode and whether the inspector is on. */
export interface TraceRecordOptions {
  /** Keep message text (test mode only: an evaluator's test messages). */
  messageText: boolean;
  /** Keep the request as sent to the provider (the inspector shows it; it holds message text). */
  keepSent: boolean;
}

/**
 * Message text: the fields of a notification that people wrote or named: the message, the channel's name, the
 * sender's name and the name a webhook overrides it with. They are kept only in test mode. Every other field is
 * an id, a flag or a setting of the app and is kept; the device token and the server's signature are shortened.
 */
export const MESSAGE_TEXT_FIELDS: readonly (keyof PushNotification)[] = ['message', 'channel_name', 'sender_name', 'override_username'];
const SHORTENED_FIELDS: readonly (keyof PushNotification)[] = ['device_id', 'signature'];

/** The notification as received, for the trace: empty fields left out, tokens shortened, message text only when asked. */
export function receivedFields(n: PushNotification, messageText: boolean): Record<string, unknown> {
  const kept: Record<string, unknown> = {};
  for (const key of Object.keys(n) as (keyof PushNotification)[]) {
    const value = n[key];
    if (value === '' || value === false) continue;
    if (!messageText && MESSAGE_TEXT_FIELDS.includes(key)) continue;
    kept[key] = SHORTENED_FIELDS.includes(key) && typeof value === 'string' ? redactToken(value) : value;
  }
  return kept;
}

/** The trace record of one answered notification, numbered `id`. */
export function traceRecord(delivery: DeliveryRecord, id: number, options: TraceRecordOptions): TraceRecord {
  const record: TraceRecord = {
    id,
    at: delivery.at.toISOString(),
    server_id: delivery.serverId,
    platform: delivery.platform,
    type: delivery.pushType,
    transport: delivery.transport,
    device: delivery.device,
    received: delivery.received ? receivedFields(delivery.received, options.messageText) : {},
    attempts: (delivery.attemptLog ?? []).map(traceAttempt),
    answer: delivery.outcome === 'FAIL' ? { status: 'FAIL', error: delivery.error ?? 'unknown error' } : { status: delivery.outcome },
    ms: delivery.ms,
  };
  if (delivery.tenant !== undefined) record.tenant = delivery.tenant;
  if (delivery.postId !== undefined) record.post_id = delivery.postId;
  if (delivery.ackId !== undefined) record.ack_id = delivery.ackId;
  if (delivery.reason !== undefined) record.reason = delivery.reason;
  if (options.keepSent && delivery.request !== undefined) record.sent = redactRequest(delivery.request, delivery.received?.device_id ?? '');
  return record;
}

/** The built request with the device token replaced wherever it appears at the top level. */
function redactRequest(request: unknown, token: string): unknown {
  if (request === null || typeof request !== 'object') return request;
  const copy: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(request)) copy[key] = token !== '' && value === token ? redactToken(token) : value;
  return copy;
}

function traceAttempt(attempt: AttemptRecord): TraceAttempt {
  const traced: TraceAttempt = { start_ms: attempt.startMs, ms: attempt.ms, verdict: attempt.verdict };
  if (attempt.status !== undefined) traced.status = attempt.status;
  if (attempt.reason !== undefined) traced.reason = attempt.reason;
  if (attempt.providerId !== undefined) traced.provider_id = attempt.providerId;
  return traced;
}

/** The receipt an ack gives, received at `at`. */
export function traceReceipt(ack: PushAck, at: Date): TraceReceipt {
  return { at: at.toISOString(), received_at: ack.received_at, id_loaded: ack.is_id_loaded, platform: ack.platform, type: ack.type };
}

/** A record without what only test mode shows (message text in `sent`), for the trace API outside test mode. */
export function withoutSent(record: TraceRecord): TraceRecord {
  if (record.sent === undefined) return record;
  const { sent: _sent, ...rest } = record;
  return rest;
}
