/**
 * The HTTP surface (docs/protocol.md, HTTP surface): the push API (src/http/push-api.ts) on node:http for speed, everything else
 * (version, health, metrics, the inspector, 404s) on Express with helmet.
 */
import type { OutgoingHttpHeaders, RequestListener } from 'node:http';
import express, { type NextFunction, type Request, type Response } from 'express';
import helmet from 'helmet';
import type { Logger } from 'pino';
import { isReady } from '../delivery/entry-health';
import type { EntryState } from '../delivery/types';
import type { PushDispatcher } from '../delivery/dispatcher';
import type { ProxyMetrics } from '../metrics';
import type { PushAck } from '../notification';
import type { AccessControl } from './access';
import { ACK_PATH, createPushApi, requestPath, SEND_PUSH_PATH } from './push-api';
import type { NotificationInspector } from '../inspect/inspector';
import { inspectorRoutes } from '../inspect/routes';
import type { ListenerRoutes } from './surfaces';

export interface HttpAppDeps {
  dispatcher: PushDispatcher;
  metrics: ProxyMetrics;
  logger: Logger;
  /** What this listener serves (src/http/surfaces.ts). */
  routes: ListenerRoutes;
  /** The original's quota, only echoed in X-RateLimit-* headers: its throttle never denies (docs/protocol.md, Throttling). Undefined: no such headers. */
  throttlePerSec: number | undefined;
  /** `config`: the configuration file read, or `built-in`. */
  version: { hash: string; version: string; mode?: string; config?: string };
  entryStates: () => readonly EntryState[];
  /** True once the instance is stopping: /readyz answers 503 so load balancers send nothing new. */
  draining?: () => boolean;
  /** Credentials, restrictions and rate limits for the push API; none = everyone, as the original. */
  access?: AccessControl;
  /** Whether a peer is one of the TrustedProxies, whose X-Forwarded-For/-Proto are believed; none = the socket's address. */
  trustedProxies?: (address: string) => boolean;
  /** The notification inspector (/inspect, /api/v1/inspect), when enabled. */
  inspector?: NotificationInspector;
  /** The inspector shows only the server_id asked for, and nothing without one (test mode). */
  inspectorRequiresServerId?: boolean;
  /** Extra facts for /readyz (rate-limit store, tenants). */
  readinessDetails?: () => Record<string, unknown>;
  /** The device's delivery receipt (an ack), for the trace. */
  onReceipt?: (ack: PushAck) => void;
  /** The operator's API (usage, trace): routers mounted where the listener serves it (src/http/surfaces.ts). */
  operatorRouters?: readonly express.Router[];
  /** The text served at /metrics; this instance's registry by default (workers aggregate across processes). */
  metricsText?: () => Promise<string>;
}

const ROOT_PAGE = '<html><body>Mattermost Push Proxy</body></html>';

export function createHttpApp(deps: HttpAppDeps): RequestListener {
  const throttleHeaders = originalThrottleHeaders(deps.throttlePerSec);
  // Its clients are servers, not browsers: of helmet's headers only nosniff matters to the push API.
  const pushApi = createPushApi({ ...deps, commonHeaders: { 'x-content-type-options': 'nosniff', ...throttleHeaders } });
  const app = createExpressApp(deps, throttleHeaders);
  return (req, res) => {
    const path = requestPath(req.url);
    if (deps.routes.pushApi && (path === SEND_PUSH_PATH || path === ACK_PATH)) pushApi(req, res, path);
    else app(req, res);
  };
}

/** The original's quota, echoed on every answer; its throttle never denies (docs/protocol.md, Throttling). */
function originalThrottleHeaders(throttlePerSec: number | undefined): OutgoingHttpHeaders {
  if (throttlePerSec === undefined) return {};
  const quota = Math.max(1, throttlePerSec);
  return { 'x-ratelimit-limit': String(quota), 'x-ratelimit-remaining': String(quota - 1), 'x-ratelimit-reset': '1' };
}

function createExpressApp(deps: HttpAppDeps, throttleHeaders: OutgoingHttpHeaders): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  // Go's mux matches paths exactly: `/version/` and `/Version` are 404 there.
  app.set('strict routing', true);
  app.set('case sensitive routing', true);
  const { trustedProxies } = deps;
  if (trustedProxies) app.set('trust proxy', (address: string) => trustedProxies(address));
  app.use(helmet());

  if (Object.keys(throttleHeaders).length > 0) {
    app.use((_req, res, next) => {
      res.set(throttleHeaders as Record<string, string>);
      next();
    });
  }

  route(app, '/version', (_req, res) => {
    res.type('application/json').send(JSON.stringify(deps.version) + '\n');
  });

  if (deps.routes.pushApi) {
    route(app, '/', (_req, res) => {
      res.type('text/html; charset=utf-8').send(ROOT_PAGE);
    });
  }

  route(app, '/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  route(app, '/readyz', (_req, res) => {
    const entries = deps.entryStates();
    const draining = deps.draining?.() ?? false;
    const ready = !draining && isReady(entries);
    const status = draining ? 'draining' : ready ? 'ready' : 'not ready';
    // The status alone where the details (entries, their failures, tenants) would face the public.
    const details = deps.routes.readiness === 'details' ? { entries, ...deps.readinessDetails?.() } : {};
    res.status(ready ? 200 : 503).json({ status, ...details });
  });

  if (deps.routes.metrics) {
    route(app, '/metrics', async (_req, res) => {
      res.type(deps.metrics.registry.contentType).send(await (deps.metricsText ? deps.metricsText() : deps.metrics.registry.metrics()));
    });
  }

  if (deps.routes.operatorApi) for (const router of deps.operatorRouters ?? []) app.use(router);

  if (deps.routes.inspector && deps.inspector)
    app.use(inspectorRoutes(deps.inspector, { requireServerId: deps.inspectorRequiresServerId }));

  app.use((_req, res) => {
    res.status(404).type('text/plain; charset=utf-8').send('404 page not found\n');
  });

  // Anything thrown: a definite answer, never a crash.
  app.use((err: Error & { status?: number }, req: Request, res: Response, _next: NextFunction) => {
    deps.logger.error({ err, path: req.path }, 'request failed');
    if (res.headersSent) return res.end();
    res.status(err.status && err.status >= 400 && err.status < 600 ? err.status : 500).json({ status: 'FAIL', error: err.message });
  });

  return app;
}

type Handler = (req: Request, res: Response) => void | Promise<void>;

/** Exact-path GET route; any other method on a known path gets 405 with an empty body, as the original. */
function route(app: express.Express, path: string, handler: Handler): void {
  const wrapped: express.RequestHandler = (req, res, next) => {
    // Express answers HEAD from GET routes; the original does not.
    if (req.method !== 'GET') return void res.status(405).end();
    Promise.resolve(handler(req, res)).catch(next);
  };
  app.get(path, wrapped);
  app.all(path, (_req, res) => {
    res.status(405).end();
  });
}
