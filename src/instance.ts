/**
 * Assembles one proxy instance from a loaded configuration: services per configured entry, the dispatcher,
 * the HTTP server. Everything it builds it owns and closes; nothing is global.
 */
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { adminListenAddress, parseListenAddress } from './config/load';
import type { ProxyConfig } from './config/types';
import { PushDispatcher } from './delivery/dispatcher';
import { retryBounds, type Clock } from './delivery/retry';
import type { EntryState } from './delivery/types';
import { AccessControl } from './http/access';
import { createHttpApp, type HttpAppDeps } from './http/app';
import { gracefulCloser, RequestTracker, type RequestUnderWay } from './http/drain';
import { createListener, servedCertificateNotAfter, trustedProxyMatcher } from './http/listener';
import { listenerSurfaces } from './http/surfaces';
import { cidrMatcher } from './net/addresses';
import { RateLimitGate } from './ratelimit/gate';
import { rateLimitSettings, rateLimitsActive } from './ratelimit/settings';
import { TenantStore } from './tenants/store';
import { ProxyMetrics } from './metrics';
import { createServices } from './platforms/registry';
import { CertificateExpiryWatch, type WatchedCertificate } from './tls/expiry';
import { buildInfo } from './version';
import { localQueries, type OperatorQueries } from './operator-queries';
import { instanceTrace } from './trace';

export interface StartOptions {
  logger: Logger;
  /** CAs trusted for peers this process started itself (the test-mode sandbox). */
  trustedCa?: string[];
  /** Where HTTPS_PROXY / HTTP_PROXY / NO_PROXY come from; process.env by default. */
  env?: Record<string, string | undefined>;
  /** Overrides ListenAddress (tests listen on an ephemeral port). */
  listen?: { host?: string; port: number };
  /** /metrics text when this instance is one of several workers (summed over all of them). */
  metricsText?: () => Promise<string>;
  /** The configuration file read, for /version; null or absent: none (the built-in test configuration). */
  configSource?: string | null;
  /** The retry loop's clock; the system clock unless a test drives it. */
  clock?: Clock;
  /** With Workers: questions put to every worker's memory (trace, usage); this process alone otherwise. */
  queries?: OperatorQueries;
}

export interface ProxyInstance {
  readonly url: string;
  readonly port: number;
  readonly server: http.Server;
  readonly metrics: ProxyMetrics;
  /** The admin listener (AdminListenAddress): /metrics, /readyz with its details, the inspector; undefined without one. */
  readonly admin: { readonly url: string; readonly port: number; readonly server: http.Server } | undefined;
  /** Each configured entry as it stands now (start-up checks, then the providers' answers). */
  readonly entryStates: readonly EntryState[];
  /** From now on /readyz answers 503 "draining" and answers carry `Connection: close`; requests are still served. */
  startDraining(): void;
  /** Requests accepted and not yet answered, for the log line of a forced stop. */
  requestsUnderWay(): RequestUnderWay[];
  /**
   * Stops listening, waits until every accepted request has its answer (each bounded by SendTimeoutSec),
   * closes the connections left (idle, or still sending headers), then everything else the instance opened.
   */
  close(): Promise<void>;
}

export async function startInstance(config: ProxyConfig, options: StartOptions): Promise<ProxyInstance> {
  const { logger } = options;
  // Where the trace and usage stores register their answers.
  const queries = options.queries ?? localQueries();
  const trace = instanceTrace(config, queries);
  const bounds = retryBounds(config.SendTimeoutSec, config.RetryTimeoutSec);
  const metrics = new ProxyMetrics({ sendTimeoutSec: bounds.sendTimeoutMs / 1000 });
  // Everything opened so far, closed again if a later step fails.
  const closers: Array<() => unknown> = [];
  const closeAll = () =>
    Promise.all(
      closers
        .splice(0)
        .reverse()
        .map((close) => close()),
    );

  // The listeners opened so far, closed one after the other in reverse order (set once they exist).
  let closeListeners = async (): Promise<void> => {};

  try {
    const trustedProxies = config.TrustedProxies.length > 0 ? trustedProxyMatcher(config.TrustedProxies) : undefined;
    const allowedClients = config.AllowedClients.length > 0 ? cidrMatcher(config.AllowedClients, 'AllowedClients') : undefined;
    const { services, states, watched, certificates } = createServices(
      config,
      {
        logger,
        ...bounds,
        trustedCa: options.trustedCa,
        outboundProxy: config.OutboundProxy || undefined,
        env: options.env ?? process.env,
        entryMetrics: (platform, type) => metrics.entryMetrics(platform, type),
        clock: options.clock,
        traceAttempts: trace.store !== undefined,
      },
      { metrics },
    );
    metrics.watchEntries(() => watched);
    closers.push(() => Promise.all([...services.values()].map((s) => s.close())));

    const tenants = config.TenantsFile ? await TenantStore.open(config.TenantsFile, { logger }) : undefined;
    if (tenants) closers.push(() => tenants.close());

    const rateSettings = rateLimitSettings(config);
    const rateLimits = rateLimitsActive(config)
      ? new RateLimitGate({
          settings: rateSettings,
          store:
            config.RateLimitStore.Type === 'redis'
              ? { type: 'redis', url: config.RateLimitStore.URL, fallbackDivisor: config.RateLimitStore.FallbackDivisor }
              : { type: 'memory' },
          logger,
          onFallbackChange: (active) => metrics.rateLimitFallback.set(active ? 1 : 0),
        })
      : undefined;
    if (rateLimits) {
      closers.push(() => rateLimits.close());
      await rateLimits.ready();
    }

    const requireHttps = config.Mode === 'hosted';
    const access =
      allowedClients || tenants || rateLimits || requireHttps
        ? new AccessControl({ allowedClients, requireHttps, tenants, rateLimits, metrics, logger })
        : undefined;

    const surfaces = listenerSurfaces(config);
    const publicTracker = new RequestTracker();
    const adminTracker = new RequestTracker();
    const appDeps: HttpAppDeps = {
      dispatcher: new PushDispatcher(services, metrics, logger, trace.store?.record),
      routes: surfaces.public,
      inspector: trace.inspector,
      onReceipt: trace.onReceipt,
      operatorRouters: [trace.router],
      // A public test service: each evaluator sees only the server_id they ask for, never the others' messages.
      inspectorRequiresServerId: config.Mode === 'test',
      metrics,
      logger,
      metricsText: options.metricsText,
      // The original's headers only where its throttle stands alone; real limits answer with 429s.
      throttlePerSec: rateLimits ? undefined : config.ThrottlePerSec,
      version: { ...buildInfo(), mode: config.Mode, config: options.configSource ?? 'built-in' },
      entryStates: states,
      draining: () => publicTracker.draining,
      access,
      trustedProxies,
      readinessDetails: () => ({
        ...(rateLimits ? { rateLimits: { ...rateSettings, ...rateLimits.status() } } : {}),
        ...(tenants ? { tenants: tenants.size } : {}),
      }),
    };

    // Certificates that end: a gauge each, and warnings in the log as the end nears.
    const expiring: WatchedCertificate[] = [...certificates].map(([type, credential]) => ({ name: type, ...credential }));
    if (config.TLSCertFile) {
      expiring.push({
        name: 'inbound_tls',
        notAfter: servedCertificateNotAfter(config),
        renewal: `renew TLSCertFile ${config.TLSCertFile} and restart the proxy`,
      });
    }
    for (const { name, notAfter } of expiring) metrics.certificateExpiry.set({ certificate: name }, Math.floor(notAfter.getTime() / 1000));
    const expiryWatch = new CertificateExpiryWatch(expiring, logger);
    expiryWatch.start();
    closers.push(() => expiryWatch.close());
    // Opened in this order and closed in the reverse one: the public listener opens last, so traffic comes once
    // everything listens, and closes first, so the admin listener keeps answering /readyz "draining" and /metrics
    // while the public one finishes its requests.
    const listenerClosers: Array<() => Promise<void>> = [];
    closeListeners = async () => {
      for (const close of listenerClosers.splice(0).reverse()) await close();
    };
    let admin: ProxyInstance['admin'];
    const adminAddress = adminListenAddress(config);
    if (surfaces.admin && adminAddress) {
      // Plain HTTP whatever the public listener speaks: it is meant for a private network or localhost.
      const adminServer = createListener(
        { ...config, TLSCertFile: '', TLSKeyFile: '', TLSClientCAFile: '' },
        adminTracker.wrap(createHttpApp({ ...appDeps, routes: surfaces.admin, throttlePerSec: undefined })),
        logger,
      );
      listenerClosers.push(gracefulCloser(adminServer, adminTracker));
      const port = await listen(adminServer, adminAddress);
      admin = { url: listenerUrl(adminServer, 'http'), port, server: adminServer };
    }

    const server = createListener(config, publicTracker.wrap(createHttpApp(appDeps)), logger);
    listenerClosers.push(gracefulCloser(server, publicTracker));
    const port = await listen(server, options.listen ?? parseListenAddress(config.ListenAddress));
    let closing: Promise<void> | undefined;

    return {
      url: listenerUrl(server, config.TLSCertFile ? 'https' : 'http'),
      port,
      server,
      admin,
      metrics,
      get entryStates() {
        return states();
      },
      startDraining: () => {
        publicTracker.beginDraining();
        adminTracker.beginDraining();
      },
      requestsUnderWay: () => [...publicTracker.describe(), ...adminTracker.describe()],
      close() {
        closing ??= (async () => {
          await closeListeners();
          await closeAll();
        })();
        return closing;
      },
    };
  } catch (err) {
    await closeListeners();
    await closeAll();
    throw err;
  }
}

function listen(server: http.Server, address: { host?: string; port: number }): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(address.port, address.host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** The URL a listening server is reached at; a wildcard address is shown as localhost. */
function listenerUrl(server: http.Server, scheme: 'http' | 'https'): string {
  const address = server.address() as AddressInfo;
  const host =
    address.family === 'IPv6'
      ? address.address === '::'
        ? 'localhost'
        : `[${address.address}]`
      : address.address === '0.0.0.0'
        ? 'localhost'
        : address.address;
  return `${scheme}://${host}:${address.port}`;
}
