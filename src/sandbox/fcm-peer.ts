/**
 * A local stand-in for Google: the OAuth2 token endpoint (service-account JWT grant) and FCM HTTP v1
 * `messages:send`, answering as Google does — same statuses, same `google.rpc.Status` error bodies, same
 * validation wording — over HTTPS with HTTP/1.1 and HTTP/2. Programmable per device token, and it records
 * everything that reached it, so tests can count what a client really sent.
 */
import { createPublicKey, randomBytes, verify, type KeyObject } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { PemPair } from '../tls/certificates';

export const FCM_SCOPE = 'https://www.googleapis.com/auth/firebase.messaging';
export const GOOGLE_TOKEN_URI = 'https://oauth2.googleapis.com/token';
export const JWT_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const CLOUD_PLATFORM_SCOPE = 'https://www.googleapis.com/auth/cloud-platform';
const FCM_ERROR_TYPE = 'type.googleapis.com/google.firebase.fcm.v1.FcmError';
const BAD_REQUEST_TYPE = 'type.googleapis.com/google.rpc.BadRequest';
const SEND_PATH = /^\/v1\/projects\/([^/]+)\/messages:send$/;
const TOKEN_PATH = '/token';
const DEFAULT_TOKEN_LIFETIME_SEC = 3600;
/** Google refuses assertions valid for longer than an hour, and tolerates a little clock skew. */
const MAX_ASSERTION_LIFETIME_SEC = 3600;
const CLOCK_SKEW_SEC = 300;
const MAX_BODY_BYTES = 1 << 20;
/** Google's limit on a message's data payload, counted as the UTF-8 bytes of its keys and values. */
export const FCM_MAX_DATA_BYTES = 4096;
/** FCM registration tokens are URL-safe base64 with `:` separators; anything else is not a token. */
const TOKEN_SYNTAX = /^[A-Za-z0-9_\-:.]{1,4096}$/;
const MESSAGE_KEYS = new Set(['name', 'data', 'notification', 'android', 'webpush', 'apns', 'fcm_options', 'token', 'topic', 'condition']);
const ANDROID_PRIORITIES = new Set(['normal', 'high', 'NORMAL', 'HIGH']);

export type FcmErrorCode =
  'UNREGISTERED' | 'INVALID_ARGUMENT' | 'SENDER_ID_MISMATCH' | 'QUOTA_EXCEEDED' | 'INTERNAL' | 'UNAVAILABLE' | 'THIRD_PARTY_AUTH_ERROR';

/** How FCM reports each error code: HTTP status, gRPC status and its usual message. */
export const FCM_ERRORS: Readonly<Record<FcmErrorCode, { code: number; status: string; message: string }>> = {
  UNREGISTERED: { code: 404, status: 'NOT_FOUND', message: 'Requested entity was not found.' },
  INVALID_ARGUMENT: { code: 400, status: 'INVALID_ARGUMENT', message: 'The registration token is not a valid FCM registration token' },
  SENDER_ID_MISMATCH: { code: 403, status: 'PERMISSION_DENIED', message: 'SenderId mismatch' },
  QUOTA_EXCEEDED: {
    code: 429,
    status: 'RESOURCE_EXHAUSTED',
    message: "Quota exceeded for quota metric 'Send requests' and limit 'Send requests per minute' of service 'fcm.googleapis.com'.",
  },
  INTERNAL: { code: 500, status: 'INTERNAL', message: 'Internal error encountered.' },
  UNAVAILABLE: { code: 503, status: 'UNAVAILABLE', message: 'The service is currently unavailable.' },
  THIRD_PARTY_AUTH_ERROR: { code: 401, status: 'UNAUTHENTICATED', message: 'Auth error from APNS or Web Push Service' },
};

/** What the peer does with the next send to a device token. */
export type FcmBehaviour =
  /** Accept the message (the default for any syntactically valid token). */
  | { ok: true }
  /** Refuse it as FCM does with this error code; `retryAfterSec` adds a `Retry-After` header. */
  | { error: FcmErrorCode; message?: string; retryAfterSec?: number }
  /** Answer exactly this. */
  | { status: number; body: string; headers?: Record<string, string> }
  /** Accept it, answering after this long (a slow but healthy FCM), if the client is still there. */
  | { delayMs: number }
  /** Never answer (until the client gives up or the peer closes). */
  | { hang: true }
  /** Drop the connection (HTTP/1.1) or reset the stream (HTTP/2) without an answer. */
  | { reset: true };

/** One request to `messages:send`, whatever became of it. */
export interface FcmReceivedMessage {
  project: string;
  /** `message.token` (absent for topic/condition sends or unparsable bodies). */
  token?: string;
  data?: Record<string, unknown>;
  android?: unknown;
  /** The whole `message` object as received. */
  message?: unknown;
  validateOnly: boolean;
  headers: IncomingHttpHeaders;
  /** `1.1` or `2.0`. */
  httpVersion: string;
  /** HTTP status of the answer; 0 when a programmed hang/reset gave none. */
  status: number;
  /** Set when the answer was a programmed non-HTTP behaviour. */
  behaviour?: 'hang' | 'reset';
  /** FcmError `errorCode`, else the gRPC status, of an error answer. */
  errorCode?: string;
  /** The answer sent back: parsed JSON, or the raw text of a programmed `{status, body}`. */
  answer?: unknown;
  receivedAt: Date;
  /** Set when the exchange ended (answer written or connection gone). */
  endedAt?: Date;
  /**
   * Set when the exchange ended: a complete 200 was handed to the connection while it was up, so the
   * client could read it whatever it did next. An answer cut off by a dropped connection is not a delivery,
   * nor is the answer to a `validate_only` send.
   */
  delivered?: boolean;
}

export interface FcmTokenRequest {
  /** The assertion's `iss`, when it could be read. */
  clientEmail?: string;
  status: number;
  /** OAuth2 `error` of a refused grant. */
  error?: string;
  errorDescription?: string;
  /** The access token issued. */
  accessToken?: string;
  httpVersion: string;
}

export interface FcmServiceAccountKey {
  clientEmail: string;
  publicKeyPem: string;
  projectId: string;
}

export interface FcmPeerOptions {
  tls: PemPair;
  host?: string;
  /** 0 (default) = any free port. */
  port?: number;
  serviceAccounts?: FcmServiceAccountKey[];
  /**
   * The Firebase project every device token was registered with (the app's). When set, a send through
   * another project gets 403 SENDER_ID_MISMATCH, as FCM answers: what a service account of the wrong
   * project looks like. Unset: not checked.
   */
  tokenProject?: string;
  /** `expires_in` of issued access tokens (default 3600 s). */
  tokenLifetimeSec?: number;
  onMessage?: (message: FcmReceivedMessage) => void;
}

interface IssuedToken {
  project: string;
  clientEmail: string;
  expiresAt: number;
}

type Request = http2.Http2ServerRequest;
type Response = http2.Http2ServerResponse;

export class FcmPeer {
  readonly received: FcmReceivedMessage[] = [];
  readonly tokenRequests: FcmTokenRequest[] = [];
  /** Called once per send request, when it is answered (or when it starts hanging / is dropped). */
  onMessage?: (message: FcmReceivedMessage) => void;

  private readonly server: http2.Http2SecureServer;
  private readonly accounts = new Map<string, { key: KeyObject; projectId: string }>();
  private readonly issued = new Map<string, IssuedToken>();
  private readonly behaviours = new Map<string, FcmBehaviour[]>();
  private readonly unregistered = new Set<string>();
  private readonly sockets = new Set<TLSSocket>();
  /** Answers held back by a `delayMs` behaviour: close() cancels them, so a long delay never keeps the process alive. */
  private readonly delayedAnswers = new Set<NodeJS.Timeout>();
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private readonly waiters = new Set<() => void>();
  private readonly defaultLifetimeSec: number;
  private tokenLifetimeSec: number;
  private listening?: AddressInfo;

  constructor(private readonly options: FcmPeerOptions) {
    this.defaultLifetimeSec = options.tokenLifetimeSec ?? DEFAULT_TOKEN_LIFETIME_SEC;
    this.tokenLifetimeSec = this.defaultLifetimeSec;
    this.onMessage = options.onMessage;
    for (const account of options.serviceAccounts ?? [])
      this.addServiceAccount(account.clientEmail, account.publicKeyPem, account.projectId);
    this.server = http2.createSecureServer({ cert: options.tls.certPem, key: options.tls.keyPem, allowHTTP1: true }, (req, res) => {
      this.handle(req, res).catch(() => {
        if (!res.headersSent && !res.destroyed) res.writeHead(500).end();
      });
    });
    this.server.on('secureConnection', (socket: TLSSocket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    this.server.on('session', (session) => {
      this.sessions.add(session);
      session.once('close', () => this.sessions.delete(session));
    });
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port ?? 0, this.options.host ?? '127.0.0.1', () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.listening = this.server.address() as AddressInfo;
  }

  get port(): number {
    if (!this.listening) throw new Error('FcmPeer is not started');
    return this.listening.port;
  }

  get url(): string {
    const host = this.listening?.family === 'IPv6' ? `[${this.listening.address}]` : (this.listening?.address ?? '127.0.0.1');
    return `https://${host}:${this.port}`;
  }

  /** The token endpoint to write into a service account's `token_uri`. */
  get tokenUri(): string {
    return `${this.url}${TOKEN_PATH}`;
  }

  /** Lets `clientEmail` obtain tokens (JWTs signed by the matching private key) that may send for `projectId`. */
  addServiceAccount(clientEmail: string, publicKeyPem: string, projectId: string): void {
    this.accounts.set(clientEmail, { key: createPublicKey(publicKeyPem), projectId });
  }

  /**
   * Deletes a service account, as the Google Cloud console does: its token requests get `invalid_grant`.
   * Access tokens already issued stay valid until `revokeAccessTokens()`.
   */
  removeServiceAccount(clientEmail: string): void {
    this.accounts.delete(clientEmail);
  }

  /** What the following sends to `token` get: a list is used one per send, its last entry sticks; `[]` = normal. */
  setTokenBehaviour(token: string, behaviour: FcmBehaviour | FcmBehaviour[]): void {
    const list = Array.isArray(behaviour) ? [...behaviour] : [behaviour];
    if (list.length === 0) this.behaviours.delete(token);
    else this.behaviours.set(token, list);
  }

  /** From now on sends to `token` get UNREGISTERED, as after an app uninstall. */
  unregister(token: string): void {
    this.unregistered.add(token);
  }

  /** `expires_in` of tokens issued from now on. */
  setTokenLifetime(seconds: number): void {
    this.tokenLifetimeSec = seconds;
  }

  /** Invalidates every access token issued so far (sends with them get 401 UNAUTHENTICATED). */
  revokeAccessTokens(): void {
    this.issued.clear();
  }

  receivedFor(token: string): FcmReceivedMessage[] {
    return this.received.filter((m) => m.token === token);
  }

  /** Resolves once `count` sends have reached the peer in total. */
  waitForMessages(count: number, timeoutMs = 10_000): Promise<FcmReceivedMessage[]> {
    if (this.received.length >= count) return Promise.resolve(this.received.slice(0, count));
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (this.received.length < count) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(this.received.slice(0, count));
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`FcmPeer: ${this.received.length} of ${count} messages after ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.add(check);
    });
  }

  /** Forgets records, behaviours and unregistered tokens; keeps accounts and issued access tokens. */
  reset(): void {
    this.received.length = 0;
    this.tokenRequests.length = 0;
    this.behaviours.clear();
    this.unregistered.clear();
    this.tokenLifetimeSec = this.defaultLifetimeSec;
  }

  /** Closes at once, dropping hanging requests and idle keep-alive connections. */
  async close(): Promise<void> {
    if (!this.listening) return;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const session of this.sessions) session.destroy();
    for (const socket of this.sockets) socket.destroy();
    for (const timer of this.delayedAnswers) clearTimeout(timer);
    this.delayedAnswers.clear();
    await closed;
    this.listening = undefined;
  }

  private async handle(req: Request, res: Response): Promise<void> {
    const body = await readBody(req);
    const path = (req.url ?? '').split('?')[0] ?? '';
    if (path === TOKEN_PATH) {
      if (req.method !== 'POST') return sendJson(res, 405, googleStatus(405, 'METHOD_NOT_ALLOWED', 'Method Not Allowed'));
      return this.handleTokenRequest(req, res, body);
    }
    const send = SEND_PATH.exec(path);
    if (send) {
      if (req.method !== 'POST') return sendJson(res, 405, googleStatus(405, 'METHOD_NOT_ALLOWED', 'Method Not Allowed'));
      return this.handleSend(req, res, decodeURIComponent(send[1]!), body);
    }
    res.writeHead(404, { 'content-type': 'text/html; charset=UTF-8' });
    res.end(
      `<!DOCTYPE html>\n<title>Error 404 (Not Found)!!1</title>\n<p>The requested URL <code>${escapeHtml(path)}</code> was not found on this server.</p>\n`,
    );
  }

  // ---- OAuth2: https://developers.google.com/identity/protocols/oauth2/service-account#httprest

  private handleTokenRequest(req: Request, res: Response, body: Buffer): void {
    const record: FcmTokenRequest = { status: 0, httpVersion: req.httpVersion };
    this.tokenRequests.push(record);
    const refuse = (error: string, description: string): void => {
      Object.assign(record, { status: 400, error, errorDescription: description });
      sendJson(res, 400, { error, error_description: description });
    };

    const form = new URLSearchParams(body.toString('utf8'));
    const grantType = form.get('grant_type') ?? '';
    if (grantType !== JWT_BEARER_GRANT) return refuse('unsupported_grant_type', `Invalid grant_type: ${grantType}`);
    const assertion = form.get('assertion');
    if (!assertion) return refuse('invalid_request', 'Missing required parameter: assertion');

    const jwt = decodeJwt(assertion);
    if (!jwt) return refuse('invalid_grant', 'Invalid JWT: Failed to parse the assertion.');
    const claims = jwt.claims;
    if (typeof claims.iss === 'string') record.clientEmail = claims.iss;
    if (jwt.header.alg !== 'RS256') return refuse('invalid_grant', 'Invalid JWT Signature.');
    const account = typeof claims.iss === 'string' ? this.accounts.get(claims.iss) : undefined;
    if (!account) return refuse('invalid_grant', 'Invalid grant: account not found');
    if (!verify('sha256', Buffer.from(jwt.signedPart), account.key, jwt.signature))
      return refuse('invalid_grant', 'Invalid JWT Signature.');

    // The audience is the token URL the client was given; it may have reached us through a redirection.
    const audiences = new Set([this.tokenUri, `https://${req.headers[':authority'] ?? req.headers.host}${TOKEN_PATH}`, GOOGLE_TOKEN_URI]);
    if (typeof claims.aud !== 'string' || !audiences.has(claims.aud)) {
      return refuse('invalid_grant', `Invalid JWT: Failed audience check. The right audience is ${this.tokenUri}`);
    }
    const now = Math.floor(Date.now() / 1000);
    const { iat, exp } = claims;
    if (
      typeof iat !== 'number' ||
      typeof exp !== 'number' ||
      iat > now + CLOCK_SKEW_SEC ||
      exp <= now - CLOCK_SKEW_SEC ||
      exp <= iat ||
      exp - iat > MAX_ASSERTION_LIFETIME_SEC
    ) {
      return refuse(
        'invalid_grant',
        'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.',
      );
    }
    const scopes = typeof claims.scope === 'string' ? claims.scope.split(' ') : [];
    if (!scopes.includes(FCM_SCOPE) && !scopes.includes(CLOUD_PLATFORM_SCOPE)) {
      return refuse('invalid_scope', 'Invalid OAuth scope or ID token audience provided.');
    }

    const accessToken = `ya29.sandbox-${randomBytes(24).toString('base64url')}`;
    this.issued.set(accessToken, {
      project: account.projectId,
      clientEmail: claims.iss as string,
      expiresAt: Date.now() + this.tokenLifetimeSec * 1000,
    });
    Object.assign(record, { status: 200, accessToken });
    sendJson(res, 200, { access_token: accessToken, expires_in: this.tokenLifetimeSec, token_type: 'Bearer' });
  }

  // ---- FCM HTTP v1: https://firebase.google.com/docs/reference/fcm/rest/v1/projects.messages/send

  private handleSend(req: Request, res: Response, project: string, body: Buffer): void {
    const record: FcmReceivedMessage = {
      project,
      validateOnly: false,
      headers: { ...req.headers },
      httpVersion: req.httpVersion,
      status: 0,
      receivedAt: new Date(),
    };
    this.received.push(record);
    let finished = false;
    const ended = (): void => {
      record.endedAt = new Date();
      // A validate_only send is answered as a real one but never reaches a device.
      record.delivered = finished && res.statusCode === 200 && !record.validateOnly;
    };
    res.once('finish', () => (finished = true));
    if (res.destroyed) ended();
    else res.once('close', ended);
    for (const waiter of [...this.waiters]) waiter();

    const answer = (status: number, json: unknown, headers: Record<string, string> = {}): void => {
      record.status = status;
      record.answer = json;
      const error = (json as { error?: { status?: string; details?: Array<{ '@type'?: string; errorCode?: string }> } }).error;
      if (error) record.errorCode = error.details?.find((d) => d['@type'] === FCM_ERROR_TYPE)?.errorCode ?? error.status;
      sendJson(res, status, json, headers);
      this.onMessage?.(record);
    };

    const auth = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
    const issued = auth ? this.issued.get(auth[1]!) : undefined;
    if (!issued || issued.expiresAt <= Date.now()) {
      return answer(
        401,
        googleStatus(
          401,
          'UNAUTHENTICATED',
          'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.',
        ),
      );
    }
    if (issued.project !== project) {
      // No FcmError detail: a client must not read this as SENDER_ID_MISMATCH.
      return answer(
        403,
        googleStatus(
          403,
          'PERMISSION_DENIED',
          `Permission 'cloudmessaging.messages.create' denied on resource '//cloudresourcemanager.googleapis.com/projects/${project}' (or it may not exist).`,
        ),
      );
    }

    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch (err) {
      return answer(400, invalidArgument(`Invalid JSON payload received. ${(err as Error).message}`, ''));
    }
    if (!isObject(parsed)) return answer(400, invalidArgument(`Invalid JSON payload received. Expected an object.`, ''));
    for (const key of Object.keys(parsed)) {
      if (key !== 'message' && key !== 'validate_only' && key !== 'validateOnly') {
        return answer(400, invalidArgument(`Invalid JSON payload received. Unknown name "${key}": Cannot find field.`, ''));
      }
    }
    record.validateOnly = parsed.validate_only === true || parsed.validateOnly === true;
    const message = parsed.message;
    if (!isObject(message)) return answer(400, invalidArgument('Recipient of the message is not set.', 'message', true));
    record.message = message;
    if (typeof message.token === 'string') record.token = message.token;
    if (isObject(message.data)) record.data = message.data;
    record.android = message.android;

    const problem = validateMessage(message);
    if (problem) return answer(400, invalidArgument(problem.description, problem.field, problem.fcmError));
    if (isObject(message.data) && dataPayloadBytes(message.data) > FCM_MAX_DATA_BYTES) {
      // Google's wording and details for an oversized message (no field violations).
      return answer(
        400,
        googleStatus(400, 'INVALID_ARGUMENT', 'Android message is too big', [
          { '@type': BAD_REQUEST_TYPE },
          { '@type': FCM_ERROR_TYPE, errorCode: 'INVALID_ARGUMENT' },
        ]),
      );
    }

    // FCM names no real message for a validate_only send: its answer carries this fixed name instead.
    const name = record.validateOnly
      ? `projects/${project}/messages/fake_message_id`
      : `projects/${project}/messages/0:${Date.now()}${randomBytes(4).toString('hex')}%${randomBytes(8).toString('hex')}`;
    const token = typeof message.token === 'string' ? message.token : undefined;
    const behaviour = token === undefined ? { ok: true as const } : this.nextBehaviour(token, project);

    if ('hang' in behaviour) {
      record.behaviour = 'hang';
      this.onMessage?.(record);
      return;
    }
    if ('reset' in behaviour) {
      record.behaviour = 'reset';
      if (req.httpVersion === '2.0') req.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
      else req.socket.destroy();
      this.onMessage?.(record);
      return;
    }
    if ('delayMs' in behaviour) {
      const timer = setTimeout(() => {
        this.delayedAnswers.delete(timer);
        if (!res.destroyed && !res.writableEnded) answer(200, { name });
      }, behaviour.delayMs);
      this.delayedAnswers.add(timer);
      return;
    }
    if ('status' in behaviour) {
      record.status = behaviour.status;
      record.answer = behaviour.body;
      res.writeHead(behaviour.status, { 'content-type': 'application/json; charset=UTF-8', ...behaviour.headers });
      res.end(behaviour.body);
      this.onMessage?.(record);
      return;
    }
    if ('error' in behaviour) {
      const known = FCM_ERRORS[behaviour.error];
      const headers: Record<string, string> =
        behaviour.retryAfterSec === undefined ? {} : { 'retry-after': String(behaviour.retryAfterSec) };
      return answer(
        known.code,
        googleStatus(known.code, known.status, behaviour.message ?? known.message, [
          { '@type': FCM_ERROR_TYPE, errorCode: behaviour.error },
        ]),
        headers,
      );
    }
    return answer(200, { name });
  }

  private nextBehaviour(token: string, project: string): FcmBehaviour {
    if (this.unregistered.has(token)) return { error: 'UNREGISTERED' };
    if (this.options.tokenProject !== undefined && project !== this.options.tokenProject) return { error: 'SENDER_ID_MISMATCH' };
    const list = this.behaviours.get(token);
    if (!list) return { ok: true };
    return (list.length > 1 ? list.shift() : list[0]) ?? { ok: true };
  }
}

/** Google's checks on a `Message`, in its wording; undefined when it is acceptable. */
function validateMessage(message: Record<string, unknown>): { field: string; description: string; fcmError: boolean } | undefined {
  for (const key of Object.keys(message)) {
    if (!MESSAGE_KEYS.has(key)) {
      return {
        field: 'message',
        description: `Invalid JSON payload received. Unknown name "${key}" at 'message': Cannot find field.`,
        fcmError: false,
      };
    }
  }
  for (const key of ['token', 'topic', 'condition'] as const) {
    if (key in message && typeof message[key] !== 'string') {
      return {
        field: `message.${key}`,
        description: `Invalid value at 'message.${key}' (TYPE_STRING), ${jsonText(message[key])}`,
        fcmError: false,
      };
    }
  }
  const targets = (['token', 'topic', 'condition'] as const).filter((key) => typeof message[key] === 'string' && message[key] !== '');
  if (targets.length === 0) return { field: 'message', description: 'Recipient of the message is not set.', fcmError: true };
  if (targets.length > 1) {
    return {
      field: 'message',
      description: `Invalid value at 'message' (oneof), oneof field 'target' is already set. Cannot set '${targets[1]}'`,
      fcmError: false,
    };
  }
  if (typeof message.token === 'string' && !TOKEN_SYNTAX.test(message.token)) {
    return { field: 'message.token', description: FCM_ERRORS.INVALID_ARGUMENT.message, fcmError: true };
  }
  if ('data' in message) {
    const data = message.data;
    if (!isObject(data)) {
      return {
        field: 'message.data',
        description: `Invalid value at 'message.data' (type.googleapis.com/google.firebase.fcm.v1.Message.DataEntry), ${jsonText(data)}`,
        fcmError: false,
      };
    }
    const entries = Object.entries(data);
    for (let i = 0; i < entries.length; i++) {
      const value = entries[i]![1];
      if (typeof value === 'string') continue;
      const field = `message.data[${i}].value`;
      const shown = isObject(value)
        ? 'Starting an object on a scalar field'
        : Array.isArray(value)
          ? 'Proto field is not repeating, cannot start list.'
          : jsonText(value);
      return { field, description: `Invalid value at '${field}' (TYPE_STRING), ${shown}`, fcmError: false };
    }
  }
  if ('android' in message) {
    const android = message.android;
    if (!isObject(android)) {
      return {
        field: 'message.android',
        description: `Invalid value at 'message.android' (type.googleapis.com/google.firebase.fcm.v1.AndroidConfig), ${jsonText(android)}`,
        fcmError: false,
      };
    }
    if ('priority' in android && !(typeof android.priority === 'string' && ANDROID_PRIORITIES.has(android.priority))) {
      return {
        field: 'message.android.priority',
        description: `Invalid value at 'message.android.priority' (type.googleapis.com/google.firebase.fcm.v1.AndroidMessagePriority), ${jsonText(android.priority)}`,
        fcmError: false,
      };
    }
  }
  return undefined;
}

/** The size Google counts for a data payload: every key and value, in UTF-8 bytes. */
export function dataPayloadBytes(data: Record<string, unknown>): number {
  let bytes = 0;
  for (const [key, value] of Object.entries(data)) bytes += Buffer.byteLength(key) + Buffer.byteLength(String(value));
  return bytes;
}

function googleStatus(code: number, status: string, message: string, details?: unknown[]): { error: Record<string, unknown> } {
  return { error: { code, message, status, ...(details ? { details } : {}) } };
}

/** Google's INVALID_ARGUMENT: field violations, plus the FcmError detail when FCM (not the JSON layer) refused. */
function invalidArgument(description: string, field: string, fcmError = false): { error: Record<string, unknown> } {
  const details: unknown[] = [{ '@type': BAD_REQUEST_TYPE, fieldViolations: [{ field, description }] }];
  if (fcmError) details.push({ '@type': FCM_ERROR_TYPE, errorCode: 'INVALID_ARGUMENT' });
  return googleStatus(400, 'INVALID_ARGUMENT', description, details);
}

function decodeJwt(
  jwt: string,
): { header: Record<string, unknown>; claims: Record<string, unknown>; signedPart: string; signature: Buffer } | undefined {
  const parts = jwt.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const header: unknown = JSON.parse(Buffer.from(parts[0]!, 'base64url').toString('utf8'));
    const claims: unknown = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8'));
    if (!isObject(header) || !isObject(claims)) return undefined;
    return { header, claims, signedPart: `${parts[0]}.${parts[1]}`, signature: Buffer.from(parts[2]!, 'base64url') };
  } catch {
    return undefined;
  }
}

function readBody(req: Request): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        req.destroy();
        reject(new Error('body too large'));
        return;
      }
      chunks.push(chunk);
    });
    req.once('end', () => resolve(Buffer.concat(chunks)));
    req.once('error', reject);
  });
}

function sendJson(res: Response, status: number, json: unknown, headers: Record<string, string> = {}): void {
  if (res.destroyed || res.headersSent) return;
  res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', ...headers });
  res.end(JSON.stringify(json, null, 2) + '\n');
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function jsonText(value: unknown): string {
  return value === undefined ? 'undefined' : JSON.stringify(value);
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
}
