/**
 * Apple Push Notification service: `ApplePushSettings` entries become services made of the APNs payload builder
 * (./payload.ts), the HTTP/2 transport (./transport.ts) and the providers' retry policy, with credentials read
 * and checked at start-up (./credentials.ts).
 */
import { ConfigError } from '../../config/errors';
import { TransportService, type ServiceDeps } from '../../delivery/service';
import { describeOutboundProxy } from '../../transport/outbound-proxy';
import type { PlatformDefinition, ServiceResult } from '../platform';
import { entryName, entryOutboundProxy, providerRetryPolicy, silentProbe } from '../shared';
import { APPLE_ENTRY_SCHEMA, type AppleEntryConfig } from './config';
import { credentialHint, loadAppleCredentials } from './credentials';
import { buildApnsRequest } from './payload';
import { ApnsTransport, apnsDialTarget, UnsupportedApnsLibraryError } from './transport';

/** What a notification's budget running out answers: the original's words. */
const UNKNOWN_TRANSPORT_ERROR = 'unknown transport error';

export const apns: PlatformDefinition<'ApplePushSettings', AppleEntryConfig> = {
  id: 'apple',
  settingsKey: 'ApplePushSettings',
  entrySchema: APPLE_ENTRY_SCHEMA,
  // A test service talks to APNs' development environment unless an entry says otherwise.
  modeDefaults: (entry, mode) => {
    if (mode === 'test' && !('ApplePushUseDevelopment' in entry)) entry.ApplePushUseDevelopment = true;
  },
  providerIdName: 'apns-id',
  // APNs has no validate-only request: a dry run builds the service (every start-up check) and never sends.
  validatesOnly: false,
  requestDurationMetric: { name: 'service_apns_request_duration_seconds', help: 'Duration of each APNs attempt' },
  // A well-formed token no device has: APNs answers about the device only after accepting the credentials.
  credentialProbe: (type) => silentProbe(type, '0'.repeat(64)),
  credentialFiles: (entry) => [entry.ApplePushCertPrivate, entry.AppleAuthKeyFile].filter(Boolean),
  create: createAppleService,
};

export function createAppleService(entry: AppleEntryConfig, deps: ServiceDeps): ServiceResult {
  const where = entryName(apns.settingsKey, entry);
  if (deps.validateOnly) throw new ConfigError(`${where}: APNs has no validate-only mode, so this service would really deliver.`);
  const loaded = loadAppleCredentials(entry);
  if ('skipped' in loaded) return loaded;
  // How close the certificate is to its end is the instance's to watch and log, for as long as it runs.
  const certificate = loaded.notAfter
    ? { notAfter: loaded.notAfter, renewal: 'renew it in the Apple Developer portal (or switch to token auth, which does not expire)' }
    : undefined;

  const production = !entry.ApplePushUseDevelopment;
  let endpoint: URL | undefined;
  try {
    endpoint = entry.AppleEndpoint ? new URL(entry.AppleEndpoint) : undefined;
  } catch {
    throw new ConfigError(
      `${where}: AppleEndpoint "${entry.AppleEndpoint}" is not a URL: use https://host:port, or leave it empty to use Apple's host.`,
    );
  }
  const target = apnsDialTarget(production, endpoint);
  const outboundProxy = entryOutboundProxy(where, target, deps);
  if (outboundProxy)
    deps.logger.info(
      { platform: entry.Type, proxy: describeOutboundProxy(outboundProxy), target: `${target.host}:${target.port}` },
      'APNs traffic goes through the outbound proxy',
    );

  let transport: ApnsTransport;
  try {
    transport = new ApnsTransport({
      credentials: loaded.credentials,
      production,
      endpoint,
      trustedCa: deps.trustedCa,
      requestTimeoutMs: deps.retryTimeoutMs,
      outboundProxy,
      logger: deps.logger,
      metrics: deps.entryMetrics?.(apns.id, entry.Type),
    });
  } catch (err) {
    if (err instanceof UnsupportedApnsLibraryError) throw new ConfigError(`${where}: ${err.message}.`);
    throw new ConfigError(`${where}: the APNs client refused the credentials: ${(err as Error).message}. ${credentialHint(entry)}`);
  }

  const topic = loaded.topic;
  const service = new TransportService(
    {
      type: entry.Type,
      platform: apns.id,
      build: (notification, context) => buildApnsRequest(notification, { topic, appVersion: context.appVersion }),
      transport,
      policy: providerRetryPolicy(deps, { budget: UNKNOWN_TRANSPORT_ERROR, attempts: UNKNOWN_TRANSPORT_ERROR }),
      // PushKit: VoIP exists only on Apple.
      transports: ['voip'],
    },
    deps,
  );
  return { service, notices: [], certificate };
}
