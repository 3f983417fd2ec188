/**
 * The two endpoints chat servers call, `POST /api/v1/send_push` and `POST /api/v1/ack` (docs/protocol.md), served
 * on node:http directly: they are the whole load of a relay, and a framework's middleware chain costs more CPU
 * per notification than everything else the proxy does (docs/performance.md). Every outcome is HTTP 200 with
 * the original's JSON, because Mattermost servers drop a send on any other status; only refusals outside the
 * original's protocol (credentials, restrictions, rate limits) get 401/403/429.
 *
 * One request flows: admit the client → read the body → decode → admit the notification → dispatch → answer.
 * `PushApi` holds what every request shares (built once); `PushExchange` is one request on its way, with one
 * method per step, so the hot path allocates one object per request instead of a closure per step.
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import proxyAddr from 'proxy-addr';
import type { Logger } from 'pino';
import type { PushDispatcher } from '../delivery/dispatcher';
import type { ParsedPlatform } from '../delivery/platform-string';
import type { ProxyMetrics } from '../metrics';
import type { PushAck, PushNotification, PushResponse } from '../notification';
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
  /** Hears each valid ack: the device's receipt for the trace. */
  onReceipt?: (ack: PushAck) => void;
}

type Admitted = Extract<Admission, { ok: true }>;

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
  const api = new PushApi(deps);
  return (req, res, path) => {
    // Express answered HEAD and the rest with 405 and an empty body, as the original.
    if (req.method !== 'POST') return api.answerMethodNotAllowed(req, res);
    new PushExchange(api, req, res, path).start();
  };
}

/** What every request of one proxy instance shares, built once: its dependencies, headers and answer writers. */
class PushApi {
  readonly dispatcher: PushDispatcher;
  readonly metrics: ProxyMetrics;
  readonly logger: Logger;
  readonly access: AccessControl | undefined;
  readonly onReceipt: ((ack: PushAck) => void) | undefined;
  private readonly trust: ((address: string) => boolean) | undefined;
  private readonly commonHeaders: OutgoingHttpHeaders;
  private readonly textHeaders: OutgoingHttpHeaders;
  private readonly jsonHeaders: OutgoingHttpHeaders;
  // The two answers nearly every request gets, headers and all, built once.
  private readonly okHeaders: OutgoingHttpHeaders;
  private readonly removeHeaders: OutgoingHttpHeaders;

  constructor(deps: PushApiDeps) {
    const { trustedProxies } = deps;
    this.dispatcher = deps.dispatcher;
    this.metrics = deps.metrics;
    this.logger = deps.logger;
    this.access = deps.access;
    this.onReceipt = deps.onReceipt;
    this.trust = trustedProxies ? (address: string) => trustedProxies(address) : undefined;
    this.commonHeaders = deps.commonHeaders;
    this.textHeaders = { ...deps.commonHeaders, 'content-type': 'text/plain; charset=utf-8' };
    this.jsonHeaders = { ...deps.commonHeaders, 'content-type': 'application/json; charset=utf-8' };
    this.okHeaders = { ...this.textHeaders, 'content-length': OK_BODY.length };
    this.removeHeaders = { ...this.textHeaders, 'content-length': REMOVE_BODY.length };
  }

  /** What access control knows of the caller before the body: its address (through trusted hops), scheme, credentials. */
  clientOf(req: IncomingMessage): ClientInfo {
    const { trust } = this;
    return {
      ip: trust ? proxyAddr(req, trust) : req.socket.remoteAddress,
      secure: isSecure(req, trust),
      authorization: req.headers.authorization,
    };
  }

  /** 405 with an empty body for anything but POST; the unread body is drained so the connection stays usable. */
  answerMethodNotAllowed(req: IncomingMessage, res: ServerResponse): void {
    req.resume();
    res.writeHead(405, { ...this.commonHeaders, 'content-length': 0 });
    res.end();
  }

  /** The original's always-200 answer; OK and REMOVE with their prebuilt headers. */
  answerPush(res: ServerResponse, response: PushResponse): void {
    if (response.status === 'FAIL') return this.answer(res, 200, this.textHeaders, pushResponseBody(response));
    if (res.headersSent || res.destroyed) return;
    const ok = response.status === 'OK';
    res.writeHead(200, ok ? this.okHeaders : this.removeHeaders);
    res.end(ok ? OK_BODY : REMOVE_BODY);
  }

  /** A refusal of access control, with its own status (401, 403, 429) and headers, as JSON. */
  answerRefusal(res: ServerResponse, refusal: Refusal): void {
    const body = JSON.stringify({ error: refusal.error, status: 'FAIL' }) + '\n';
    this.answer(res, refusal.status, { ...this.jsonHeaders, ...refusal.headers }, body);
  }

  /** Writes one answer, unless one was already written or the client went away: a request is answered once. */
  private answer(res: ServerResponse, status: number, headers: OutgoingHttpHeaders, body: string): void {
    if (res.headersSent || res.destroyed) return;
    res.writeHead(status, { ...headers, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }
}

/**
 * One push API request on its way, a step per method in the order they run. A send_push is settled once: its
 * duration is observed and a failure logged exactly once, whichever of the answer, a refusal or an error comes first.
 */
class PushExchange {
  private admission: Admitted | undefined = undefined;
  private chunks: Buffer[] | undefined = undefined;
  private size = 0;
  /** The body step has ended (read, too large or aborted): later stream events change nothing. */
  private bodyDone = false;
  private started = 0;
  private settled = false;

  constructor(
    private readonly api: PushApi,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly path: string,
  ) {}

  /** Admits the client before its body is read, so a refused client costs little; without access control, everyone. */
  start(): void {
    const { access } = this.api;
    if (!access) return this.readBody();
    access.admit(this.api.clientOf(this.req)).then(
      (admission) => this.admitted(admission),
      (err: unknown) => {
        this.req.resume();
        this.fail(err);
      },
    );
  }

  /** Access control's verdict on the client: read the body, or answer the refusal and leave the body unread. */
  private admitted(admission: Admission): void {
    if (admission.ok) {
      this.admission = admission;
      return this.readBody();
    }
    this.req.resume();
    this.api.answerRefusal(this.res, admission);
  }

  /** Reads the body up to MAX_BODY_BYTES, then goes on once, to bodyRead or bodyTooLarge; nowhere if the client aborts. */
  private readBody(): void {
    const { req } = this;
    const declared = Number(req.headers['content-length']);
    if (declared > MAX_BODY_BYTES) return this.bodyTooLarge();
    this.chunks = [];
    req.on('data', (chunk: Buffer) => this.bodyChunk(chunk));
    req.on('end', () => this.bodyEnd());
    req.on('error', () => this.bodyAborted());
    req.on('close', () => this.bodyClosed());
  }

  /** Keeps a chunk of the body, or stops reading at the limit. */
  private bodyChunk(chunk: Buffer): void {
    if (this.bodyDone) return;
    this.size += chunk.length;
    if (this.size > MAX_BODY_BYTES) {
      this.req.pause();
      return this.bodyTooLarge();
    }
    this.chunks!.push(chunk);
  }

  /** The whole body arrived: one buffer of it goes on. */
  private bodyEnd(): void {
    if (this.bodyDone) return;
    const chunks = this.chunks!;
    // Nothing of the body is kept while the delivery is under way.
    this.chunks = undefined;
    this.bodyRead(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, this.size));
  }

  /** A connection closed before the body was complete is the client going away. */
  private bodyClosed(): void {
    if (!this.req.complete) this.bodyAborted();
  }

  /** The client went away before sending its whole body: nobody to answer. */
  private bodyAborted(): void {
    if (this.bodyDone) return;
    this.bodyDone = true;
    this.chunks = undefined;
  }

  /** FAIL for a body over the limit; the rest is not read, so the connection cannot carry another request. */
  private bodyTooLarge(): void {
    if (this.bodyDone) return;
    this.bodyDone = true;
    this.chunks = undefined;
    this.api.metrics.badRequest.inc();
    this.res.shouldKeepAlive = false;
    const what = this.path === ACK_PATH ? 'ack' : 'message';
    this.api.answerPush(this.res, {
      status: 'FAIL',
      error: `Failed to read ${what} body: request body larger than ${MAX_BODY_BYTES} bytes`,
    });
  }

  /** The whole body is here: the request's duration runs from now until it is settled. */
  private bodyRead(body: Buffer): void {
    this.bodyDone = true;
    this.started = performance.now();
    if (this.path === ACK_PATH) {
      try {
        this.ack(body);
      } catch (err) {
        this.fail(err);
      }
      return this.observeDuration();
    }
    try {
      this.sendPush(body);
    } catch (err) {
      this.settleWithError(err);
    }
  }

  /** An ack is only counted (its latency too, when this instance answered its notification) and logged: decode, check its fields, answer OK. */
  private ack(body: Buffer): void {
    const { metrics, logger } = this.api;
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
      return this.api.answerPush(this.res, { status: 'FAIL', error: refusal ?? 'invalid ack' });
    }
    const ack = decoded.value;
    metrics.delivered.inc({ platform: ack.platform, type: ack.type });
    metrics.acknowledged(ack.id);
    this.api.onReceipt?.(ack);
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
    this.api.answerPush(this.res, { status: 'OK' });
  }

  /** Decodes a send_push, then admits it (the tenant's restrictions, the per-server budget) before dispatching it. */
  private sendPush(body: Buffer): void {
    const decoded = decodePushNotification(body);
    if (!decoded.ok) {
      this.api.metrics.badRequest.inc();
      this.api.answerPush(this.res, { status: 'FAIL', error: `Failed to read message body: ${decoded.error}` });
      return this.settle();
    }
    const notification = decoded.value;
    const platform = this.api.dispatcher.preflight(notification);
    const { access } = this.api;
    const { admission } = this;
    // A notification the dispatcher refuses anyway (missing ids) gets its FAIL there; restrictions apply to real sends.
    if (access && admission && typeof platform !== 'string') {
      access
        .admitPush(admission, notification.server_id, platform.type)
        .then((refusal) => this.notificationAdmitted(notification, platform, refusal))
        .catch((err: unknown) => this.settleWithError(err));
      return;
    }
    this.dispatch(notification, platform);
  }

  /** Access control's verdict on the notification: dispatch it, or answer the refusal. */
  private notificationAdmitted(notification: PushNotification, platform: ParsedPlatform, refusal: Refusal | undefined): void {
    if (!refusal) return this.dispatch(notification, platform);
    this.api.answerRefusal(this.res, refusal);
    this.settle();
  }

  /** Hands the notification to the dispatcher; one reaction on its promise answers and settles. */
  private dispatch(notification: PushNotification, platform: ParsedPlatform | string): void {
    this.api.dispatcher.send(notification, platform, this.admission?.tenant?.id).then(
      (response) => this.answerDelivery(response),
      (err: unknown) => this.settleWithError(err),
    );
  }

  /** The dispatcher's verdict (OK, REMOVE or FAIL) is the answer. */
  private answerDelivery(response: PushResponse): void {
    try {
      this.api.answerPush(this.res, response);
    } catch (err) {
      return this.settleWithError(err);
    }
    this.settle();
  }

  /** The send_push is over: observe its duration, once. */
  private settle(): void {
    if (this.settled) return;
    this.settled = true;
    this.observeDuration();
  }

  /** The send_push is over with an error: observe its duration and report the error, once. */
  private settleWithError(err: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.observeDuration();
    this.fail(err);
  }

  /** The request duration metric: from the whole body read to the answer. */
  private observeDuration(): void {
    this.api.metrics.observeRequest((performance.now() - this.started) / 1000);
  }

  /**
   * A bug or a failed rate-limit store is not the client's fault: the dispatcher's own answer for a bug,
   * and the cause for the operator's log only.
   */
  private fail(err: unknown): void {
    this.api.logger.error({ err, path: this.path }, 'request failed');
    this.api.answerPush(this.res, INTERNAL_ERROR);
  }
}

/** Compact JSON with sorted keys and a newline, as Go's encoder writes a map. */
export function pushResponseBody(response: PushResponse): string {
  if (response.status === 'OK') return OK_BODY;
  if (response.status === 'REMOVE') return REMOVE_BODY;
  return JSON.stringify({ error: response.error, status: response.status }) + '\n';
}

const OK_BODY = '{"status":"OK"}\n';
const REMOVE_BODY = '{"status":"REMOVE"}\n';

/** As Express's `req.secure`: TLS on the socket, or X-Forwarded-Proto from one of the TrustedProxies. */
function isSecure(req: IncomingMessage, trust: ((address: string) => boolean) | undefined): boolean {
  if ((req.socket as TLSSocket).encrypted) return true;
  if (!trust || !trust(req.socket.remoteAddress ?? '')) return false;
  const header = req.headers['x-forwarded-proto'];
  const first = (Array.isArray(header) ? header[0] : header)?.split(',')[0]?.trim();
  return first === 'https';
}
