/** An `AndroidPushSettings` entry: the original's keys, names and defaults, plus `FcmEndpoint`. */
import { endpointKey, entrySchema, textKeys } from '../shared';

export interface AndroidEntryConfig {
  Type: string;
  /** Google service-account JSON. */
  ServiceFileLocation: string;
  /** Legacy server key: accepted and ignored, as the original does. */
  AndroidApiKey: string;
  /** `https://host:port` replacing `https://fcm.googleapis.com`; empty = Google. */
  FcmEndpoint: string;
}

export const ANDROID_ENTRY_SCHEMA = entrySchema({
  ...textKeys('ServiceFileLocation', 'AndroidApiKey'),
  FcmEndpoint: endpointKey('https://host:port replacing https://fcm.googleapis.com'),
});
