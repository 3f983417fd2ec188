/**
 * A legacy PKCS#12 as older Keychain versions and OpenSSL 1.x `pkcs12 -export` wrote them: the certificate
 * encrypted with pbeWithSHAAnd40BitRC2-CBC, the key shrouded with 3DES, a SHA-1 MAC. Node's OpenSSL 3 refuses
 * such a file; node-forge reads it but writes only AES and 3DES, so the RC2 layer is made here from forge's parts.
 */
import forge from 'node-forge';
import type { PemPair } from '../src/tls/certificates';

const { asn1, pki, pkcs12 } = forge;
const ITERATIONS = 2048;

export function toLegacyRc2Pkcs12(pair: PemPair, password: string): Buffer {
  const key = pki.privateKeyFromPem(pair.keyPem);
  const cert = pki.certificateFromPem(pair.certPem);
  // forge's own 3DES file without a MAC: its key ContentInfo is kept, its plain certificate ContentInfo replaced.
  const plain = pkcs12.toPkcs12Asn1(key, [cert], password, { algorithm: '3des', useMac: false, friendlyName: 'push' });
  const authSafe = asn1.fromDer(octets(content(plain)));
  const [certInfo, keyInfo] = authSafe.value as forge.asn1.Asn1[];
  const safeContents = octets(content(certInfo!));

  const salt = forge.random.getBytesSync(8);
  const rc2 = forge.rc2.createEncryptionCipher(pkcs12.generateKey(password, forge.util.createBuffer(salt), 1, ITERATIONS, 5), 40);
  rc2.start(pkcs12.generateKey(password, forge.util.createBuffer(salt), 2, ITERATIONS, 8));
  rc2.update(forge.util.createBuffer(safeContents));
  rc2.finish();

  const encryptedCertInfo = seq([
    oid(pki.oids.encryptedData!),
    explicit0([
      seq([
        integer(0),
        seq([
          oid(pki.oids.data!),
          seq([oid(pki.oids['pbewithSHAAnd40BitRC2-CBC']!), seq([octet(salt), integer(ITERATIONS)])]),
          asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, false, rc2.output.getBytes()),
        ]),
      ]),
    ]),
  ]);
  const authSafeDer = asn1.toDer(seq([encryptedCertInfo, keyInfo!])).getBytes();

  const macSalt = forge.random.getBytesSync(8);
  const hmac = forge.hmac.create();
  hmac.start('sha1', pkcs12.generateKey(password, forge.util.createBuffer(macSalt), 3, ITERATIONS, 20).getBytes());
  hmac.update(authSafeDer);
  const macData = seq([
    seq([seq([oid(pki.oids.sha1!), asn1.create(asn1.Class.UNIVERSAL, asn1.Type.NULL, false, '')]), octet(hmac.digest().getBytes())]),
    octet(macSalt),
    integer(ITERATIONS),
  ]);
  const pfx = seq([integer(3), seq([oid(pki.oids.data!), explicit0([octet(authSafeDer)])]), macData]);
  return Buffer.from(asn1.toDer(pfx).getBytes(), 'binary');
}

/** A ContentInfo's (or the PFX's authSafe's) content: `[0] EXPLICIT OCTET STRING`. */
function content(info: forge.asn1.Asn1): forge.asn1.Asn1 {
  const values = info.value as forge.asn1.Asn1[];
  const contentInfo = values[0]!.type === asn1.Type.INTEGER ? values[1]! : info;
  return ((contentInfo.value as forge.asn1.Asn1[])[1]!.value as forge.asn1.Asn1[])[0]!;
}

function octets(node: forge.asn1.Asn1): string {
  return node.value as string;
}

const seq = (items: forge.asn1.Asn1[]) => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, items);
const explicit0 = (items: forge.asn1.Asn1[]) => asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, true, items);
const oid = (id: string) => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(id).getBytes());
const octet = (bytes: string) => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OCTETSTRING, false, bytes);
const integer = (n: number) => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, asn1.integerToDer(n).getBytes());
