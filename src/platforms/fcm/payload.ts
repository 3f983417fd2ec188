/**
 * docs/protocol.md, FCM message: a notification (already truncated) → the FCM HTTP v1 message the original would send.
 * Pure: no I/O, no clock, no configuration. Android ignores `transport` and the app version.
 */
import type { PushNotification } from '../../notification';
import { FCM_DATA_LIMIT_BYTES, fitPayload, messageAsSent, NO_SIGNATURE, type FitSpec } from '../../payload/fit';

/**
 * Data-only, high priority, no TTL or collapse key: exactly what the original puts in `message`.
 * FcmTransport sends it as is, as the request's `message`.
 */
export interface FcmMessage {
  token: string;
  /** Every value is a string: the Android app compares `"true"`, and FCM refuses anything else. */
  data: Record<string, string>;
  android: { priority: 'high' };
}

/** ID-loaded pushes never carry the sender's name; the app fetches the post and shows the real one. */
const ID_LOADED_SENDER_NAME = 'Someone';

/**
 * The message for a notification, its data map within Google's limit as sent (4096 bytes of JSON):
 * see src/payload/fit.ts for what is shortened. Throws PayloadTooLargeError when nothing shortenable helps.
 */
export function buildFcmMessage(n: PushNotification): FcmMessage {
  return fitPayload(n, messageAsSent(n), undefined, FCM_FIT);
}

// Google's limit is on the data map alone.
type FcmFit = FitSpec<FcmMessage, undefined>;
const FCM_FIT: FcmFit = { limit: FCM_DATA_LIMIT_BYTES, what: 'FCM data', build: buildMessage, limitedPart: (m) => m.data };

function buildMessage(n: PushNotification, text: string): FcmMessage {
  const data: Record<string, string> = {
    ack_id: n.ack_id,
    type: n.type,
    sub_type: n.sub_type,
    version: n.version,
    channel_id: n.channel_id,
    is_crt_enabled: String(n.is_crt_enabled),
    server_id: n.server_id,
    category: n.category,
    signature: n.signature === '' ? NO_SIGNATURE : n.signature,
  };
  // An absent badge is 0 and is sent as "0"; only -1 leaves the badge alone (the apps rely on it).
  if (n.badge !== -1) data.badge = String(n.badge);
  if (n.root_id !== '') data.root_id = n.root_id;

  if (n.is_id_loaded) {
    Object.assign(data, {
      post_id: n.post_id,
      message: text,
      id_loaded: 'true',
      sender_id: n.sender_id,
      sender_name: ID_LOADED_SENDER_NAME,
      team_id: n.team_id,
    });
  } else if (n.type === 'message' || n.type === 'session') {
    // Empty values stay: the original always sends these keys, and the app reads `message` unconditionally.
    Object.assign(data, {
      team_id: n.team_id,
      sender_id: n.sender_id,
      sender_name: n.sender_name,
      message: text,
      channel_name: n.channel_name,
      post_id: n.post_id,
      override_username: n.override_username,
      override_icon_url: n.override_icon_url,
      from_webhook: n.from_webhook,
    });
  }

  return { token: n.device_id, data, android: { priority: 'high' } };
}
