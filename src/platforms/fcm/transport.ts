/**
 * FCM I/O: one HTTP/1.1 request per send, `POST /v1/projects/<project>/messages:send` of `{"message": …}`,
 * over keep-alive connections of our own agent, the answer classified as docs/protocol.md, Outcome mapping, says.
 *
 * Why our own request rather than firebase-admin's `send()`: per message the library validates and copies the
 * message, goes through several promise hops and its own HTTP client, and re-sends 503s and broken connections
 * on its own (for up to ~80 s); bounding its attempts and reading the raw answer, which its errors do not carry,
 * took an AsyncLocalStorage scope that made Node track every promise of the process while an FCM send was under
 * way (APNs sends too). Measured with the bench (A B B A, docs/performance.md): through the library FCM cost 1.78x
 * the bare relay's CPU per notification and reached 0.55x its throughput. With our own request, against that
 * build: 0.70-0.76x the CPU per FCM notification and 1.33-1.44x the throughput (the mixed APNs+FCM row 0.81-0.84x
 * and 1.24-1.28x); against the bare relay 1.58x and 0.69x. One request per attempt also leaves one retry loop
 * (src/delivery/retry.ts) deciding every re-send.
 *
 * firebase-admin still owns the credential's life: its App caches the access token our ServiceAccountCredential
 * obtains and refreshes it 5 minutes before expiry (`App.INTERNAL.getToken`, checked once at construction).
 * The transport holds the token string until that moment, because a 401 must be judged by the token the send
 * used (held, or fetched for it) and one forced refresh must serve every send that met it; asking the App per
 * send would have cost little (a resolved promise, about 0.15 µs).
 *
 * Routing, unchanged: `FcmEndpoint` redirects every connection (TLS checked against the endpoint's name, the
 * Host header stays FCM's); an outbound proxy carries connections through an HTTP CONNECT tunnel
 * (src/transport/outbound-proxy.ts), TLS on top as without one.
 */
import { sign, type KeyObject } from 'node:crypto';
import type http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { deleteApp, initializeApp, type App, type Credential, type GoogleOAuthAccessToken } from 'firebase-admin/app';
import type { Logger } from 'pino';
import type { EntryMetrics } from '../../delivery/service';
import type { AttemptResult, EntryEvidence, Transport } from '../../delivery/types';
import type { FcmMessage } from './payload';
import { trustedCaList } from '../../tls/trust';
import { openTunnel, TunnelStream, type ProxyTarget } from '../../transport/outbound-proxy';
import { hostnameOf } from '../../net/addresses';

export const FCM_HOST = 'fcm.googleapis.com';
export const FCM_SCOPE = 'https://www.googleapis.com/auth/firebase.messaging';
/**
 * Keep-alive connections per entry. HTTP/1.1 carries one request per connection at a time; past this
 * many sends in flight, further ones wait for a free connection (bounded by their attempt's timeout).
 */
export const FCM_MAX_SOCKETS = 256;
/** What an attempt that ran out of time reads, as in the original. */
export const DEADLINE_EXCEEDED = 'context deadline exceeded';

const JWT_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const ASSERTION_LIFETIME_SEC = 3600;
/** A token request is shared by every send waiting for it, so it has its own bound, not an attempt's. */
const TOKEN_REQUEST_TIMEOUT_MS = 10_000;
/** firebase-admin refreshes a token this long before it expires; sends hold it until then. */
const TOKEN_REFRESH_MARGIN_MS = 5 * 60 * 1000;
const FCM_ERROR_TYPE = 'type.googleapis.com/google.firebase.fcm.v1.FcmError';
/** FCM's answer for a token of another sender, which a service account of another Firebase project gets for every token. */
const SUSPECT_EVIDENCE: EntryEvidence = Object.freeze({
  kind: 'suspect',
  advice:
    "FCM answers SENDER_ID_MISMATCH for most device tokens of this entry: the service account in ServiceFileLocation likely belongs to another Firebase project than the app's; use a service account of the app's own project",
});
const CREDENTIALS_ACCEPTED: EntryEvidence = Object.freeze({ kind: 'credentials-accepted' });
/** OAuth errors by which the token endpoint refuses the service account itself, not the request's form. */
const REFUSING_GRANT_ERRORS = new Set(['invalid_grant', 'invalid_client', 'unauthorized_client', 'access_denied']);
/** FCM's answers are small; a larger body is cut here, enough for any error message. */
const MAX_ANSWER_BYTES = 64 * 1024;
/** Bound on the proxy's answer to CONNECT; an attempt that ends sooner destroys its request anyway. */
const PROXY_CONNECT_TIMEOUT_MS = 10_000;
/**
 * Connection failures worth another attempt: the connection broke or timed out (what firebase-admin used to
 * re-send). A refused connection or a TLS failure says something about the route or its configuration: FAIL.
 */
const RETRYABLE_CONNECTION_ERRORS = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT']);
/** A 503 whose Retry-After asks for more than this is a FAIL at once: no retry of ours waits that long. */
const MAX_RETRY_AFTER_SEC = 60;
const TIMED_OUT: AttemptResult = Object.freeze({ kind: 'retryable', error: DEADLINE_EXCEEDED, reason: DEADLINE_EXCEEDED });
const CLOSED: AttemptResult = Object.freeze({
  kind: 'final',
  outcome: 'FAIL',
  error: 'the FCM transport is closed',
  reason: 'UNAVAILABLE',
});

/** The parts of a Google service-account file that FCM needs, already checked (src/platforms/fcm/credentials.ts). */
export interface FcmServiceAccount {
  projectId: string;
  clientEmail: string;
  privateKey: KeyObject;
  privateKeyId?: string;
  /** The account's `token_uri`: where tokens come from, and the assertion's audience. */
  tokenUri: string;
}

export interface FcmTransportOptions {
  /** Unique among live firebase-admin apps. */
  appName: string;
  account: FcmServiceAccount;
  /** `FcmEndpoint`: every FCM connection (and token requests meant for Google) goes there instead. */
  endpoint?: URL;
  /** Extra CAs on top of Node's own, for a peer this process started itself. */
  trustedCa?: string[];
  maxSockets?: number;
  logger?: Logger;
  /** HTTP CONNECT proxy for FCM sends (src/transport/outbound-proxy.ts decides which). */
  outboundProxy?: URL;
  /** HTTP CONNECT proxy for token requests, whose host may be exempt when FCM's is not. */
  tokenOutboundProxy?: URL;
  /** Counts requests that waited for a free connection, and access tokens that could not be had. */
  metrics?: Pick<EntryMetrics, 'slotWaited' | 'credentialRefreshFailed'>;
  /** Ask FCM only to check each message, not to deliver it (`validate_only`). */
  validateOnly?: boolean;
}

/** An HTTP answer as it came over the wire. */
export interface FcmHttpAnswer {
  status: number;
  body: string;
  /** The `Retry-After` header, when there was one. */
  retryAfter?: string;
}

/** firebase-admin's token cache for an App (FirebaseAppInternals), which the public typings leave out. */
interface AppTokenCache {
  getToken(forceRefresh?: boolean): Promise<{ accessToken: string; expirationTime: number }>;
}

/** An access token as sends use it. */
interface HeldToken {
  authorization: string;
  /** `Date.now()` from which firebase-admin refreshes it, and sends ask it again. */
  refreshAt: number;
}

export class UnsupportedFirebaseAdminError extends Error {}

/** The App's token cache, checked once: a release of the library that changed it fails at start-up. */
export function tokenCacheOf(app: App): AppTokenCache {
  const internals = (app as unknown as { INTERNAL?: Partial<AppTokenCache> }).INTERNAL;
  if (typeof internals?.getToken !== 'function') {
    throw new UnsupportedFirebaseAdminError(
      'the installed firebase-admin has no App.INTERNAL.getToken(forceRefresh), which caches and refreshes access tokens. Install the version package-lock.json names (npm ci)',
    );
  }
  return internals as AppTokenCache;
}

export class FcmTransport implements Transport<FcmMessage> {
  private readonly agent: FcmAgent;
  private readonly tokenAgent: https.Agent;
  private readonly app: App;
  private readonly tokens: AppTokenCache;
  private readonly credential: ServiceAccountCredential;
  /** `messages:send` of the account's project. */
  private readonly path: string;
  /** What closes the JSON body after the message. */
  private readonly bodyEnd: string;
  private held: HeldToken | undefined;
  /** The token request under way, which every send that needs a token waits for. */
  private pendingToken: Promise<HeldToken> | undefined;
  /** The latest forced refresh failed: firebase-admin still holds the refused token, so the next ask forces again. */
  private forceNextRefresh = false;
  private closed = false;

  constructor(options: FcmTransportOptions) {
    // `validate_only` travels beside the message: FCM checks it and delivers nothing.
    this.bodyEnd = options.validateOnly ? ',"validate_only":true}' : '}';
    this.path = `/v1/projects/${encodeURIComponent(options.account.projectId)}/messages:send`;
    // One context for every connection: a `ca` option would parse the whole trust store per handshake.
    const ca = trustedCaList(options.trustedCa);
    const tlsOptions = ca ? { secureContext: tls.createSecureContext({ ca }) } : {};
    this.agent = new FcmAgent(
      { keepAlive: true, maxSockets: options.maxSockets ?? FCM_MAX_SOCKETS, ...tlsOptions },
      options.outboundProxy,
      options.endpoint,
      options.metrics,
    );
    this.tokenAgent = new ProxyAwareAgent({ keepAlive: true, maxSockets: 4, ...tlsOptions }, options.tokenOutboundProxy);
    const credential = (this.credential = new ServiceAccountCredential(
      options.account,
      tokenRequestUrl(options.account.tokenUri, options.endpoint),
      this.tokenAgent,
      options.logger,
      options.metrics,
    ));
    this.app = initializeApp({ credential, projectId: options.account.projectId }, options.appName);
    try {
      this.tokens = tokenCacheOf(this.app);
    } catch (err) {
      void deleteApp(this.app);
      this.agent.destroy();
      this.tokenAgent.destroy();
      throw err;
    }
  }

  attempt(message: FcmMessage, timeoutMs: number): Promise<AttemptResult> {
    if (this.closed) return Promise.resolve(CLOSED);
    const body = `{"message":${JSON.stringify(message)}${this.bodyEnd}`;
    return new Promise((resolve) => new FcmAttempt(this, body, timeoutMs, resolve).start());
  }

  async close(): Promise<void> {
    this.closed = true;
    try {
      await deleteApp(this.app);
    } finally {
      this.agent.destroy();
      this.tokenAgent.destroy();
    }
  }

  /** The token to send with: the held one while firebase-admin would keep it, else the one it gets next. */
  token(): HeldToken | Promise<HeldToken> {
    const held = this.held;
    if (held !== undefined && Date.now() < held.refreshAt) return held;
    return this.refreshToken(false);
  }

  /**
   * A token to replace one FCM refused (401) before its expiry: revoked, or its key disabled. One forced
   * refresh serves every send that met the refusal; a send that finds a newer token takes it.
   */
  tokenAfterRefusal(refused: HeldToken): HeldToken | Promise<HeldToken> {
    const held = this.held;
    if (held !== undefined && held !== refused && Date.now() < held.refreshAt) return held;
    if (held === refused) this.held = undefined;
    return this.refreshToken(true);
  }

  /** Why no token could be had: the token endpoint's refusal, when it refused the service account. */
  tokenFailure(err: unknown): AttemptResult {
    return classifyFcmFailure(err, this.credential.refusal);
  }

  /**
   * One request of an attempt, not yet ended: the attempt listens, then writes the body. Headers as a flat
   * list, which Node writes as they are (a header object costs a validation and a map entry per header, and
   * then Node adds no Host: it is given here).
   */
  request(token: HeldToken, body: string): http.ClientRequest {
    return https.request({
      host: FCM_HOST,
      path: this.path,
      method: 'POST',
      agent: this.agent,
      headers: [
        'host',
        FCM_HOST,
        'authorization',
        token.authorization,
        'content-type',
        'application/json; charset=utf-8',
        'content-length',
        String(Buffer.byteLength(body)),
      ],
    });
  }

  private refreshToken(force: boolean): Promise<HeldToken> {
    if (this.pendingToken !== undefined) return this.pendingToken;
    const forced = force || this.forceNextRefresh;
    const pending = this.tokens.getToken(forced).then(
      ({ accessToken, expirationTime }) => {
        this.pendingToken = undefined;
        this.forceNextRefresh = false;
        return (this.held = { authorization: `Bearer ${accessToken}`, refreshAt: expirationTime - TOKEN_REFRESH_MARGIN_MS });
      },
      (err: unknown) => {
        this.pendingToken = undefined;
        if (forced) this.forceNextRefresh = true;
        throw err;
      },
    );
    this.pendingToken = pending;
    return pending;
  }
}

/**
 * One attempt: a request, and at most one more within the attempt's time for either of two answers that say
 * nothing about the message: a reset of a kept-alive connection before any answer (the server closed it while
 * it was idle, and our request met the close), or a 401 to a held access token (revoked before its expiry: the
 * token is renewed first). The timer ends the attempt wherever it is and destroys its request.
 */
class FcmAttempt {
  constructor(
    private readonly transport: FcmTransport,
    /** A string, not a Buffer: Node then writes the headers and the body in one piece. */
    private readonly body: string,
    private readonly timeoutMs: number,
    private readonly resolve: (result: AttemptResult) => void,
  ) {}

  private timer: NodeJS.Timeout | undefined;
  /** The latest request: a late event of an earlier one (re-sent) is ignored. */
  private req: http.ClientRequest | undefined;
  private done = false;
  private resentStale = false;

  start(): void {
    this.timer = setTimeout(() => this.finish(TIMED_OUT), Math.max(0, this.timeoutMs));
    this.sendWith(this.transport.token(), true);
  }

  /** `cached`: the token was held, not fetched for this attempt, so a 401 may mean that it was revoked since. */
  private sendWith(token: HeldToken | Promise<HeldToken>, cached: boolean): void {
    if (!(token instanceof Promise)) return this.send(token, cached);
    token.then(
      (fresh) => this.send(fresh, false),
      (err: unknown) => this.finish(this.transport.tokenFailure(err)),
    );
  }

  private send(token: HeldToken, cached: boolean): void {
    if (this.done) return;
    const req = (this.req = this.transport.request(token, this.body));
    let answered = false;
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (this.done || this.req !== req) return;
      const code = err.code;
      // A kept-alive connection the server closed while it was idle (the usual cause of a reset there): once more, at once.
      if (!answered && !this.resentStale && req.reusedSocket && (code === 'ECONNRESET' || code === 'EPIPE')) {
        this.resentStale = true;
        return this.send(token, cached);
      }
      this.finish(connectionFailure(err));
    });
    req.on('response', (res: http.IncomingMessage) => {
      answered = true;
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        if (size >= MAX_ANSWER_BYTES) return;
        chunks.push(chunk);
        size += chunk.length;
      });
      // A connection that broke in the middle of the answer (Node: ECONNRESET "aborted"): whatever the status
      // said, nothing proves delivery.
      res.on('error', (err: NodeJS.ErrnoException) => {
        if (!this.done && this.req === req) this.finish(connectionFailure(err));
      });
      res.on('end', () => {
        if (this.done || this.req !== req) return;
        const status = res.statusCode ?? 0;
        const text = (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)).toString('utf8');
        // The token that replaces it is not a held one: a second 401 is the answer.
        if (status === 401 && cached && refusesAccessToken(text)) {
          return this.sendWith(this.transport.tokenAfterRefusal(token), false);
        }
        const retryAfter = res.headers['retry-after'];
        this.finish(verdictOf({ status, body: text, ...(retryAfter === undefined ? {} : { retryAfter }) }));
      });
    });
    req.end(this.body);
  }

  private finish(result: AttemptResult): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.timer);
    // A request still under way when time is up must not reach FCM later.
    if (result === TIMED_OUT) this.req?.destroy();
    this.resolve(result);
  }
}

/** An https.Agent whose connections go through an HTTP CONNECT proxy when one is given. */
class ProxyAwareAgent extends https.Agent {
  constructor(
    options: https.AgentOptions,
    private readonly proxy: URL | undefined,
  ) {
    super(options);
  }

  override createConnection(
    options: https.RequestOptions,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): Duplex | null | undefined {
    if (!this.proxy) return super.createConnection(options, callback);
    const target: ProxyTarget = { host: String(options.host ?? 'localhost'), port: Number(options.port ?? 443) };
    // Handed back synchronously, not through the callback: the Agent counts a connection against
    // maxSockets only once it holds it, so an asynchronous one would let a burst open a tunnel per request.
    const proxy = this.proxy;
    const socket = new TunnelStream((signal) => openTunnel(proxy, target, PROXY_CONNECT_TIMEOUT_MS, signal));
    return super.createConnection({ ...options, socket } as https.RequestOptions, callback);
  }
}

/**
 * The agent of FCM sends: keep-alive connections to FCM (or to `FcmEndpoint`, TLS-verified against the
 * endpoint's own name; the Host header stays FCM's), counting the sends that wait for a free connection.
 */
class FcmAgent extends ProxyAwareAgent {
  constructor(
    options: https.AgentOptions,
    proxy: URL | undefined,
    private readonly endpoint: URL | undefined,
    private readonly metrics?: Pick<EntryMetrics, 'slotWaited'>,
  ) {
    super(options, proxy);
  }

  override createConnection(
    options: https.RequestOptions,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): Duplex | null | undefined {
    if (!this.endpoint) return super.createConnection(options, callback);
    const host = hostnameOf(this.endpoint);
    return super.createConnection(
      { ...options, host, port: Number(this.endpoint.port || 443), servername: isIP(host) ? undefined : host },
      callback,
    );
  }

  /** Called for every request made through this agent. */
  addRequest(req: http.ClientRequest, options: unknown): void {
    const queued = this.metrics ? queuedRequests(this) : 0;
    (https.Agent.prototype as unknown as { addRequest(req: http.ClientRequest, options: unknown): void }).addRequest.call(
      this,
      req,
      options,
    );
    // Node queues a request that finds maxSockets connections busy until one is free: a wait for a send slot.
    if (this.metrics && queuedRequests(this) > queued) this.metrics.slotWaited();
  }
}

/** Requests an agent holds until a connection is free (one queue per origin; this agent has one origin). */
function queuedRequests(agent: http.Agent): number {
  let queued = 0;
  for (const name in agent.requests) queued += agent.requests[name]?.length ?? 0;
  return queued;
}

/** FCM's answer: a 2xx carries the message's name, FCM's id for it; any other is classified. */
function verdictOf(answer: FcmHttpAnswer): AttemptResult {
  if (answer.status >= 200 && answer.status < 300) {
    let json: unknown;
    try {
      json = JSON.parse(answer.body);
    } catch (err) {
      // FCM's answer to an accepted message is JSON: anything else is not a proof of delivery.
      return {
        kind: 'final',
        outcome: 'FAIL',
        error: `error while parsing response: ${(err as Error).message}`,
        reason: 'UNKNOWN',
        status: answer.status,
      };
    }
    const name = (json as { name?: unknown } | null)?.name;
    return typeof name === 'string'
      ? { kind: 'final', outcome: 'OK', status: answer.status, providerId: name }
      : { kind: 'final', outcome: 'OK', status: answer.status };
  }
  return { ...classifyFcmAnswer(answer), status: answer.status };
}

/**
 * docs/protocol.md, Outcome mapping: UNREGISTERED / SENDER_ID_MISMATCH → REMOVE (reason always UNREGISTERED); INTERNAL,
 * QUOTA_EXCEEDED and any 503 (unless its Retry-After asks for more than a minute) → retried; anything else FAILs with
 * Google's message and the errorCode as reason.
 * Only the FcmError detail counts: a bare 403 PERMISSION_DENIED (wrong project or credentials) or
 * 404 NOT_FOUND must not make the chat server forget its devices.
 */
export function classifyFcmAnswer(answer: FcmHttpAnswer): AttemptResult {
  const google = parseGoogleError(answer.body);
  const error = google?.message || `unexpected http response with status: ${answer.status}\n${answer.body}`;
  const errorCode = google?.errorCode;
  if (errorCode === 'UNREGISTERED') return { kind: 'final', outcome: 'REMOVE', error, reason: 'UNREGISTERED' };
  // The metrics label stays UNREGISTERED, as it always was; the provider's code travels beside it.
  if (errorCode === 'SENDER_ID_MISMATCH')
    return { kind: 'final', outcome: 'REMOVE', error, reason: 'UNREGISTERED', providerReason: errorCode, evidence: SUSPECT_EVIDENCE };
  if (errorCode === 'INTERNAL' || errorCode === 'QUOTA_EXCEEDED') return { kind: 'retryable', error, reason: errorCode };
  const reason = errorCode ?? google?.status ?? `HTTP ${answer.status}`;
  // FCM is overloaded or restarting: another attempt, a second or two later, usually gets through.
  if (answer.status === 503 && !(retryAfterSec(answer.retryAfter) > MAX_RETRY_AFTER_SEC)) return { kind: 'retryable', error, reason };
  const refused = refusedCredentialsAdvice(answer.status, errorCode, google?.status);
  if (refused !== undefined)
    return {
      kind: 'final',
      outcome: 'FAIL',
      error,
      reason,
      providerReason: errorCode ?? google?.status,
      evidence: { kind: 'credentials-refused', advice: refused },
    };
  // FCM checks the message only once it has accepted the access token.
  if (errorCode === 'INVALID_ARGUMENT') return { kind: 'final', outcome: 'FAIL', error, reason, evidence: CREDENTIALS_ACCEPTED };
  return { kind: 'final', outcome: 'FAIL', error, reason };
}

/** What to check when FCM's answer refuses our credentials rather than the message; undefined for any other answer. */
function refusedCredentialsAdvice(httpStatus: number, errorCode: string | undefined, status: string | undefined): string | undefined {
  if (errorCode === 'THIRD_PARTY_AUTH_ERROR') {
    return 'FCM reports that Apple or Web Push refused the credentials of this Firebase project (THIRD_PARTY_AUTH_ERROR): check the APNs key or certificate uploaded in the Firebase console > Project settings > Cloud Messaging';
  }
  if (errorCode !== undefined) return undefined;
  if (httpStatus === 401 || status === 'UNAUTHENTICATED') {
    return 'FCM refused the access token of the service account in ServiceFileLocation (UNAUTHENTICATED): check that the service account and its key are not disabled or deleted in the Google Cloud console > IAM & Admin > Service accounts';
  }
  if (httpStatus === 403 && status === 'PERMISSION_DENIED') {
    return "FCM refused the service account in ServiceFileLocation for this project (PERMISSION_DENIED): use a service account of the app's Firebase project, allowed to send messages (Firebase Cloud Messaging API Admin), and check that project_id is right";
  }
  return undefined;
}

/** A 401 about our access token itself; THIRD_PARTY_AUTH_ERROR, also a 401, is about Apple's or Web Push's credentials. */
function refusesAccessToken(body: string): boolean {
  return parseGoogleError(body)?.errorCode === undefined;
}

/** Seconds a `Retry-After` (seconds or an HTTP date) asks to wait; 0 without one or when unreadable. */
export function retryAfterSec(value: string | undefined, now = Date.now()): number {
  if (value === undefined) return 0;
  const seconds = Number(value);
  if (value.trim() !== '' && Number.isFinite(seconds)) return Math.max(0, seconds);
  const date = Date.parse(value);
  return Number.isNaN(date) ? 0 : Math.max(0, (date - now) / 1000);
}

/** A request that got no usable answer, in the wording firebase-admin used: the connection broke, or could not be had. */
function connectionFailure(err: NodeJS.ErrnoException): AttemptResult {
  const error = `Error while making request: ${err.message}. Error code: ${err.code}`;
  return err.code !== undefined && RETRYABLE_CONNECTION_ERRORS.has(err.code)
    ? { kind: 'retryable', error, reason: 'UNAVAILABLE' }
    : { kind: 'final', outcome: 'FAIL', error, reason: 'UNAVAILABLE' };
}

/**
 * No access token could be had (firebase-admin's `app/invalid-credential`): a FAIL, which names the token
 * endpoint's refusal of the service account when its latest answer was one.
 */
export function classifyFcmFailure(err: unknown, refusal?: OAuthRefusal): AttemptResult {
  const message = err instanceof Error ? err.message : String(err);
  const code = (err as { code?: unknown } | null)?.code;
  const credential = code === 'app/invalid-credential';
  const verdict: AttemptResult = { kind: 'final', outcome: 'FAIL', error: message, reason: credential ? 'UNAUTHENTICATED' : 'UNKNOWN' };
  if (!credential || refusal === undefined) return verdict;
  return {
    ...verdict,
    providerReason: refusal.error,
    evidence: {
      kind: 'credentials-refused',
      advice: `Google refused the service account's key (${refusal.error}: ${refusal.description}): check that the key in ServiceFileLocation is not deleted or disabled in the Google Cloud console > IAM & Admin > Service accounts, and the machine's clock`,
    },
  };
}

/** The token endpoint's refusal of the service account: its OAuth `error` and `error_description`. */
export interface OAuthRefusal {
  error: string;
  description: string;
}

function parseGoogleError(body: string): { message?: string; status?: string; errorCode?: string } | undefined {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return undefined;
  }
  const error = (json as { error?: unknown } | null)?.error;
  if (typeof error !== 'object' || error === null) return undefined;
  const { message, status, details } = error as { message?: unknown; status?: unknown; details?: unknown };
  const fcmError = Array.isArray(details)
    ? (details as Array<{ '@type'?: unknown; errorCode?: unknown }>).find((d) => d?.['@type'] === FCM_ERROR_TYPE)
    : undefined;
  return {
    message: typeof message === 'string' ? message : undefined,
    status: typeof status === 'string' ? status : undefined,
    errorCode: typeof fcmError?.errorCode === 'string' ? fcmError.errorCode : undefined,
  };
}

/**
 * OAuth2 for a service account (RFC 7523 JWT bearer grant), against the account's own `token_uri`.
 * firebase-admin caches the token and asks again when less than 5 minutes of it are left.
 */
export class ServiceAccountCredential implements Credential {
  private refused: OAuthRefusal | undefined;

  constructor(
    private readonly account: FcmServiceAccount,
    private readonly tokenUrl: URL,
    private readonly agent?: https.Agent,
    private readonly logger?: Logger,
    private readonly metrics?: Pick<EntryMetrics, 'credentialRefreshFailed'>,
  ) {}

  /** Set while the token endpoint's latest answer refused the service account; cleared by a token issued. */
  get refusal(): OAuthRefusal | undefined {
    return this.refused;
  }

  async getAccessToken(): Promise<GoogleOAuthAccessToken> {
    try {
      return await this.requestToken();
    } catch (err) {
      this.metrics?.credentialRefreshFailed('oauth');
      this.logger?.warn(
        { token_url: this.tokenUrl.href, client_email: this.account.clientEmail, err: (err as Error).message },
        'FCM access token request failed',
      );
      throw err;
    }
  }

  /** The signed assertion; `aud` is the account's `token_uri` even when the request goes elsewhere. */
  signAssertion(nowSec: number): string {
    const header = { alg: 'RS256', typ: 'JWT', ...(this.account.privateKeyId ? { kid: this.account.privateKeyId } : {}) };
    const claims = {
      iss: this.account.clientEmail,
      scope: FCM_SCOPE,
      aud: this.account.tokenUri,
      iat: nowSec,
      exp: nowSec + ASSERTION_LIFETIME_SEC,
    };
    const unsigned = `${base64url(header)}.${base64url(claims)}`;
    return `${unsigned}.${sign('sha256', Buffer.from(unsigned), this.account.privateKey).toString('base64url')}`;
  }

  private async requestToken(): Promise<GoogleOAuthAccessToken> {
    const assertion = this.signAssertion(Math.floor(Date.now() / 1000));
    const answer = await postForm(this.tokenUrl, new URLSearchParams({ grant_type: JWT_BEARER_GRANT, assertion }).toString(), this.agent);
    let json: { access_token?: unknown; expires_in?: unknown; error?: unknown; error_description?: unknown } | undefined;
    try {
      json = JSON.parse(answer.body) as typeof json;
    } catch {
      json = undefined;
    }
    if (answer.status === 200 && typeof json?.access_token === 'string' && typeof json.expires_in === 'number') {
      this.refused = undefined;
      return { access_token: json.access_token, expires_in: json.expires_in };
    }
    if (typeof json?.error === 'string' && REFUSING_GRANT_ERRORS.has(json.error)) {
      this.refused = { error: json.error, description: String(json.error_description ?? '').slice(0, 200) };
    }
    // The Go client's wording: `oauth2: "invalid_grant" "Invalid JWT Signature."`.
    if (typeof json?.error === 'string') throw new Error(`oauth2: "${json.error}" "${String(json.error_description ?? '')}"`);
    throw new Error(`oauth2: cannot fetch token: ${answer.status}\nResponse: ${answer.body.slice(0, 512)}`);
  }
}

function postForm(url: URL, body: string, agent: https.Agent | undefined): Promise<FcmHttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, {
      method: 'POST',
      ...(agent ? { agent } : {}),
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) },
    });
    req.setTimeout(TOKEN_REQUEST_TIMEOUT_MS, () =>
      req.destroy(new Error(`token request to ${url.origin} timed out after ${TOKEN_REQUEST_TIMEOUT_MS} ms`)),
    );
    req.once('error', reject);
    req.once('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.once('error', reject);
      res.once('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.end(body);
  });
}

/**
 * Where token requests go. With `FcmEndpoint` set, all of FCM's traffic goes there: a Google token URL keeps
 * its path on the endpoint's origin; a token URL that is not Google's was chosen on purpose and is kept.
 */
export function tokenRequestUrl(tokenUri: string, endpoint: URL | undefined): URL {
  const url = new URL(tokenUri);
  if (!endpoint || !isGoogleHost(url.hostname)) return url;
  return new URL(`${url.pathname}${url.search}`, endpoint.origin);
}

/** Where the TCP connection of a send or a token request to `url` goes (with `FcmEndpoint`, sends go there). */
export function fcmDialTarget(url: URL): ProxyTarget {
  return { host: hostnameOf(url), port: Number(url.port || 443) };
}

function isGoogleHost(hostname: string): boolean {
  return ['googleapis.com', 'google.com'].some((domain) => hostname === domain || hostname.endsWith(`.${domain}`));
}

function base64url(json: unknown): string {
  return Buffer.from(JSON.stringify(json)).toString('base64url');
}
