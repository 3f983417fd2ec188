/**
 * Who may use the push API, and how much: HTTPS in hosted mode, tenant credentials when a tenants file is
 * configured, tenant restrictions, and Push Proxy's own rate limits. Refusals are JSON FAIL bodies with the
 * fitting status (401, 403, 429); only what passes reaches the original's always-200 handlers.
 */
import type { Logger } from 'pino';
import type { ProxyMetrics } from '../metrics';
import type { RateLimitGate } from '../ratelimit/gate';
import type { Tenant } from '../tenants/auth';
import type { TenantStore } from '../tenants/store';

export type Admission = { ok: true; tenant?: Tenant } | Refusal;

/** What the push API knows of a caller before reading the body. */
export interface ClientInfo {
  /** The client's address: the socket's, or from X-Forwarded-For through TrustedProxies only. */
  ip: string | undefined;
  /** HTTPS on the socket, or at a TLS-terminating load balancer among the TrustedProxies. */
  secure: boolean;
  authorization: string | undefined;
}

export interface Refusal {
  ok: false;
  status: number;
  error: string;
  headers?: Record<string, string>;
}

export interface AccessControlOptions {
  /** AllowedClients: who may use the push API at all; absent = everyone. */
  allowedClients?: (address: string) => boolean;
  /** Hosted mode: credentials must not cross the internet in clear. */
  requireHttps: boolean;
  tenants?: TenantStore;
  rateLimits?: RateLimitGate;
  metrics: ProxyMetrics;
  logger: Logger;
}

const AUTH_CHALLENGE = { 'WWW-Authenticate': 'Basic realm="push-proxy", charset="UTF-8"' };

export class AccessControl {
  constructor(private readonly options: AccessControlOptions) {}

  /** Before the body is read: allowed addresses, scheme, the per-client budget, credentials, the tenant's budget. */
  async admit(client: ClientInfo): Promise<Admission> {
    const { allowedClients, requireHttps, tenants, rateLimits, metrics, logger } = this.options;
    if (allowedClients && !allowedClients(client.ip ?? '')) {
      metrics.authFailures.inc({ reason: 'client_not_allowed' });
      logger.info({ client: client.ip }, 'request refused: client address not in AllowedClients');
      return { ok: false, status: 403, error: `Client address ${client.ip ?? 'unknown'} is not allowed to use this push proxy` };
    }
    if (requireHttps && !client.secure) {
      return { ok: false, status: 403, error: 'HTTPS is required: use an https:// push server URL' };
    }
    // The per-client budget comes before credentials: each unknown key costs a scrypt hash.
    if (rateLimits) {
      const decision = await rateLimits.check({ clientAddress: client.ip });
      if (!decision.allowed) return this.limited(decision.limit, decision.retryAfterSec, undefined);
    }
    let tenant: Tenant | undefined;
    if (tenants) {
      const auth = await tenants.authenticate(client.authorization);
      if (!auth.ok) {
        metrics.authFailures.inc({ reason: auth.reason });
        logger.info({ client: client.ip, reason: auth.reason }, 'request refused: tenant credentials');
        const error =
          auth.reason === 'missing' ? 'Missing credentials: set the push server URL to https://TENANT:KEY@host' : 'Invalid credentials';
        return { ok: false, status: 401, error, headers: AUTH_CHALLENGE };
      }
      tenant = auth.tenant;
      if (rateLimits) {
        const decision = await rateLimits.check({ tenant });
        if (!decision.allowed) return this.limited(decision.limit, decision.retryAfterSec, tenant);
      }
    }
    return { ok: true, tenant };
  }

  /** After send_push is decoded: the tenant's restrictions and the per-server budget. */
  async admitPush(admission: { tenant?: Tenant }, serverId: string, platformType: string): Promise<Refusal | undefined> {
    const { tenants, rateLimits, metrics } = this.options;
    const { tenant } = admission;
    if (tenant && tenants) {
      const allowed = tenants.allows(tenant, { serverId, platformType });
      if (!allowed.ok) {
        metrics.authFailures.inc({ reason: 'restricted' });
        return { ok: false, status: 403, error: allowed.error };
      }
    }
    if (rateLimits && serverId !== '') {
      const decision = await rateLimits.check({ serverId });
      if (!decision.allowed) return this.limited(decision.limit, decision.retryAfterSec, tenant);
    }
    return undefined;
  }

  private limited(limit: string, retryAfterSec: number, tenant: Tenant | undefined): Refusal {
    this.options.metrics.rateLimited.inc({ limit, tenant: tenant?.id ?? '' });
    return {
      ok: false,
      status: 429,
      error: `Rate limit exceeded (${limit.replace('_', ' ')}): retry after ${retryAfterSec} s`,
      headers: { 'Retry-After': String(retryAfterSec) },
    };
  }
}
