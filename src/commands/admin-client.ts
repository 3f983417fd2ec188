/**
 * Asks the running proxy's operator API over the configuration the proxy itself reads: the admin listener
 * (AdminListenAddress, plain HTTP) when there is one, else the single listener (ListenAddress, over HTTPS when
 * TLSCertFile is set). A wildcard host is asked on 127.0.0.1: the command runs on the proxy's machine.
 */
import http from 'node:http';
import https from 'node:https';
import { adminListenAddress, parseListenAddress } from '../config/load';
import type { ProxyConfig } from '../config/types';
import { CommandError, EXIT_CHECK_FAILED } from './errors';

export interface AdminAnswer {
  status: number;
  /** The JSON body, or undefined when it was not JSON. */
  body: unknown;
  /** Where it was asked, for messages: `http://127.0.0.1:9066`. */
  origin: string;
}

type AdminConfig = Pick<ProxyConfig, 'AdminListenAddress' | 'ListenAddress' | 'TLSCertFile'>;

/** Where the operator API of a proxy with this configuration is asked from its own machine. */
export function adminTarget(config: AdminConfig): { host: string; port: number; secure: boolean; origin: string } {
  const admin = adminListenAddress(config);
  const address = admin ?? parseListenAddress(config.ListenAddress);
  const secure = admin === undefined && config.TLSCertFile !== '';
  const host = address.host === undefined || address.host === '0.0.0.0' || address.host === '::' ? '127.0.0.1' : address.host;
  const origin = `${secure ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${address.port}`;
  return { host, port: address.port, secure, origin };
}

/** GET `path` (with its query) from the operator API; a CommandError (exit code 2) when nothing answers. */
export function getAdminJson(config: AdminConfig, path: string, timeoutMs = 5000): Promise<AdminAnswer> {
  const { host, port, secure, origin } = adminTarget(config);
  const client = secure ? https : http;
  return new Promise((resolve, reject) => {
    // The certificate names the public host, not the address asked here: the answer is checked, not the peer.
    const req = client.get({ host, port, path, timeout: timeoutMs, rejectUnauthorized: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        let body: unknown;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          body = undefined;
        }
        resolve({ status: res.statusCode ?? 0, body, origin });
      });
      res.on('error', (err) => reject(unreachable(origin, err)));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs / 1000} s`)));
    req.on('error', (err) => reject(unreachable(origin, err)));
  });
}

function unreachable(origin: string, err: Error): CommandError {
  const which = origin.startsWith('https') ? 'ListenAddress' : 'AdminListenAddress (or ListenAddress)';
  return new CommandError(
    `no proxy answers at ${origin} (${err.message}): is it running with this configuration? The address comes from ${which}.`,
    EXIT_CHECK_FAILED,
  );
}
