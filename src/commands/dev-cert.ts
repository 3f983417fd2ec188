/**
 * `push-proxy dev-cert`: a throwaway CA, a server certificate for HTTPS and a client certificate for mTLS,
 * so a newcomer can try TLSCertFile / TLSClientCAFile without a real certificate authority.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CommandError } from './errors';
import { createCertificateAuthority, createClientCertificate, createServerCertificate } from '../tls/certificates';

export const DEV_CERT_USAGE = `Usage: push-proxy dev-cert [--out DIR] [--host NAME]...
  Writes ca.pem, server.pem, server-key.pem, client.pem and client-key.pem into DIR (default certs/dev).
  --host NAME   a DNS name or IP address the server certificate is for (repeat; default localhost, 127.0.0.1, ::1)`;

export function runDevCert(argv: readonly string[]): string {
  let out = path.join('certs', 'dev');
  const hosts: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = argv[i + 1];
    if ((arg === '--out' || arg === '--host') && value !== undefined) {
      if (arg === '--out') out = value;
      else hosts.push(value);
      i++;
    } else {
      throw new CommandError(`unexpected argument "${arg}"\n${DEV_CERT_USAGE}`);
    }
  }
  const ca = createCertificateAuthority('Push Proxy Development CA');
  const server = createServerCertificate(ca, hosts.length > 0 ? hosts : ['localhost', '127.0.0.1', '::1']);
  const client = createClientCertificate(ca);
  mkdirSync(out, { recursive: true });
  const write = (name: string, text: string, mode: number) => writeFileSync(path.join(out, name), text, { mode });
  write('ca.pem', ca.certPem, 0o644);
  write('server.pem', server.certPem, 0o644);
  write('server-key.pem', server.keyPem, 0o600);
  write('client.pem', client.certPem, 0o644);
  write('client-key.pem', client.keyPem, 0o600);
  return [
    `Development certificates written to ${out}/ (for testing only; valid one year):`,
    `  "TLSCertFile": "${path.join(out, 'server.pem')}", "TLSKeyFile": "${path.join(out, 'server-key.pem')}"`,
    `  for mTLS also "TLSClientCAFile": "${path.join(out, 'ca.pem')}", and clients present client.pem + client-key.pem`,
    `  try: curl --cacert ${path.join(out, 'ca.pem')} https://localhost:8066/healthz`,
  ].join('\n');
}
