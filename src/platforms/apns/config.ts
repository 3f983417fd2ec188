/** An `ApplePushSettings` entry: the original's keys, names and defaults, plus `AppleEndpoint`. */
import type { EntrySchema } from '../platform';

export interface AppleEntryConfig {
  Type: string;
  ApplePushUseDevelopment: boolean;
  /** PEM file with certificate and key, or a .p12 file. */
  ApplePushCertPrivate: string;
  ApplePushCertPassword: string;
  ApplePushTopic: string;
  /** .p8 token key; with key id and team id it takes precedence over the certificate. */
  AppleAuthKeyFile: string;
  AppleAuthKeyID: string;
  AppleTeamID: string;
  /** `https://host:port` replacing Apple's host (private relays, tests); empty = Apple. */
  AppleEndpoint: string;
}

const text = { type: 'string', default: '' };

export const APPLE_ENTRY_SCHEMA: EntrySchema = {
  type: 'object',
  properties: {
    Type: text,
    ApplePushUseDevelopment: { type: 'boolean', default: false },
    ApplePushCertPrivate: text,
    ApplePushCertPassword: text,
    ApplePushTopic: text,
    AppleAuthKeyFile: text,
    AppleAuthKeyID: text,
    AppleTeamID: text,
    AppleEndpoint: { ...text, pattern: '^$|^https://[^/?#]+/?$', description: "https://host:port replacing Apple's host" },
  },
};
