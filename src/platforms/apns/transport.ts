/**
 * APNs I/O through @parse/node-apn: one Provider (one HTTP/2 session) per configured entry, one attempt per
 * call, and the answer classified as docs/protocol.md, Outcome mapping, says. Payloads arrive already built (src/platforms/apns/payload.ts).
 */
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
  /** Per-attempt bound the library enforces itself (it cancels the stream). */
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
const TRANSPORT_ERROR = 'unknown transport error';
const EMPTY_BODY_STATUS = /with status (\d+) and empty body/;
const TIMED_OUT: AttemptResult = Object.freeze({ kind: 'retryable', error: TRANSPORT_ERROR, reason: TRANSPORT_ERROR });
const DELIVERED: AttemptResult = Object.freeze({ kind: 'final', outcome: 'OK', status: 200 });

interface FailedSend {
  status?: number | string;
  response?: { reason?: string };
  error?: { message?: string };
  /** The id APNs gave its answer (the library copies the response header, on success too). */
  'apns-id'?: string;
}

/**
 * The library's per-connection client. `Provider.send` wraps one recipient in an async function,
 * `Promise.allSettled` and an async callback, and `Client.write` wraps `Client.request` in another async
 * function with its copies; without them the proxy spends ~11 % (`send`) and ~3 % (`write`) less CPU per
 * notification at saturation (docs/performance.md). On a live session the transport calls `request` itself
 * and keeps what `write` does after a failure (`afterFailedRequest`); without one (first send, reconnecting,
 * shut down) it goes through `write`, which connects.
 */
interface ApnsClient {
  session?: ApnsSession;
  config: { address: string; token?: ProviderToken | null };
  write(notification: ApnsWire, device: string, type: 'device', method: 'post'): Promise<FailedSend>;
  request(session: ApnsSession, address: string, notification: ApnsWire, path: string, method: 'POST'): Promise<FailedSend>;
  closeAndDestroySession(session: ApnsSession): Promise<void>;
}
interface ApnsSession {
  closed: boolean;
  destroyed: boolean;
  close(): void;
  removeAllListeners(event: 'goaway'): unknown;
}
/** The library's provider token (token auth): signed at start-up, signed anew by `regenerate` before it expires. */
export interface ProviderToken {
  regenerate(generation: number): void;
}
interface ApnsWire {
  headers: object;
  body: string;
}

/** The statuses after which `write` would re-send (we set its retry limit to 0, so it only checks the session). */
const LIBRARY_RETRY_STATUSES = new Set([408, 429, 500, 502, 503, 504]);

/** The installed @parse/node-apn is not the release this transport was written against. */
export class UnsupportedApnsLibraryError extends Error {}

/** The client inside a Provider, checked once: a release of the library that changed it fails at start-up. */
export function clientOf(provider: apn.Provider): ApnsClient {
  const client = (provider as unknown as { client?: Partial<ApnsClient> }).client;
  if (
    typeof client?.write !== 'function' ||
    typeof client.request !== 'function' ||
    typeof client.closeAndDestroySession !== 'function' ||
    typeof client.config?.address !== 'string'
  ) {
    throw new UnsupportedApnsLibraryError(
      'the installed @parse/node-apn has no Provider.client with write, request and closeAndDestroySession. Install the version package-lock.json names (npm ci)',
    );
  }
  return client as ApnsClient;
}

/** The client's session when it can take a send now; otherwise `write` connects first. */
function liveSession(client: ApnsClient): ApnsSession | undefined {
  const session = client.session;
  return session && !session.closed && !session.destroyed ? session : undefined;
}

/**
 * What `write` makes of a failed `request` with its retry limit at 0: a failure it would have re-sent, on a
 * session that closed meanwhile, is a transport error (the next attempt gets a new session); a 500 closes the
 * session (not awaited: `write` would hold the answer until every other send on it has finished).
 */
function afterFailedRequest(client: ApnsClient, session: ApnsSession, failed: FailedSend): FailedSend {
  const status = typeof failed.status === 'number' ? failed.status : undefined;
  const resendable =
    (status !== undefined && LIBRARY_RETRY_STATUSES.has(status)) || (status === 403 && failed.error?.message === 'ExpiredProviderToken');
  if (resendable && session.closed) return { error: { message: 'client session is either closed or destroyed' } };
  // Graceful: no new sends on it, those in flight finish (see `keepAnswersOnGoaway`).
  if (status === 500) session.close();
  return failed;
}

/**
 * The library destroys a session on any GOAWAY it receives, and a server sends one when it closes the
 * connection, also in answer to ours after a 500: that cut off every answer still in flight on it, delivered
 * ones included, which then read as transport errors and were sent again. Without the library's listener,
 * Node's own handling applies: a graceful GOAWAY closes the session once its streams are done (the next send
 * connects anew), an error GOAWAY destroys it.
 */
function keepAnswersOnGoaway(session: ApnsSession): void {
  session.removeAllListeners('goaway');
}

function asFailedSend(failure: unknown): FailedSend {
  return failure !== null && typeof failure === 'object' ? (failure as FailedSend) : { error: { message: String(failure) } };
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
  /** Sessions already left to Node's GOAWAY handling. */
  private readonly gracefulSessions = new WeakSet<ApnsSession>();

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

  /**
   * One send in a slot already taken; the slot is given back when the library settles, even after the timer
   * has answered. The hot path: one promise and one timer per attempt, nothing kept but what the send needs.
   */
  private sendHolding(request: ApnsRequest, timeoutMs: number): Promise<AttemptResult> {
    let body: string;
    try {
      body = JSON.stringify(request.payload);
    } catch (err) {
      this.inFlight.release();
      return Promise.reject(err as Error);
    }
    const wire: ApnsWire = { headers: request.headers, body };
    const session = liveSession(this.client);
    if (session && !this.gracefulSessions.has(session)) {
      keepAnswersOnGoaway(session);
      this.gracefulSessions.add(session);
    }
    return new Promise<AttemptResult>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs, TIMED_OUT);
      const settle = (result: AttemptResult): void => {
        clearTimeout(timer);
        this.inFlight.release();
        resolve(result);
      };
      const sent = session
        ? this.client.request(session, this.client.config.address, wire, `/3/device/${request.token}`, 'POST')
        : this.client.write(wire, request.token, 'device', 'post');
      sent.then(
        // A fulfilled answer with a status or an error is still a failure, as `Provider.send` sorts them.
        (answer) =>
          settle(answer.status !== undefined || answer.error !== undefined ? this.verdictOf(answer) : deliveredWithId(answer['apns-id'])),
        // A rejection is never a delivery, whatever it carries.
        (failure: unknown) =>
          settle(this.verdictOf(session ? afterFailedRequest(this.client, session, asFailedSend(failure)) : asFailedSend(failure))),
      );
    });
  }

  private verdictOf(failed: FailedSend): AttemptResult {
    const verdict = classifyFailure(failed);
    // The chat server only hears "unknown transport error": the operator needs the cause.
    if (verdict.kind === 'retryable') this.logger?.warn({ err: failed.error?.message ?? 'no answer' }, 'APNs attempt got no answer');
    // The status and the apns-id, retryable answers included, are for the trace: Apple's support asks for the id.
    const id = failed['apns-id'];
    const status = typeof failed.status === 'number' ? failed.status : undefined;
    if (id === undefined && status === undefined) return verdict;
    const answered: AttemptResult = { ...verdict };
    if (status !== undefined) answered.status = status;
    if (id !== undefined) answered.providerId = id;
    return answered;
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

/**
 * The library signs a new provider token inside a send, every 55 minutes and after ExpiredProviderToken; a
 * signing failure rejects that send as a transport error and shows nowhere else. The key signed once at
 * start-up, so this is rare: counted once per failed signing, then thrown on as before.
 */
export function countSigningFailures(token: ProviderToken, metrics: Pick<EntryMetrics, 'credentialRefreshFailed'>): void {
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

/** A delivery, with the `apns-id` APNs answered when there was one (the shared constant otherwise: no allocation). */
function deliveredWithId(id: string | undefined): AttemptResult {
  return id === undefined ? DELIVERED : { kind: 'final', outcome: 'OK', status: 200, providerId: id };
}

/** How the library reports each kind of answer (checked against the sandbox peer). */
export function classifyFailure(failed: FailedSend): AttemptResult {
  const message = failed.error?.message ?? '';
  let status = typeof failed.status === 'number' ? failed.status : undefined;
  let reason = failed.response?.reason;
  if (status === 403 && message === 'ExpiredProviderToken') reason = message;
  if (status === 500 && reason === undefined) reason = 'InternalServerError';
  const emptyBody = EMPTY_BODY_STATUS.exec(message);
  if (status === undefined && emptyBody) {
    status = Number(emptyBody[1]);
    reason = '';
  }
  if (status === undefined) return { kind: 'retryable', error: TRANSPORT_ERROR, reason: TRANSPORT_ERROR };
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
