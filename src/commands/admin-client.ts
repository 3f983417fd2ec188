/**
 * How an operator command reaches the running proxy's operator API (usage, trace): the listener start-up would
 * open for it, from the same configuration. The admin listener (AdminListenAddress, plain HTTP) when there is one,
 * else the single listener (ListenAddress, HTTPS when TLSCertFile is set). A wildcard host is asked on 127.0.0.1:
 * the command runs on the proxy's machine. Every failure is a CommandError with exit code 2 that says which URL
 * was asked and what to check.
 */
import http from 'node:http';
import https from 'node:https';
import { adminListenAddress, parseListenAddress } from '../config/load';
import type { ProxyConfig } from '../config/types';
import { CommandError, EXIT_CHECK_FAILED } from './errors';

export interface AdminAnswer {
  /** The URL asked. */
  url: string;
  /** Where it was asked, for messages: `http://127.0.0.1:9066`. */
  origin: string;
  status: number;
  /** The answer's JSON (an API's FAIL answers are JSON too, with their `error`). */
  body: unknown;
}

const TIMEOUT_MS = 10_000;

type AdminConfig = Pick<ProxyConfig, 'ListenAddress' | 'AdminListenAddress' | 'TLSCertFile'> & Partial<Pick<ProxyConfig, 'Mode'>>;

/** Where the operator API of a proxy with this configuration is asked from its own machine. */
export function adminTarget(config: AdminConfig): { host: string; port: number; secure: boolean; origin: string } {
  const admin = adminListenAddress(config);
  const address = admin ?? parseListenAddress(config.ListenAddress);
  const secure = admin === undefined && config.TLSCertFile !== '';
  const host =
    address.host === undefined || address.host === '' || address.host === '0.0.0.0' || address.host === '::' ? '127.0.0.1' : address.host;
  const origin = `${secure ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${address.port}`;
  return { host, port: address.port, secure, origin };
}

/** The base URL of the listener that serves the operator API, per the configuration. */
export function adminBaseUrl(config: AdminConfig): string {
  return adminTarget(config).origin;
}

/**
 * GET `path` (with its query) from the running proxy and parse the JSON answer, whatever its status (the caller
 * reads a FAIL's error). A 404 that is not JSON means this listener does not serve that path, which the message
 * explains.
 */
export async function getAdminJson(config: AdminConfig, path: string, timeoutMs = TIMEOUT_MS): Promise<AdminAnswer> {
  const { origin } = adminTarget(config);
  const url = `${origin}${path}`;
  const { status, text } = await fetchText(url, timeoutMs).catch((err: NodeJS.ErrnoException) => {
    throw new CommandError(
      `cannot reach the proxy at ${url} (${err.code ?? err.message}). Is it running with this configuration? ` +
        `The operator API is on AdminListenAddress when it is set, else on ListenAddress.`,
      EXIT_CHECK_FAILED,
    );
  });
  let body: unknown;
  try {
    body = JSON.parse(text) as unknown;
  } catch {
    if (status === 404) {
      const where = config.AdminListenAddress
        ? 'check AdminListenAddress'
        : config.Mode === 'hosted'
          ? 'in hosted mode it is served only on the admin listener: set AdminListenAddress'
          : 'is the proxy there a Push Proxy of this version?';
      throw new CommandError(`the proxy at ${url} does not serve ${path.split('?')[0]}: ${where}.`, EXIT_CHECK_FAILED);
    }
    throw new CommandError(
      `the proxy at ${url} answered ${status} with something other than JSON: ${text.slice(0, 200)}`,
      EXIT_CHECK_FAILED,
    );
  }
  return { url, origin, status, body };
}

function fetchText(url: string, timeoutMs: number): Promise<{ status: number; text: string }> {
  const client = url.startsWith('https:') ? https : http;
  return new Promise((resolve, reject) => {
    // The local listener's certificate is for the public name, not 127.0.0.1: the proxy is reached on this machine.
    const req = client.get(url, { timeout: timeoutMs, rejectUnauthorized: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer within ${timeoutMs / 1000} s`), { code: 'ETIMEDOUT' })));
    req.on('error', reject);
  });
}
