/**
 * The Apple service: credentials from an `ApplePushSettings` entry, checked at start-up so that an operator
 * hears about a bad key or an expired certificate at once, then builder + ApnsTransport + Apple's retry policy.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import forge from 'node-forge';
import type { AppleEntryConfig } from '../config/types';
import { ConfigError } from '../config/errors';
import { TransportService, type ServiceDeps } from '../delivery/service';
import type { PushService } from '../delivery/types';
import { buildApnsRequest } from '../payload/apns';
import { ApnsTransport, apnsDialTarget, UnsupportedApnsLibraryError, type AppleCredentials } from '../transport/apns';
import { describeOutboundProxy, resolveOutboundProxy } from '../transport/outbound-proxy';

const APPLE_SANDBOX_OID = '1.2.840.113635.100.6.3.1';
const APPLE_PRODUCTION_OID = '1.2.840.113635.100.6.3.2';
const USER_ID_OID = '0.9.2342.19200300.100.1.1';
const WARN_EXPIRY_DAYS = 30;

export interface LoadedAppleCredentials {
  credentials: AppleCredentials;
  /** The bundle id: from the config, else from the certificate's subject. */
  topic: string;
  /** When a certificate stops working (certificate auth only). */
  notAfter?: Date;
}

export type AppleServiceResult = { service: PushService; notices: string[] } | { skipped: string };

export function createAppleService(entry: AppleEntryConfig, deps: ServiceDeps): AppleServiceResult {
  const loaded = loadAppleCredentials(entry);
  if ('skipped' in loaded) return loaded;
  const notices: string[] = [];
  if (loaded.notAfter && loaded.notAfter.getTime() - Date.now() < WARN_EXPIRY_DAYS * 86_400_000) {
    notices.push(`certificate of ${entry.Type} expires on ${loaded.notAfter.toISOString()}: renew it in the Apple Developer portal`);
  }

  const production = !entry.ApplePushUseDevelopment;
  let endpoint: URL | undefined;
  try {
    endpoint = entry.AppleEndpoint ? new URL(entry.AppleEndpoint) : undefined;
  } catch {
    throw new ConfigError(
      `${where(entry)}: AppleEndpoint "${entry.AppleEndpoint}" is not a URL: use https://host:port, or leave it empty to use Apple's host.`,
    );
  }
  const target = apnsDialTarget(production, endpoint);
  let proxy: URL | undefined;
  try {
    proxy = resolveOutboundProxy(target, { configured: deps.outboundProxy, env: deps.env ?? {} });
  } catch (err) {
    throw new ConfigError(`${(err as Error).message} (needed for ${where(entry)}, which connects to ${target.host}:${target.port})`);
  }
  if (proxy)
    deps.logger.info(
      { platform: entry.Type, proxy: describeOutboundProxy(proxy), target: `${target.host}:${target.port}` },
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
      proxy,
      logger: deps.logger,
    });
  } catch (err) {
    if (err instanceof UnsupportedApnsLibraryError) throw new ConfigError(`${where(entry)}: ${err.message}.`);
    throw new ConfigError(`${where(entry)}: the APNs client refused the credentials: ${(err as Error).message}. ${credentialHint(entry)}`);
  }

  const topic = loaded.topic;
  const service = new TransportService(
    entry.Type,
    'apple',
    (notification, context) => buildApnsRequest(notification, { topic, appVersion: context.appVersion }),
    transport,
    {
      maxAttempts: 3,
      backoffMs: [1000, 2000],
      sendTimeoutMs: deps.sendTimeoutMs,
      retryTimeoutMs: deps.retryTimeoutMs,
      budgetExhausted: { error: 'unknown transport error', reason: 'unknown transport error' },
      attemptsExhausted: { error: 'unknown transport error', reason: 'unknown transport error' },
    },
    deps.observeAttempt,
    deps.clock,
  );
  return { service, notices };
}

/** Token auth when all three token keys are set (it takes precedence), else certificate auth, else skipped. */
export function loadAppleCredentials(entry: AppleEntryConfig): LoadedAppleCredentials | { skipped: string } {
  if (entry.AppleAuthKeyFile && entry.AppleAuthKeyID && entry.AppleTeamID) return loadTokenKey(entry);
  if (entry.ApplePushCertPrivate) return loadCertificate(entry);
  const partial = [
    entry.AppleAuthKeyFile && 'AppleAuthKeyFile',
    entry.AppleAuthKeyID && 'AppleAuthKeyID',
    entry.AppleTeamID && 'AppleTeamID',
  ].filter(Boolean);
  if (partial.length > 0) {
    // The original skips such an entry too; an existing config must keep starting.
    return {
      skipped: `incomplete token auth: only ${partial.join(', ')} set; token auth needs AppleAuthKeyFile, AppleAuthKeyID and AppleTeamID together`,
    };
  }
  return {
    skipped: 'no credentials: set AppleAuthKeyFile, AppleAuthKeyID and AppleTeamID (token auth) or ApplePushCertPrivate (certificate auth)',
  };
}

function loadTokenKey(entry: AppleEntryConfig): LoadedAppleCredentials {
  const keyPem = readCredentialFile(entry, 'AppleAuthKeyFile', entry.AppleAuthKeyFile).toString('utf8');
  let key;
  try {
    key = createPrivateKey(keyPem);
  } catch (err) {
    throw new ConfigError(
      `${where(entry)}: AppleAuthKeyFile ${entry.AppleAuthKeyFile} is not a readable private key (${(err as Error).message}). Use the .p8 file downloaded from Apple Developer > Keys, unchanged.`,
    );
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new ConfigError(
      `${where(entry)}: AppleAuthKeyFile ${entry.AppleAuthKeyFile} is not an APNs key (Apple issues P-256 EC keys in .p8 files). Download an APNs auth key from Apple Developer > Keys.`,
    );
  }
  if (!entry.ApplePushTopic) {
    throw new ConfigError(`${where(entry)}: token auth needs ApplePushTopic (the app's bundle id).`);
  }
  return {
    credentials: {
      kind: 'token',
      keyPem: key.export({ type: 'pkcs8', format: 'pem' }).toString(),
      keyId: entry.AppleAuthKeyID,
      teamId: entry.AppleTeamID,
    },
    topic: entry.ApplePushTopic,
  };
}

function loadCertificate(entry: AppleEntryConfig): LoadedAppleCredentials {
  const file = entry.ApplePushCertPrivate;
  const data = readCredentialFile(entry, 'ApplePushCertPrivate', file);
  const text = data.toString('latin1');
  const { certPem, keyPem } = text.includes('-----BEGIN') ? readPem(entry, text) : readPkcs12(entry, data);

  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (err) {
    throw new ConfigError(
      `${where(entry)}: ApplePushCertPrivate ${file}: the certificate cannot be parsed (${(err as Error).message}). ${credentialHint(entry)}`,
    );
  }
  const key = createPrivateKey(keyPem);
  if (!cert.checkPrivateKey(key)) {
    throw new ConfigError(
      `${where(entry)}: ApplePushCertPrivate ${file}: the private key does not belong to the certificate. Export certificate and key together from Keychain.`,
    );
  }
  const notAfter = new Date(cert.validTo);
  if (notAfter.getTime() < Date.now()) {
    throw new ConfigError(
      `${where(entry)}: the certificate in ApplePushCertPrivate ${file} expired on ${notAfter.toISOString()}. Create a new APNs certificate in Apple Developer, or switch to token auth (AppleAuthKeyFile), which does not expire.`,
    );
  }
  if (new Date(cert.validFrom).getTime() > Date.now()) {
    throw new ConfigError(
      `${where(entry)}: the certificate in ApplePushCertPrivate ${file} is not valid before ${new Date(cert.validFrom).toISOString()}. Check the machine's clock.`,
    );
  }

  const forgeCert = forge.pki.certificateFromPem(certPem);
  const production = !entry.ApplePushUseDevelopment;
  const envOid = production ? APPLE_PRODUCTION_OID : APPLE_SANDBOX_OID;
  if (!forgeCert.getExtension({ id: envOid } as unknown as string)) {
    throw new ConfigError(
      `${where(entry)}: the certificate in ApplePushCertPrivate ${file} is not valid for APNs ${production ? 'production' : 'development (sandbox)'}. ` +
        `Set ApplePushUseDevelopment to ${production} if that is the certificate's environment, or create a certificate for this one.`,
    );
  }
  const uid = forgeCert.subject.getField({ type: USER_ID_OID } as unknown as string) as { value?: string } | null;
  const topic = entry.ApplePushTopic || uid?.value || '';
  if (!topic) {
    throw new ConfigError(`${where(entry)}: set ApplePushTopic (the app's bundle id): the certificate does not name one.`);
  }
  return {
    credentials: { kind: 'certificate', certPem, keyPem: key.export({ type: 'pkcs8', format: 'pem' }).toString() },
    topic,
    notAfter,
  };
}

/** A PEM file holding the certificate and its key; the key may be encrypted with ApplePushCertPassword. */
function readPem(entry: AppleEntryConfig, text: string): { certPem: string; keyPem: string } {
  const certMatch = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(text);
  const keyMatch = /-----BEGIN ((?:RSA |EC |ENCRYPTED )?PRIVATE KEY)-----[\s\S]+?-----END \1-----/.exec(text);
  if (!certMatch || !keyMatch) {
    throw new ConfigError(
      `${where(entry)}: ApplePushCertPrivate ${entry.ApplePushCertPrivate} must hold both the certificate and its private key (PEM), or be a .p12 file. ${credentialHint(entry)}`,
    );
  }
  try {
    const key = createPrivateKey({ key: keyMatch[0], passphrase: entry.ApplePushCertPassword || undefined });
    return { certPem: certMatch[0], keyPem: key.export({ type: 'pkcs8', format: 'pem' }).toString() };
  } catch (err) {
    throw new ConfigError(
      `${where(entry)}: the private key in ApplePushCertPrivate ${entry.ApplePushCertPrivate} cannot be read (${(err as Error).message}). If it is encrypted, set ApplePushCertPassword.`,
    );
  }
}

/** node-forge opens the legacy RC2/3DES .p12 files that Node's OpenSSL 3 refuses. */
function readPkcs12(entry: AppleEntryConfig, data: Buffer): { certPem: string; keyPem: string } {
  let p12: forge.pkcs12.Pkcs12Pfx;
  try {
    const asn1 = forge.asn1.fromDer(forge.util.createBuffer(data.toString('binary')));
    p12 = forge.pkcs12.pkcs12FromAsn1(asn1, false, entry.ApplePushCertPassword);
  } catch (err) {
    throw new ConfigError(
      `${where(entry)}: ApplePushCertPrivate ${entry.ApplePushCertPrivate} is neither PEM nor a .p12 that opens with ApplePushCertPassword (${(err as Error).message}). Check the password, or export the certificate again from Keychain.`,
    );
  }
  const certBag = p12.getBags({ bagType: forge.pki.oids.certBag! })[forge.pki.oids.certBag!]?.[0];
  const keyBag =
    p12.getBags({ bagType: forge.pki.oids.pkcs8ShroudedKeyBag! })[forge.pki.oids.pkcs8ShroudedKeyBag!]?.[0] ??
    p12.getBags({ bagType: forge.pki.oids.keyBag! })[forge.pki.oids.keyBag!]?.[0];
  if (!certBag?.cert || !keyBag?.key) {
    throw new ConfigError(
      `${where(entry)}: the .p12 in ApplePushCertPrivate ${entry.ApplePushCertPrivate} lacks the certificate or its private key. Export both from Keychain.`,
    );
  }
  return { certPem: forge.pki.certificateToPem(certBag.cert), keyPem: forge.pki.privateKeyToPem(keyBag.key) };
}

function readCredentialFile(entry: AppleEntryConfig, key: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new ConfigError(
      `${where(entry)}: ${key} ${file} cannot be read (${code}). Check the path and that the proxy's user may read it.`,
    );
  }
}

function where(entry: AppleEntryConfig): string {
  return `ApplePushSettings entry "${entry.Type}"`;
}

function credentialHint(entry: AppleEntryConfig): string {
  return entry.AppleAuthKeyFile
    ? 'Check AppleAuthKeyFile, AppleAuthKeyID and AppleTeamID.'
    : 'Check ApplePushCertPrivate and ApplePushCertPassword.';
}
