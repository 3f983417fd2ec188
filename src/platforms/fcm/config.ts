/** An `AndroidPushSettings` entry: the original's keys, names and defaults, plus `FcmEndpoint`. */
import type { EntrySchema } from '../platform';

export interface AndroidEntryConfig {
  Type: string;
  /** Google service-account JSON. */
  ServiceFileLocation: string;
  /** Legacy server key: accepted and ignored, as the original does. */
  AndroidApiKey: string;
  /** `https://host:port` replacing `https://fcm.googleapis.com`; empty = Google. */
  FcmEndpoint: string;
}

const text = { type: 'string', default: '' };

export const ANDROID_ENTRY_SCHEMA: EntrySchema = {
  type: 'object',
  properties: {
    Type: text,
    ServiceFileLocation: text,
    AndroidApiKey: text,
    FcmEndpoint: { ...text, pattern: '^$|^https://[^/?#]+/?$', description: 'https://host:port replacing https://fcm.googleapis.com' },
  },
};
