/**
 * Every delivery service the proxy knows, and what the rest of the proxy reads from them: config loading takes
 * their settings keys and entry schemas, metrics their histograms, the instance builds a service per configured
 * entry. Adding a service (Web Push, say) is a folder beside apns/ and fcm/ and one line in PLATFORMS.
 */
import type { ProxyConfig } from '../config/types';
import { WatchedService } from '../delivery/entry-watch';
import { removeGuardSettings } from '../delivery/remove-guard';
import type { ServiceDeps } from '../delivery/service';
import type { EntryState, PushService } from '../delivery/types';
import type { ProxyMetrics } from '../metrics';
import { apns } from './apns';
import { fcm } from './fcm';
import type { ExpiringCredential, PlatformDefinition, ServiceResult } from './platform';

export const PLATFORMS = [apns, fcm] as const;

type SettingsOf<P> = P extends PlatformDefinition<infer K, infer E> ? { [key in K]: E[] } : never;
type UnionToIntersection<U> = (U extends unknown ? (u: U) => void : never) extends (i: infer I) => void ? I : never;
/** The config's entry lists, one per service: `ApplePushSettings: AppleEntryConfig[]`, `AndroidPushSettings: …`. */
export type PlatformSettings = UnionToIntersection<SettingsOf<(typeof PLATFORMS)[number]>>;

/** Where withheld REMOVEs are counted, and how often a failed entry is checked again. */
export interface EntryWatchOptions {
  metrics?: ProxyMetrics;
  /** How often a failed entry's credentials are checked again (default 60 s). */
  recheckMs?: number;
}

export interface ConfiguredServices {
  /** By platform type (`apple_rn`): what the dispatcher routes to. */
  services: Map<string, PushService>;
  /** How each configured entry stands now, in config order (skipped ones too). */
  states: () => EntryState[];
  watched: WatchedService[];
  /** By platform type: the certificates entries authenticate with, where those expire (token auth does not). */
  certificates: Map<string, ExpiringCredential>;
}

/**
 * Builds a service for every configured entry, each watched for answers about the entry itself (src/delivery/
 * entry-watch.ts). A ConfigError from any of them stops start-up, after closing the ones already built.
 */
export function createServices(config: ProxyConfig, deps: ServiceDeps, watch: EntryWatchOptions = {}): ConfiguredServices {
  const services = new Map<string, PushService>();
  const entries: Array<EntryState | WatchedService> = [];
  const watched: WatchedService[] = [];
  const certificates = new Map<string, ExpiringCredential>();
  const guard = removeGuardSettings(config);
  const metrics = watch.metrics;
  const onWithheld = metrics ? (type: string, reason: string) => metrics.removeWithheld.inc({ platform_type: type, reason }) : undefined;
  const add = (definition: PlatformDefinition, type: string, result: ServiceResult): void => {
    if ('skipped' in result) {
      deps.logger.warn({ platform: type }, `${definition.id} entry "${type}" skipped: ${result.skipped}`);
      entries.push({ type, platform: definition.id, state: 'skipped', reason: result.skipped });
      return;
    }
    for (const notice of result.notices) deps.logger.warn({ platform: type }, notice);
    const replaced = services.get(type);
    // A later entry with the same Type replaces an earlier one, as in the original.
    if (replaced) {
      void replaced.close();
      watched.splice(watched.indexOf(replaced as WatchedService), 1);
    }
    const service = new WatchedService(result.service, {
      logger: deps.logger,
      guard,
      onWithheld,
      probe: definition.credentialProbe(type),
      recheckMs: watch.recheckMs,
    });
    services.set(type, service);
    watched.push(service);
    if (result.certificate) certificates.set(type, result.certificate);
    else certificates.delete(type);
    entries.push(service);
  };
  try {
    for (const definition of PLATFORMS as readonly PlatformDefinition[]) {
      for (const entry of entriesOf(config, definition)) add(definition, entry.Type, definition.create(entry, deps));
    }
  } catch (err) {
    for (const service of services.values()) void service.close();
    throw err;
  }
  const states = (): EntryState[] => entries.map((entry) => (entry instanceof WatchedService ? entry.state() : entry));
  return { services, states, watched, certificates };
}

/** A service's configured entries (the config lists them under its settings key). */
export function entriesOf(config: PlatformSettings, definition: PlatformDefinition): ReadonlyArray<{ Type: string }> {
  return (config as unknown as Record<string, Array<{ Type: string }>>)[definition.settingsKey] ?? [];
}

/** Every file the configured entries read their credentials from, for the reload watch. */
export function credentialFilesOf(config: ProxyConfig): string[] {
  return (PLATFORMS as readonly PlatformDefinition[]).flatMap((definition) =>
    entriesOf(config, definition).flatMap((entry) => definition.credentialFiles(entry)),
  );
}
