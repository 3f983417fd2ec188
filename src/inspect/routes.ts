/**
 * The notification inspector over HTTP: a live page (/inspect), its script and stylesheet, a server-sent
 * event stream (/inspect/events) and a JSON list for scripts (/api/v1/inspect).
 */
import { createHash } from 'node:crypto';
import type { Server } from 'node:net';
import express, { type Request, type RequestHandler, type Response } from 'express';
import { INSPECTOR_SCRIPT } from './client';
import type { InspectedNotification, NotificationInspector } from './inspector';
import { INSPECTOR_CSS, inspectorPage } from './page';

export interface InspectorRouteOptions {
  /** Concurrent event streams; each holds a socket and a subscriber, so a public service bounds them. */
  maxStreams?: number;
  /** Comment lines keep idle streams open through proxies that drop quiet connections. */
  heartbeatMs?: number;
  /** A client that reads nothing is dropped once this much waits for it; it reconnects to a fresh snapshot. */
  maxQueuedBytes?: number;
  /**
   * Show only the notifications of the `server_id` asked for, and none without one (a public test service:
   * evaluators must not read each other's messages). Off: everything, optionally filtered.
   */
  requireServerId?: boolean;
}

/** What the JSON, the event stream and the page say when a server id is required and none was given. */
export const SERVER_ID_HINT =
  "This is a test service: the inspector shows one chat server's notifications at a time, and none without a server id. " +
  'Ask for yours with ?server_id=YOUR_SERVER_ID (the server_id your chat server sends with each notification; the curl example on /inspect uses "demo").';

export const DEFAULT_MAX_STREAMS = 100;

interface Asset {
  body: Buffer;
  type: string;
  version: string;
  etag: string;
}

function asset(text: string, type: string): Asset {
  const version = createHash('sha256').update(text).digest('hex').slice(0, 16);
  return { body: Buffer.from(text, 'utf8'), type, version, etag: `"${version}"` };
}

const SCRIPT = asset(INSPECTOR_SCRIPT, 'text/javascript; charset=utf-8');
const STYLE = asset(INSPECTOR_CSS, 'text/css; charset=utf-8');
const PAGE = Buffer.from(inspectorPage({ scriptVersion: SCRIPT.version, styleVersion: STYLE.version }), 'utf8');

/**
 * Stricter than helmet's default for this page, and without `upgrade-insecure-requests`: a test instance is
 * often plain HTTP on a LAN address, where that directive would send the script request to https and fail.
 */
const PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

type Query = { ok: true; serverId?: string; limit?: number } | { ok: false; error: string };

/** Query strings are untrusted: repeated or nested keys get a 400, never an exception. */
export function readInspectQuery(query: unknown, capacity: number): Query {
  const q = query !== null && typeof query === 'object' ? (query as Record<string, unknown>) : {};
  const serverId = q.server_id;
  if (serverId !== undefined && typeof serverId !== 'string') return { ok: false, error: 'server_id must be given once, as text' };
  let limit: number | undefined;
  if (q.limit !== undefined) {
    limit = typeof q.limit === 'string' && /^[0-9]{1,9}$/.test(q.limit) ? Number(q.limit) : NaN;
    if (!(limit >= 1 && limit <= capacity)) return { ok: false, error: `limit must be a whole number from 1 to ${capacity}` };
  }
  return { ok: true, serverId: serverId === '' ? undefined : serverId, limit };
}

export function inspectorRoutes(inspector: NotificationInspector, options: InspectorRouteOptions = {}): express.Router {
  const maxStreams = options.maxStreams ?? DEFAULT_MAX_STREAMS;
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const maxQueuedBytes = options.maxQueuedBytes ?? 4 * 1024 * 1024;
  const requireServerId = options.requireServerId ?? false;
  let openStreams = 0;
  /** Without a server id: everything, or, where one is required, nothing (with the hint saying how to ask). */
  const hiddenWithout = (serverId: string | undefined): boolean => requireServerId && serverId === undefined;
  const listFor = (serverId: string | undefined, limit?: number): InspectedNotification[] =>
    hiddenWithout(serverId) ? [] : inspector.list({ serverId, limit });
  const hintFor = (serverId: string | undefined): { hint?: string } => (hiddenWithout(serverId) ? { hint: SERVER_ID_HINT } : {});

  const router = express.Router({ strict: true, caseSensitive: true });
  const get = (path: string, handler: RequestHandler): void => {
    router
      .route(path)
      .get(handler)
      .all((_req, res) => void res.status(405).end());
  };
  const query = (req: Request, res: Response): Query => {
    let parsed: Query;
    try {
      parsed = readInspectQuery(req.query, inspector.capacity);
    } catch {
      parsed = { ok: false, error: 'unreadable query string' };
    }
    if (!parsed.ok) fail(res, 400, parsed.error);
    return parsed;
  };

  get('/inspect', (_req, res) => {
    res.status(200).set({ 'Content-Security-Policy': PAGE_CSP, 'Cache-Control': 'no-cache' }).type('text/html; charset=utf-8').send(PAGE);
  });
  get('/inspect/inspector.js', (req, res) => sendAsset(req, res, SCRIPT));
  get('/inspect/inspector.css', (req, res) => sendAsset(req, res, STYLE));

  get('/api/v1/inspect', (req, res) => {
    const q = query(req, res);
    if (!q.ok) return;
    res
      .status(200)
      .set('Cache-Control', 'no-store')
      .json({ notifications: listFor(q.serverId, q.limit), ...hintFor(q.serverId) });
  });

  get('/inspect/events', (req, res) => {
    const q = query(req, res);
    if (!q.ok) return;
    if (openStreams >= maxStreams) {
      res.set('Retry-After', '30');
      return fail(res, 503, 'too many inspector streams open; try again later');
    }
    res.status(200).set({
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      'X-Accel-Buffering': 'no',
    });
    if (req.method === 'HEAD') return void res.end();
    openStreams++;
    res.flushHeaders();
    req.socket.setNoDelay(true);

    const { serverId } = q;
    let lastWrite = Date.now();
    let finished = false;
    // A stream never ends by itself, so server.close() would wait for it: end it once the server stops listening.
    const server = (req.socket as { server?: Server }).server;
    const tick = setInterval(
      () => {
        if (server && !server.listening) return finish('closing');
        if (Date.now() - lastWrite >= heartbeatMs) write(': keep-alive\n\n');
      },
      Math.min(1000, heartbeatMs),
    );
    tick.unref();
    // Subscribed in the same tick as the snapshot is taken: nothing can fall between the two.
    const unsubscribe = hiddenWithout(serverId)
      ? () => {}
      : inspector.subscribe((n: InspectedNotification) => {
          if (serverId === undefined || n.server_id === serverId) write(sseEvent('notification', n));
        });
    res.on('close', () => finish());
    write('retry: 3000\n\n');
    write(
      sseEvent('snapshot', {
        capacity: inspector.capacity,
        serverId: serverId ?? null,
        serverIdRequired: requireServerId,
        notifications: listFor(serverId),
        ...hintFor(serverId),
      }),
    );

    function write(chunk: string): void {
      if (finished) return;
      if (res.writableLength > maxQueuedBytes) return finish('stuck');
      res.write(chunk);
      lastWrite = Date.now();
    }
    function finish(why?: 'closing' | 'stuck'): void {
      if (finished) return;
      finished = true;
      openStreams--;
      unsubscribe();
      clearInterval(tick);
      // A stuck client would never drain what is queued: drop its connection rather than wait.
      if (why === 'stuck') res.destroy();
      // The keep-alive connection would outlive the stream and hold up server.close(): end it too.
      else if (why === 'closing') res.end(() => req.socket.end());
      else res.end();
    }
  });

  return router;
}

function sendAsset(req: Request, res: Response, file: Asset): void {
  // The page asks for ?v=<hash of this build's file>: that URL never changes meaning, so it may be cached for good.
  const pinned = req.query.v === file.version;
  res.set({ 'Cache-Control': pinned ? 'public, max-age=31536000, immutable' : 'no-cache', ETag: file.etag });
  if (req.headers['if-none-match'] === file.etag) return void res.status(304).end();
  res.status(200).type(file.type).send(file.body);
}

function fail(res: Response, status: number, error: string): void {
  res.status(status).set('Cache-Control', 'no-store').json({ status: 'FAIL', error });
}

function sseEvent(name: string, data: unknown): string {
  // JSON.stringify escapes newlines inside strings, so the data is always one `data:` line.
  return `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
}
