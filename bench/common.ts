/**
 * What the bench's processes share: the control protocol between the orchestrator (bench/run.ts) and the
 * processes it forks (peers, baseline), the exactly-once counter, and small helpers.
 *
 * Every forked process exits by itself when the orchestrator goes away (its IPC channel closes) and after
 * `BENCH_MAX_LIFETIME_MS` at the latest, so nothing outlives a bench run.
 */
import type { Server } from 'node:http';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createAppleAuthKey, type AppleAuthKey } from '../src/sandbox/credentials';
import { createCertificateAuthority, createServerCertificate, type PemPair } from '../src/tls/certificates';

/** orchestrator → child */
export type ControlRequest =
  { id: number; cmd: 'reset'; run: string; latencyMs: number } | { id: number; cmd: 'stats' } | { id: number; cmd: 'stop' };

/** child → orchestrator */
export type ControlMessage =
  | { type: 'ready'; port: number; info?: Record<string, unknown> }
  | { type: 'reply'; id: number; stats?: PeerStats }
  | { type: 'fatal'; error: string };

export interface PeerStats {
  /** the label given with the last reset */
  run: string;
  /** requests that reached the send path since the last reset */
  received: number;
  /** distinct ack_ids among them */
  unique: number;
  /** requests whose ack_id had been seen before (must be 0: exactly once) */
  duplicates: number;
  /** requests without an ack_id, or with one from another run */
  foreign: number;
  /** requests refused (wrong path, missing authorization or topic) */
  rejected: number;
  /** OAuth token requests (FCM peer) */
  tokenRequests: number;
}

const ACK_MARK = Buffer.from('"ack_id":"', 'latin1');
const QUOTE = 0x22;

/**
 * The ack_id of a compact JSON body, without parsing it all (the peers must stay cheap). Read from the bytes:
 * decoding every body to a string was ~2 % of the peer's CPU.
 */
export function ackIdOf(body: Buffer): string | undefined {
  const at = body.indexOf(ACK_MARK);
  if (at < 0) return undefined;
  const start = at + ACK_MARK.length;
  const end = body.indexOf(QUOTE, start);
  return end < 0 ? undefined : body.toString('latin1', start, end);
}

/** A request body from its chunks, without a copy when it came in one (the usual case). */
export function joinChunks(chunks: Buffer[]): Buffer {
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}

/** The message the proxy logs at `info` for each notification delivered. */
export const DELIVERY_LINE = 'push delivered';

/** Lines of `text` holding the delivery message and an ack_id of run `run` (ack_ids are `<run>-…`, quoted). */
export function countDeliveryLines(text: string, run: string): number {
  const mark = `"${run}-`;
  let count = 0;
  for (let at = text.indexOf(DELIVERY_LINE); at >= 0;) {
    const lineStart = text.lastIndexOf('\n', at) + 1;
    const next = text.indexOf('\n', at);
    const lineEnd = next < 0 ? text.length : next;
    if (text.slice(lineStart, lineEnd).includes(mark)) count++;
    at = text.indexOf(DELIVERY_LINE, lineEnd);
  }
  return count;
}

/** Counts notifications per ack_id: the peers' half of the exactly-once check. */
export class DeliveryCounter {
  private seen = new Set<string>();
  private run = '';
  private prefix = '';
  private received = 0;
  private duplicates = 0;
  private foreign = 0;
  rejected = 0;
  tokenRequests = 0;

  reset(run: string): void {
    this.seen = new Set();
    this.run = run;
    this.prefix = `${run}-`;
    this.received = 0;
    this.duplicates = 0;
    this.foreign = 0;
    this.rejected = 0;
    this.tokenRequests = 0;
  }

  count(body: Buffer): void {
    this.received++;
    const ack = ackIdOf(body);
    if (ack === undefined || !ack.startsWith(this.prefix)) {
      this.foreign++;
      return;
    }
    if (this.seen.has(ack)) this.duplicates++;
    else this.seen.add(ack);
  }

  stats(): PeerStats {
    return {
      run: this.run,
      received: this.received,
      unique: this.seen.size,
      duplicates: this.duplicates,
      foreign: this.foreign,
      rejected: this.rejected,
      tokenRequests: this.tokenRequests,
    };
  }
}

export const DEFAULT_MAX_LIFETIME_MS = 30 * 60_000;

/**
 * The child side of the control channel. `onReset` receives the new peer latency; `stats` answers `stats`.
 * Exits when the orchestrator disconnects, on `stop`, and after the lifetime bound.
 */
export function serveControl(handlers: {
  onReset(run: string, latencyMs: number): void;
  stats?(): PeerStats;
  stop?(): Promise<void> | void;
}): void {
  if (!process.send) {
    process.stderr.write('this bench process is started by bench/run.js (it needs an IPC channel)\n');
    process.exit(2);
  }
  const send = (message: ControlMessage): void => {
    if (process.connected) process.send!(message);
  };
  process.on('message', (raw: ControlRequest) => {
    if (raw.cmd === 'reset') {
      handlers.onReset(raw.run, raw.latencyMs);
      send({ type: 'reply', id: raw.id });
    } else if (raw.cmd === 'stats') {
      send({ type: 'reply', id: raw.id, stats: handlers.stats?.() });
    } else if (raw.cmd === 'stop') {
      void Promise.resolve(handlers.stop?.()).finally(() => {
        send({ type: 'reply', id: raw.id });
        setTimeout(() => process.exit(0), 50);
      });
    }
  });
  // The orchestrator is gone (finished, crashed or killed): so are we.
  process.on('disconnect', () => process.exit(0));
  const lifetime = Number(process.env.BENCH_MAX_LIFETIME_MS) || DEFAULT_MAX_LIFETIME_MS;
  setTimeout(() => process.exit(3), lifetime).unref();
}

export function reportReady(port: number, info?: Record<string, unknown>): void {
  process.send?.({ type: 'ready', port, info } satisfies ControlMessage);
}

export function reportFatal(err: unknown): never {
  const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
  process.send?.({ type: 'fatal', error: message } satisfies ControlMessage);
  process.stderr.write(`${message}\n`);
  process.exit(1);
}

/** Only loopback addresses are ever targets. */
export function assertLoopback(host: string): void {
  if (!/^127\.\d+\.\d+\.\d+$/.test(host) && host !== '::1' && host !== 'localhost') {
    throw new Error(`bench targets must be loopback addresses, not ${host}`);
  }
}

export function readJsonArg<T>(): T {
  const file = process.argv[2];
  if (!file) throw new Error('usage: node <script> <settings.json>');
  return JSON.parse(readFileSync(file, 'utf8')) as T;
}

/** For the experiments' relays: listen on the config's `ListenAddress`; on SIGTERM close everything and exit. */
export function listenUntilSigterm(server: Server, listenAddress: string, close: () => Promise<unknown>): void {
  server.keepAliveTimeout = 60_000;
  const [host, port] = listenAddress.split(/:(?=\d+$)/);
  server.listen(Number(port), host || undefined);
  process.once('SIGTERM', () => {
    server.close();
    server.closeAllConnections();
    // A provider that never connected does not call back from shutdown(): exit anyway, so --cpu-prof writes.
    setTimeout(() => process.exit(0), 2_000).unref();
    void close().finally(() => process.exit(0));
  });
}

/**
 * Fresh credentials for a run, written into `work` as an operator's would be: a CA the relays trust through
 * NODE_EXTRA_CA_CERTS (`caFile`), a server certificate for the loopback peers and an APNs .p8 key.
 */
export function writeRunCredentials(
  work: string,
  caName: string,
): { serverTls: PemPair; caFile: string; authKey: AppleAuthKey; keyFile: string } {
  const ca = createCertificateAuthority(caName);
  const serverTls = createServerCertificate(ca, ['127.0.0.1', 'localhost']);
  const caFile = path.join(work, 'ca.pem');
  writeFileSync(caFile, ca.certPem);
  const authKey = createAppleAuthKey();
  const keyFile = path.join(work, `AuthKey_${authKey.keyId}.p8`);
  writeFileSync(keyFile, authKey.keyPem, { mode: 0o600 });
  return { serverTls, caFile, authKey, keyFile };
}
