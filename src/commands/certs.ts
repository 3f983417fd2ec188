/**
 * `push-proxy certs inspect|convert`: what an APNs credential file holds, read with the very code start-up reads
 * it with (src/platforms/apns/credentials.ts), and a Keychain .p12 turned into the PEM that ApplePushCertPrivate
 * takes without a password.
 */
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../config/errors';
import {
  APNS_KEY_CURVE,
  describeAppleCertificate,
  readApnsAuthKey,
  readCertificateAndKey,
  type AppleCertificateFacts,
  type CertificateAndKey,
  type CredentialSource,
} from '../platforms/apns/credentials';
import { CommandError, EXIT_CHECK_FAILED } from './errors';

export const CERTS_USAGE = `Usage: push-proxy certs inspect FILE [--password PASSWORD]
       push-proxy certs convert IN.p12 OUT.pem [--password PASSWORD] [--force]
  inspect   what an APNs credential file holds: a .p8 token key (its curve, and its key id when the file
            is named AuthKey_<key id>.p8), or a certificate and key in PEM or .p12 (legacy RC2 and 3DES
            exports too): subject, topic (the certificate's UID), APNs environment, validity and days
            left, whether the key belongs to the certificate
  convert   writes the certificate and its unencrypted private key from a .p12 (or an encrypted PEM) as
            one PEM file (mode 600) for ApplePushCertPrivate, with no ApplePushCertPassword needed;
            refuses to replace an existing OUT.pem unless --force
  --password PASSWORD   the .p12's password (or an encrypted PEM key's); other users may see a command's
                        arguments while it runs, so type it on a machine of your own
  Exit code 0 when the file could be read, 2 with what to fix when not.`;

const DAY_MS = 86_400_000;

interface CertsArguments {
  files: string[];
  password: string;
  force: boolean;
}

export function runCerts(argv: readonly string[], now = new Date()): string {
  const [action, ...rest] = argv;
  const args = parseArguments(rest);
  if (action === 'inspect' && args.files.length === 1 && !args.force) return inspect(args.files[0]!, args.password, now);
  if (action === 'convert' && args.files.length === 2) return convert(args.files[0]!, args.files[1]!, args.password, args.force, now);
  throw usageError(
    action === 'inspect' || action === 'convert' ? `wrong arguments for certs ${action}` : `unknown certs action "${action ?? ''}"`,
  );
}

function parseArguments(argv: readonly string[]): CertsArguments {
  const args: CertsArguments = { files: [], password: '', force: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--password') {
      const value = argv[++i];
      if (value === undefined) throw usageError('--password needs a value');
      args.password = value;
    } else if (arg.startsWith('--password=')) args.password = arg.slice('--password='.length);
    else if (arg === '--force') args.force = true;
    else if (arg.startsWith('-')) throw usageError(`unknown option "${arg}"`);
    else args.files.push(arg);
  }
  return args;
}

function usageError(problem: string): CommandError {
  return new CommandError(`certs: ${problem}\n${CERTS_USAGE}`, EXIT_CHECK_FAILED);
}

/** A problem with the file (unreadable, wrong password, not a credential) exits 2, worded for this command's arguments. */
function readingFile<T>(read: () => T): T {
  try {
    return read();
  } catch (err) {
    if (err instanceof ConfigError) throw new CommandError(err.message, EXIT_CHECK_FAILED);
    throw err;
  }
}

function source(command: string, file: string, password: string): CredentialSource {
  return { where: `certs ${command}`, fileKey: 'file', file, passwordKey: '--password', password };
}

function readFile(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new CommandError(
      `certs: ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? err}). Check the path.`,
      EXIT_CHECK_FAILED,
    );
  }
}

function inspect(file: string, password: string, now: Date): string {
  const data = readFile(file);
  const text = data.toString('latin1');
  const from = source('inspect', file, password);
  if (text.includes('-----BEGIN') && !text.includes('-----BEGIN CERTIFICATE-----')) {
    readingFile(() => readApnsAuthKey(from, data));
    const keyId = /^AuthKey_([A-Za-z0-9]+)\.p8$/.exec(path.basename(file))?.[1];
    return [
      `file:        ${file}`,
      'kind:        APNs auth key (.p8, token auth; it does not expire and serves both APNs environments)',
      `curve:       P-256 (${APNS_KEY_CURVE})`,
      keyId
        ? `key id:      ${keyId} (from the file name): AppleAuthKeyID`
        : 'key id:      not in the file name (Apple names the download AuthKey_<key id>.p8; Apple Developer > Keys shows it)',
    ].join('\n');
  }
  const pair = readingFile(() => readCertificateAndKey(from, data));
  return [`file:        ${file}`, ...describePair(from, pair, now).lines].join('\n');
}

function describePair(from: CredentialSource, pair: CertificateAndKey, now: Date): { facts: AppleCertificateFacts; lines: string[] } {
  const facts = readingFile(() => describeAppleCertificate(from, pair));
  const lines = [
    `kind:        certificate and private key (${pair.format === 'pem' ? 'PEM' : 'PKCS#12'})`,
    `subject:     ${facts.subject}`,
    `topic:       ${facts.topic ?? 'none (the subject has no UID): set ApplePushTopic to the app bundle id'}`,
    `environment: ${describeEnvironments(facts)}`,
    `valid:       from ${facts.notBefore.toISOString()} to ${facts.notAfter.toISOString()}`,
    `expiry:      ${describeExpiry(facts, now)}`,
    `private key: ${facts.keyMatches ? 'belongs to the certificate' : 'does NOT belong to the certificate: export certificate and key together from Keychain'}`,
  ];
  return { facts, lines };
}

function describeEnvironments(facts: AppleCertificateFacts): string {
  const { environments } = facts;
  if (environments.length === 2) return 'development and production (either ApplePushUseDevelopment works)';
  if (environments[0] === 'development') return 'development (sandbox) only: ApplePushUseDevelopment must be true';
  if (environments[0] === 'production') return 'production only: ApplePushUseDevelopment must be false';
  return "none: it lacks Apple's APNs environment marks, so it is not an APNs client certificate";
}

function describeExpiry(facts: AppleCertificateFacts, now: Date): string {
  const left = facts.notAfter.getTime() - now.getTime();
  if (left < 0) return `EXPIRED ${Math.floor(-left / DAY_MS)} day(s) ago: create a new APNs certificate in Apple Developer`;
  if (facts.notBefore.getTime() > now.getTime()) return "not valid yet: check this machine's clock";
  return `${Math.floor(left / DAY_MS)} day(s) left`;
}

function convert(input: string, output: string, password: string, force: boolean, now: Date): string {
  const from = source('convert', input, password);
  const pair = readingFile(() => readCertificateAndKey(from, readFile(input)));
  const { facts, lines } = describePair(from, pair, now);
  if (!facts.keyMatches) {
    throw new CommandError(
      `certs convert: the private key in ${input} does not belong to its certificate: nothing written.`,
      EXIT_CHECK_FAILED,
    );
  }
  try {
    writeFileSync(output, pair.certPem.trimEnd() + '\n' + pair.keyPem, { mode: 0o600, flag: force ? 'w' : 'wx' });
    // The mode above applies only to a new file: a replaced one keeps its own, which may let others read the key.
    chmodSync(output, 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new CommandError(`certs convert: ${output} exists: nothing written. Give --force to replace it.`, EXIT_CHECK_FAILED);
    }
    throw new CommandError(
      `certs convert: ${output} cannot be written (${(err as NodeJS.ErrnoException).code ?? err}).`,
      EXIT_CHECK_FAILED,
    );
  }
  return [
    `wrote ${output} (mode 600): the certificate and its unencrypted private key.`,
    `Use it as "ApplePushCertPrivate": "${output}", without ApplePushCertPassword. Keep it as secret as the .p12.`,
    ...lines,
  ].join('\n');
}
