/**
 * `push-proxy healthcheck`: asks the local instance's /healthz, for the container's HEALTHCHECK. Uses the
 * same configuration as the proxy, so it knows the port and whether it speaks HTTPS.
 */
import http from 'node:http';
import https from 'node:https';
import { loadStartupConfig, parseListenAddress } from '../config/load';

export async function runHealthcheck(argv: readonly string[], env: Record<string, string | undefined>, cwd: string): Promise<boolean> {
  // The same search as the server's (and the same refusal when a file is required but missing).
  const { config } = loadStartupConfig(argv, env, cwd);
  const { port } = parseListenAddress(config.ListenAddress);
  const client = config.TLSCertFile ? https : http;
  return new Promise((resolve) => {
    // Loopback liveness only: the certificate is for the public name, not 127.0.0.1.
    const req = client.get({ host: '127.0.0.1', port, path: '/healthz', timeout: 3000, rejectUnauthorized: false }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}
