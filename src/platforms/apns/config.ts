/** An `ApplePushSettings` entry: the original's keys, names and defaults, plus `AppleEndpoint`. */
import { endpointKey, entrySchema, textKeys } from '../shared';

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

export const APPLE_ENTRY_SCHEMA = entrySchema({
  ApplePushUseDevelopment: { type: 'boolean', default: false },
  ...textKeys('ApplePushCertPrivate', 'ApplePushCertPassword', 'ApplePushTopic', 'AppleAuthKeyFile', 'AppleAuthKeyID', 'AppleTeamID'),
  AppleEndpoint: endpointKey("https://host:port replacing Apple's host"),
});
