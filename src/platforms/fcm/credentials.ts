/**
 * An `AndroidPushSettings` entry's service-account file and endpoint, read and checked at start-up so that an
 * operator hears about a bad file at once.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { ConfigError } from '../../config/errors';
import { entryName, readCredentialFile } from '../shared';
import type { AndroidEntryConfig } from './config';
import type { FcmServiceAccount } from './transport';

const REQUIRED_KEYS = ['project_id', 'client_email', 'private_key', 'token_uri'] as const;
const DOWNLOAD_HINT =
  'Use the service-account key file from the Firebase console (Project settings > Service accounts > Generate new private key), unchanged.';

export function loadServiceAccount(entry: AndroidEntryConfig): FcmServiceAccount {
  const file = entry.ServiceFileLocation;
  const text = readCredentialFile(where(entry), 'ServiceFileLocation', file).toString('utf8');
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

/** `FcmEndpoint`: https://host[:port] with no path, or undefined for Google's. */
export function parseFcmEndpoint(entry: AndroidEntryConfig): URL | undefined {
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

function where(entry: AndroidEntryConfig): string {
  return entryName('AndroidPushSettings', entry);
}
