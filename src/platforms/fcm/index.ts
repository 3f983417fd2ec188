/**
 * Firebase Cloud Messaging (HTTP v1): `AndroidPushSettings` entries become services made of the FCM message
 * builder (./payload.ts), the HTTP v1 transport (./transport.ts) and the providers' retry policy, with the
 * service-account file read and checked at start-up (./credentials.ts).
 */
import { randomUUID } from 'node:crypto';
import { ConfigError } from '../../config/errors';
import { TransportService, type ServiceDeps } from '../../delivery/service';
import { describeOutboundProxy } from '../../transport/outbound-proxy';
import type { PlatformDefinition, ServiceResult } from '../platform';
import { entryName, entryOutboundProxy, providerRetryPolicy, silentProbe } from '../shared';
import { ANDROID_ENTRY_SCHEMA, type AndroidEntryConfig } from './config';
import { loadServiceAccount, parseFcmEndpoint } from './credentials';
import { buildFcmMessage } from './payload';
import { DEADLINE_EXCEEDED, FCM_HOST, fcmDialTarget, FcmTransport, tokenRequestUrl, UnsupportedFirebaseAdminError } from './transport';

export const fcm: PlatformDefinition<'AndroidPushSettings', AndroidEntryConfig> = {
  id: 'android',
  settingsKey: 'AndroidPushSettings',
  entrySchema: ANDROID_ENTRY_SCHEMA,
  providerIdName: 'FCM message name',
  validatesOnly: true,
  requestDurationMetric: { name: 'service_fcm_request_duration_seconds', help: 'Duration of each FCM attempt' },
  // FCM checks the OAuth token before it looks at the device token, which no device has.
  credentialProbe: (type) => silentProbe(type, 'push-proxy-credential-check'),
  credentialFiles: (entry) => [entry.ServiceFileLocation].filter(Boolean),
  create: createAndroidService,
};

export function createAndroidService(entry: AndroidEntryConfig, deps: ServiceDeps): ServiceResult {
  const where = entryName(fcm.settingsKey, entry);
  const notices: string[] = [];
  if (entry.AndroidApiKey) {
    notices.push(
      `${where}: AndroidApiKey is a legacy FCM server key; Google no longer accepts it and it is ignored. Remove it; delivery uses ServiceFileLocation.`,
    );
  }
  if (!entry.ServiceFileLocation) {
    return {
      skipped:
        'no credentials: set ServiceFileLocation to the Firebase service-account JSON file' +
        (entry.AndroidApiKey ? ' (AndroidApiKey, the legacy server key, no longer works)' : ''),
    };
  }
  const account = loadServiceAccount(entry);
  const endpoint = parseFcmEndpoint(entry);
  const sendTarget = fcmDialTarget(endpoint ?? new URL(`https://${FCM_HOST}`));
  const tokenTarget = fcmDialTarget(tokenRequestUrl(account.tokenUri, endpoint));
  const outboundProxy = entryOutboundProxy(where, sendTarget, deps);
  const tokenOutboundProxy = entryOutboundProxy(where, tokenTarget, deps);
  if (outboundProxy || tokenOutboundProxy) {
    deps.logger.info(
      {
        platform: entry.Type,
        send: { target: `${sendTarget.host}:${sendTarget.port}`, proxy: outboundProxy ? describeOutboundProxy(outboundProxy) : 'none' },
        token: {
          target: `${tokenTarget.host}:${tokenTarget.port}`,
          proxy: tokenOutboundProxy ? describeOutboundProxy(tokenOutboundProxy) : 'none',
        },
      },
      'FCM traffic goes through the outbound proxy',
    );
  }

  let transport: FcmTransport;
  try {
    transport = new FcmTransport({
      // firebase-admin keeps apps in a registry of its own: the name must not collide with another entry's.
      appName: `push-proxy:${entry.Type}:${randomUUID()}`,
      account,
      endpoint,
      trustedCa: deps.trustedCa,
      logger: deps.logger,
      outboundProxy,
      tokenOutboundProxy,
      metrics: deps.entryMetrics?.(fcm.id, entry.Type),
      validateOnly: deps.validateOnly,
    });
  } catch (err) {
    if (err instanceof UnsupportedFirebaseAdminError) throw new ConfigError(`${where}: ${err.message}.`);
    throw err;
  }
  const service = new TransportService(
    {
      type: entry.Type,
      platform: fcm.id,
      // Android ignores `transport` and the app version.
      build: (notification) => buildFcmMessage(notification),
      transport,
      policy: providerRetryPolicy(deps, { budget: DEADLINE_EXCEEDED }),
    },
    deps,
  );
  return { service, notices };
}
