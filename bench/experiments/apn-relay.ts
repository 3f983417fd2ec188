/**
 * Experiment, not a product: the bare relay of bench/baseline.ts with @parse/node-apn instead of a direct
 * node:http2 session, configured as src/transport/apns.ts configures it. Nothing else: no validation,
 * logging, metrics (beyond the one counter the bench checks) or retries. It measures what the fixed APNs
 * library alone costs, so that proxy ÷ this is what the proxy's own code costs:
 *   npm run bench -- --only apns-c256-0ms --proxy-script dist/bench/experiments/apn-relay.js
 */
import fs from 'node:fs';
import http from 'node:http';
import apn from '@parse/node-apn';

interface AppleEntry {
  Type: string;
  ApplePushTopic: string;
  AppleAuthKeyFile: string;
  AppleAuthKeyID: string;
  AppleTeamID: string;
  AppleEndpoint: string;
}

const OK = '{"status":"OK"}\n';
const FAIL = '{"error":"relay failed","status":"FAIL"}\n';

function main(): void {
  const at = process.argv.indexOf('--config');
  const file = at >= 0 ? process.argv[at + 1] : undefined;
  if (!file) throw new Error('usage: apn-relay.js --config FILE');
  const config = JSON.parse(fs.readFileSync(file, 'utf8')) as { ListenAddress: string; ApplePushSettings: AppleEntry[] };
  const entry = config.ApplePushSettings[0]!;
  const endpoint = new URL(entry.AppleEndpoint);
  const provider = new apn.Provider({
    token: { key: fs.readFileSync(entry.AppleAuthKeyFile, 'utf8'), keyId: entry.AppleAuthKeyID, teamId: entry.AppleTeamID },
    address: endpoint.hostname,
    port: Number(endpoint.port),
    production: false,
    connectionRetryLimit: 0,
    requestTimeout: 10_000,
  } as unknown as apn.ProviderOptions);
  const headers = { 'apns-topic': entry.ApplePushTopic, 'apns-push-type': 'alert', 'apns-priority': '10' };
  let delivered = 0;

  const reply = (res: http.ServerResponse, body: string, type = 'text/plain; charset=utf-8'): void => {
    res.writeHead(200, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };

  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/readyz') return reply(res, '{"status":"ready"}', 'application/json');
    if (req.method === 'GET' && req.url === '/metrics') return reply(res, `service_success_total ${delivered}\n`);
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const n = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, string>;
      const body = JSON.stringify({
        ack_id: n.ack_id,
        aps: { alert: { body: n.message, title: n.channel_name }, 'mutable-content': 1, sound: 'default' },
        server_id: n.server_id,
        type: n.type,
        version: n.version,
      });
      const notification = { headers: () => headers, compile: () => body };
      void provider.send(notification as unknown as apn.Notification, n.device_id!).then((result) => {
        if (result.sent.length > 0) delivered++;
        reply(res, result.sent.length > 0 ? OK : FAIL);
      });
    });
  });
  server.keepAliveTimeout = 60_000;
  const [host, port] = config.ListenAddress.split(/:(?=\d+$)/);
  server.listen(Number(port), host || undefined);
  process.once('SIGTERM', () => {
    server.close();
    server.closeAllConnections();
    provider.shutdown(() => process.exit(0));
  });
}

main();
