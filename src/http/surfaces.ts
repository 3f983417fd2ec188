/**
 * What each listener serves. One listener (AdminListenAddress empty) serves everything, as before, except in
 * hosted mode, whose public listener never serves /metrics or the inspector. With an admin listener the public one
 * keeps the push API, /healthz, /version and a /readyz that says only the status (load balancers probe the public
 * port); the admin listener serves /metrics, /readyz with its details and the inspector.
 */
import type { ProxyConfig } from '../config/types';

export interface ListenerRoutes {
  /** send_push, ack and the original's root page. */
  pushApi: boolean;
  /** /readyz: with each entry, the tenants and the rate-limit store, or the status alone. */
  readiness: 'details' | 'status';
  metrics: boolean;
  inspector: boolean;
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
      },
      admin: undefined,
    };
  }
  return {
    public: { pushApi: true, readiness: 'status', metrics: false, inspector: false },
    admin: { pushApi: false, readiness: 'details', metrics: config.EnableMetrics, inspector: config.Inspector },
  };
}
