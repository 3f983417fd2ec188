/**
 * docs/protocol.md, Truncation and byte limits: the original's byte limits (a message over 2047 bytes keeps
 * 2046, a channel name keeps 64), but the cut moves back to a character boundary so no U+FFFD is ever sent.
 */
import type { PushNotification } from '../notification';

export const MESSAGE_LIMIT_BYTES = 2047;
export const MESSAGE_KEEP_BYTES = 2046;
export const CHANNEL_NAME_LIMIT_BYTES = 64;

/** At most `keepBytes` of UTF-8 when the text is over `limitBytes`, never splitting a character. */
export function truncateUtf8(text: string, limitBytes: number, keepBytes: number): string {
  // Fast path: every UTF-16 unit is at most 3 UTF-8 bytes.
  if (text.length * 3 <= limitBytes) return text;
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= limitBytes) return text;
  let cut = keepBytes;
  // Step back over continuation bytes (10xxxxxx) so the cut lands before a character's first byte.
  while (cut > 0 && (bytes[cut]! & 0xc0) === 0x80) cut--;
  return bytes.subarray(0, cut).toString('utf8');
}

export function truncateNotification(notification: PushNotification): PushNotification {
  const message = truncateUtf8(notification.message, MESSAGE_LIMIT_BYTES, MESSAGE_KEEP_BYTES);
  const channelName = truncateUtf8(notification.channel_name, CHANNEL_NAME_LIMIT_BYTES, CHANNEL_NAME_LIMIT_BYTES);
  if (message === notification.message && channelName === notification.channel_name) return notification;
  return { ...notification, message, channel_name: channelName };
}
