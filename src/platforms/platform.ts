/**
 * What a delivery service's folder declares to the rest of the proxy (src/platforms/registry.ts lists them):
 * the config list its entries live in and their schema, its metric, how a failed entry is checked again, and how
 * an entry becomes a PushService. Nothing outside the folder knows which provider it talks to.
 */
import type { Mode } from '../config/types';
import type { ServiceDeps } from '../delivery/service';
import type { PushService } from '../delivery/types';
import type { PushNotification } from '../notification';

/** What every entry of every service has: the platform type chat servers name (`apple_rn`, `android`, …). */
export interface PlatformEntryConfig {
  Type: string;
}

/** A JSON schema for one entry: an object whose properties ajv checks and fills with their defaults. */
export interface EntrySchema {
  type: 'object';
  properties: Record<string, Record<string, unknown>>;
}

/**
 * An entry turned into a service (with notices worth a warning, and the certificate it authenticates with when
 * that expires), or skipped (the original skips an entry without credentials).
 */
export type ServiceResult = { service: PushService; notices: string[]; certificate?: ExpiringCredential } | { skipped: string };

/** A credential with an end date, watched for expiry by the instance (src/tls/expiry.ts). */
export interface ExpiringCredential {
  notAfter: Date;
  /** What the operator does to renew it, for the warning. */
  renewal: string;
}

export interface PlatformDefinition<Key extends string = string, Entry extends PlatformEntryConfig = PlatformEntryConfig> {
  /** The `platform` label of metrics, logs and /readyz: `apple`, `android`. */
  readonly id: string;
  /** The config key that lists this service's entries, as the original names it (`ApplePushSettings`). */
  readonly settingsKey: Key;
  /** One entry's keys, types and defaults. */
  readonly entrySchema: EntrySchema;
  /** What the mode changes in an entry the file left unset, before validation (test mode talks to APNs' development environment). */
  readonly modeDefaults?: (entry: Record<string, unknown>, mode: Mode) => void;
  /** What the provider calls the id it gives a delivered notification (`apns-id`), for operators' output. */
  readonly providerIdName: string;
  /** Whether the provider can check a notification without delivering it (FCM's validate_only); else a dry run stops before sending. */
  readonly validatesOnly: boolean;
  /** This service's attempt histogram (the original's name, no labels). */
  readonly requestDurationMetric: { name: string; help: string };
  /** The notification a failed entry sends to check its credentials again: to a made-up device, showing nothing. */
  credentialProbe(type: string): PushNotification;
  /** The files an entry reads its credentials from (empty values left out): a change to one reloads the proxy. */
  credentialFiles(entry: Entry): string[];
  /** Builds the entry's service; a ConfigError when the entry cannot work (a bad key, an expired certificate). */
  create(entry: Entry, deps: ServiceDeps): ServiceResult;
}
