/**
 * The rate limits a configuration asks for: the mode's defaults with the config's `RateLimits` on top. Pure, and
 * apart from the gate (src/ratelimit/gate.ts), so that reading a configuration loads no Redis client.
 */
import type { ProxyConfig } from '../config/types';

/** Requests per second; 0 turns that limit off. */
export interface RateLimitSettings {
  perClientPerSec: number;
  perServerIdPerSec: number;
  perTenantPerSec: number;
}

/**
 * Defaults per mode. Denied pushes are dropped by the chat server (no retry), and one post in a big channel
 * fans out to a push per member at once, so these guard against abuse rather than shape traffic.
 * - test (public test service, anyone can reach it): 50/s per client address, 20/s per server_id,
 *   100/s per tenant: enough to try the proxy with a real server, too little to use it as free infrastructure.
 * - hosted (public multi-tenant): 1000/s per client address (several tenants' servers may share a NAT
 *   address), 500/s per server_id, 1000/s per tenant by default (tenant.ratePerSec overrides it).
 * - eas (private network, trusted chat servers): all off, as the original, whose throttle never denies.
 */
export const DEFAULT_RATE_LIMITS: Record<'hosted' | 'test' | 'eas', RateLimitSettings> = Object.freeze({
  test: Object.freeze({ perClientPerSec: 50, perServerIdPerSec: 20, perTenantPerSec: 100 }),
  hosted: Object.freeze({ perClientPerSec: 1000, perServerIdPerSec: 500, perTenantPerSec: 1000 }),
  eas: Object.freeze({ perClientPerSec: 0, perServerIdPerSec: 0, perTenantPerSec: 0 }),
});

/** Whether requests are counted at all. With tenants, a tenant's own rate applies even when every general limit is off. */
export function rateLimitsActive(config: ProxyConfig): boolean {
  return Boolean(config.TenantsFile) || Object.values(rateLimitSettings(config)).some((limit) => limit > 0);
}

/** The mode's defaults, with what the config sets on top. */
export function rateLimitSettings(config: ProxyConfig): RateLimitSettings {
  const defaults = DEFAULT_RATE_LIMITS[config.Mode];
  return {
    perClientPerSec: config.RateLimits.PerClientPerSec ?? defaults.perClientPerSec,
    perServerIdPerSec: config.RateLimits.PerServerIdPerSec ?? defaults.perServerIdPerSec,
    perTenantPerSec: config.RateLimits.PerTenantPerSec ?? defaults.perTenantPerSec,
  };
}
