/**
 * The configuration after loading: the original's keys with its names and defaults, plus Push Proxy's own.
 * Key names stay exactly as operators write them in `mattermost-push-proxy.json`.
 */
import type { PlatformSettings } from '../platforms/registry';

export type Mode = 'test' | 'eas' | 'hosted';
export type LogFormat = 'plain' | 'json';
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

export type { AppleEntryConfig } from '../platforms/apns/config';
export type { AndroidEntryConfig } from '../platforms/fcm/config';

/** The general keys, and one entry list per delivery service (src/platforms/registry.ts). */
export interface ProxyConfig extends PlatformSettings {
  Mode: Mode;
  ListenAddress: string;
  /** A second, plain-HTTP listener for /metrics, /readyz details and the inspector; empty = none. */
  AdminListenAddress: string;
  ThrottlePerSec: number;
  ThrottleMemoryStoreSize: number;
  ThrottleVaryByHeader: string;
  EnableMetrics: boolean;
  SendTimeoutSec: number;
  RetryTimeoutSec: number;
  EnableConsoleLog: boolean;
  EnableFileLog: boolean;
  LogFileLocation: string;
  LogFormat: LogFormat;
  LogLevel: LogLevel;
  /** HTTPS: certificate and key files; with a client CA, clients must present certificates (mTLS). */
  TLSCertFile: string;
  TLSKeyFile: string;
  TLSClientCAFile: string;
  /** CIDRs of load balancers whose X-Forwarded-For/-Proto headers are believed. */
  TrustedProxies: string[];
  /** Hosted mode's tenants and their hashed keys. */
  TenantsFile: string;
  /** Requests per second; absent keys take the mode's defaults, 0 turns a limit off. */
  RateLimits: { PerClientPerSec?: number; PerServerIdPerSec?: number; PerTenantPerSec?: number };
  RateLimitStore: { Type: 'memory' | 'redis'; URL: string; FallbackDivisor: number };
  /** The notification inspector (/inspect); on by default in test mode only. */
  Inspector: boolean;
  /** CIDRs allowed to use the push API; empty = everyone. */
  AllowedClients: string[];
  /** CONNECT proxy for outbound traffic; overrides HTTPS_PROXY / HTTP_PROXY. */
  OutboundProxy: string;
  /**
   * The REMOVE guard, per configured entry: suspect REMOVEs become FAILs while most recent distinct device
   * tokens got them (src/delivery/remove-guard.ts). Absent keys take the schema's defaults.
   */
  RemoveGuard: { Enabled?: boolean; Window?: number; MinSuspect?: number; Ratio?: number; MaxAgeSec?: number };
  /** Processes serving the API on one port; "auto" = one per available core. */
  Workers: number | 'auto';
  /** After SIGTERM/SIGINT: seconds /readyz says "draining" while requests are still served, before the listener closes. */
  DrainGraceSec: number;
  /** Slow clients: whole seconds to send the headers, the whole request, and how long an idle keep-alive connection lives. */
  HeadersTimeoutSec: number;
  RequestTimeoutSec: number;
  KeepAliveTimeoutSec: number;
  /** Days of per-tenant usage counts kept. */
  UsageRetentionDays: number;
  /** Recent notifications kept per process for the trace and the inspector; 0 = none. */
  TraceCapacity: number;
  /** Open client connections per process; 0 = unlimited. */
  MaxConnections: number;
}
