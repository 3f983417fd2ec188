/**
 * An `ApplePushSettings` entry's credentials, read and checked at start-up so that an operator hears about a bad
 * key, a certificate for the wrong environment or an expired one at once: a .p8 token key, or a certificate and
 * its key in PEM or .p12 (legacy RC2/3DES exports too).
 */
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import forge from 'node-forge';
import { ConfigError } from '../../config/errors';
import { entryName, readCredentialFile } from '../shared';
import type { AppleEntryConfig } from './config';
import type { AppleCredentials } from './transport';

const APPLE_SANDBOX_OID = '1.2.840.113635.100.6.3.1';
const APPLE_PRODUCTION_OID = '1.2.840.113635.100.6.3.2';
const USER_ID_OID = '0.9.2342.19200300.100.1.1';
/** The curve of every APNs token key (.p8), as Node names it. */
export const APNS_KEY_CURVE = 'prime256v1';

export interface LoadedAppleCredentials {
  credentials: AppleCredentials;
  /** The bundle id: from the config, else from the certificate's subject. */
  topic: string;
  /** When a certificate stops working (certificate auth only). */
  notAfter?: Date;
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
  const source = entrySource(entry, 'AppleAuthKeyFile', entry.AppleAuthKeyFile);
  const key = readApnsAuthKey(source, readCredentialFile(source.where, source.fileKey, source.file));
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
  const source = entrySource(entry, 'ApplePushCertPrivate', file);
  const pair = readCertificateAndKey(source, readCredentialFile(source.where, source.fileKey, file));
  const facts = describeAppleCertificate(source, pair);
  if (!facts.keyMatches) {
    throw new ConfigError(
      `${where(entry)}: ApplePushCertPrivate ${file}: the private key does not belong to the certificate. Export certificate and key together from Keychain.`,
    );
  }
  if (facts.notAfter.getTime() < Date.now()) {
    throw new ConfigError(
      `${where(entry)}: the certificate in ApplePushCertPrivate ${file} expired on ${facts.notAfter.toISOString()}. Create a new APNs certificate in Apple Developer, or switch to token auth (AppleAuthKeyFile), which does not expire.`,
    );
  }
  if (facts.notBefore.getTime() > Date.now()) {
    throw new ConfigError(
      `${where(entry)}: the certificate in ApplePushCertPrivate ${file} is not valid before ${facts.notBefore.toISOString()}. Check the machine's clock.`,
    );
  }
  const production = !entry.ApplePushUseDevelopment;
  if (!facts.environments.includes(production ? 'production' : 'development')) {
    throw new ConfigError(
      `${where(entry)}: the certificate in ApplePushCertPrivate ${file} is not valid for APNs ${production ? 'production' : 'development (sandbox)'}. ` +
        `Set ApplePushUseDevelopment to ${production} if that is the certificate's environment, or create a certificate for this one.`,
    );
  }
  const topic = entry.ApplePushTopic || facts.topic || '';
  if (!topic) {
    throw new ConfigError(`${where(entry)}: set ApplePushTopic (the app's bundle id): the certificate does not name one.`);
  }
  return { credentials: { kind: 'certificate', certPem: pair.certPem, keyPem: pair.keyPem }, topic, notAfter: facts.notAfter };
}

/**
 * How errors name a credential file and its password: an entry's keys at start-up, a command's arguments in
 * `push-proxy certs`, so that each reader is told what to change in what they typed.
 */
export interface CredentialSource {
  /** What every error starts with: `ApplePushSettings entry "apple_rn"`, or the command. */
  where: string;
  /** The key or argument naming the file: `ApplePushCertPrivate`, `AppleAuthKeyFile`, `file`. */
  fileKey: string;
  file: string;
  /** The key or option giving the password: `ApplePushCertPassword`, `--password`. */
  passwordKey: string;
  password: string;
}

function entrySource(entry: AppleEntryConfig, fileKey: string, file: string): CredentialSource {
  return { where: where(entry), fileKey, file, passwordKey: 'ApplePushCertPassword', password: entry.ApplePushCertPassword };
}

/** An APNs token key: the P-256 EC private key of Apple's .p8 download. */
export function readApnsAuthKey(source: CredentialSource, data: Buffer): KeyObject {
  const named = `${source.where}: ${source.fileKey} ${source.file}`;
  let key;
  try {
    key = createPrivateKey(data.toString('utf8'));
  } catch (err) {
    throw new ConfigError(
      `${named} is not a readable private key (${(err as Error).message}). Use the .p8 file downloaded from Apple Developer > Keys, unchanged.`,
    );
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== APNS_KEY_CURVE) {
    throw new ConfigError(
      `${named} is not an APNs key (Apple issues P-256 EC keys in .p8 files). Download an APNs auth key from Apple Developer > Keys.`,
    );
  }
  return key;
}

/** A certificate and its private key as read from a PEM or .p12 file; the key unencrypted, PKCS#8. */
export interface CertificateAndKey {
  format: 'pem' | 'pkcs12';
  certPem: string;
  keyPem: string;
}

/** The certificate and key of a PEM file (its key possibly encrypted) or of a .p12 file, opened with the source's password. */
export function readCertificateAndKey(source: CredentialSource, data: Buffer): CertificateAndKey {
  const text = data.toString('latin1');
  const { certPem, keyPem } = text.includes('-----BEGIN') ? readPem(source, text) : readPkcs12(source, data);
  return { format: text.includes('-----BEGIN') ? 'pem' : 'pkcs12', certPem, keyPem };
}

/** What an APNs client certificate says about itself, and whether the key read with it belongs to it. */
export interface AppleCertificateFacts {
  /** The subject, one attribute after another: `UID=com.example.app, CN=Apple Push Services: com.example.app, C=US`. */
  subject: string;
  /** The bundle id Apple puts in the subject's UID, if any. */
  topic: string | undefined;
  /** The APNs environments Apple's extensions in it allow. */
  environments: Array<'development' | 'production'>;
  notBefore: Date;
  notAfter: Date;
  keyMatches: boolean;
}

export function describeAppleCertificate(source: CredentialSource, pair: CertificateAndKey): AppleCertificateFacts {
  let cert: X509Certificate;
  let forgeCert: forge.pki.Certificate;
  try {
    cert = new X509Certificate(pair.certPem);
    forgeCert = forge.pki.certificateFromPem(pair.certPem);
  } catch (err) {
    throw new ConfigError(
      `${source.where}: ${source.fileKey} ${source.file}: the certificate cannot be parsed (${(err as Error).message}). ${sourceHint(source)}`,
    );
  }
  const hasExtension = (oid: string) => Boolean(forgeCert.getExtension({ id: oid } as unknown as string));
  const uid = forgeCert.subject.getField({ type: USER_ID_OID } as unknown as string) as { value?: string } | null;
  return {
    subject: cert.subject.split('\n').join(', '),
    topic: uid?.value || undefined,
    environments: [
      ...(hasExtension(APPLE_SANDBOX_OID) ? ['development' as const] : []),
      ...(hasExtension(APPLE_PRODUCTION_OID) ? ['production' as const] : []),
    ],
    notBefore: new Date(cert.validFrom),
    notAfter: new Date(cert.validTo),
    keyMatches: cert.checkPrivateKey(createPrivateKey(pair.keyPem)),
  };
}

/** A PEM file holding the certificate and its key; the key may be encrypted with the source's password. */
function readPem(source: CredentialSource, text: string): { certPem: string; keyPem: string } {
  const certMatch = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(text);
  const keyMatch = /-----BEGIN ((?:RSA |EC |ENCRYPTED )?PRIVATE KEY)-----[\s\S]+?-----END \1-----/.exec(text);
  if (!certMatch || !keyMatch) {
    throw new ConfigError(
      `${source.where}: ${source.fileKey} ${source.file} must hold both the certificate and its private key (PEM), or be a .p12 file. ${sourceHint(source)}`,
    );
  }
  try {
    const key = createPrivateKey({ key: keyMatch[0], passphrase: source.password || undefined });
    return { certPem: certMatch[0], keyPem: key.export({ type: 'pkcs8', format: 'pem' }).toString() };
  } catch (err) {
    throw new ConfigError(
      `${source.where}: the private key in ${source.fileKey} ${source.file} cannot be read (${(err as Error).message}). If it is encrypted, give its password in ${source.passwordKey}.`,
    );
  }
}

/** node-forge opens the legacy RC2/3DES .p12 files that Node's OpenSSL 3 refuses. */
function readPkcs12(source: CredentialSource, data: Buffer): { certPem: string; keyPem: string } {
  let p12: forge.pkcs12.Pkcs12Pfx;
  try {
    const asn1 = forge.asn1.fromDer(forge.util.createBuffer(data.toString('binary')));
    p12 = forge.pkcs12.pkcs12FromAsn1(asn1, false, source.password);
  } catch (err) {
    throw new ConfigError(
      `${source.where}: ${source.fileKey} ${source.file} is neither PEM nor a .p12 that opens with ${source.passwordKey} (${(err as Error).message}). Check the password, or export the certificate again from Keychain.`,
    );
  }
  const certBag = p12.getBags({ bagType: forge.pki.oids.certBag! })[forge.pki.oids.certBag!]?.[0];
  const keyBag =
    p12.getBags({ bagType: forge.pki.oids.pkcs8ShroudedKeyBag! })[forge.pki.oids.pkcs8ShroudedKeyBag!]?.[0] ??
    p12.getBags({ bagType: forge.pki.oids.keyBag! })[forge.pki.oids.keyBag!]?.[0];
  if (!certBag?.cert || !keyBag?.key) {
    throw new ConfigError(
      `${source.where}: the .p12 in ${source.fileKey} ${source.file} lacks the certificate or its private key. Export both from Keychain.`,
    );
  }
  const keyPem = createPrivateKey(forge.pki.privateKeyToPem(keyBag.key)).export({ type: 'pkcs8', format: 'pem' }).toString();
  return { certPem: forge.pki.certificateToPem(certBag.cert), keyPem };
}

function sourceHint(source: CredentialSource): string {
  return `Check ${source.fileKey} and ${source.passwordKey}.`;
}

function where(entry: AppleEntryConfig): string {
  return entryName('ApplePushSettings', entry);
}

/** What to check when the APNs client refuses the entry's credentials. */
export function credentialHint(entry: AppleEntryConfig): string {
  return entry.AppleAuthKeyFile
    ? 'Check AppleAuthKeyFile, AppleAuthKeyID and AppleTeamID.'
    : 'Check ApplePushCertPrivate and ApplePushCertPassword.';
}
