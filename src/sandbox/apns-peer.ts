/**
 * A local APNs provider-API peer (HTTP/2 + TLS, `POST /3/device/<token>`) that checks requests the way
 * Apple documents and answers with Apple's reasons. The integration tests deliver to it through the real
 * @parse/node-apn client, and `npm start` without a config runs it so a newcomer can watch pushes arrive.
 * Tests can program per-token answers (errors, hangs, resets, dropped connections).
 */
import { createPublicKey, randomUUID, verify, type KeyObject } from 'node:crypto';
import http2 from 'node:http2';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { APPLE_PRODUCTION_OID, APPLE_SANDBOX_OID } from './credentials';

export interface ApnsTokenKey {
  keyId: string;
  teamId: string;
  publicKeyPem: string;
  /** bundle ids this team may push to; the `.voip` variant of each is allowed too */
  topics: string[];
}

export interface ApnsPeerOptions {
  /** server certificate (from createServerCertificate) */
  tls: { certPem: string; keyPem: string };
  /** default '127.0.0.1' */
  host?: string;
  /** default 0 (ephemeral) */
  port?: number;
  /** token (JWT) auth */
  tokenKeys?: ApnsTokenKey[];
  /** certificate auth: client certs signed by this CA are accepted; topic = the cert subject's UID */
  clientCaPem?: string;
  /**
   * When set, a client certificate must carry Apple's mark for this environment
   * (403 BadCertificateEnvironment otherwise). Unset: not checked.
   */
  environment?: 'sandbox' | 'production';
  /**
   * The APNs environment the device tokens were issued in. When set, a request addressed (`:authority`) to
   * the other environment's host gets 400 BadDeviceToken for every token, as Apple answers a token it does
   * not know: what a wrong ApplePushUseDevelopment looks like. Unset: not checked.
   */
  tokenEnvironment?: 'sandbox' | 'production';
  /** advertised SETTINGS_MAX_CONCURRENT_STREAMS (default 1000) */
  maxConcurrentStreams?: number;
  /** called for every request that reached the peer, with the answer given */
  onNotification?: (n: ReceivedApnsNotification) => void;
}

export interface ReceivedApnsNotification {
  token: string;
  /** Request headers without the HTTP/2 pseudo-headers (see method/path). */
  headers: Record<string, string>;
  method: string;
  path: string;
  /** The host the request was addressed to (`:authority` without its port). */
  authority: string;
  /** parsed JSON, or undefined when the body is not JSON */
  payload: unknown;
  rawBody: string;
  auth: 'token' | 'certificate' | 'none';
  topic: string | undefined;
  /** HTTP status answered; 0 when a programmed hang/reset/closeConnection gave no answer */
  status: number;
  reason?: string;
  /** Set when the answer was a programmed non-HTTP behaviour. */
  behaviour?: 'hang' | 'reset' | 'closeConnection';
  apnsId: string;
  receivedAt: Date;
  /** Which of the peer's HTTP/2 connections it came on, counted from 1 in the order they were opened. */
  connection: number;
  /** Set when the stream closed. */
  endedAt?: Date;
  /** Set when the stream closed: the `:status` the peer wrote on it, if any. */
  sentStatus?: number;
  /**
   * Set when the stream closed: a complete 200 left on it (END_STREAM sent, stream closed without error)
   * while its connection was up, so the client could read it whatever it did next. A 200 cut off by a
   * cancel is not a delivery; one written as the connection dropped may or may not have left (`connectionLost`).
   */
  delivered?: boolean;
  /**
   * Set when the stream closed: its connection had been dropped (by this stream's own fault, another's, or
   * the client going away without a GOAWAY). A connection that ends after a GOAWAY ends gracefully: every
   * stream on it finishes first.
   */
  connectionLost?: boolean;
}

export type DeviceBehaviour =
  /** answer this (body overrides the JSON {"reason":…}; may be non-JSON or '') */
  | { status: number; reason?: string; body?: string }
  /** never answer (stream stays open until the client cancels) */
  | { hang: true }
  /** answer 200 after this long (a slow but healthy APNs) */
  | { delayMs: number }
  /** RST_STREAM the request (INTERNAL_ERROR) */
  | { reset: true }
  /** destroy the whole session */
  | { closeConnection: true };

export const APNS_PUSH_TYPES: readonly string[] = [
  'alert',
  'background',
  'voip',
  'complication',
  'fileprovider',
  'mdm',
  'location',
  'liveactivity',
  'pushtotalk',
  'widgets',
];
export const APNS_MAX_PAYLOAD_BYTES = 4096;
export const APNS_MAX_VOIP_PAYLOAD_BYTES = 5120;

/** Apple rejects provider tokens older than an hour, and (we assume) ones issued over a minute ahead. */
const TOKEN_MAX_AGE_S = 3600;
const TOKEN_MAX_FUTURE_S = 60;
const VERIFIED_TOKEN_CACHE_LIMIT = 10_000;
/** Bodies beyond this are counted, not kept: they are rejected as too large anyway. */
const BODY_KEEP_LIMIT = 64 * 1024;
const PEER_WINDOW_BYTES = 16 * 1024 * 1024;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DEVICE_PATH = /^\/3\/device(?:\/([^/?#]*))?(?:\?.*)?$/;
const USER_ID_SHORT_NAME = 'UID';
const ENVIRONMENT_HOSTS = { sandbox: 'api.sandbox.push.apple.com', production: 'api.push.apple.com' } as const;

interface Rejection {
  status: number;
  reason: string;
  timestamp?: number;
}

type Authenticated =
  /** the topics the key's team may push to */
  | { auth: 'token'; topics: ReadonlySet<string> }
  /** the certificate subject's UID: its one topic */
  | { auth: 'certificate'; uid: string };

interface VerifiedToken {
  keyId: string;
  iat: number;
}

interface ParsedTokenKey {
  teamId: string;
  key: KeyObject;
  topics: ReadonlySet<string>;
}

/** Apple's environment marks as DER-encoded OIDs, to look for in a raw client certificate. */
function derOid(oid: string): Buffer {
  const parts = oid.split('.').map(Number);
  const bytes = [40 * parts[0]! + parts[1]!];
  for (const part of parts.slice(2)) {
    const base128 = [part & 0x7f];
    for (let rest = part >>> 7; rest > 0; rest >>>= 7) base128.unshift((rest & 0x7f) | 0x80);
    bytes.push(...base128);
  }
  return Buffer.from([0x06, bytes.length, ...bytes]);
}

function base64UrlJson(segment: string): unknown {
  return JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function otherEnvironmentHost(environment: 'sandbox' | 'production'): string {
  return ENVIRONMENT_HOSTS[environment === 'sandbox' ? 'production' : 'sandbox'];
}

function headerString(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}

export class ApnsPeer {
  /** Everything that reached the peer, in order, rejected requests included. */
  received: ReceivedApnsNotification[] = [];
  /** How many JWT signatures were checked (a token seen before is not checked again). */
  jwtVerifications = 0;

  private readonly options: ApnsPeerOptions;
  private readonly host: string;
  private readonly server: http2.Http2SecureServer;
  private readonly tokenKeys = new Map<string, ParsedTokenKey>();
  private readonly verifiedTokens = new Map<string, VerifiedToken>();
  private readonly behaviours = new Map<string, DeviceBehaviour[]>();
  private readonly unregistered = new Map<string, number>();
  private readonly topicBindings = new Map<string, string>();
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private readonly connectionNumbers = new WeakMap<http2.Http2Session, number>();
  /** Sessions that received a GOAWAY: they end gracefully. */
  private readonly goneAway = new WeakSet<http2.Http2Session>();
  private connectionsOpened = 0;
  private readonly sockets = new Set<Socket>();
  private readonly waiters = new Set<{ count: number; resolve: () => void }>();
  /** Answers held back by a `delayMs` behaviour: close() cancels them, so a long delay never keeps the process alive. */
  private readonly delayedAnswers = new Set<NodeJS.Timeout>();
  private readonly environmentMark: Buffer | undefined;
  private listeningPort: number | undefined;

  constructor(options: ApnsPeerOptions) {
    this.options = options;
    this.host = options.host ?? '127.0.0.1';
    for (const k of options.tokenKeys ?? []) this.addTokenKey(k);
    this.environmentMark = options.environment
      ? derOid(options.environment === 'sandbox' ? APPLE_SANDBOX_OID : APPLE_PRODUCTION_OID)
      : undefined;

    this.server = http2.createSecureServer({
      cert: options.tls.certPem,
      key: options.tls.keyPem,
      allowHTTP1: false,
      // Certificates are checked per request, so a wrong one gets Apple's 403 instead of a TLS alert.
      ...(options.clientCaPem ? { requestCert: true, rejectUnauthorized: false, ca: [options.clientCaPem] } : {}),
      settings: { maxConcurrentStreams: options.maxConcurrentStreams ?? 1000, initialWindowSize: 1024 * 1024 },
      // Load tests keep thousands of streams open on one session; Node's 10 MB default would refuse them.
      maxSessionMemory: 256,
    });
    this.server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    this.server.on('session', (session) => {
      this.sessions.add(session);
      this.connectionNumbers.set(session, ++this.connectionsOpened);
      session.on('close', () => this.sessions.delete(session));
      session.on('error', () => undefined);
      session.once('goaway', () => this.goneAway.add(session));
      try {
        session.setLocalWindowSize(PEER_WINDOW_BYTES);
      } catch {
        // The session may already be gone; nothing to widen then.
      }
    });
    this.server.on('sessionError', () => undefined);
    this.server.on('tlsClientError', () => undefined);
    this.server.on('stream', (stream, headers) => this.onStream(stream, headers));
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const onError = (error: Error) => reject(error);
      this.server.once('error', onError);
      this.server.listen(this.options.port ?? 0, this.host, () => {
        this.server.off('error', onError);
        resolve();
      });
    });
    const address = this.server.address();
    this.listeningPort = typeof address === 'object' && address ? address.port : undefined;
  }

  get port(): number {
    if (this.listeningPort === undefined) throw new Error('ApnsPeer is not started');
    return this.listeningPort;
  }

  /** HTTP/2 connections open now. */
  get openConnections(): number {
    return this.sessions.size;
  }

  get url(): string {
    const host = this.host.includes(':') ? `[${this.host}]` : this.host;
    return `https://${host}:${this.port}`;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => {
      if (!this.server.listening) return resolve();
      this.server.close(() => resolve());
    });
    // server.close() waits for every connection; hanging streams would keep it open forever.
    for (const session of this.sessions) session.destroy();
    for (const socket of this.sockets) socket.destroy();
    for (const timer of this.delayedAnswers) clearTimeout(timer);
    this.delayedAnswers.clear();
    // The port stays readable after close, for messages about what was closed.
    await closed;
  }

  receivedFor(token: string): ReceivedApnsNotification[] {
    return this.received.filter((n) => n.token === token);
  }

  setDeviceBehaviour(token: string, behaviour: DeviceBehaviour | DeviceBehaviour[]): void {
    const list = Array.isArray(behaviour) ? [...behaviour] : [behaviour];
    if (list.length === 0) this.behaviours.delete(token);
    else this.behaviours.set(token, list);
  }

  unregister(token: string): void {
    this.unregistered.set(token, Date.now());
  }

  /** Revokes a token key, as Apple Developer > Keys > Revoke does: its provider tokens get 403 InvalidProviderToken. */
  revokeTokenKey(keyId: string): void {
    this.tokenKeys.delete(keyId);
    for (const [jwt, verified] of this.verifiedTokens) if (verified.keyId === keyId) this.verifiedTokens.delete(jwt);
  }

  /** Accepts a token key (again). */
  addTokenKey(key: ApnsTokenKey): void {
    this.tokenKeys.set(key.keyId, { teamId: key.teamId, key: createPublicKey(key.publicKeyPem), topics: new Set(key.topics) });
  }

  bindTokenToTopic(token: string, topic: string): void {
    this.topicBindings.set(token, topic);
  }

  /** Forgets what was received and every per-token setting (behaviours, unregistrations, topic bindings). */
  reset(): void {
    this.received = [];
    this.behaviours.clear();
    this.unregistered.clear();
    this.topicBindings.clear();
  }

  waitForNotifications(count: number, timeoutMs = 5000): Promise<ReceivedApnsNotification[]> {
    if (this.received.length >= count) return Promise.resolve([...this.received]);
    return new Promise((resolve, reject) => {
      const waiter = {
        count,
        resolve: () => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          resolve([...this.received]);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`APNs peer received ${this.received.length} of ${count} notifications within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }

  private onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    stream.on('error', () => undefined);
    const chunks: Buffer[] = [];
    let kept = 0;
    let size = 0;
    stream.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (kept < BODY_KEEP_LIMIT) {
        chunks.push(chunk);
        kept += chunk.length;
      }
    });
    stream.on('end', () => {
      try {
        this.answer(stream, headers, Buffer.concat(chunks), size);
      } catch {
        // A bug here must not take the peer down; the client still deserves an answer.
        this.respond(stream, 500, randomUUID(), JSON.stringify({ reason: 'InternalServerError' }));
      }
    });
  }

  private answer(stream: http2.ServerHttp2Stream, rawHeaders: http2.IncomingHttpHeaders, body: Buffer, bodySize: number): void {
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(rawHeaders)) {
      const text = headerString(value);
      if (!name.startsWith(':') && text !== undefined) headers[name] = text;
    }
    const method = headerString(rawHeaders[':method']) ?? '';
    const path = headerString(rawHeaders[':path']) ?? '';
    const authority = (headerString(rawHeaders[':authority']) ?? '').replace(/:\d+$/, '');
    const requestedId = headers['apns-id'];
    const apnsId = requestedId !== undefined && UUID.test(requestedId) ? requestedId : randomUUID();
    const token = DEVICE_PATH.exec(path)?.[1] ?? '';
    const rawBody = body.toString('utf8');
    let payload: unknown;
    try {
      payload = rawBody === '' ? undefined : JSON.parse(rawBody);
    } catch {
      payload = undefined;
    }

    const record: ReceivedApnsNotification = {
      token,
      headers,
      method,
      path,
      authority,
      payload,
      rawBody,
      auth: 'none',
      topic: headers['apns-topic'],
      status: 0,
      apnsId,
      receivedAt: new Date(),
      connection: (stream.session && this.connectionNumbers.get(stream.session)) ?? 0,
    };
    this.watchStreamEnd(stream, record);
    const rejection = this.check(stream, record, bodySize);
    if (rejection) {
      record.status = rejection.status;
      record.reason = rejection.reason;
      const answer =
        rejection.timestamp === undefined ? { reason: rejection.reason } : { reason: rejection.reason, timestamp: rejection.timestamp };
      this.respond(stream, rejection.status, apnsId, JSON.stringify(answer));
      this.record(record);
      return;
    }

    const behaviour = this.nextBehaviour(token);
    if (!behaviour) {
      record.status = 200;
      this.respond(stream, 200, apnsId, '');
    } else if ('status' in behaviour) {
      record.status = behaviour.status;
      record.reason = behaviour.reason;
      const json =
        behaviour.reason === undefined
          ? ''
          : JSON.stringify(behaviour.status === 410 ? { reason: behaviour.reason, timestamp: Date.now() } : { reason: behaviour.reason });
      this.respond(stream, behaviour.status, apnsId, behaviour.body ?? json);
    } else if ('delayMs' in behaviour) {
      record.status = 200;
      const timer = setTimeout(() => {
        this.delayedAnswers.delete(timer);
        this.respond(stream, 200, apnsId, '');
      }, behaviour.delayMs);
      this.delayedAnswers.add(timer);
    } else if ('hang' in behaviour) {
      record.behaviour = 'hang';
    } else if ('reset' in behaviour) {
      record.behaviour = 'reset';
      stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    } else {
      record.behaviour = 'closeConnection';
      stream.session?.destroy();
    }
    this.record(record);
  }

  private watchStreamEnd(stream: http2.ServerHttp2Stream, record: ReceivedApnsNotification): void {
    const session = stream.session;
    const ended = (): void => {
      record.endedAt = new Date();
      // A stream cut off by a dropped connection closes "without error" too: only the session can tell.
      record.connectionLost = !session || (session.destroyed && !this.goneAway.has(session));
      const status = stream.sentHeaders?.[':status'];
      if (typeof status === 'number') record.sentStatus = status;
      record.delivered = !record.connectionLost && stream.rstCode === http2.constants.NGHTTP2_NO_ERROR && status === 200;
    };
    if (stream.closed) ended();
    else stream.once('close', ended);
  }

  /** Apple's checks, in Apple's order; fills in auth and topic on the record as they become known. */
  private check(stream: http2.ServerHttp2Stream, record: ReceivedApnsNotification, bodySize: number): Rejection | undefined {
    const { headers, token } = record;
    if (record.method !== 'POST') return { status: 405, reason: 'MethodNotAllowed' };
    if (!DEVICE_PATH.test(record.path)) return { status: 404, reason: 'BadPath' };
    if (token === '') return { status: 400, reason: 'MissingDeviceToken' };

    const authenticated = this.authenticate(stream, headers['authorization']);
    if ('status' in authenticated) return authenticated;
    record.auth = authenticated.auth;

    const pushType = headers['apns-push-type'];
    let topic = headers['apns-topic'];
    if (authenticated.auth === 'certificate') {
      const uid = authenticated.uid;
      topic ??= uid;
      record.topic = topic;
      if (topic !== uid && topic !== `${uid}.voip`) return { status: 400, reason: 'BadTopic' };
    } else {
      if (topic === undefined || topic === '') return { status: 400, reason: 'MissingTopic' };
      const baseTopic = topic.endsWith('.voip') ? topic.slice(0, -'.voip'.length) : topic;
      if (!authenticated.topics.has(baseTopic)) return { status: 400, reason: 'TopicDisallowed' };
    }

    if (pushType !== undefined && !APNS_PUSH_TYPES.includes(pushType)) return { status: 400, reason: 'InvalidPushType' };
    if ((pushType === 'voip') !== topic.endsWith('.voip')) return { status: 400, reason: 'InvalidPushType' };
    const priority = headers['apns-priority'];
    if (priority !== undefined && !['1', '5', '10'].includes(priority)) return { status: 400, reason: 'BadPriority' };
    const expiration = headers['apns-expiration'];
    if (expiration !== undefined && !/^\d+$/.test(expiration)) return { status: 400, reason: 'BadExpirationDate' };
    const requestedId = headers['apns-id'];
    if (requestedId !== undefined && !UUID.test(requestedId)) return { status: 400, reason: 'BadMessageId' };
    const collapseId = headers['apns-collapse-id'];
    if (collapseId !== undefined && Buffer.byteLength(collapseId) > 64) return { status: 400, reason: 'BadCollapseId' };

    if (!/^[0-9a-fA-F]{64,200}$/.test(token) || token.length % 2 !== 0) return { status: 400, reason: 'BadDeviceToken' };
    if (this.options.tokenEnvironment && record.authority === otherEnvironmentHost(this.options.tokenEnvironment))
      return { status: 400, reason: 'BadDeviceToken' };
    const boundTopic = this.topicBindings.get(token);
    if (boundTopic !== undefined && boundTopic !== topic) return { status: 400, reason: 'DeviceTokenNotForTopic' };
    const unregisteredAt = this.unregistered.get(token);
    if (unregisteredAt !== undefined) return { status: 410, reason: 'Unregistered', timestamp: unregisteredAt };

    if (bodySize === 0) return { status: 400, reason: 'PayloadEmpty' };
    const limit = pushType === 'voip' ? APNS_MAX_VOIP_PAYLOAD_BYTES : APNS_MAX_PAYLOAD_BYTES;
    if (bodySize > limit) return { status: 413, reason: 'PayloadTooLarge' };
    // Apple documents no reason for these; BadPayload is ours.
    if (!isObject(record.payload) || !isObject(record.payload['aps'])) return { status: 400, reason: 'BadPayload' };
    return undefined;
  }

  private authenticate(stream: http2.ServerHttp2Stream, authorization: string | undefined): Authenticated | Rejection {
    const socket = stream.session?.socket as TLSSocket | undefined;
    // Apple takes a client certificate over any authorization header.
    if (this.options.clientCaPem && socket && typeof socket.getPeerCertificate === 'function') {
      const certificate = socket.getPeerCertificate();
      if (certificate && Object.keys(certificate).length > 0) {
        if (!socket.authorized) return { status: 403, reason: 'BadCertificate' };
        if (this.environmentMark && !certificate.raw.includes(this.environmentMark)) {
          return { status: 403, reason: 'BadCertificateEnvironment' };
        }
        const uid = (certificate.subject as unknown as Record<string, string | string[] | undefined>)[USER_ID_SHORT_NAME];
        const topic = Array.isArray(uid) ? uid[0] : uid;
        if (!topic) return { status: 403, reason: 'BadCertificate' };
        return { auth: 'certificate', uid: topic };
      }
    }

    if (authorization === undefined || authorization.trim() === '') return { status: 403, reason: 'MissingProviderToken' };
    const match = /^bearer\s+(\S+)$/i.exec(authorization.trim());
    if (!match) return { status: 403, reason: 'InvalidProviderToken' };
    const jwt = match[1]!;
    const verified = this.verifiedTokens.get(jwt) ?? this.verifyJwt(jwt);
    if (!verified) return { status: 403, reason: 'InvalidProviderToken' };

    const now = Math.floor(Date.now() / 1000);
    if (verified.iat > now + TOKEN_MAX_FUTURE_S) return { status: 403, reason: 'InvalidProviderToken' };
    if (now - verified.iat > TOKEN_MAX_AGE_S) return { status: 403, reason: 'ExpiredProviderToken' };
    const tokenKey = this.tokenKeys.get(verified.keyId);
    if (!tokenKey) return { status: 403, reason: 'InvalidProviderToken' };
    return { auth: 'token', topics: tokenKey.topics };
  }

  /** Checks an ES256 provider token once; a good one is cached (its age is checked on every use). */
  private verifyJwt(jwt: string): VerifiedToken | undefined {
    const segments = jwt.split('.');
    if (segments.length !== 3) return undefined;
    const [headerPart, claimsPart, signaturePart] = segments as [string, string, string];
    let header: unknown;
    let claims: unknown;
    try {
      header = base64UrlJson(headerPart);
      claims = base64UrlJson(claimsPart);
    } catch {
      return undefined;
    }
    if (!isObject(header) || !isObject(claims)) return undefined;
    if (header['alg'] !== 'ES256' || typeof header['kid'] !== 'string') return undefined;
    const tokenKey = this.tokenKeys.get(header['kid']);
    if (!tokenKey || claims['iss'] !== tokenKey.teamId) return undefined;
    const iat = claims['iat'];
    if (typeof iat !== 'number' || !Number.isFinite(iat)) return undefined;
    const signature = Buffer.from(signaturePart, 'base64url');
    if (signature.length !== 64) return undefined;

    this.jwtVerifications += 1;
    const data = Buffer.from(`${headerPart}.${claimsPart}`);
    if (!verify('sha256', data, { key: tokenKey.key, dsaEncoding: 'ieee-p1363' }, signature)) return undefined;

    if (this.verifiedTokens.size >= VERIFIED_TOKEN_CACHE_LIMIT) this.verifiedTokens.clear();
    const verified = { keyId: header['kid'], iat };
    this.verifiedTokens.set(jwt, verified);
    return verified;
  }

  private nextBehaviour(token: string): DeviceBehaviour | undefined {
    const list = this.behaviours.get(token);
    if (!list) return undefined;
    return list.length > 1 ? list.shift() : list[0];
  }

  private respond(stream: http2.ServerHttp2Stream, status: number, apnsId: string, body: string): void {
    if (stream.destroyed || stream.closed || stream.headersSent) return;
    try {
      stream.respond(
        { ':status': status, 'apns-id': apnsId, ...(status === 200 ? { 'apns-unique-id': randomUUID() } : {}) },
        { endStream: body === '' },
      );
      if (body !== '') stream.end(body);
    } catch {
      // The client went away mid-answer; nothing left to tell it.
    }
  }

  private record(notification: ReceivedApnsNotification): void {
    this.received.push(notification);
    try {
      this.options.onNotification?.(notification);
    } catch {
      // A failing observer must not change what the client sees.
    }
    for (const waiter of [...this.waiters]) {
      if (this.received.length >= waiter.count) waiter.resolve();
    }
  }
}
