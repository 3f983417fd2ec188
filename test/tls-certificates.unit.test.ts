/** Certificates made on the spot (src/tls/certificates.ts): serial numbers OpenSSL accepts. */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { describe, it } from 'node:test';
import forge from 'node-forge';
import { createCertificateAuthority, createServerCertificate, randomSerialNumber } from '../src/tls/certificates';

describe('made-up certificates', () => {
  it('serial numbers are positive, minimally encoded DER integers (OpenSSL drops a CA with a padded one)', () => {
    for (let i = 0; i < 5000; i++) {
      const serial = randomSerialNumber();
      assert.match(serial, /^[4-7][0-9a-f]{31}$/);
    }
  });

  it('a certificate whose serial starts with zero bytes is what OpenSSL refuses', () => {
    const ca = createCertificateAuthority();
    const cert = forge.pki.certificateFromPem(createServerCertificate(ca).certPem);
    cert.serialNumber = '000078' + 'ab'.repeat(13);
    cert.sign(ca.key, forge.md.sha256.create());
    assert.throws(() => new X509Certificate(forge.pki.certificateToPem(cert)), /illegal padding/);
    cert.serialNumber = randomSerialNumber();
    cert.sign(ca.key, forge.md.sha256.create());
    assert.ok(new X509Certificate(forge.pki.certificateToPem(cert)).serialNumber);
  });
});
