/**
 * The HTTP surface (spec §1): receives, validates, hands over to the dispatcher, answers. Every send_push and
 * ack outcome is HTTP 200 with the original's JSON, because Mattermost servers drop a send on any other status.
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import helmet from 'helmet';
import type { Logger } from 'pino';
import type { EntryState } from '../delivery/types';
import type { PushDispatcher } from '../delivery/dispatcher';
import type { ProxyMetrics } from '../metrics';
import type { PushResponse } from '../notification';
import { parsePlatform } from '../delivery/platform';
import type { AccessControl, Admission, Refusal } from './access';
import { decodePushAck, decodePushNotification } from './decode';
import type { NotificationInspector } from '../inspect/inspector';
import { inspectorRoutes } from '../inspect/routes';

export const MAX_BODY_BYTES = 1024 * 1024;

export interface HttpAppDeps {
  dispatcher: PushDispatcher;
  metrics: ProxyMetrics;
  logger: Logger;
  enableMetrics: boolean;
  /** The original's quota, only echoed in X-RateLimit-* headers: its throttle never denies (§10, §15.2). Undefined: no such headers. */
  throttlePerSec: number | undefined;
  version: { hash: string; version: string; mode?: string };
  entryStates: () => readonly EntryState[];
  /** Credentials, restrictions and rate limits for the push API; none = everyone, as the original. */
  access?: AccessControl;
  /** Which peers' X-Forwarded-For/-Proto to believe (TrustedProxies); none = the socket's address. */
  trustProxy?: (address: string) => boolean;
  /** The notification inspector (/inspect, /api/v1/inspect), when enabled. */
  inspector?: NotificationInspector;
  /** Extra facts for /readyz (rate-limit store, tenants). */
  readinessDetails?: () => Record<string, unknown>;
}

const ROOT_PAGE = '<html><body>Mattermost Push Proxy</body></html>';

export function createHttpApp(deps: HttpAppDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  // Go's mux matches paths exactly: `/version/` and `/Version` are 404 there.
  app.set('strict routing', true);
  app.set('case sensitive routing', true);
  const { trustProxy } = deps;
  if (trustProxy) app.set('trust proxy', (address: string) => trustProxy(address));
  app.use(helmet());

  if (deps.throttlePerSec !== undefined) {
    const quota = String(Math.max(1, deps.throttlePerSec));
    const remaining = String(Math.max(1, deps.throttlePerSec) - 1);
    app.use((_req, res, next) => {
      res.setHeader('X-RateLimit-Limit', quota);
      res.setHeader('X-RateLimit-Remaining', remaining);
      res.setHeader('X-RateLimit-Reset', '1');
      next();
    });
  }

  // Mattermost servers send no Content-Type: read every body as bytes.
  const rawBody = express.raw({ type: () => true, limit: MAX_BODY_BYTES });
  // Refused before the body is read, so a refused client costs little.
  const admit: express.RequestHandler = (req, res, next) => {
    if (!deps.access) return next();
    deps.access.admit(req).then((admission) => {
      if (!admission.ok) return sendRefusal(res, admission);
      res.locals.admission = admission;
      next();
    }, next);
  };

  route(app, '/api/v1/send_push', 'post', [admit, rawBody], async (req, res) => {
    const timer = deps.metrics.requestDuration.startTimer();
    try {
      const decoded = decodePushNotification(bodyOf(req));
      if (!decoded.ok) {
        deps.metrics.badRequest.inc();
        return sendPushResponse(res, { status: 'FAIL', error: `Failed to read message body: ${decoded.error}` });
      }
      const notification = decoded.value;
      const admission = res.locals.admission as Extract<Admission, { ok: true }> | undefined;
      // Missing ids get the original's FAIL from the dispatcher; restrictions apply to real sends.
      if (deps.access && admission && notification.server_id !== '' && notification.device_id !== '') {
        const refusal = await deps.access.admitPush(admission, notification.server_id, parsePlatform(notification.platform).type);
        if (refusal) return sendRefusal(res, refusal);
      }
      sendPushResponse(res, await deps.dispatcher.send(notification, admission?.tenant?.id));
    } finally {
      timer();
    }
  });

  route(app, '/api/v1/ack', 'post', [admit, rawBody], (req, res) => {
    const timer = deps.metrics.requestDuration.startTimer();
    try {
      const decoded = decodePushAck(bodyOf(req));
      const refusal = !decoded.ok
        ? `Failed to read ack body: ${decoded.error}`
        : decoded.value.id === '' ? 'Failed because of missing ack Id'
        : decoded.value.platform === '' ? 'Failed because of missing ack platform'
        : decoded.value.type === '' ? 'Failed because of missing ack type'
        : undefined;
      if (refusal !== undefined || !decoded.ok) {
        deps.metrics.badRequest.inc();
        return sendPushResponse(res, { status: 'FAIL', error: refusal ?? 'invalid ack' });
      }
      const ack = decoded.value;
      deps.metrics.delivered.inc({ platform: ack.platform, type: ack.type });
      deps.logger.info({ ack_id: ack.id, platform: ack.platform, push_type: ack.type, post_id: ack.post_id || undefined, id_loaded: ack.is_id_loaded, received_at: ack.received_at }, 'delivery receipt');
      sendPushResponse(res, { status: 'OK' });
    } finally {
      timer();
    }
  });

  route(app, '/version', 'get', [], (_req, res) => {
    res.type('application/json').send(JSON.stringify(deps.version) + '\n');
  });

  route(app, '/', 'get', [], (_req, res) => {
    res.type('text/html; charset=utf-8').send(ROOT_PAGE);
  });

  route(app, '/healthz', 'get', [], (_req, res) => {
    res.json({ status: 'ok' });
  });

  route(app, '/readyz', 'get', [], (_req, res) => {
    const entries = deps.entryStates();
    const ready = entries.every((e) => e.state !== 'failed') && entries.some((e) => e.state === 'ready');
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not ready', entries, ...deps.readinessDetails?.() });
  });

  if (deps.enableMetrics) {
    route(app, '/metrics', 'get', [], async (_req, res) => {
      res.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
    });
  }

  if (deps.inspector) app.use(inspectorRoutes(deps.inspector));

  app.use((_req, res) => {
    res.status(404).type('text/plain; charset=utf-8').send('404 page not found\n');
  });

  // Body-parser errors (too large, aborted) and anything thrown: a definite answer, never a crash.
  app.use((err: Error & { status?: number; type?: string }, req: Request, res: Response, _next: NextFunction) => {
    const isPushApi = req.path === '/api/v1/send_push' || req.path === '/api/v1/ack';
    if (err.type !== 'entity.too.large') deps.logger.error({ err, path: req.path }, 'request failed');
    if (res.headersSent) return res.end();
    if (isPushApi) {
      deps.metrics.badRequest.inc();
      const what = req.path === '/api/v1/ack' ? 'ack' : 'message';
      const reason = err.type === 'entity.too.large' ? `request body larger than ${MAX_BODY_BYTES} bytes` : err.message;
      return sendPushResponse(res, { status: 'FAIL', error: `Failed to read ${what} body: ${reason}` });
    }
    res.status(err.status && err.status >= 400 && err.status < 600 ? err.status : 500).json({ status: 'FAIL', error: err.message });
  });

  return app;
}

type Handler = (req: Request, res: Response) => void | Promise<void>;

/** Exact-path route; any other method on a known path gets 405 with an empty body, as the original. */
function route(app: express.Express, path: string, method: 'get' | 'post', before: express.RequestHandler[], handler: Handler): void {
  const wrapped: express.RequestHandler = (req, res, next) => {
    // Express answers HEAD from GET routes; the original does not.
    if (req.method !== method.toUpperCase()) return void res.status(405).end();
    Promise.resolve(handler(req, res)).catch(next);
  };
  app[method](path, ...before, wrapped);
  app.all(path, (_req, res) => {
    res.status(405).end();
  });
}

function bodyOf(req: Request): Buffer {
  return Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
}

/** A refusal outside the original's protocol: its status, and the same FAIL body shape. */
function sendRefusal(res: Response, refusal: Refusal): void {
  res.status(refusal.status).set(refusal.headers ?? {}).type('application/json').send(JSON.stringify({ error: refusal.error, status: 'FAIL' }) + '\n');
}

/** Compact JSON with sorted keys and a newline, as Go's encoder writes a map. */
export function sendPushResponse(res: Response, response: PushResponse): void {
  const body = response.status === 'FAIL' ? { error: response.error, status: response.status } : response;
  res.status(200).type('text/plain; charset=utf-8').send(JSON.stringify(body) + '\n');
}
