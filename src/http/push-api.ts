/**
 * The two endpoints chat servers call, `POST /api/v1/send_push` and `POST /api/v1/ack` (docs/protocol.md), served
 * on node:http directly: they are the whole load of a relay, and a framework's middleware chain costs more CPU
 * per notification than everything else the proxy does (docs/performance.md). Every outcome is HTTP 200 with
 * the original's JSON, because Mattermost servers drop a send on any other status; only refusals outside the
 * original's protocol (credentials, restrictions, rate limits) get 401/403/429.
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import proxyAddr from 'proxy-addr';
import type { Logger } from 'pino';
import type { PushDispatcher } from '../delivery/dispatcher';
import { parsePlatform } from '../delivery/platform';
import type { ProxyMetrics } from '../metrics';
import type { PushResponse } from '../notification';
import type { AccessControl, Admission, ClientInfo, Refusal } from './access';
import { decodePushAck, decodePushNotification } from './decode';

export const MAX_BODY_BYTES = 1024 * 1024;
export const SEND_PUSH_PATH = '/api/v1/send_push';
export const ACK_PATH = '/api/v1/ack';
const INTERNAL_ERROR: PushResponse = Object.freeze({ status: 'FAIL', error: 'internal error' });

export interface PushApiDeps {
  dispatcher: PushDispatcher;
  metrics: ProxyMetrics;
  logger: Logger;
  /** Credentials, restrictions and rate limits; none = everyone, as the original. */
  access?: AccessControl;
  /** Whether a peer is one of the TrustedProxies, whose X-Forwarded-For/-Proto are believed; none = the socket's address. */
  trustedProxies?: (address: string) => boolean;
  /** Headers every answer carries (security headers, the original's X-RateLimit-* echo), built once. */
  commonHeaders: OutgoingHttpHeaders;
}

/** The path without its query string: Go's mux matches `URL.Path` exactly. */
export function requestPath(url: string | undefined): string {
  const raw = url ?? '/';
  const query = raw.indexOf('?');
  return query === -1 ? raw : raw.slice(0, query);
}

/**
 * A request handler for the push API paths; the caller routes only those paths here. Returns a function that
 * never throws: every request gets a definite answer, or none when the client itself went away.
 */
export function createPushApi(deps: PushApiDeps): (req: IncomingMessage, res: ServerResponse, path: string) => void {
  const { dispatcher, metrics, logger, access, trustedProxies } = deps;
  const textHeaders: OutgoingHttpHeaders = { ...deps.commonHeaders, 'content-type': 'text/plain; charset=utf-8' };
  const jsonHeaders: OutgoingHttpHeaders = { ...deps.commonHeaders, 'content-type': 'application/json; charset=utf-8' };
  const trust = trustedProxies ? (address: string) => trustedProxies(address) : undefined;

  const answer = (res: ServerResponse, status: number, headers: OutgoingHttpHeaders, body: string): void => {
    if (res.headersSent || res.destroyed) return;
    res.writeHead(status, { ...headers, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
  // The two answers nearly every request gets, headers and all, built once.
  const okHeaders: OutgoingHttpHeaders = { ...textHeaders, 'content-length': OK_BODY.length };
  const removeHeaders: OutgoingHttpHeaders = { ...textHeaders, 'content-length': REMOVE_BODY.length };
  const answerPush = (res: ServerResponse, response: PushResponse): void => {
    if (response.status === 'FAIL') return answer(res, 200, textHeaders, pushResponseBody(response));
    if (res.headersSent || res.destroyed) return;
    const ok = response.status === 'OK';
    res.writeHead(200, ok ? okHeaders : removeHeaders);
    res.end(ok ? OK_BODY : REMOVE_BODY);
  };
  const answerRefusal = (res: ServerResponse, refusal: Refusal): void =>
    answer(res, refusal.status, { ...jsonHeaders, ...refusal.headers }, JSON.stringify({ error: refusal.error, status: 'FAIL' }) + '\n');

  const clientOf = (req: IncomingMessage): ClientInfo => ({
    ip: trust ? proxyAddr(req, trust) : req.socket.remoteAddress,
    secure: isSecure(req, trust),
    authorization: req.headers.authorization,
  });

  /**
   * Answers one send_push and then calls `done`, or `failed` with what went wrong instead. Not
   * async, and one reaction on the dispatcher's promise: nothing of the request (its body, the decoded copy)
   * is kept while the delivery is under way.
   */
  const handleSendPush = (
    res: ServerResponse,
    body: Buffer,
    admission: Extract<Admission, { ok: true }> | undefined,
    done: () => void,
    failed: (err: unknown) => void,
  ): void => {
    const decoded = decodePushNotification(body);
    if (!decoded.ok) {
      metrics.badRequest.inc();
      answerPush(res, { status: 'FAIL', error: `Failed to read message body: ${decoded.error}` });
      return done();
    }
    const notification = decoded.value;
    const tenant = admission?.tenant?.id;
    const deliver = (): void => {
      dispatcher.send(notification, tenant).then((response) => {
        try {
          answerPush(res, response);
        } catch (err) {
          return failed(err);
        }
        done();
      }, failed);
    };
    // Missing ids get the original's FAIL from the dispatcher; restrictions apply to real sends.
    if (access && admission && notification.server_id !== '' && notification.device_id !== '') {
      access
        .admitPush(admission, notification.server_id, parsePlatform(notification.platform).type)
        .then((refusal) => {
          if (!refusal) return deliver();
          answerRefusal(res, refusal);
          done();
        })
        .catch(failed);
      return;
    }
    deliver();
  };

  const handleAck = (res: ServerResponse, body: Buffer): void => {
    const decoded = decodePushAck(body);
    const refusal = !decoded.ok
      ? `Failed to read ack body: ${decoded.error}`
      : decoded.value.id === ''
        ? 'Failed because of missing ack Id'
        : decoded.value.platform === ''
          ? 'Failed because of missing ack platform'
          : decoded.value.type === ''
            ? 'Failed because of missing ack type'
            : undefined;
    if (refusal !== undefined || !decoded.ok) {
      metrics.badRequest.inc();
      return answerPush(res, { status: 'FAIL', error: refusal ?? 'invalid ack' });
    }
    const ack = decoded.value;
    metrics.delivered.inc({ platform: ack.platform, type: ack.type });
    logger.info(
      {
        ack_id: ack.id,
        platform: ack.platform,
        push_type: ack.type,
        post_id: ack.post_id || undefined,
        id_loaded: ack.is_id_loaded,
        received_at: ack.received_at,
      },
      'delivery receipt',
    );
    answerPush(res, { status: 'OK' });
  };

  return (req, res, path) => {
    // Express answered HEAD and the rest with 405 and an empty body, as the original.
    if (req.method !== 'POST') {
      req.resume();
      res.writeHead(405, { ...deps.commonHeaders, 'content-length': 0 });
      res.end();
      return;
    }
    const what = path === ACK_PATH ? 'ack' : 'message';
    // A bug or a failed rate-limit store is not the client's fault: the dispatcher's own answer for a bug,
    // and the cause for the operator's log only.
    const fail = (err: unknown): void => {
      logger.error({ err, path }, 'request failed');
      answerPush(res, INTERNAL_ERROR);
    };

    const serve = (admission: Extract<Admission, { ok: true }> | undefined): void => {
      readBody(req, MAX_BODY_BYTES, (outcome) => {
        if (outcome.kind === 'aborted') return; // the client went away: nobody to answer
        if (outcome.kind === 'too large') {
          metrics.badRequest.inc();
          // The rest of the body is not read: the connection cannot carry another request.
          res.shouldKeepAlive = false;
          return answerPush(res, {
            status: 'FAIL',
            error: `Failed to read ${what} body: request body larger than ${MAX_BODY_BYTES} bytes`,
          });
        }
        const started = performance.now();
        const stopTimer = (): void => metrics.observeRequest((performance.now() - started) / 1000);
        if (path === ACK_PATH) {
          try {
            handleAck(res, outcome.body);
          } catch (err) {
            fail(err);
          }
          return stopTimer();
        }
        let finished = false;
        const settle = (failure?: { err: unknown }): void => {
          if (finished) return;
          finished = true;
          stopTimer();
          if (failure) fail(failure.err);
        };
        const done = (): void => settle();
        const failed = (err: unknown): void => settle({ err });
        try {
          handleSendPush(res, outcome.body, admission, done, failed);
        } catch (err) {
          failed(err);
        }
      });
    };

    if (!access) return serve(undefined);
    // Refused before the body is read, so a refused client costs little.
    access.admit(clientOf(req)).then(
      (admission) => {
        if (admission.ok) return serve(admission);
        req.resume();
        answerRefusal(res, admission);
      },
      (err: unknown) => {
        req.resume();
        fail(err);
      },
    );
  };
}

/** Compact JSON with sorted keys and a newline, as Go's encoder writes a map. */
export function pushResponseBody(response: PushResponse): string {
  if (response.status === 'OK') return OK_BODY;
  if (response.status === 'REMOVE') return REMOVE_BODY;
  return JSON.stringify({ error: response.error, status: response.status }) + '\n';
}

const OK_BODY = '{"status":"OK"}\n';
const REMOVE_BODY = '{"status":"REMOVE"}\n';

type BodyOutcome = { kind: 'body'; body: Buffer } | { kind: 'too large' } | { kind: 'aborted' };

/** Reads a request body up to `limit` bytes; calls back exactly once. */
function readBody(req: IncomingMessage, limit: number, done: (outcome: BodyOutcome) => void): void {
  const declared = Number(req.headers['content-length']);
  if (declared > limit) return done({ kind: 'too large' });
  const chunks: Buffer[] = [];
  let size = 0;
  let finished = false;
  const finish = (outcome: BodyOutcome): void => {
    if (finished) return;
    finished = true;
    done(outcome);
  };
  req.on('data', (chunk: Buffer) => {
    if (finished) return;
    size += chunk.length;
    if (size > limit) {
      req.pause();
      return finish({ kind: 'too large' });
    }
    chunks.push(chunk);
  });
  req.on('end', () => finish({ kind: 'body', body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size) }));
  req.on('error', () => finish({ kind: 'aborted' }));
  req.on('close', () => {
    if (!req.complete) finish({ kind: 'aborted' });
  });
}

/** As Express's `req.secure`: TLS on the socket, or X-Forwarded-Proto from one of the TrustedProxies. */
function isSecure(req: IncomingMessage, trust: ((address: string) => boolean) | undefined): boolean {
  if ((req.socket as TLSSocket).encrypted) return true;
  if (!trust || !trust(req.socket.remoteAddress ?? '')) return false;
  const header = req.headers['x-forwarded-proto'];
  const first = (Array.isArray(header) ? header[0] : header)?.split(',')[0]?.trim();
  return first === 'https';
}
