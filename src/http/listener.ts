/**
 * The listening socket: plain HTTP as the original, or HTTPS (TLS 1.2+, modern ciphers) with optional client
 * certificates, and which forwarding hops to believe for the client's address and scheme.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { RequestListener } from 'node:http';
import type { Logger } from 'pino';
import { ConfigError } from '../config/errors';
import type { ProxyConfig } from '../config/types';
import { cidrMatcher } from '../net/addresses';
import { TrackedResponse } from './drain';

/** Mozilla's "intermediate" suite: forward secrecy and AEAD only; TLS 1.3 suites are always on. */
const TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

export type TlsSettings = Pick<ProxyConfig, 'TLSCertFile' | 'TLSKeyFile' | 'TLSClientCAFile'>;

export type ClientLimits = Pick<ProxyConfig, 'HeadersTimeoutSec' | 'RequestTimeoutSec' | 'KeepAliveTimeoutSec' | 'MaxConnections'>;

/**
 * The listening server, with slow and greedy clients bounded: headers and whole requests must arrive in time,
 * and past MaxConnections new connections are closed at once (logged, at most every `dropLogIntervalMs`).
 */
export function createListener(
  settings: TlsSettings & ClientLimits,
  app: RequestListener,
  logger: Logger,
  dropLogIntervalMs = 10_000,
): http.Server {
  const limits: ClientLimits = settings;
  const headersTimeout = limits.HeadersTimeoutSec * 1000;
  const requestTimeout = limits.RequestTimeoutSec * 1000;
  const timeouts: http.ServerOptions = {
    // Each answer tells the listener's RequestTracker when it closes (src/http/drain.ts).
    ServerResponse: TrackedResponse,
    headersTimeout,
    requestTimeout,
    // Node looks for late headers and requests only this often (30 s by default): a cut would come that late.
    connectionsCheckingInterval: connectionsCheckingIntervalMs(headersTimeout, requestTimeout),
  };
  // Under TLS the HTTP timers start after the handshake: a client that never completes one would be held
  // for Node's 120 s, so the handshake gets the headers' time.
  const server = settings.TLSCertFile
    ? https.createServer({ ...loadTlsOptions(settings), ...timeouts, handshakeTimeout: headersTimeout }, app)
    : http.createServer(timeouts, app);
  server.keepAliveTimeout = limits.KeepAliveTimeoutSec * 1000;
  if (limits.MaxConnections > 0) {
    server.maxConnections = limits.MaxConnections;
    const drops = new DropCounter(dropLogIntervalMs);
    server.on('drop', () => {
      const dropped = drops.drop();
      if (dropped !== undefined) {
        logger.warn(
          { max_connections: limits.MaxConnections, dropped },
          `MaxConnections (${limits.MaxConnections}) reached: ${dropped} new connection(s) closed at once since the last such line`,
        );
      }
    });
  }
  return server;
}

/** Half the shortest timeout, at most 1 s and at least 100 ms: a cut comes at most that late. */
export function connectionsCheckingIntervalMs(headersTimeoutMs: number, requestTimeoutMs: number): number {
  return Math.max(100, Math.min(1_000, Math.floor(Math.min(headersTimeoutMs, requestTimeoutMs) / 2)));
}

/**
 * Counts refused connections and says when to log them: the first at once, then at most once per interval
 * with how many were refused meanwhile, so a flood of connections does not flood the log.
 */
export class DropCounter {
  private dropped = 0;
  private lastReportAt = -Infinity;

  constructor(
    private readonly intervalMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Counts one refused connection; returns how many to report (this one included), or undefined to stay quiet. */
  drop(): number | undefined {
    this.dropped++;
    const now = this.now();
    if (now - this.lastReportAt < this.intervalMs) return undefined;
    const dropped = this.dropped;
    this.dropped = 0;
    this.lastReportAt = now;
    return dropped;
  }
}

export function loadTlsOptions(settings: TlsSettings): https.ServerOptions {
  const cert = readPemFile('TLSCertFile', settings.TLSCertFile);
  const key = readPemFile('TLSKeyFile', settings.TLSKeyFile);
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(cert);
  } catch (err) {
    throw new ConfigError(
      `TLSCertFile ${settings.TLSCertFile} holds no readable certificate (${(err as Error).message}). Give the PEM certificate, with its chain after it.`,
    );
  }
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    throw new ConfigError(
      `TLSKeyFile ${settings.TLSKeyFile} holds no readable private key (${(err as Error).message}). Give the unencrypted PEM key of TLSCertFile.`,
    );
  }
  if (!leaf.checkPrivateKey(privateKey)) {
    throw new ConfigError(
      `TLSKeyFile ${settings.TLSKeyFile} does not belong to the certificate in TLSCertFile ${settings.TLSCertFile}. Give the key the certificate was issued for.`,
    );
  }
  if (new Date(leaf.validTo).getTime() < Date.now()) {
    throw new ConfigError(
      `the certificate in TLSCertFile ${settings.TLSCertFile} expired on ${new Date(leaf.validTo).toISOString()}. Renew it.`,
    );
  }
  const options: https.ServerOptions = {
    cert,
    key,
    minVersion: 'TLSv1.2',
    ciphers: TLS12_CIPHERS,
    honorCipherOrder: true,
  };
  if (settings.TLSClientCAFile) {
    options.ca = readPemFile('TLSClientCAFile', settings.TLSClientCAFile);
    checkCaCertificates(settings.TLSClientCAFile, options.ca);
    // Without a certificate from that CA the handshake itself fails: nothing reaches the application.
    options.requestCert = true;
    options.rejectUnauthorized = true;
  }
  return options;
}

/** When the certificate in TLSCertFile ends, for the expiry watch; the file was checked by loadTlsOptions. */
export function servedCertificateNotAfter(settings: Pick<TlsSettings, 'TLSCertFile'>): Date {
  return new Date(new X509Certificate(readPemFile('TLSCertFile', settings.TLSCertFile)).validTo);
}

/** OpenSSL drops a CA it cannot parse without a word, and then refuses every client that CA signed. */
function checkCaCertificates(file: string, pem: string): void {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0)
    throw new ConfigError(
      `TLSClientCAFile ${file} holds no PEM certificate. Give the CA certificate(s) that sign the clients' certificates.`,
    );
  blocks.forEach((block, i) => {
    try {
      new X509Certificate(block);
    } catch (err) {
      throw new ConfigError(
        `TLSClientCAFile ${file}: certificate ${i + 1} of ${blocks.length} cannot be read (${(err as Error).message}); no client it signed could connect. Replace it with the CA's certificate as issued.`,
      );
    }
  });
}

function readPemFile(key: string, file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(
      `${key} ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? err}). Check the path and that the proxy's user may read it.`,
    );
  }
}

/**
 * Whether a peer is one of the TrustedProxies (load balancers, by CIDR), for Express's `trust proxy` and the
 * push API: only those are believed, so a client cannot forge its address or scheme with its own X-Forwarded-* headers.
 */
export function trustedProxyMatcher(cidrs: readonly string[]): (address: string) => boolean {
  return cidrMatcher(cidrs, 'TrustedProxies');
}
