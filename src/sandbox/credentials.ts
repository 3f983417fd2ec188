/**
 * Throwaway imitations of Apple's and Google's credentials for the sandbox peers and the tests: Apple-style
 * client certificates (.pem and .p12), APNs .p8 keys and Google service accounts. Made at start, never
 * written into the repository. Plain TLS certificates (a CA, server and client certificates) come from
 * src/tls/certificates.ts.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import forge from 'node-forge';
import { defaultValidity, newCertificate, rsaKeyPair, type CertificateAuthority, type PemPair } from '../tls/certificates';

/** Apple's marks for which APNs environment a client certificate may use. */
export const APPLE_SANDBOX_OID = '1.2.840.113635.100.6.3.1';
export const APPLE_PRODUCTION_OID = '1.2.840.113635.100.6.3.2';
/** The subject attribute in which Apple puts the bundle id (topic). */
export const USER_ID_OID = '0.9.2342.19200300.100.1.1';

export interface AppleClientCertificateOptions {
  topic: string;
  /** Which of Apple's environment marks the certificate carries. */
  environments?: Array<'sandbox' | 'production'>;
  notBefore?: Date;
  notAfter?: Date;
}

/** A client certificate shaped like Apple's "Apple Push Services" certificates. */
export function createAppleClientCertificate(ca: CertificateAuthority, options: AppleClientCertificateOptions): PemPair {
  const keys = rsaKeyPair();
  const validity = defaultValidity();
  const cert = newCertificate(keys.publicKey, options.notBefore ?? validity.notBefore, options.notAfter ?? validity.notAfter);
  cert.setSubject([
    { type: USER_ID_OID, value: options.topic },
    { name: 'commonName', value: `Apple Push Services: ${options.topic}` },
    { name: 'countryName', value: 'US' },
  ]);
  cert.setIssuer(ca.cert.subject.attributes);
  const asn1Null = forge.asn1.toDer(forge.asn1.create(forge.asn1.Class.UNIVERSAL, forge.asn1.Type.NULL, false, '')).getBytes();
  const environments = options.environments ?? ['sandbox', 'production'];
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, critical: true },
    { name: 'extKeyUsage', clientAuth: true },
    ...environments.map((env) => ({ id: env === 'sandbox' ? APPLE_SANDBOX_OID : APPLE_PRODUCTION_OID, value: asn1Null })),
  ]);
  cert.sign(ca.key, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: keys.keyPem };
}

/** Packs a certificate and key into a password-protected PKCS#12 file, as Keychain exports do. */
export function toPkcs12(pair: PemPair, password: string, algorithm: '3des' | 'aes256' = '3des'): Buffer {
  const key = forge.pki.privateKeyFromPem(pair.keyPem);
  const cert = forge.pki.certificateFromPem(pair.certPem);
  const asn1 = forge.pkcs12.toPkcs12Asn1(key, [cert], password, { algorithm, friendlyName: 'push' });
  return Buffer.from(forge.asn1.toDer(asn1).getBytes(), 'binary');
}

export interface AppleAuthKey {
  /** PKCS#8 PEM, as Apple's .p8 download. */
  keyPem: string;
  publicKeyPem: string;
  keyId: string;
  teamId: string;
}

export function createAppleAuthKey(keyId = randomId(10), teamId = randomId(10)): AppleAuthKey {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    keyId,
    teamId,
  };
}

export interface GoogleServiceAccount {
  type: 'service_account';
  project_id: string;
  private_key_id: string;
  private_key: string;
  client_email: string;
  client_id: string;
  token_uri: string;
}

/** A Google service-account JSON whose token endpoint is `tokenUri`; returns the public key for checks. */
export function createGoogleServiceAccount(
  tokenUri: string,
  projectId = 'push-proxy-sandbox',
): { account: GoogleServiceAccount; publicKeyPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    account: {
      type: 'service_account',
      project_id: projectId,
      private_key_id: randomBytes(20).toString('hex'),
      private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      client_email: `push-proxy@${projectId}.iam.gserviceaccount.com`,
      client_id: String(BigInt('0x' + randomBytes(8).toString('hex'))),
      token_uri: tokenUri,
    },
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

function randomId(length: number): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  const bytes = randomBytes(length);
  let id = '';
  for (const b of bytes) id += alphabet[b % alphabet.length];
  return id;
}
