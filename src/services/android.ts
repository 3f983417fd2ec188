/**
 * The Android service: the service-account file of an `AndroidPushSettings` entry, checked at start-up so
 * that an operator hears about a bad file at once, then builder + FcmTransport + Android's retry policy.
 */
import { createPrivateKey, randomUUID, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { AndroidEntryConfig } from '../config/types';
import { ConfigError } from '../config/errors';
import { TransportService, type ServiceDeps } from '../delivery/service';
import type { PushService } from '../delivery/types';
import { buildFcmMessage } from '../payload/fcm';
import { DEADLINE_EXCEEDED, FCM_HOST, fcmDialTarget, FcmTransport, tokenRequestUrl, type FcmServiceAccount } from '../transport/fcm';
import { describeOutboundProxy, resolveOutboundProxy, type ProxyTarget } from '../transport/outbound-proxy';

export type AndroidServiceResult = { service: PushService; notices: string[] } | { skipped: string };

const REQUIRED_KEYS = ['project_id', 'client_email', 'private_key', 'token_uri'] as const;
const DOWNLOAD_HINT =
  'Use the service-account key file from the Firebase console (Project settings > Service accounts > Generate new private key), unchanged.';

export function createAndroidService(entry: AndroidEntryConfig, deps: ServiceDeps): AndroidServiceResult {
  const notices: string[] = [];
  if (entry.AndroidApiKey) {
    notices.push(
      `${where(entry)}: AndroidApiKey is a legacy FCM server key; Google no longer accepts it and it is ignored. Remove it; delivery uses ServiceFileLocation.`,
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
  const proxy = outboundProxy(entry, sendTarget, deps);
  const tokenProxy = outboundProxy(entry, tokenTarget, deps);
  if (proxy || tokenProxy) {
    deps.logger.info(
      {
        platform: entry.Type,
        send: { target: `${sendTarget.host}:${sendTarget.port}`, proxy: proxy ? describeOutboundProxy(proxy) : 'none' },
        token: { target: `${tokenTarget.host}:${tokenTarget.port}`, proxy: tokenProxy ? describeOutboundProxy(tokenProxy) : 'none' },
      },
      'FCM traffic goes through the outbound proxy',
    );
  }

  const transport = new FcmTransport({
    // firebase-admin keeps apps in a registry of its own: the name must not collide with another entry's.
    appName: `push-proxy:${entry.Type}:${randomUUID()}`,
    account,
    endpoint,
    trustedCa: deps.trustedCa,
    logger: deps.logger,
    proxy,
    tokenProxy,
  });
  const service = new TransportService(
    entry.Type,
    'android',
    (notification) => buildFcmMessage(notification),
    transport,
    {
      maxAttempts: 3,
      backoffMs: [1000, 2000],
      sendTimeoutMs: deps.sendTimeoutMs,
      retryTimeoutMs: deps.retryTimeoutMs,
      budgetExhausted: { error: DEADLINE_EXCEEDED, reason: DEADLINE_EXCEEDED },
    },
    deps.observeAttempt,
    deps.clock,
  );
  return { service, notices };
}

/** Reads and checks the file at `ServiceFileLocation`; every problem is a ConfigError saying what to do. */
export function loadServiceAccount(entry: AndroidEntryConfig): FcmServiceAccount {
  const file = entry.ServiceFileLocation;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new ConfigError(
      `${where(entry)}: ServiceFileLocation ${file} cannot be read (${code}). Check the path and that the proxy's user may read it.`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${where(entry)}: ServiceFileLocation ${file} is not JSON (${(err as Error).message}). ${DOWNLOAD_HINT}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new ConfigError(`${where(entry)}: ServiceFileLocation ${file} is not a service-account JSON object. ${DOWNLOAD_HINT}`);
  }
  const fields = json as Record<string, unknown>;
  if (fields.type !== undefined && fields.type !== 'service_account') {
    throw new ConfigError(
      `${where(entry)}: ServiceFileLocation ${file} holds a "${String(fields.type)}" credential, not a service account. ${DOWNLOAD_HINT}`,
    );
  }
  const missing = REQUIRED_KEYS.filter((key) => typeof fields[key] !== 'string' || fields[key] === '');
  if (missing.length > 0) {
    throw new ConfigError(`${where(entry)}: ServiceFileLocation ${file} lacks ${missing.join(', ')}. ${DOWNLOAD_HINT}`);
  }
  const {
    project_id: projectId,
    client_email: clientEmail,
    private_key: privateKeyPem,
    token_uri: tokenUri,
  } = fields as Record<(typeof REQUIRED_KEYS)[number], string>;

  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(privateKeyPem);
  } catch (err) {
    throw new ConfigError(
      `${where(entry)}: the private_key in ServiceFileLocation ${file} cannot be read (${(err as Error).message}). ${DOWNLOAD_HINT}`,
    );
  }
  if (privateKey.asymmetricKeyType !== 'rsa') {
    throw new ConfigError(
      `${where(entry)}: the private_key in ServiceFileLocation ${file} is not an RSA key, which Google service accounts use. ${DOWNLOAD_HINT}`,
    );
  }
  let tokenUrl: URL;
  try {
    tokenUrl = new URL(tokenUri);
  } catch {
    throw new ConfigError(
      `${where(entry)}: the token_uri in ServiceFileLocation ${file} is not a URL ("${tokenUri}"). Google's is https://oauth2.googleapis.com/token.`,
    );
  }
  if (tokenUrl.protocol !== 'https:') {
    throw new ConfigError(
      `${where(entry)}: the token_uri in ServiceFileLocation ${file} must be an https URL ("${tokenUri}"). Google's is https://oauth2.googleapis.com/token.`,
    );
  }
  return {
    projectId,
    clientEmail,
    privateKey,
    privateKeyId: typeof fields.private_key_id === 'string' && fields.private_key_id !== '' ? fields.private_key_id : undefined,
    tokenUri,
  };
}

function parseFcmEndpoint(entry: AndroidEntryConfig): URL | undefined {
  if (!entry.FcmEndpoint) return undefined;
  let url: URL | undefined;
  try {
    url = new URL(entry.FcmEndpoint);
  } catch {
    url = undefined;
  }
  if (!url || url.protocol !== 'https:' || (url.pathname !== '/' && url.pathname !== '') || url.search || url.hash || url.username) {
    throw new ConfigError(
      `${where(entry)}: FcmEndpoint "${entry.FcmEndpoint}" must be https://host or https://host:port, with no path. Leave it empty to use Google's FCM.`,
    );
  }
  return url;
}

function outboundProxy(entry: AndroidEntryConfig, target: ProxyTarget, deps: ServiceDeps): URL | undefined {
  try {
    return resolveOutboundProxy(target, { configured: deps.outboundProxy, env: deps.env ?? {} });
  } catch (err) {
    throw new ConfigError(`${(err as Error).message} (needed for ${where(entry)}, which connects to ${target.host}:${target.port})`);
  }
}

function where(entry: AndroidEntryConfig): string {
  return `AndroidPushSettings entry "${entry.Type}"`;
}
