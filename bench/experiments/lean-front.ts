/**
 * Experiment, not a product: the proxy's own delivery path (config loading, createServices, PushDispatcher,
 * ProxyMetrics, the Go-compatible decoder, @parse/node-apn and firebase-admin transports) behind a plain
 * node:http front end instead of Express + helmet + body-parser. It serves only what the bench needs
 * (`POST /api/v1/send_push`, `GET /metrics`, `GET /readyz`) in eas mode without access control.
 *
 * It measures how much of the proxy's cost is the HTTP framework, i.e. what moving `send_push` off
 * Express in src/http/app.ts would save:
 *   npm run bench -- --proxy-script dist/bench/experiments/lean-front.js
 */
import http from 'node:http';
import { loadConfigFile } from '../../src/config/load';
import { PushDispatcher } from '../../src/delivery/dispatcher';
import { retryBounds } from '../../src/delivery/retry';
import { decodePushNotification } from '../../src/http/decode';
import { createLogger } from '../../src/logging';
import { ProxyMetrics } from '../../src/metrics';
import type { PushResponse } from '../../src/notification';
import { createServices } from '../../src/platforms/registry';
import { listenUntilSigterm } from '../common';

const MAX_BODY_BYTES = 1024 * 1024;

function responseBody(response: PushResponse): string {
  const body = response.status === 'FAIL' ? { error: response.error, status: response.status } : response;
  return JSON.stringify(body) + '\n';
}

function main(): void {
  const at = process.argv.indexOf('--config');
  const file = at >= 0 ? process.argv[at + 1] : undefined;
  if (!file) throw new Error('usage: lean-front.js --config FILE');
  const { config } = loadConfigFile(file, process.env);
  const logger = createLogger(config);
  const metrics = new ProxyMetrics();
  const { services, states } = createServices(config, {
    logger,
    ...retryBounds(config.SendTimeoutSec, config.RetryTimeoutSec),
    env: process.env,
    entryMetrics: (platform, type) => metrics.entryMetrics(platform, type),
  });
  const dispatcher = new PushDispatcher(services, metrics, logger);

  const answer = (res: http.ServerResponse, status: number, type: string, body: string): void => {
    res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };

  const server = http.createServer((req, res) => {
    if (req.method === 'POST' && req.url === '/api/v1/send_push') {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size <= MAX_BODY_BYTES) chunks.push(chunk);
      });
      req.on('end', () => {
        const started = performance.now();
        const send = (response: PushResponse): void => {
          metrics.observeRequest((performance.now() - started) / 1000);
          answer(res, 200, 'text/plain; charset=utf-8', responseBody(response));
        };
        if (size > MAX_BODY_BYTES)
          return send({ status: 'FAIL', error: `Failed to read message body: request body larger than ${MAX_BODY_BYTES} bytes` });
        const decoded = decodePushNotification(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
        if (!decoded.ok) {
          metrics.badRequest.inc();
          return send({ status: 'FAIL', error: `Failed to read message body: ${decoded.error}` });
        }
        dispatcher.send(decoded.value).then(send, () => send({ status: 'FAIL', error: 'internal error' }));
      });
      return;
    }
    if (req.method === 'GET' && req.url === '/metrics') {
      void metrics.registry.metrics().then((text) => answer(res, 200, metrics.registry.contentType, text));
      return;
    }
    if (req.method === 'GET' && req.url === '/readyz') {
      return answer(res, 200, 'application/json', JSON.stringify({ status: 'ready', entries: states() }));
    }
    answer(res, 404, 'text/plain; charset=utf-8', '404 page not found\n');
  });
  listenUntilSigterm(server, config.ListenAddress, () => Promise.all([...services.values()].map((s) => s.close())));
}

main();
