/**
 * APNs I/O: one HTTP/2 session per configured entry, one attempt per call, and the answer classified as
 * docs/protocol.md, Outcome mapping, says. Payloads arrive already built (src/platforms/apns/payload.ts).
 *
 * @parse/node-apn keeps what it does well: connecting (`Client.connect`, through our own `createConnection`),
 * the provider token's signing and renewal, the session's ping, and shutdown. The request itself is ours, on
 * the library's live session: `session.request(headers)`, `stream.end(body)`, listeners for the answer's
 * headers, body chunks (a delivery has none), end, error and close, and one timer per attempt, which cancels
 * the stream and gives the slot back at once. The library's `Client.request` added per notification an async
 * function and a second promise, a header copy, a StringDecoder, six listeners and a second timer that Node
 * refreshes on every frame, and on an answer it could not parse it dropped the status and the `apns-id`.
 * Measured (docs/performance.md, "APNs: our own HTTP/2 request on node-apn's session"): the APNs send's share
 * of the proxy's profile went from 57.5 to 53.7 ms per 1,000 notifications (APNs, c=256, peer 0 ms), the whole
 * proxy to 0.93-0.95x main's CPU per notification at c=256 (c=64 measured 1.10-1.16x, not explained yet);
 * on its own the transport now costs what a bare `node:http2` sender does, so what is left is Node's HTTP/2
 * client and TLS, not the library.
 */
import {
  constants as http2Constants,
  type ClientHttp2Session,
  type ClientHttp2Stream,
  type IncomingHttpHeaders,
  type IncomingHttpStatusHeader,
  type OutgoingHttpHeaders,
} from 'node:http2';
import { isIP } from 'node:net';
import tls from 'node:tls';
import apn from '@parse/node-apn';
import type { Logger } from 'pino';
import type { ApnsRequest } from './payload';
import type { EntryMetrics } from '../../delivery/service';
import type { AttemptResult, EntryEvidence, Transport } from '../../delivery/types';
import { trustedCaList } from '../../tls/trust';
import { describeOutboundProxy, openTunnel, TunnelStream, type ProxyTarget } from '../../transport/outbound-proxy';
import { Semaphore } from '../../transport/semaphore';
import { hostnameOf } from '../../net/addresses';

export type AppleCredentials =
  { kind: 'token'; keyPem: string; keyId: string; teamId: string } | { kind: 'certificate'; certPem: string; keyPem: string };

export interface ApnsTransportOptions {
  credentials: AppleCredentials;
  /** Apple's production host, else the sandbox host. */
  production: boolean;
  /** Where to connect instead of Apple (`AppleEndpoint`). */
  endpoint?: URL;
  /** Extra CAs on top of Node's own, for a peer this process started itself. */
  trustedCa?: string[];
  /** Bounds the tunnel through `outboundProxy` (each attempt has its own bound, the `timeoutMs` it is given). */
  requestTimeoutMs: number;
  /** Sends in flight on the session; kept below the peer's stream limit so none queue inside Node. */
  maxInFlight?: number;
  /** An HTTP CONNECT proxy to reach the host through (src/transport/outbound-proxy.ts decides which). */
  outboundProxy?: URL;
  /** Hears why a connection through the proxy failed: the answer to the chat server cannot say. */
  logger?: Logger;
  /** Counts sends that waited for a slot, and provider tokens that could not be signed anew. */
  metrics?: Pick<EntryMetrics, 'slotWaited' | 'credentialRefreshFailed'>;
}

export const APPLE_PRODUCTION_HOST = 'api.push.apple.com';
export const APPLE_SANDBOX_HOST = 'api.sandbox.push.apple.com';

/** Reasons after which the device token is useless: the chat server should forget it. */
const REMOVE_REASONS = new Set(['BadDeviceToken', 'Unregistered', 'MissingDeviceToken', 'DeviceTokenNotForTopic']);
/**
 * Device refusals that a wrong `ApplePushUseDevelopment` (a .p8 key works in both environments, and each
 * environment knows only its own device tokens) or `ApplePushTopic` also causes, for every token.
 */
const SUSPECT_EVIDENCE: EntryEvidence = Object.freeze({
  kind: 'suspect',
  advice:
    "APNs refuses most device tokens of this entry, which its own configuration causes more likely than the devices: check ApplePushUseDevelopment (true for development builds, false for TestFlight and App Store builds) and ApplePushTopic (the app's bundle id)",
});
const SUSPECT_REASONS = new Set(['BadDeviceToken', 'DeviceTokenNotForTopic', 'TopicDisallowed']);
/** 403 answers by which APNs refuses our credentials, with what the operator should check. */
const REFUSED_CREDENTIALS: ReadonlyMap<string, string> = new Map([
  [
    'InvalidProviderToken',
    'APNs refused the token key (InvalidProviderToken): check AppleAuthKeyID and AppleTeamID, and that the key is not revoked in Apple Developer > Keys',
  ],
  ['ExpiredProviderToken', "APNs finds the provider token expired (ExpiredProviderToken): check the machine's clock"],
  [
    'MissingProviderToken',
    'APNs received no provider token (MissingProviderToken): check AppleAuthKeyFile, AppleAuthKeyID and AppleTeamID',
  ],
  [
    'BadCertificate',
    'APNs refused the certificate (BadCertificate): check ApplePushCertPrivate, and that the certificate is not revoked in Apple Developer > Certificates',
  ],
  [
    'BadCertificateEnvironment',
    "APNs refused the certificate in this environment (BadCertificateEnvironment): set ApplePushUseDevelopment to the certificate's environment",
  ],
]);
/** 4xx statuses APNs answers only after accepting the provider token or certificate (403 is its credential check). */
const CREDENTIALS_ACCEPTED_STATUSES = new Set([400, 413]);
const CREDENTIALS_ACCEPTED: EntryEvidence = Object.freeze({ kind: 'credentials-accepted' });
const { NGHTTP2_CANCEL } = http2Constants;
const TRANSPORT_ERROR = 'unknown transport error';
const TIMED_OUT: AttemptResult = Object.freeze({ kind: 'retryable', error: TRANSPORT_ERROR, reason: TRANSPORT_ERROR });
const DELIVERED: AttemptResult = Object.freeze({ kind: 'final', outcome: 'OK', status: 200 });
/** The library signs a new provider token once the current one is this old (Apple refuses them after an hour). */
const TOKEN_RENEW_AFTER_S = 3300;
/** Statuses after which the library would re-send on the same session: on a session closed meanwhile they read as no answer. */
const RESENDABLE_STATUSES = new Set([408, 429, 500, 502, 503, 504]);
const EXPIRED_PROVIDER_TOKEN = 'ExpiredProviderToken';

/**
 * The library's per-connection client, as far as this transport uses it: its live session, its address
 * (Apple's host, the `:authority`), its provider token, and `connect`, which opens a session through our
 * `createConnection` and sets `session`.
 */
interface ApnsClient {
  session?: ClientHttp2Session;
  isDestroyed?: boolean;
  config: { address: string; token?: ProviderToken | null };
  connect(): Promise<void>;
}
/** The library's provider token (token auth): signed at start-up, signed anew by `regenerate` before it expires. */
export interface ProviderToken {
  generation: number;
  current: string;
  isExpired(validSeconds: number): boolean;
  regenerate(generation: number): void;
}

/** The installed @parse/node-apn is not the release this transport was written against. */
export class UnsupportedApnsLibraryError extends Error {}

/** The client inside a Provider, checked once: a release of the library that changed it fails at start-up. */
export function clientOf(provider: apn.Provider): ApnsClient {
  const client = (provider as unknown as { client?: Partial<ApnsClient> }).client;
  const token = client?.config?.token;
  if (
    typeof client?.connect !== 'function' ||
    typeof client.config?.address !== 'string' ||
    (token && (typeof token.isExpired !== 'function' || typeof token.regenerate !== 'function' || typeof token.current !== 'string'))
  ) {
    throw new UnsupportedApnsLibraryError(
      'the installed @parse/node-apn has no Provider.client with connect, config.address and a provider token it signs. Install the version package-lock.json names (npm ci)',
    );
  }
  return client as ApnsClient;
}

/** The client's session when it can take a send now; otherwise `connect` opens one first. */
function liveSession(client: ApnsClient): ClientHttp2Session | undefined {
  const session = client.session;
  return session && !session.closed && !session.destroyed ? session : undefined;
}

/**
 * The library destroys a session on any GOAWAY it receives, and a server sends one when it closes the
 * connection, also in answer to ours after a 500: that cut off every answer still in flight on it, delivered
 * ones included, which then read as transport errors and were sent again. Without the library's listener,
 * Node's own handling applies: a graceful GOAWAY closes the session once its streams are done (the next send
 * connects anew), an error GOAWAY destroys it.
 */
function keepAnswersOnGoaway(session: ClientHttp2Session): void {
  session.removeAllListeners('goaway');
}

/** Where the TCP connection goes: `AppleEndpoint` when set, else Apple's host for the environment. */
export function apnsDialTarget(production: boolean, endpoint: URL | undefined): ProxyTarget {
  if (endpoint) return { host: hostnameOf(endpoint), port: Number(endpoint.port || 443) };
  return { host: production ? APPLE_PRODUCTION_HOST : APPLE_SANDBOX_HOST, port: 443 };
}

export class ApnsTransport implements Transport<ApnsRequest> {
  private readonly provider: apn.Provider;
  private readonly client: ApnsClient;
  private readonly inFlight: Semaphore;
  private readonly logger?: Logger;
  private readonly metrics?: ApnsTransportOptions['metrics'];
  /** Apple's host: the `:authority` of every request, wherever the connection goes. */
  private readonly authority: string;
  /** The `authorization` header of the provider token in use (token auth). */
  private bearer: { token: string; header: string } | undefined;
  /** The session last left to Node's GOAWAY handling (sessions are replaced, never reused). */
  private gracefulSession?: ClientHttp2Session;

  constructor(options: ApnsTransportOptions) {
    const { host: dialHost, port: dialPort } = apnsDialTarget(options.production, options.endpoint);
    const credentials = options.credentials;
    // Built once: a CA list passed per connection is parsed again at every reconnect.
    const ca = trustedCaList(options.trustedCa);
    const secureContext = tls.createSecureContext({
      ...(ca ? { ca } : {}),
      ...(credentials.kind === 'certificate' ? { cert: credentials.certPem, key: credentials.keyPem } : {}),
    });
    const tlsOptions: tls.ConnectionOptions = {
      host: dialHost,
      port: dialPort,
      ALPNProtocols: ['h2'],
      secureContext,
      ...(isIP(dialHost) ? {} : { servername: dialHost }),
    };

    const { outboundProxy, logger } = options;
    // http2 wants the socket back synchronously: TLS starts on a stream that waits for the tunnel. The
    // library's own `proxy` option is not used: it drops every TLS option (client certificate, CAs).
    const connect = outboundProxy
      ? () => {
          const tunnel = new TunnelStream((signal) =>
            openTunnel(outboundProxy, { host: dialHost, port: dialPort }, options.requestTimeoutMs, signal).catch(
              (err: NodeJS.ErrnoException) => {
                if (err.code !== 'ABORT_ERR')
                  logger?.warn(
                    { proxy: describeOutboundProxy(outboundProxy), target: `${dialHost}:${dialPort}`, err: err.message },
                    'APNs connection through the outbound proxy failed',
                  );
                throw err;
              },
            ),
          );
          return tls.connect({ ...tlsOptions, socket: tunnel });
        }
      : () => tls.connect(tlsOptions);

    this.provider = new apn.Provider({
      ...(credentials.kind === 'token'
        ? { token: { key: credentials.keyPem, keyId: credentials.keyId, teamId: credentials.teamId } }
        : { cert: credentials.certPem, key: credentials.keyPem }),
      production: options.production,
      // The library re-sends 408/429/5xx at once; any HTTP answer is final here, and backoff is ours.
      connectionRetryLimit: 0,
      requestTimeout: options.requestTimeoutMs,
      // We dial ourselves: the :authority stays Apple's host (what a relay in between expects), the socket
      // goes to AppleEndpoint when set (through the proxy when one applies), and every TLS option survives.
      createConnection: connect,
    } as unknown as apn.ProviderOptions);
    this.client = clientOf(this.provider);
    this.authority = this.client.config.address;
    this.inFlight = new Semaphore(options.maxInFlight ?? 500);
    this.logger = logger;
    this.metrics = options.metrics;
    const token = this.client.config.token;
    if (token && this.metrics) countSigningFailures(token, this.metrics);
  }

  attempt(request: ApnsRequest, timeoutMs: number): Promise<AttemptResult> {
    if (this.inFlight.tryAcquire()) return this.sendHolding(request, timeoutMs);
    this.metrics?.slotWaited();
    // A send still waiting for a slot when time is up never starts.
    const deadline = performance.now() + timeoutMs;
    return this.inFlight
      .acquire(deadline)
      .then((started) => (started ? this.sendHolding(request, deadline - performance.now()) : TIMED_OUT));
  }

  /** One send in a slot already taken: on the live session, else on one the library opens first. */
  private sendHolding(request: ApnsRequest, timeoutMs: number): Promise<AttemptResult> {
    let body: string;
    try {
      body = JSON.stringify(request.payload);
    } catch (err) {
      this.inFlight.release();
      return Promise.reject(err as Error);
    }
    const session = liveSession(this.client);
    if (session) return this.exchange(session, request, body, timeoutMs);
    // After close() nothing connects again: the session would outlive the transport.
    if (this.client.isDestroyed) return Promise.resolve(this.unanswered('client is destroyed'));
    const connecting = performance.now();
    return this.client.connect().then(
      () => {
        const opened = liveSession(this.client);
        return opened
          ? this.exchange(opened, request, body, timeoutMs - (performance.now() - connecting))
          : this.unanswered('no session after connecting');
      },
      (err: Error) => this.unanswered(`connecting failed: ${err.message}`),
    );
  }

  /**
   * One request on `session`, the slot held until its answer, its failure or its time-out, whichever comes
   * first: then the slot is given back once, and a stream still open is cancelled. The hot path: one promise,
   * one timer and one `ApnsExchange` per attempt, whose listeners are shared by every attempt; a delivery (200,
   * no body) keeps nothing but its `apns-id`.
   */
  private exchange(session: ClientHttp2Session, request: ApnsRequest, body: string, timeoutMs: number): Promise<AttemptResult> {
    if (session !== this.gracefulSession) {
      keepAnswersOnGoaway(session);
      this.gracefulSession = session;
    }
    // One object literal of one shape for every request (no spread of the built headers into it).
    const built = request.headers;
    const headers: OutgoingHttpHeaders = {
      ':method': 'POST',
      ':scheme': 'https',
      ':authority': this.authority,
      ':path': `/3/device/${request.token}`,
      'apns-topic': built['apns-topic'],
      'apns-priority': built['apns-priority'],
      'apns-push-type': built['apns-push-type'],
      'content-type': built['content-type'],
      authorization: undefined,
    };
    let stream: ClientHttp2Stream;
    let generation = -1;
    try {
      generation = this.signInto(headers);
      stream = session.request(headers);
    } catch (err) {
      // A token that cannot be signed, or a session that went away since it was checked: no request left.
      return Promise.resolve(this.unanswered((err as Error).message));
    }
    return new Promise<AttemptResult>((resolve) => {
      const exchange = new ApnsExchange(this, session, stream, generation, timeoutMs, resolve);
      (stream as ExchangeStream)[EXCHANGE] = exchange;
      stream.on('response', onExchangeResponse);
      stream.on('data', onExchangeData);
      stream.on('end', onExchangeEnd);
      stream.on('error', onExchangeError);
      stream.on('close', onExchangeClose);
      stream.end(body);
    });
  }

  /** An exchange is over: its slot goes back (each exchange settles once). */
  releaseSlot(): void {
    this.inFlight.release();
  }

  /** Puts the provider token on a request as the library does; the generation it signed, -1 for certificate auth. */
  private signInto(headers: OutgoingHttpHeaders): number {
    const token = this.client.config.token;
    // Certificate auth: the header stays undefined, which Node leaves out of the request.
    if (!token) return -1;
    if (token.isExpired(TOKEN_RENEW_AFTER_S)) token.regenerate(token.generation);
    // The header string is made once per signed token, not per request (a JWT is some 200 characters).
    const current = token.current;
    if (this.bearer?.token !== current) this.bearer = { token: current, header: `bearer ${current}` };
    headers.authorization = this.bearer.header;
    return token.generation;
  }

  /** An answer read to its end (the caller gives the slot back): a delivery, a refusal, or (a body that is not JSON) no usable answer. */
  answered(
    session: ClientHttp2Session,
    status: number,
    apnsId: string | undefined,
    chunks: Buffer[] | undefined,
    generation: number,
  ): AttemptResult {
    if (status === 0) return this.noAnswer('the stream ended without an answer', undefined, apnsId);
    let reason: string | undefined = '';
    if (chunks !== undefined) {
      try {
        reason = reasonOf(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch {
        return this.noAnswer(`APNs answered ${status} with a body that is not JSON`, status, apnsId);
      }
    }
    if (status === 200) return apnsId === undefined ? DELIVERED : { kind: 'final', outcome: 'OK', status: 200, providerId: apnsId };
    if (status === 403 && reason === EXPIRED_PROVIDER_TOKEN && generation >= 0) {
      // The next attempt signs anew; a token signed since by another send is kept.
      try {
        this.client.config.token?.regenerate(generation);
      } catch (err) {
        return this.noAnswer((err as Error).message, status, apnsId);
      }
    }
    // A refusal the library would have sent again on this session, which has closed meanwhile: the next
    // attempt goes on a new one.
    if (session.closed && (RESENDABLE_STATUSES.has(status) || (status === 403 && reason === EXPIRED_PROVIDER_TOKEN)))
      return this.noAnswer('client session is either closed or destroyed', status, apnsId);
    // Graceful: no new sends on it, those in flight finish (see `keepAnswersOnGoaway`).
    if (status === 500) session.close();
    const verdict = classifyAnswer(status, reason);
    return apnsId === undefined ? { ...verdict, status } : { ...verdict, status, providerId: apnsId };
  }

  /** No request made (the slot still held): the slot given back, and a retryable transport error. */
  private unanswered(cause: string): AttemptResult {
    this.inFlight.release();
    return this.noAnswer(cause, undefined, undefined);
  }

  noAnswer(cause: string, status: number | undefined, apnsId: string | undefined): AttemptResult {
    // The chat server only hears "unknown transport error": the operator needs the cause.
    this.logger?.warn({ err: cause }, 'APNs attempt got no answer');
    // The status and the apns-id are for the trace: Apple's support asks for the id.
    if (status === undefined && apnsId === undefined) return TIMED_OUT;
    const result: AttemptResult = { ...TIMED_OUT };
    if (status !== undefined) result.status = status;
    if (apnsId !== undefined) result.providerId = apnsId;
    return result;
  }

  close(): Promise<void> {
    // shutdown() never calls back when the session died on a refused connection: do not wait for ever.
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, 2_000);
      this.provider.shutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

const EXCHANGE = Symbol('apns exchange');
type ExchangeStream = ClientHttp2Stream & { [EXCHANGE]: ApnsExchange };

/**
 * One attempt's state on its stream. The stream's listeners below are module functions shared by every attempt
 * (`this` is the stream, which carries its exchange): five closures and their context per attempt cost more
 * than the bare `node:http2` sender spends on the whole request (docs/performance.md, APNs).
 */
class ApnsExchange {
  status = 0;
  apnsId: string | undefined = undefined;
  /** A delivery has no body: chunks are kept only for the rare answer that has one. */
  chunks: Buffer[] | undefined = undefined;
  failure: string | undefined = undefined;
  settled = false;
  private readonly timer: NodeJS.Timeout;

  constructor(
    readonly transport: ApnsTransport,
    readonly session: ClientHttp2Session,
    readonly stream: ClientHttp2Stream,
    readonly generation: number,
    readonly timeoutMs: number,
    private readonly resolve: (result: AttemptResult) => void,
  ) {
    this.timer = setTimeout(onExchangeTimeout, timeoutMs, this);
  }

  /** The attempt's verdict, once: the timer stops and the slot goes back. */
  settle(result: AttemptResult): void {
    this.settled = true;
    clearTimeout(this.timer);
    this.transport.releaseSlot();
    this.resolve(result);
  }
}

function onExchangeTimeout(exchange: ApnsExchange): void {
  if (exchange.settled) return;
  exchange.stream.close(NGHTTP2_CANCEL);
  exchange.settle(
    exchange.transport.noAnswer(`no answer within ${Math.round(exchange.timeoutMs)} ms`, exchange.status || undefined, exchange.apnsId),
  );
}

function onExchangeResponse(this: ExchangeStream, answer: IncomingHttpHeaders & IncomingHttpStatusHeader): void {
  const exchange = this[EXCHANGE];
  exchange.status = answer[':status'] ?? 0;
  const id = answer['apns-id'];
  if (typeof id === 'string') exchange.apnsId = id;
}

function onExchangeData(this: ExchangeStream, chunk: Buffer): void {
  const exchange = this[EXCHANGE];
  (exchange.chunks ??= []).push(chunk);
}

function onExchangeEnd(this: ExchangeStream): void {
  const exchange = this[EXCHANGE];
  if (exchange.settled) return;
  const { transport, session, status, apnsId, chunks, generation } = exchange;
  exchange.settle(transport.answered(session, status, apnsId, chunks, generation));
}

function onExchangeError(this: ExchangeStream, err: Error): void {
  this[EXCHANGE].failure = err.message;
}

/** Closed without its answer read to the end: reset, cut off with its connection, or cancelled. */
function onExchangeClose(this: ExchangeStream): void {
  const exchange = this[EXCHANGE];
  if (exchange.settled) return;
  exchange.settle(
    exchange.transport.noAnswer(
      exchange.failure ?? `stream closed with code ${this.rstCode}`,
      exchange.status || undefined,
      exchange.apnsId,
    ),
  );
}

/**
 * The library signs a new provider token inside a send, every 55 minutes and after ExpiredProviderToken; a
 * signing failure rejects that send as a transport error and shows nowhere else. The key signed once at
 * start-up, so this is rare: counted once per failed signing, then thrown on as before.
 */
export function countSigningFailures(
  token: Pick<ProviderToken, 'regenerate'>,
  metrics: Pick<EntryMetrics, 'credentialRefreshFailed'>,
): void {
  const regenerate = token.regenerate.bind(token);
  token.regenerate = (generation: number): void => {
    try {
      regenerate(generation);
    } catch (err) {
      metrics.credentialRefreshFailed('apns_token');
      throw err;
    }
  };
}

/** The `reason` of an APNs answer body; undefined when it names none. */
function reasonOf(body: unknown): string | undefined {
  const reason = body !== null && typeof body === 'object' ? (body as { reason?: unknown }).reason : undefined;
  return typeof reason === 'string' ? reason : undefined;
}

/**
 * What an APNs answer other than 200 means: its status and the body's `reason` ('' for an empty body,
 * undefined for a JSON body that names none).
 */
export function classifyAnswer(status: number, reason: string | undefined): AttemptResult {
  if (status === 500 && reason === undefined) reason = 'InternalServerError';
  reason ??= '';
  const verdict: AttemptResult = REMOVE_REASONS.has(reason)
    ? { kind: 'final', outcome: 'REMOVE', reason }
    : { kind: 'final', outcome: 'FAIL', error: 'unknown send response error', reason };
  const refused = status === 403 ? REFUSED_CREDENTIALS.get(reason) : undefined;
  if (refused !== undefined) return { ...verdict, providerReason: reason, evidence: { kind: 'credentials-refused', advice: refused } };
  if (SUSPECT_REASONS.has(reason)) return { ...verdict, providerReason: reason, evidence: SUSPECT_EVIDENCE };
  if (CREDENTIALS_ACCEPTED_STATUSES.has(status)) return { ...verdict, evidence: CREDENTIALS_ACCEPTED };
  return verdict;
}
