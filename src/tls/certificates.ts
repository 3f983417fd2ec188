/**
 * Certificates for TLS, made on the spot: a CA, server certificates and client certificates. Shipped code
 * (`push-proxy dev-cert`, the test-mode sandbox) makes its throwaway certificates here; the sandbox's
 * imitations of Apple's and Google's credentials (src/sandbox/credentials.ts) build on these helpers.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import forge from 'node-forge';

export interface PemPair {
  certPem: string;
  keyPem: string;
}

export interface CertificateAuthority extends PemPair {
  cert: forge.pki.Certificate;
  key: forge.pki.rsa.PrivateKey;
}

/** A 2048-bit RSA key pair. RSA generation in forge is pure JavaScript and slow; node:crypto does it natively. */
export function rsaKeyPair(): { publicKey: forge.pki.rsa.PublicKey; privateKey: forge.pki.rsa.PrivateKey; keyPem: string } {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyPem = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  const forgeKey = forge.pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey;
  return { privateKey: forgeKey, publicKey: forge.pki.setRsaPublicKey(forgeKey.n, forgeKey.e), keyPem };
}

/**
 * 16 random bytes, first byte 0x40–0x7f: positive and minimally encoded as a DER integer whatever the rest.
 * A redundant leading zero byte is "illegal padding" to OpenSSL, which then refuses the certificate, and as a
 * CA (`ca` option) drops it without a word, so every handshake it should vouch for fails.
 */
export function randomSerialNumber(): string {
  const serial = randomBytes(16);
  serial[0] = 0x40 | (serial[0]! & 0x3f);
  return serial.toString('hex');
}

/** An unsigned certificate for `publicKey` with a fresh serial number; the caller names, extends and signs it. */
export function newCertificate(publicKey: forge.pki.PublicKey, notBefore: Date, notAfter: Date): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = randomSerialNumber();
  cert.validity.notBefore = notBefore;
  cert.validity.notAfter = notAfter;
  return cert;
}

/** From a minute ago (a little clock skew between peers) to a year from now. */
export function defaultValidity(): { notBefore: Date; notAfter: Date } {
  const now = Date.now();
  return { notBefore: new Date(now - 60_000), notAfter: new Date(now + 365 * 24 * 3600_000) };
}

export function createCertificateAuthority(commonName = 'Push Proxy Sandbox CA'): CertificateAuthority {
  const keys = rsaKeyPair();
  const { notBefore, notAfter } = defaultValidity();
  const cert = newCertificate(keys.publicKey, notBefore, notAfter);
  const attrs = [{ name: 'commonName', value: commonName }];
  cert.setSubject(attrs);
  cert.setIssuer(attrs);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  return { cert, key: keys.privateKey, certPem: forge.pki.certificateToPem(cert), keyPem: keys.keyPem };
}

/** A server certificate for the given DNS names and IP addresses, valid a year unless `validity` says otherwise. */
export function createServerCertificate(
  ca: CertificateAuthority,
  hosts: string[] = ['localhost', '127.0.0.1', '::1'],
  validity: { notBefore: Date; notAfter: Date } = defaultValidity(),
): PemPair {
  const keys = rsaKeyPair();
  const { notBefore, notAfter } = validity;
  const cert = newCertificate(keys.publicKey, notBefore, notAfter);
  cert.setSubject([{ name: 'commonName', value: hosts[0] ?? 'localhost' }]);
  cert.setIssuer(ca.cert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: hosts.map((h) => (/^[\d.]+$|:/.test(h) ? { type: 7, ip: h } : { type: 2, value: h })),
    },
  ]);
  cert.sign(ca.key, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: keys.keyPem };
}

/** A TLS client certificate, for mTLS to the proxy itself. */
export function createClientCertificate(ca: CertificateAuthority, commonName = 'push-proxy-client'): PemPair {
  const keys = rsaKeyPair();
  const { notBefore, notAfter } = defaultValidity();
  const cert = newCertificate(keys.publicKey, notBefore, notAfter);
  cert.setSubject([{ name: 'commonName', value: commonName }]);
  cert.setIssuer(ca.cert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, critical: true },
    { name: 'extKeyUsage', clientAuth: true },
  ]);
  cert.sign(ca.key, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: keys.keyPem };
}
