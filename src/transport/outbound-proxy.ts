/**
 * Outbound traffic (APNs, FCM, OAuth token requests) through an HTTP CONNECT proxy, for networks whose only
 * way out is a corporate proxy.
 *
 * Which proxy: `OutboundProxy` from the config, when set, is used for every destination (NO_PROXY does not
 * apply to it: the operator named it for this service). Otherwise the environment: `HTTPS_PROXY`,
 * `https_proxy`, then `HTTP_PROXY`, `http_proxy` (the original wires HTTPS_PROXY, else HTTP_PROXY, into its
 * APNs client), with `NO_PROXY` / `no_proxy` exempting destinations as Go's `http.ProxyFromEnvironment`
 * reads it. Unlike Go, loopback and `localhost` are not exempt on their own: list them.
 *
 * Only `http://` proxies are spoken to (CONNECT over plain TCP); credentials in the URL become
 * `Proxy-Authorization: Basic`. No message or log line carries them: proxies are named by `describeOutboundProxy`.
 */
import http from 'node:http';
import { isIP, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { cidrContains, hostnameOf, parseCidr, parseIp, stripBrackets, type Cidr, type IpAddress } from '../net/addresses';

export interface ProxyTarget {
  host: string;
  port: number;
}

export interface OutboundProxySettings {
  /** `OutboundProxy` from the config; empty or unset = use the environment. */
  configured?: string;
  env: Record<string, string | undefined>;
}

/** Error codes of tunnel failures that are not socket errors (those keep Node's own code, e.g. ECONNREFUSED). */
export const OUTBOUND_PROXY_REFUSED = 'ERR_PROXY_REFUSED';
export const OUTBOUND_PROXY_TIMEOUT = 'ERR_PROXY_TIMEOUT';

const OUTBOUND_PROXY_VARIABLES = ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy'] as const;
const NO_PROXY_VARIABLES = ['NO_PROXY', 'no_proxy'] as const;

/**
 * The outbound proxy to reach `target` through, or undefined to connect directly. Throws when the setting
 * that applies cannot be used (not a URL, not http://): a start-up error, never a silent direct connection.
 */
export function resolveOutboundProxy(target: ProxyTarget, settings: OutboundProxySettings): URL | undefined {
  const configured = settings.configured?.trim();
  if (configured) return parseOutboundProxyUrl(configured, 'OutboundProxy');
  const variable = firstSet(settings.env, OUTBOUND_PROXY_VARIABLES);
  if (!variable) return undefined;
  const noProxy = firstSet(settings.env, NO_PROXY_VARIABLES);
  if (noProxy && bypassesOutboundProxy(noProxy.value, target)) return undefined;
  return parseOutboundProxyUrl(variable.value, variable.name);
}

/** An outbound proxy as logs and error messages may show it: scheme, host and port, never credentials. */
export function describeOutboundProxy(outboundProxy: URL): string {
  return `${outboundProxy.protocol}//${outboundProxy.host}`;
}

/**
 * Opens a CONNECT tunnel to `target` and resolves with the raw socket, ready for TLS. Rejects (and
 * destroys the socket) when the outbound proxy cannot be reached, answers anything but 2xx, takes longer than
 * `timeoutMs` to answer, or `signal` aborts first.
 */
export function openTunnel(outboundProxy: URL, target: ProxyTarget, timeoutMs: number, signal?: AbortSignal): Promise<Socket> {
  const authority = formatAuthority(target.host, target.port);
  const name = describeOutboundProxy(outboundProxy);
  // Without an explicit Connection header, Node sends `Connection: close` on an agent-less request.
  const headers: Record<string, string> = { host: authority, connection: 'keep-alive' };
  if (outboundProxy.username || outboundProxy.password) {
    const credentials = `${decodeURIComponent(outboundProxy.username)}:${decodeURIComponent(outboundProxy.password)}`;
    headers['proxy-authorization'] = `Basic ${Buffer.from(credentials).toString('base64')}`;
  }

  return new Promise((resolve, reject) => {
    let settled = false;
    const settle = (): void => {
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    const fail = (message: string, code: string | undefined, cause?: unknown): void => {
      if (settled) return;
      settle();
      req.destroy();
      reject(Object.assign(new Error(message, cause === undefined ? undefined : { cause }), { code }));
    };
    const onAbort = (): void => fail(`CONNECT ${authority} through outbound proxy ${name} abandoned`, 'ABORT_ERR');

    const req = http.request({
      host: hostnameOf(outboundProxy),
      port: Number(outboundProxy.port || 80),
      method: 'CONNECT',
      path: authority,
      headers,
      agent: false,
    });
    // `on`, not `once`: a request destroyed by the timer may still report the hang-up.
    req.on('error', (err: NodeJS.ErrnoException) =>
      fail(`outbound proxy ${name}: cannot open a tunnel to ${authority}: ${err.message}`, err.code, err),
    );
    req.once('connect', (res: http.IncomingMessage, socket: Socket, head: Buffer) => {
      const status = res.statusCode ?? 0;
      if (status >= 200 && status < 300 && head.length === 0) {
        settle();
        resolve(socket);
        return;
      }
      socket.destroy();
      fail(
        status >= 200 && status < 300
          ? `outbound proxy ${name} sent data before the TLS handshake on the tunnel to ${authority}`
          : `outbound proxy ${name} refused CONNECT ${authority}: HTTP/${res.httpVersion} ${status} ${res.statusMessage ?? ''}`.trimEnd(),
        OUTBOUND_PROXY_REFUSED,
      );
    });
    const timer = setTimeout(
      () => fail(`outbound proxy ${name} did not answer CONNECT ${authority} within ${timeoutMs} ms`, OUTBOUND_PROXY_TIMEOUT),
      Math.max(1, timeoutMs),
    );
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    req.end();
  });
}

/**
 * A stream usable at once that carries its bytes through a tunnel still being opened: for callers that
 * must hand over a socket synchronously (http2's and https.Agent's `createConnection`), under
 * `tls.connect({ socket })`. A failed tunnel destroys the stream with the tunnel's error, which TLS and
 * then the HTTP client report as theirs; destroying the stream abandons a tunnel still being opened.
 */
export class TunnelStream extends Duplex {
  private socket?: Socket;
  /** The write or end that arrived before the tunnel was open (Writable hands over one at a time). */
  private held?: (socket: Socket) => void;
  private readonly opening = new AbortController();

  constructor(open: (signal: AbortSignal) => Promise<Socket>) {
    super({ allowHalfOpen: false });
    open(this.opening.signal).then(
      (socket) => this.attach(socket),
      (err: Error) => this.destroy(err),
    );
  }

  private attach(socket: Socket): void {
    if (this.destroyed) {
      socket.destroy();
      return;
    }
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) socket.pause();
    });
    socket.once('end', () => this.push(null));
    socket.on('error', (err) => this.destroy(err));
    socket.once('close', () => this.destroy());
    const held = this.held;
    this.held = undefined;
    held?.(socket);
  }

  override _read(): void {
    this.socket?.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    if (this.socket) this.socket.write(chunk, callback);
    else this.held = (socket) => socket.write(chunk, callback);
  }

  override _final(callback: (err?: Error | null) => void): void {
    if (this.socket) this.socket.end(callback);
    else this.held = (socket) => socket.end(callback);
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.opening.abort();
    this.socket?.destroy();
    callback(err);
  }
}

/**
 * NO_PROXY as Go reads it: comma-separated; `*` = everything; an IP or CIDR matches IP destinations;
 * `example.com` matches it and its subdomains, `.example.com` and `*.example.com` only subdomains; any
 * entry but a CIDR may carry `:port` to match that port only.
 */
function bypassesOutboundProxy(noProxy: string, target: ProxyTarget): boolean {
  const host = stripBrackets(target.host.toLowerCase()).replace(/\.$/, '');
  const hostIp = parseIp(host);
  const port = String(target.port);
  for (const raw of noProxy.split(',')) {
    const entry = raw.trim().toLowerCase();
    if (!entry) continue;
    if (entry === '*') return true;
    if (entry.includes('/')) {
      if (hostIp && inSameFamilyCidr(hostIp, parseCidr(entry))) return true;
      continue;
    }
    const { host: entryHost, port: entryPort } = splitHostPort(entry);
    if (!entryHost || (entryPort !== undefined && entryPort !== port)) continue;
    // An address is the CIDR of itself alone: `::1` and `0:0:0:0:0:0:0:1` are the same host.
    const entryIp = parseCidr(entryHost);
    if (entryIp) {
      if (hostIp && inSameFamilyCidr(hostIp, entryIp)) return true;
      continue;
    }
    const domain = entryHost.replace(/^\*\./, '.').replace(/\.$/, '');
    if (domain.startsWith('.') ? host.endsWith(domain) : host === domain || host.endsWith(`.${domain}`)) return true;
  }
  return false;
}

/** Unlike the listener's lists, NO_PROXY never matches an IPv4 address with an IPv6 entry or the reverse. */
function inSameFamilyCidr(host: IpAddress, cidr: Cidr | undefined): boolean {
  return cidr !== undefined && cidr.address.kind() === host.kind() && cidrContains(cidr, host);
}

/** `host`, `host:port`, `[v6]`, `[v6]:port`, or a bare IPv6 address (which has no port). */
function splitHostPort(entry: string): { host: string; port?: string } {
  const bracketed = /^\[([^\]]*)\](?::(\d+))?$/.exec(entry);
  if (bracketed) return { host: bracketed[1] ?? '', port: bracketed[2] };
  const withPort = /^([^:]*):(\d+)$/.exec(entry);
  if (withPort) return { host: withPort[1] ?? '', port: withPort[2] };
  return { host: entry };
}

function parseOutboundProxyUrl(value: string, setting: string): URL {
  // Go accepts a bare host:port and means http.
  const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error(`${setting} "${redact(value)}" is not a URL: use http://[user:password@]host:port`);
  }
  if (url.protocol !== 'http:') {
    throw new Error(
      `${setting} "${redact(value)}": only http:// proxies are supported (CONNECT over plain HTTP): use http://[user:password@]host:port`,
    );
  }
  if (!url.hostname) throw new Error(`${setting} "${redact(value)}" names no host: use http://[user:password@]host:port`);
  return url;
}

/** An outbound proxy setting as it may be shown: everything between the scheme and the last `@` is hidden. */
function redact(value: string): string {
  return value.replace(/^([a-z][a-z0-9+.-]*:\/\/)?.*@/is, (_match, scheme: string | undefined) => `${scheme ?? ''}***@`);
}

function firstSet(env: Record<string, string | undefined>, names: readonly string[]): { name: string; value: string } | undefined {
  for (const name of names) {
    const value = env[name]?.trim();
    if (value) return { name, value };
  }
  return undefined;
}

function formatAuthority(host: string, port: number): string {
  const bare = stripBrackets(host);
  return isIP(bare) === 6 ? `[${bare}]:${port}` : `${bare}:${port}`;
}
