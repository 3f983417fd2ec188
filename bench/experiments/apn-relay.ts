/**
 * Experiment, not a product: the bare relay of bench/baseline.ts with @parse/node-apn in place of its direct
 * node:http2 session, and then the proxy's own layers added one at a time (`RELAY_LAYER`), so that each step's
 * cost can be read off the bench's ratios (docs/performance.md, "Where the proxy's CPU goes"):
 *
 *   provider    node:http in, JSON.parse, the bare relay's payload, Provider.send (configured as
 *               src/platforms/apns/transport.ts configures it: no retries of its own)
 *   client      the same, sent through ApnsTransport (node-apn's Client.request on the live session, the
 *               semaphore and the per-attempt timer): node-apn as the proxy uses it, without the proxy's layers
 *   decode      + the Go-compatible decoder (src/http/decode.ts) instead of JSON.parse
 *   built       + buildApnsRequest (src/platforms/apns/payload.ts): the proxy's headers and payload
 *   transport   + ApnsTransport (semaphore, per-attempt timer, answer classification) instead of Provider.send
 *   service     + createServices: the configured TransportService with its retry loop
 *   dispatcher  + PushDispatcher and ProxyMetrics (everything but the proxy's HTTP layer)
 *   http        + the proxy's push API (src/http/push-api.ts) in place of this relay's request handler: the
 *               proxy's request path in a process without the rest of the proxy (Express, config checks, …)
 *
 *   RELAY_LAYER=decode npm run bench -- --only apns-c256-0ms --proxy-script dist/bench/experiments/apn-relay.js
 */
import fs from 'node:fs';
import http from 'node:http';
import apn from '@parse/node-apn';
import { loadConfigFile } from '../../src/config/load';
import { PushDispatcher } from '../../src/delivery/dispatcher';
import { retryBounds } from '../../src/delivery/retry';
import { decodePushNotification } from '../../src/http/decode';
import { createPushApi, SEND_PUSH_PATH } from '../../src/http/push-api';
import { createLogger } from '../../src/logging';
import { ProxyMetrics } from '../../src/metrics';
import type { PushNotification } from '../../src/notification';
import { buildApnsRequest, type ApnsRequest } from '../../src/platforms/apns/payload';
import type { AttemptResult } from '../../src/delivery/types';
import { createServices } from '../../src/platforms/registry';
import { ApnsTransport } from '../../src/platforms/apns/transport';
import { listenUntilSigterm } from '../common';

interface AppleEntry {
  Type: string;
  ApplePushTopic: string;
  AppleAuthKeyFile: string;
  AppleAuthKeyID: string;
  AppleTeamID: string;
  AppleEndpoint: string;
}

const LAYERS = ['provider', 'client', 'decode', 'built', 'transport', 'service', 'dispatcher', 'http'] as const;
type Layer = (typeof LAYERS)[number];

const OK = '{"status":"OK"}\n';
const FAIL = '{"error":"relay failed","status":"FAIL"}\n';

/** The bare relay's payload (bench/baseline.ts). */
function bareRoot(n: Partial<Record<keyof PushNotification, unknown>>): Record<string, unknown> {
  return {
    ack_id: n.ack_id,
    aps: { alert: { body: n.message, title: n.channel_name }, 'mutable-content': 1, sound: 'default' },
    server_id: n.server_id,
    type: n.type,
    version: n.version,
  };
}

function barePayload(n: Partial<Record<keyof PushNotification, unknown>>): string {
  return JSON.stringify(bareRoot(n));
}

function main(): void {
  /** notifications the peer accepted: what /metrics reports below the http layer */
  let delivered = 0;
  const at = process.argv.indexOf('--config');
  const file = at >= 0 ? process.argv[at + 1] : undefined;
  if (!file) throw new Error('usage: apn-relay.js --config FILE');
  const layer = (process.env.RELAY_LAYER ?? 'provider') as Layer;
  if (!LAYERS.includes(layer)) throw new Error(`RELAY_LAYER must be one of ${LAYERS.join(', ')}`);

  const config = JSON.parse(fs.readFileSync(file, 'utf8')) as { ListenAddress: string; ApplePushSettings: AppleEntry[] };
  const entry = config.ApplePushSettings[0]!;
  const endpoint = new URL(entry.AppleEndpoint);
  const keyPem = fs.readFileSync(entry.AppleAuthKeyFile, 'utf8');
  const target = { topic: entry.ApplePushTopic, appVersion: 2 };

  const provider = new apn.Provider({
    token: { key: keyPem, keyId: entry.AppleAuthKeyID, teamId: entry.AppleTeamID },
    address: endpoint.hostname,
    port: Number(endpoint.port),
    production: false,
    connectionRetryLimit: 0,
    requestTimeout: 8_000,
  } as unknown as apn.ProviderOptions);
  const bareHeaders = { 'apns-topic': entry.ApplePushTopic, 'apns-push-type': 'alert', 'apns-priority': '10' };
  const viaProvider = (headers: object, body: string, token: string): Promise<boolean> =>
    provider
      .send({ headers: () => headers, compile: () => body } as unknown as apn.Notification, token)
      .then((result) => result.sent.length > 0);

  let relay: (raw: Buffer) => Promise<boolean>;
  let pushApi: ReturnType<typeof createPushApi> | undefined;
  let metricsText: () => Promise<string> = () => Promise.resolve(`service_success_total ${delivered}\n`);
  if (layer === 'provider') {
    relay = (raw) => {
      const n = JSON.parse(raw.toString('utf8')) as Record<string, string>;
      return viaProvider(bareHeaders, barePayload(n), n.device_id!);
    };
  } else if (layer === 'decode' || layer === 'built') {
    relay = (raw) => {
      const decoded = decodePushNotification(raw);
      if (!decoded.ok) return Promise.resolve(false);
      if (layer === 'decode') return viaProvider(bareHeaders, barePayload(decoded.value), decoded.value.device_id);
      const request = buildApnsRequest(decoded.value, target);
      return viaProvider(request.headers, JSON.stringify(request.payload), request.token);
    };
  } else if (layer === 'client' || layer === 'transport') {
    const transport = new ApnsTransport({
      credentials: { kind: 'token', keyPem, keyId: entry.AppleAuthKeyID, teamId: entry.AppleTeamID },
      production: false,
      endpoint,
      requestTimeoutMs: 8_000,
    });
    const isDelivered = (result: AttemptResult): boolean => result.kind === 'final' && result.outcome === 'OK';
    relay =
      layer === 'client'
        ? (raw) => {
            const n = JSON.parse(raw.toString('utf8')) as Record<string, string>;
            return transport
              .attempt(
                { token: n.device_id!, headers: bareHeaders as unknown as ApnsRequest['headers'], payload: bareRoot(n), transport: '' },
                8_000,
              )
              .then(isDelivered);
          }
        : (raw) => {
            const decoded = decodePushNotification(raw);
            if (!decoded.ok) return Promise.resolve(false);
            return transport.attempt(buildApnsRequest(decoded.value, target), 8_000).then(isDelivered);
          };
  } else {
    const { config: proxyConfig } = loadConfigFile(file, process.env);
    const logger = createLogger(proxyConfig);
    const metrics = new ProxyMetrics();
    const { services } = createServices(proxyConfig, {
      logger,
      ...retryBounds(proxyConfig.SendTimeoutSec, proxyConfig.RetryTimeoutSec),
      env: process.env,
      entryMetrics: layer === 'dispatcher' ? (platform, type) => metrics.entryMetrics(platform, type) : undefined,
    });
    const service = services.get(entry.Type)!;
    const dispatcher = new PushDispatcher(services, metrics, logger);
    if (layer === 'http') {
      pushApi = createPushApi({ dispatcher, metrics, logger, commonHeaders: { 'x-content-type-options': 'nosniff' } });
      metricsText = () => metrics.registry.getSingleMetricAsString('service_success_total');
    }
    relay = (raw) => {
      const decoded = decodePushNotification(raw);
      if (!decoded.ok) return Promise.resolve(false);
      if (layer === 'service') return service.deliver(decoded.value, { appVersion: 2 }).then((result) => result.outcome === 'OK');
      return dispatcher.send(decoded.value).then((response) => response.status === 'OK');
    };
  }

  const reply = (res: http.ServerResponse, body: string, type = 'text/plain; charset=utf-8'): void => {
    res.writeHead(200, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/readyz') return reply(res, '{"status":"ready"}', 'application/json');
    // The one figure the bench checks: what reached the peer.
    if (req.method === 'GET' && req.url === '/metrics') return void metricsText().then((text) => reply(res, text));
    if (pushApi && req.url === SEND_PUSH_PATH) return pushApi(req, res, SEND_PUSH_PATH);
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      relay(Buffer.concat(chunks)).then(
        (ok) => {
          if (ok) delivered++;
          reply(res, ok ? OK : FAIL);
        },
        () => reply(res, FAIL),
      );
    });
  });
  listenUntilSigterm(server, config.ListenAddress, () => new Promise<void>((resolve) => provider.shutdown(() => resolve())));
}

main();
