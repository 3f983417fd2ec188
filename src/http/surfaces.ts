/**
 * What each listener serves. One listener (AdminListenAddress empty) serves everything, as before, except in
 * hosted mode, whose public listener never serves /metrics or the inspector. With an admin listener the public one
 * keeps the push API, /healthz, /version and a /readyz that says only the status (load balancers probe the public
 * port); the admin listener serves /metrics, /readyz with its details, the inspector and the operator's API (usage, trace).
 */
import type { ProxyConfig } from '../config/types';

export interface ListenerRoutes {
  /** send_push, ack and the original's root page. */
  pushApi: boolean;
  /** /readyz: with each entry, the tenants and the rate-limit store, or the status alone. */
  readiness: 'details' | 'status';
  metrics: boolean;
  inspector: boolean;
  /** The operator's JSON API: usage per tenant (/api/v1/usage) and the trace of recent notifications (/api/v1/trace). */
  operatorApi: boolean;
}

export interface ListenerSurfaces {
  public: ListenerRoutes;
  /** Undefined when there is no admin listener. */
  admin: ListenerRoutes | undefined;
}

export function listenerSurfaces(
  config: Pick<ProxyConfig, 'Mode' | 'EnableMetrics' | 'Inspector' | 'AdminListenAddress'>,
): ListenerSurfaces {
  if (!config.AdminListenAddress) {
    // A hosted service's public port faces the internet: its metrics and every tenant's notifications stay off it.
    const operatorPagesPublic = config.Mode !== 'hosted';
    return {
      public: {
        pushApi: true,
        readiness: 'details',
        metrics: operatorPagesPublic && config.EnableMetrics,
        inspector: operatorPagesPublic && config.Inspector,
        operatorApi: operatorPagesPublic,
      },
      admin: undefined,
    };
  }
  return {
    public: { pushApi: true, readiness: 'status', metrics: false, inspector: false, operatorApi: false },
    admin: { pushApi: false, readiness: 'details', metrics: config.EnableMetrics, inspector: config.Inspector, operatorApi: true },
  };
}
