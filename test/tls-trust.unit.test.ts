/** Which CAs an outbound TLS connection trusts (src/tls/trust.ts); over real sockets: tls-trust.test.ts. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import path from 'node:path';
import tls from 'node:tls';
import { createCertificateAuthority } from '../src/tls/certificates';
import { trustedCaList } from '../src/tls/trust';
import { tempDir, writeTemp } from './unit-support';

const operatorCa = createCertificateAuthority('Operator CA').certPem;
const peerCa = createCertificateAuthority('Own peer CA').certPem;

describe('trustedCaList', () => {
  it("no CAs of the proxy's own peers: undefined, so Node's default store (with NODE_EXTRA_CA_CERTS) applies", () => {
    const file = writeTemp(tempDir(), 'operator.pem', operatorCa);
    assert.equal(trustedCaList(undefined, { NODE_EXTRA_CA_CERTS: file }), undefined);
    assert.equal(trustedCaList([], { NODE_EXTRA_CA_CERTS: file }), undefined);
  });

  it("rebuilds the whole store: Node's roots, then NODE_EXTRA_CA_CERTS, then the own peers' CAs", () => {
    const file = writeTemp(tempDir(), 'operator.pem', operatorCa);
    assert.deepEqual(trustedCaList([peerCa], { NODE_EXTRA_CA_CERTS: file }), [...tls.rootCertificates, operatorCa, peerCa]);
  });

  it('without NODE_EXTRA_CA_CERTS: the roots and the own peers’ CAs', () => {
    assert.deepEqual(trustedCaList([peerCa], {}), [...tls.rootCertificates, peerCa]);
    assert.deepEqual(trustedCaList([peerCa], { NODE_EXTRA_CA_CERTS: '' }), [...tls.rootCertificates, peerCa]);
  });

  it('an unreadable NODE_EXTRA_CA_CERTS is left out, as Node leaves it out, and nothing throws', () => {
    const missing = path.join(tempDir(), 'no-such-file.pem');
    assert.deepEqual(trustedCaList([peerCa], { NODE_EXTRA_CA_CERTS: missing }), [...tls.rootCertificates, peerCa]);
  });

  it("reads the process's own NODE_EXTRA_CA_CERTS by default", () => {
    const file = writeTemp(tempDir(), 'operator.pem', operatorCa);
    const saved = process.env.NODE_EXTRA_CA_CERTS;
    process.env.NODE_EXTRA_CA_CERTS = file;
    try {
      assert.deepEqual(trustedCaList([peerCa]), [...tls.rootCertificates, operatorCa, peerCa]);
    } finally {
      if (saved === undefined) delete process.env.NODE_EXTRA_CA_CERTS;
      else process.env.NODE_EXTRA_CA_CERTS = saved;
    }
  });
});
