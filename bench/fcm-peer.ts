/**
 * A fast FCM stand-in for the bench, in its own process: HTTPS (HTTP/1.1 keep-alive, which is what
 * FCM's HTTP v1 API and the proxy's FcmTransport speak), an OAuth token endpoint that grants any request, and
 * `POST /v1/projects/<p>/messages:send` answering `{"name":"projects/<p>/messages/1"}` when the request
 * carries the granted bearer token. No JWT or message validation (that is the strict sandbox peer's job,
 * src/sandbox/fcm-peer.ts). Counts every message by its `ack_id` for the exactly-once check.
 *
 * Started by bench/run.ts: `node dist/bench/fcm-peer.js <settings.json>`.
 */
import https from 'node:https';
import { assertLoopback, DeliveryCounter, joinChunks, readJsonArg, reportFatal, reportReady, serveControl } from './common';

export interface FcmPeerSettings {
  host: string;
  certPem: string;
  keyPem: string;
}

export const BENCH_ACCESS_TOKEN = 'bench-access-token';
const SEND_PATH = /^\/v1\/projects\/([^/]+)\/messages:send$/;
const TOKEN_ANSWER = JSON.stringify({ access_token: BENCH_ACCESS_TOKEN, expires_in: 3600, token_type: 'Bearer' });

function main(): void {
  const settings = readJsonArg<FcmPeerSettings>();
  assertLoopback(settings.host);
  const counter = new DeliveryCounter();
  let latencyMs = 0;

  const server = https.createServer({ cert: settings.certPem, key: settings.keyPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
    });
    req.on('end', () => {
      const answer = (status: number, json: string): void => {
        const send = (): void => {
          if (res.destroyed) return;
          res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', 'content-length': Buffer.byteLength(json) });
          res.end(json);
        };
        if (latencyMs > 0) setTimeout(send, latencyMs);
        else send();
      };
      if (req.method === 'POST' && req.url === '/token') {
        counter.tokenRequests++;
        return answer(200, TOKEN_ANSWER);
      }
      const match = req.method === 'POST' ? SEND_PATH.exec(req.url ?? '') : null;
      if (!match) {
        counter.rejected++;
        return answer(404, JSON.stringify({ error: { code: 404, message: 'Not Found', status: 'NOT_FOUND' } }));
      }
      if (req.headers.authorization !== `Bearer ${BENCH_ACCESS_TOKEN}`) {
        counter.rejected++;
        return answer(
          401,
          JSON.stringify({ error: { code: 401, message: 'Request had invalid authentication credentials.', status: 'UNAUTHENTICATED' } }),
        );
      }
      counter.count(joinChunks(chunks));
      answer(200, JSON.stringify({ name: `projects/${match[1]}/messages/1` }));
    });
  });
  server.keepAliveTimeout = 60_000;
  server.on('tlsClientError', () => undefined);
  server.on('clientError', (_err, socket) => socket.destroy());

  serveControl({
    onReset(run, latency) {
      counter.reset(run);
      latencyMs = latency;
    },
    stats: () => counter.stats(),
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
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
