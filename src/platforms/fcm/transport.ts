/**
 * FCM I/O through firebase-admin's `send()` (HTTP v1 over HTTP/1.1): one firebase-admin App per configured
 * entry, one attempt per call, the answer classified as docs/protocol.md, Outcome mapping, says.
 *
 * What the library does not offer is wired in through its supported options only:
 * - credentials: our own `Credential` that signs the service-account JWT and posts it to the account's
 *   `token_uri` (the library's `cert()` always uses Google's fixed URL);
 * - `FcmEndpoint`: `httpAgent` is an Agent whose connections go to the endpoint (the library fixes the
 *   host to fcm.googleapis.com);
 * - an outbound proxy: that Agent and the token requests' own open their connections through an HTTP
 *   CONNECT tunnel (src/transport/outbound-proxy.ts), TLS on top as without one;
 * - bounded attempts: the library re-sends 503s and connection errors for up to ~80 s on its own. Every
 *   send runs in an AsyncLocalStorage scope, and the Agent (which sees every HTTP request the library
 *   makes, its retries included) refuses requests of a finished attempt, or of none, and destroys those
 *   under way when the attempt ends. The same hook keeps the last HTTP answer, because the library's
 *   errors carry neither status nor body and the verdict depends on the FcmError `errorCode` of the body.
 *   On Node 20 and 22 an enabled AsyncLocalStorage hooks every promise of the process (APNs sends too,
 *   10–20 % more CPU per notification, docs/performance.md): the scope is enabled only while an attempt
 *   is under way.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { sign, type KeyObject } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { deleteApp, initializeApp, type App, type Credential, type GoogleOAuthAccessToken } from 'firebase-admin/app';
import { getMessaging, type Messaging } from 'firebase-admin/messaging';
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
const MAX_CAPTURED_BODY_BYTES = 64 * 1024;
const ATTEMPT_OVER_CODE = 'ERR_FCM_ATTEMPT_OVER';
/** Bound on the proxy's answer to CONNECT; an attempt that ends sooner destroys its request anyway. */
const PROXY_CONNECT_TIMEOUT_MS = 10_000;

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
  /** Ask FCM only to check each message, not to deliver it (`validate_only`, firebase-admin's dry run). */
  validateOnly?: boolean;
}

/** An HTTP answer as it came over the wire. */
export interface FcmHttpAnswer {
  status: number;
  body: string;
}

interface AttemptScope {
  over: boolean;
  /** Requests of this attempt that may still reach FCM. */
  live: Set<http.ClientRequest>;
  /** The answer to this attempt's latest request. */
  answer?: FcmHttpAnswer;
}

export class FcmTransport implements Transport<FcmMessage> {
  private readonly attempts = new AsyncLocalStorage<AttemptScope>();
  /** Attempts started and not yet ended: the scope is disabled when none is left. */
  private underWay = 0;
  private readonly agent: FcmAgent;
  private readonly tokenAgent: https.Agent;
  private readonly app: App;
  private readonly messaging: Messaging;
  private readonly credential: ServiceAccountCredential;
  private readonly validateOnly: boolean;

  constructor(options: FcmTransportOptions) {
    this.validateOnly = options.validateOnly ?? false;
    // One context for every connection: a `ca` option would parse the whole trust store per handshake.
    const ca = trustedCaList(options.trustedCa);
    const tlsOptions = ca ? { secureContext: tls.createSecureContext({ ca }) } : {};
    this.agent = new FcmAgent(
      { keepAlive: true, maxSockets: options.maxSockets ?? FCM_MAX_SOCKETS, ...tlsOptions },
      options.outboundProxy,
      options.endpoint,
      () => this.attempts.getStore(),
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
    this.app = initializeApp({ credential, projectId: options.account.projectId, httpAgent: this.agent }, options.appName);
    this.messaging = getMessaging(this.app);
  }

  async attempt(message: FcmMessage, timeoutMs: number): Promise<AttemptResult> {
    const scope: AttemptScope = { over: false, live: new Set() };
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<AttemptResult>((resolve) => {
      timer = setTimeout(() => resolve({ kind: 'retryable', error: DEADLINE_EXCEEDED, reason: DEADLINE_EXCEEDED }), Math.max(0, timeoutMs));
    });
    this.underWay++;
    try {
      const sent = this.attempts
        .run(scope, async () => this.messaging.send(message, this.validateOnly))
        .then(
          // firebase-admin resolves with the message's name, FCM's id for it.
          (name): AttemptResult => ({ kind: 'final', outcome: 'OK', status: 200, providerId: name }),
          (err: unknown) => withStatus(classifyFcmFailure(err, scope.answer, this.credential.refusal), scope.answer),
        );
      return await Promise.race([sent, timedOut]);
    } finally {
      clearTimeout(timer);
      scope.over = true;
      for (const req of scope.live) req.destroy(attemptOver());
      // The library's later requests for this attempt find its ended scope or, once the storage is
      // disabled, none: either way the agent refuses them.
      if (--this.underWay === 0) this.attempts.disable();
    }
  }

  async close(): Promise<void> {
    this.agent.closed = true;
    try {
      await deleteApp(this.app);
    } finally {
      this.agent.destroy();
      this.tokenAgent.destroy();
    }
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
 * The HTTP agent firebase-admin sends through: keep-alive connections to FCM (or to `FcmEndpoint`,
 * TLS-verified against the endpoint's own name; the Host header stays FCM's), and the attempt guard.
 */
class FcmAgent extends ProxyAwareAgent {
  closed = false;

  constructor(
    options: https.AgentOptions,
    proxy: URL | undefined,
    private readonly endpoint: URL | undefined,
    private readonly currentAttempt: () => AttemptScope | undefined,
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

  /** Called (in the caller's async context) for every request made through this agent. */
  addRequest(req: http.ClientRequest, options: unknown): void {
    const attempt = this.currentAttempt();
    // firebase-admin sends through this agent only within `send()`: a request outside an attempt's scope
    // is a re-send of one that has ended.
    if (this.closed || !attempt || attempt.over) {
      // What Node's Agent itself does when dialing fails: the request errors and nothing is sent.
      (req as unknown as { onSocket(socket: undefined, err: Error): void }).onSocket(
        undefined,
        attemptOver(this.closed ? 'the FCM transport is closed' : undefined),
      );
      return;
    }
    attempt.answer = undefined;
    attempt.live.add(req);
    req.once('close', () => attempt.live.delete(req));
    req.once('response', (res: http.IncomingMessage) => captureAnswer(res, attempt));
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

function captureAnswer(res: http.IncomingMessage, attempt: AttemptScope): void {
  const chunks: Buffer[] = [];
  let size = 0;
  res.on('data', (chunk: Buffer) => {
    if (size >= MAX_CAPTURED_BODY_BYTES) return;
    chunks.push(chunk);
    size += chunk.length;
  });
  // Runs in the same 'end' emission as the library's own listener, so before its promise settles.
  res.once('end', () => {
    attempt.answer = { status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') };
  });
}

function attemptOver(message = 'the delivery attempt is over'): Error {
  // Not one of the library's retryable codes (ECONNRESET, ETIMEDOUT): it gives up at once.
  return Object.assign(new Error(message), { code: ATTEMPT_OVER_CODE });
}

/**
 * docs/protocol.md, Outcome mapping: UNREGISTERED / SENDER_ID_MISMATCH → REMOVE (reason always UNREGISTERED); INTERNAL and
 * QUOTA_EXCEEDED → retried; anything else FAILs with Google's message and the errorCode as reason.
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

/**
 * A rejected `send()`: by the HTTP answer when there was one, else by the library's error code. `refusal`: the
 * token endpoint's latest refusal of the service account, if its latest answer was one.
 */
export function classifyFcmFailure(err: unknown, answer: FcmHttpAnswer | undefined, refusal?: OAuthRefusal): AttemptResult {
  const message = err instanceof Error ? err.message : String(err);
  if (answer && answer.status >= 200 && answer.status < 300) {
    // The library refuses a success answer whose body is not JSON.
    let detail = message;
    try {
      JSON.parse(answer.body);
    } catch (parseError) {
      detail = (parseError as Error).message;
    }
    return { kind: 'final', outcome: 'FAIL', error: `error while parsing response: ${detail}`, reason: 'UNKNOWN' };
  }
  if (answer) return classifyFcmAnswer(answer);
  const code = (err as { code?: unknown } | null)?.code;
  const verdict: AttemptResult = { kind: 'final', outcome: 'FAIL', error: message, reason: reasonForLibraryCode(code) };
  if (code !== 'app/invalid-credential' || refusal === undefined) return verdict;
  return {
    ...verdict,
    providerReason: refusal.error,
    evidence: {
      kind: 'credentials-refused',
      advice: `Google refused the service account's key (${refusal.error}: ${refusal.description}): check that the key in ServiceFileLocation is not deleted or disabled in the Google Cloud console > IAM & Admin > Service accounts, and the machine's clock`,
    },
  };
}

/** The verdict with FCM's HTTP status, when it answered, for the trace. */
function withStatus(verdict: AttemptResult, answer: FcmHttpAnswer | undefined): AttemptResult {
  return answer === undefined ? verdict : { ...verdict, status: answer.status };
}

/** The token endpoint's refusal of the service account: its OAuth `error` and `error_description`. */
export interface OAuthRefusal {
  error: string;
  description: string;
}

/** Failures without an HTTP answer, named like the Go client's platform error codes. */
function reasonForLibraryCode(code: unknown): string {
  if (code === 'app/network-error') return 'UNAVAILABLE';
  if (code === 'app/network-timeout') return 'DEADLINE_EXCEEDED';
  if (code === 'app/invalid-credential') return 'UNAUTHENTICATED';
  if (typeof code === 'string' && (code.startsWith('messaging/invalid-') || code === 'messaging/payload-size-limit-exceeded'))
    return 'INVALID_ARGUMENT';
  return 'UNKNOWN';
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
