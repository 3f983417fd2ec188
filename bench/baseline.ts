/**
 * The yardstick: the thinnest relay Node can be. node:http in; by the platform field, `apple…` goes out on one
 * node:http2 session to the APNs peer and `android…` on one keep-alive node:https agent to the FCM peer (with
 * one OAuth token fetched at start), so one process relays either platform or a mix of both at the cost of
 * each alone. It parses the body (it needs the device token) and builds a minimal payload; no validation, no
 * logging, no metrics, no retries. Whatever the proxy costs beyond this is the proxy's.
 *
 * Started by bench/run.ts: `node dist/bench/baseline.js <settings.json>`; trusts the peers' CA through
 * NODE_EXTRA_CA_CERTS, as the proxy does. With `workers` above 1 it runs that many copies with node:cluster
 * on one port, as the proxy's `Workers` does: what a relay as cheap as this one reaches with more than one process here.
 */
import cluster from 'node:cluster';
import { createPrivateKey, sign } from 'node:crypto';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import { assertLoopback, readJsonArg, reportFatal, reportReady, serveControl } from './common';

export interface BaselineSettings {
  host: string;
  apnsUrl: string;
  topic: string;
  /** APNs .p8 key (PKCS#8 PEM), key id, team id: one provider token, signed once */
  keyPem: string;
  keyId: string;
  teamId: string;
  fcmUrl: string;
  fcmProject: string;
  /** like FCM_MAX_SOCKETS in src/platforms/fcm/transport.ts */
  fcmMaxSockets: number;
  /** processes sharing the port (1: this process serves, no cluster) */
  workers?: number;
}

const OK = '{"status":"OK"}\n';
const FAIL = '{"error":"relay failed","status":"FAIL"}\n';

interface Notification {
  platform?: string;
  device_id?: string;
  server_id?: string;
  type?: string;
  version?: string;
  message?: string;
  channel_name?: string;
  ack_id?: string;
}

function providerToken(settings: BaselineSettings): string {
  const header = Buffer.from(JSON.stringify({ alg: 'ES256', kid: settings.keyId })).toString('base64url');
  const claims = Buffer.from(JSON.stringify({ iss: settings.teamId, iat: Math.floor(Date.now() / 1000) })).toString('base64url');
  const signature = sign('sha256', Buffer.from(`${header}.${claims}`), {
    key: createPrivateKey(settings.keyPem),
    dsaEncoding: 'ieee-p1363',
  });
  return `${header}.${claims}.${signature.toString('base64url')}`;
}

function fetchFcmToken(url: URL, agent: https.Agent): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      new URL('/token', url),
      { method: 'POST', agent, headers: { 'content-type': 'application/x-www-form-urlencoded' } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => {
          try {
            resolve((JSON.parse(text) as { access_token: string }).access_token);
          } catch (err) {
            reject(err as Error);
          }
        });
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error('token request timed out')));
    req.on('error', reject);
    req.end('grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=bench');
  });
}

async function serve(settings: BaselineSettings, inWorker: boolean): Promise<void> {
  assertLoopback(settings.host);
  const apnsUrl = new URL(settings.apnsUrl);
  const fcmUrl = new URL(settings.fcmUrl);
  assertLoopback(apnsUrl.hostname);
  assertLoopback(fcmUrl.hostname);

  const authorization = `bearer ${providerToken(settings)}`;
  let session: http2.ClientHttp2Session | undefined;
  const apns = (): http2.ClientHttp2Session => {
    if (session && !session.closed && !session.destroyed) return session;
    const s = http2.connect(apnsUrl);
    s.on('error', () => undefined);
    s.on('close', () => {
      if (session === s) session = undefined;
    });
    session = s;
    return s;
  };

  const fcmAgent = new https.Agent({ keepAlive: true, maxSockets: settings.fcmMaxSockets });
  const fcmAuthorization = `Bearer ${await fetchFcmToken(fcmUrl, fcmAgent)}`;
  const fcmPath = `/v1/projects/${settings.fcmProject}/messages:send`;

  const reply = (res: http.ServerResponse, ok: boolean): void => {
    const body = ok ? OK : FAIL;
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': body.length });
    res.end(body);
  };

  const toApns = (n: Notification, res: http.ServerResponse): void => {
    const payload = JSON.stringify({
      ack_id: n.ack_id,
      aps: { alert: { body: n.message, title: n.channel_name }, 'mutable-content': 1, sound: 'default' },
      server_id: n.server_id,
      type: n.type,
      version: n.version,
    });
    const stream = apns().request({
      ':method': 'POST',
      ':path': `/3/device/${n.device_id}`,
      authorization,
      'apns-topic': settings.topic,
      'apns-push-type': 'alert',
      'apns-priority': '10',
      'content-type': 'application/json; charset=utf-8',
    });
    let status = 0;
    let answered = false;
    const done = (ok: boolean): void => {
      if (answered) return;
      answered = true;
      reply(res, ok);
    };
    stream.on('response', (headers) => {
      status = Number(headers[':status']);
    });
    stream.on('data', () => undefined);
    stream.on('end', () => done(status === 200));
    stream.on('error', () => done(false));
    stream.on('close', () => done(status === 200));
    stream.end(payload);
  };

  const toFcm = (n: Notification, res: http.ServerResponse): void => {
    const payload = JSON.stringify({
      message: {
        token: n.device_id,
        data: { ack_id: n.ack_id ?? '', message: n.message ?? '', server_id: n.server_id ?? '', type: n.type ?? '' },
        android: { priority: 'high' },
      },
    });
    const req = https.request(
      {
        host: fcmUrl.hostname,
        port: fcmUrl.port,
        path: fcmPath,
        method: 'POST',
        agent: fcmAgent,
        headers: {
          authorization: fcmAuthorization,
          'content-type': 'application/json; charset=utf-8',
          'content-length': Buffer.byteLength(payload),
        },
      },
      (answer) => {
        answer.on('data', () => undefined);
        answer.on('end', () => reply(res, answer.statusCode === 200));
      },
    );
    req.on('error', () => reply(res, false));
    req.end(payload);
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      let n: Notification;
      try {
        n = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Notification;
      } catch {
        return reply(res, false);
      }
      // One prefix test per request: the choice costs nothing next to either relay.
      if (n.platform?.startsWith('apple')) toApns(n, res);
      else if (n.platform?.startsWith('android')) toFcm(n, res);
      else reply(res, false);
    });
  });
  server.keepAliveTimeout = 60_000;

  if (inWorker) {
    // The primary answers the bench; a worker serves until the primary goes.
    process.on('disconnect', () => process.exit(0));
    server.listen(0, settings.host);
    return;
  }
  serveControl({
    onReset: () => undefined,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        session?.close();
        fcmAgent.destroy();
        setTimeout(resolve, 1000).unref();
      }),
  });

  server.once('error', reportFatal);
  server.listen(0, settings.host, () => {
    const address = server.address();
    reportReady(typeof address === 'object' && address ? address.port : 0);
  });
}

/** `count` workers on one port (cluster workers that listen on port 0 share one); ready when all listen. */
function serveWithWorkers(count: number): void {
  let listening = 0;
  let stopping = false;
  cluster.on('listening', (_worker, address) => {
    if (++listening === count) reportReady(address.port);
  });
  cluster.on('message', (_worker, message: { type?: string; error?: string }) => {
    if (message.type === 'fatal') reportFatal(new Error(message.error));
  });
  cluster.on('exit', (_worker, code) => {
    if (!stopping) reportFatal(new Error(`a baseline worker exited (code ${code})`));
  });
  const workers = Array.from({ length: count }, () => cluster.fork());
  serveControl({
    onReset: () => undefined,
    stop: () => {
      stopping = true;
      for (const worker of workers) worker.kill();
      return new Promise<void>((resolve) => setTimeout(resolve, 300));
    },
  });
}

function main(): void {
  const settings = readJsonArg<BaselineSettings>();
  const workers = settings.workers ?? 1;
  if (workers > 1 && cluster.isPrimary) return serveWithWorkers(workers);
  serve(settings, cluster.isWorker).catch(reportFatal);
}

try {
  main();
} catch (err) {
  reportFatal(err);
}
