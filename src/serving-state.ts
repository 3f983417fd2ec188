/**
 * What one configuration builds for a running instance: a service per configured entry, the tenants, the rate
 * limits, access control, the dispatcher and the request handlers on top of them, and the TLS context the public
 * listener serves. A reload builds a whole new one beside the one serving, with every start-up check, and the
 * instance switches to it only if that succeeded (src/instance.ts). What the instance keeps for its whole life
 * (listeners, metrics, the trace and the trackers) comes in as `InstanceParts`.
 */
import type https from 'node:https';
import type { RequestListener } from 'node:http';
import type { Logger } from 'pino';
import type { ProxyConfig } from './config/types';
import { PushDispatcher, type DeliveryObserver } from './delivery/dispatcher';
import { retryBounds, type Clock } from './delivery/retry';
import { AccessControl } from './http/access';
import { createHttpApp, type HttpAppDeps } from './http/app';
import { loadTlsOptions, servedCertificateNotAfter, trustedProxyMatcher } from './http/listener';
import { listenerSurfaces } from './http/surfaces';
import type { NotificationInspector } from './inspect/inspector';
import type { ProxyMetrics } from './metrics';
import type { PushAck } from './notification';
import { cidrMatcher } from './net/addresses';
import { createServices, type ConfiguredServices } from './platforms/registry';
import { RateLimitGate } from './ratelimit/gate';
import { rateLimitSettings, rateLimitsActive } from './ratelimit/settings';
import { TenantStore } from './tenants/store';
import type { WatchedCertificate } from './tls/expiry';
import type express from 'express';

/** What the instance owns for its whole life and every serving state shares. */
export interface InstanceParts {
  logger: Logger;
  metrics: ProxyMetrics;
  /** CAs trusted for peers this process started itself (the test-mode sandbox). */
  trustedCa?: string[];
  env: Record<string, string | undefined>;
  clock?: Clock;
  inspector?: NotificationInspector;
  /** Hears every answered notification (the trace and the inspector, usage). */
  observe?: DeliveryObserver;
  /** Results carry each attempt, for the trace. */
  traceAttempts: boolean;
  /** A device's delivery receipt (an ack), for the trace. */
  onReceipt?: (ack: PushAck) => void;
  /** The operator's API routers, mounted where a listener serves it. */
  operatorRouters?: readonly express.Router[];
  metricsText?: () => Promise<string>;
  version: HttpAppDeps['version'];
  draining: () => boolean;
  /** Facts about the instance itself for /readyz (the last reload). */
  instanceDetails: () => Record<string, unknown>;
}

export interface ServingState {
  readonly config: ProxyConfig;
  readonly configured: ConfiguredServices;
  readonly tenants: TenantStore | undefined;
  readonly rateLimits: RateLimitGate | undefined;
  /** The handlers of the public and (with AdminListenAddress) admin listeners. */
  readonly publicApp: RequestListener;
  readonly adminApp: RequestListener | undefined;
  /** The public listener's certificate, key and client CAs, read and checked; undefined without TLS. */
  readonly tls: https.ServerOptions | undefined;
  /** Certificates that end: APNs certificate entries and the inbound TLS certificate. */
  readonly expiring: WatchedCertificate[];
  /** Closes what this state opened, except the parts `successor` took over (tenants, rate limits). */
  close(successor?: ServingState): Promise<void>;
}

/**
 * Builds everything `config` asks for, checked as at start-up (a ConfigError names the problem). `previous`:
 * the state serving now, whose tenants and rate-limit store are kept when their settings did not change (their
 * counters and caches survive a reload; the tenants file has its own watch).
 */
export async function buildServingState(config: ProxyConfig, parts: InstanceParts, previous?: ServingState): Promise<ServingState> {
  const { logger, metrics } = parts;
  // Everything this build opened, closed again if a later step fails.
  const opened: Array<() => unknown> = [];
  try {
    const bounds = retryBounds(config.SendTimeoutSec, config.RetryTimeoutSec);
    const trustedProxies = config.TrustedProxies.length > 0 ? trustedProxyMatcher(config.TrustedProxies) : undefined;
    const allowedClients = config.AllowedClients.length > 0 ? cidrMatcher(config.AllowedClients, 'AllowedClients') : undefined;
    const tls = config.TLSCertFile ? loadTlsOptions(config) : undefined;
    const configured = createServices(
      config,
      {
        logger,
        ...bounds,
        trustedCa: parts.trustedCa,
        outboundProxy: config.OutboundProxy || undefined,
        env: parts.env,
        entryMetrics: (platform, type) => metrics.entryMetrics(platform, type),
        clock: parts.clock,
        traceAttempts: parts.traceAttempts,
      },
      { metrics },
    );
    opened.push(() => closeServices(configured));

    const keepTenants = previous?.tenants && previous.config.TenantsFile === config.TenantsFile;
    const tenants = keepTenants
      ? previous.tenants
      : config.TenantsFile
        ? await TenantStore.open(config.TenantsFile, { logger })
        : undefined;
    if (tenants && !keepTenants) opened.push(() => tenants.close());

    const rateSettings = rateLimitSettings(config);
    const keepRateLimits = previous?.rateLimits && rateLimitIdentity(previous.config) === rateLimitIdentity(config);
    let rateLimits = keepRateLimits ? previous.rateLimits : undefined;
    if (!rateLimits && rateLimitsActive(config)) {
      const gate = new RateLimitGate({
        settings: rateSettings,
        store:
          config.RateLimitStore.Type === 'redis'
            ? { type: 'redis', url: config.RateLimitStore.URL, fallbackDivisor: config.RateLimitStore.FallbackDivisor }
            : { type: 'memory' },
        logger,
        onFallbackChange: (active) => metrics.rateLimitFallback.set(active ? 1 : 0),
      });
      opened.push(() => gate.close());
      await gate.ready();
      rateLimits = gate;
    }

    const requireHttps = config.Mode === 'hosted';
    const access =
      allowedClients || tenants || rateLimits || requireHttps
        ? new AccessControl({ allowedClients, requireHttps, tenants, rateLimits, metrics, logger })
        : undefined;

    const surfaces = listenerSurfaces(config);
    const gate = rateLimits;
    const appDeps: HttpAppDeps = {
      dispatcher: new PushDispatcher(configured.services, metrics, logger, parts.observe),
      routes: surfaces.public,
      inspector: parts.inspector,
      // A public test service: each evaluator sees only the server_id they ask for, never the others' messages.
      inspectorRequiresServerId: config.Mode === 'test',
      operatorRouters: parts.operatorRouters,
      onReceipt: parts.onReceipt,
      metrics,
      logger,
      metricsText: parts.metricsText,
      // The original's headers only where its throttle stands alone; real limits answer with 429s.
      throttlePerSec: gate ? undefined : config.ThrottlePerSec,
      version: parts.version,
      entryStates: configured.states,
      draining: parts.draining,
      access,
      trustedProxies,
      readinessDetails: () => ({
        ...(gate ? { rateLimits: { ...rateSettings, ...gate.status() } } : {}),
        ...(tenants ? { tenants: tenants.size } : {}),
        ...parts.instanceDetails(),
      }),
    };
    const publicApp = createHttpApp(appDeps);
    const adminApp = surfaces.admin ? createHttpApp({ ...appDeps, routes: surfaces.admin, throttlePerSec: undefined }) : undefined;

    const expiring: WatchedCertificate[] = [...configured.certificates].map(([type, credential]) => ({ name: type, ...credential }));
    if (config.TLSCertFile) {
      expiring.push({
        name: 'inbound_tls',
        notAfter: servedCertificateNotAfter(config),
        renewal: `renew TLSCertFile ${config.TLSCertFile} (the proxy serves the new certificate as soon as the file changes)`,
      });
    }

    let closing: Promise<void> | undefined;
    return {
      config,
      configured,
      tenants,
      rateLimits,
      publicApp,
      adminApp,
      tls,
      expiring,
      close(successor) {
        closing ??= Promise.all([
          closeServices(configured),
          tenants && successor?.tenants !== tenants ? tenants.close() : undefined,
          rateLimits && successor?.rateLimits !== rateLimits ? rateLimits.close() : undefined,
        ]).then(() => undefined);
        return closing;
      },
    };
  } catch (err) {
    await Promise.all(opened.reverse().map((close) => close()));
    throw err;
  }
}

function closeServices(configured: ConfiguredServices): Promise<unknown> {
  return Promise.all([...configured.services.values()].map((service) => service.close()));
}

/** The rate-limit settings and store: equal identities keep the running gate and its counters. */
function rateLimitIdentity(config: ProxyConfig): string {
  return JSON.stringify({ limits: rateLimitSettings(config), active: rateLimitsActive(config), store: config.RateLimitStore });
}
