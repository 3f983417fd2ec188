/**
 * docs/protocol.md, APNs request: a notification (already truncated) → the APNs request the original would send.
 * Pure: no I/O, no clock, no configuration beyond what is passed in.
 */
import type { PushNotification } from '../../notification';
import {
  APNS_PAYLOAD_LIMIT_BYTES,
  APNS_VOIP_PAYLOAD_LIMIT_BYTES,
  fitPayload,
  messageAsSent,
  NO_SIGNATURE,
  type FitSpec,
} from '../../payload/fit';

export interface ApnsHeaders {
  'apns-topic': string;
  'apns-priority': 10;
  'apns-push-type': 'alert' | 'voip';
  'content-type': 'application/json; charset=utf-8';
}

export interface ApnsRequest {
  /** Device token: the path of `POST /3/device/<token>`. */
  token: string;
  headers: ApnsHeaders;
  payload: Record<string, unknown>;
  /** Metrics transport label: `` for standard pushes, `voip` for PushKit. */
  transport: '' | 'voip';
}

export interface ApnsTarget {
  /** The entry's `ApplePushTopic` (bundle id). */
  topic: string;
  /** From the platform suffix (`-v2` → 2); matters only for the `clear` badge rule. */
  appVersion: number;
}

const CONTENT_TYPE = 'application/json; charset=utf-8';

/**
 * The request for a notification, its body within Apple's limit as sent (4096 bytes, 5120 for VoIP):
 * see src/payload/fit.ts for what is shortened. Throws PayloadTooLargeError when nothing shortenable helps.
 */
export function buildApnsRequest(n: PushNotification, target: ApnsTarget): ApnsRequest {
  if (n.transport === 'voip') return fitPayload(n, '', target, VOIP_FIT);
  return fitPayload(n, messageAsSent(n), target, STANDARD_FIT);
}

type ApnsFit = FitSpec<ApnsRequest, ApnsTarget>;
const STANDARD_FIT: ApnsFit = { limit: APNS_PAYLOAD_LIMIT_BYTES, what: 'APNs payload', build: buildStandardRequest, limitedPart };
const VOIP_FIT: ApnsFit = { limit: APNS_VOIP_PAYLOAD_LIMIT_BYTES, what: 'APNs VoIP payload', build: buildVoipRequest, limitedPart };

/** Apple's limit is on the payload (the request body), not the headers. */
function limitedPart(request: ApnsRequest): object {
  return request.payload;
}

function buildStandardRequest(n: PushNotification, text: string, target: ApnsTarget): ApnsRequest {
  return {
    token: n.device_id,
    headers: { 'apns-topic': target.topic, 'apns-priority': 10, 'apns-push-type': 'alert', 'content-type': CONTENT_TYPE },
    payload: standardRoot(n, buildAps(n, text, target.appVersion)),
    transport: '',
  };
}

function buildAps(n: PushNotification, text: string, appVersion: number): Record<string, unknown> {
  // Built in the original's struct order: alert, badge, category, content-available, mutable-content, sound, thread-id.
  const aps: Record<string, unknown> = {};
  const alerting = n.is_id_loaded || n.type === 'message' || n.type === 'session';

  if (n.is_id_loaded) {
    aps.alert = text === '' ? {} : { body: text };
  } else if (alerting) {
    aps.alert = alertFor(n, text);
  }

  // An absent badge is 0 and is sent; only -1 leaves the badge alone (the apps rely on it).
  // A v2+ app clearing to 0 gets 1: badge 0 would drop every delivered notification of the app.
  if (n.badge === 0 && n.type === 'clear' && appVersion > 1) aps.badge = 1;
  else if (n.badge !== -1) aps.badge = n.badge;

  if (alerting && n.category !== '') aps.category = n.category;
  if (n.is_id_loaded || n.type === 'message' || n.type === 'clear' || n.type === 'test') aps['content-available'] = 1;
  if (alerting) {
    aps['mutable-content'] = 1;
    aps.sound = 'default';
  }
  if (n.channel_id !== '') aps['thread-id'] = n.is_crt_enabled && n.root_id !== '' ? n.root_id : n.channel_id;
  return aps;
}

function alertFor(n: PushNotification, body: string): string | { body?: string; title: string } {
  if (n.channel_name !== '' && n.version === 'v2') return body === '' ? { title: n.channel_name } : { body, title: n.channel_name };
  return body;
}

/**
 * The original marshals the root as a Go map, whose keys come out sorted: the keys are set here in that order
 * (this is every notification's path; sorting at run time costs an allocation per notification).
 */
function standardRoot(n: PushNotification, aps: Record<string, unknown>): Record<string, unknown> {
  const versioned = n.is_id_loaded || n.type === 'message' || n.type === 'session';
  const root: Record<string, unknown> = {};
  putIfSet(root, 'ack_id', n.ack_id);
  root.aps = aps;
  putIfSet(root, 'channel_id', n.channel_id);
  if (!n.is_id_loaded && versioned) putIfSet(root, 'channel_name', n.channel_name);
  putIfSet(root, 'from_webhook', n.from_webhook);
  if (n.is_id_loaded) root.id_loaded = true;
  root.is_crt_enabled = n.is_crt_enabled;
  putIfSet(root, 'override_icon_url', n.override_icon_url);
  putIfSet(root, 'override_username', n.override_username);
  putIfSet(root, 'post_id', n.post_id);
  putIfSet(root, 'root_id', n.root_id);
  putIfSet(root, 'sender_id', n.sender_id);
  putIfSet(root, 'sender_name', n.sender_name);
  root.server_id = n.server_id;
  root.signature = n.signature === '' ? NO_SIGNATURE : n.signature;
  root.sub_type = n.sub_type;
  putIfSet(root, 'team_id', n.team_id);
  root.type = n.type;
  if (versioned) root.version = n.version;
  return root;
}

/** docs/protocol.md, APNs request, VoIP: PushKit wakes the app with a fixed set of root keys and no alert. */
function buildVoipRequest(n: PushNotification, _text: string, target: ApnsTarget): ApnsRequest {
  const root: Record<string, unknown> = {
    aps: { 'content-available': 1 },
    type: n.type,
    sub_type: n.sub_type,
    channel_id: n.channel_id,
    server_id: n.server_id,
    post_id: n.post_id,
    thread_id: n.root_id,
    sender_id: n.sender_id,
    id_loaded: n.is_id_loaded,
    signature: n.signature === '' ? NO_SIGNATURE : n.signature,
  };
  putIfSet(root, 'sender_name', n.sender_name);
  putIfSet(root, 'channel_name', n.channel_name);
  putIfSet(root, 'ack_id', n.ack_id);
  return {
    token: n.device_id,
    headers: { 'apns-topic': `${target.topic}.voip`, 'apns-priority': 10, 'apns-push-type': 'voip', 'content-type': CONTENT_TYPE },
    payload: sortedKeys(root),
    transport: 'voip',
  };
}

function putIfSet(target: Record<string, unknown>, key: string, value: string): void {
  if (value !== '') target[key] = value;
}

/** The original marshals the root as a Go map, whose keys come out sorted (VoIP pushes are rare: sorted here). */
function sortedKeys(object: Record<string, unknown>): Record<string, unknown> {
  const sorted: Record<string, unknown> = {};
  for (const key of Object.keys(object).sort()) sorted[key] = object[key];
  return sorted;
}
