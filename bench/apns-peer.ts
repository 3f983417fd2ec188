/**
 * A fast APNs stand-in for the bench, in its own process: HTTP/2 over TLS, a wide flow-control window,
 * thousands of concurrent streams, an optional artificial latency, and no JWT verification (that is the
 * strict sandbox peer's job, src/sandbox/apns-peer.ts). It answers `POST /3/device/<token>` with 200 when
 * the request carries an `authorization` and an `apns-topic`, and counts every notification by its
 * `ack_id` for the exactly-once check.
 *
 * Started by bench/run.ts: `node dist/bench/apns-peer.js <settings.json>`.
 */
import http2 from 'node:http2';
import { assertLoopback, DeliveryCounter, joinChunks, readJsonArg, reportFatal, reportReady, serveControl } from './common';

export interface ApnsPeerSettings {
  host: string;
  certPem: string;
  keyPem: string;
}

const WINDOW_BYTES = 64 * 1024 * 1024;
const APNS_ID = '00000000-0000-4000-8000-000000000000';

function main(): void {
  const settings = readJsonArg<ApnsPeerSettings>();
  assertLoopback(settings.host);
  const counter = new DeliveryCounter();
  let latencyMs = 0;

  const server = http2.createSecureServer({
    cert: settings.certPem,
    key: settings.keyPem,
    allowHTTP1: false,
    settings: { maxConcurrentStreams: 10_000, initialWindowSize: 16 * 1024 * 1024 },
    maxSessionMemory: 1024,
  });
  server.on('session', (session) => {
    session.on('error', () => undefined);
    try {
      session.setLocalWindowSize(WINDOW_BYTES);
    } catch {
      // already closed
    }
  });
  server.on('sessionError', () => undefined);
  server.on('tlsClientError', () => undefined);

  server.on('stream', (stream, headers) => {
    stream.on('error', () => undefined);
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
    });
    stream.on('end', () => {
      const path = headers[':path'];
      let status = 200;
      let reason: string | undefined;
      if (
        headers[':method'] !== 'POST' ||
        typeof path !== 'string' ||
        !path.startsWith('/3/device/') ||
        path.length <= '/3/device/'.length
      ) {
        status = 404;
        reason = 'BadPath';
      } else if (!headers.authorization) {
        status = 403;
        reason = 'MissingProviderToken';
      } else if (!headers['apns-topic']) {
        status = 400;
        reason = 'MissingTopic';
      }
      if (status === 200) counter.count(joinChunks(chunks));
      else counter.rejected++;
      const respond = (): void => {
        if (stream.destroyed || stream.closed) return;
        const apnsId = typeof headers['apns-id'] === 'string' ? headers['apns-id'] : APNS_ID;
        if (reason === undefined) {
          stream.respond({ ':status': 200, 'apns-id': apnsId }, { endStream: true });
        } else {
          stream.respond({ ':status': status, 'apns-id': apnsId, 'content-type': 'application/json' });
          stream.end(JSON.stringify({ reason }));
        }
      };
      if (latencyMs > 0) setTimeout(respond, latencyMs);
      else respond();
    });
  });

  serveControl({
    onReset(run, latency) {
      counter.reset(run);
      latencyMs = latency;
    },
    stats: () => counter.stats(),
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        setTimeout(resolve, 1000).unref();
      }),
  });

  server.once('error', reportFatal);
  server.listen(0, settings.host, () => {
    const address = server.address();
    reportReady(typeof address === 'object' && address ? address.port : 0);
  });
}

try {
  main();
} catch (err) {
  reportFatal(err);
}
