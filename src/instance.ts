/**
 * Assembles one proxy instance from a loaded configuration: services per configured entry, the dispatcher,
 * the HTTP server. Everything it builds it owns and closes; nothing is global.
 */
import type http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { ConfigError } from './config/errors';
import { adminListenAddress, parseListenAddress, type LoadedConfig } from './config/load';
import type { ProxyConfig } from './config/types';
import { retryBounds, type Clock } from './delivery/retry';
import type { EntryState } from './delivery/types';
import { DRAIN_MARGIN_MS, gracefulCloser, RequestTracker, type RequestUnderWay } from './http/drain';
import { createListener } from './http/listener';
import { SEND_PUSH_PATH } from './http/push-api';
import { listenerSurfaces } from './http/surfaces';
import { ProxyMetrics } from './metrics';
import { localQueries, type OperatorQueries } from './operator-queries';
import { credentialFilesOf } from './platforms/registry';
import { compareForReload, RESTART_KEYS } from './reload/changes';
import { FilesWatch, versionsOf } from './reload/file-watch';
import { buildServingState, type InstanceParts, type ServingState } from './serving-state';
import { CertificateExpiryWatch, type WatchedCertificate } from './tls/expiry';
import { buildInfo } from './version';
import { composeObservers } from './delivery/observers';
import { openUsageStore } from './usage/store';
import { usageRouter } from './usage/routes';
import { instanceTrace } from './trace';

/** How the last reload went, for /readyz. */
export interface ReloadStatus {
  at: string;
  /** `SIGHUP`, `file changed (…)`. */
  trigger: string;
  result: 'reloaded' | 'refused';
  error?: string;
}

export interface ReloadResult {
  /** `unchanged`: there was nothing to reload from (the built-in configuration), or the instance is closing. */
  result: 'reloaded' | 'refused' | 'unchanged';
  error?: string;
}

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
  /**
   * Where a reload reads the configuration from: SIGHUP calls `reload()`, and a change to the file or to a file it
   * names (credentials, the TLS certificate) reloads on its own. Absent: the configuration is built in, nothing to reload.
   */
  reload?: { configFile: string; load: () => LoadedConfig; pollIntervalMs?: number };
}

export interface ProxyInstance {
  readonly url: string;
  readonly port: number;
  readonly server: http.Server;
  readonly metrics: ProxyMetrics;
  /** The admin listener (AdminListenAddress): /metrics, /readyz with its details, the inspector; undefined without one. */
  readonly admin: { readonly url: string; readonly port: number; readonly server: http.Server } | undefined;
  /** The configuration in use (the last one loaded successfully). */
  readonly config: ProxyConfig;
  /**
   * Loads the configuration again and switches to it if every start-up check passes; otherwise logs why, counts
   * it, and keeps serving as before. New notifications use the new state; those under way finish on the old one.
   */
  reload(trigger?: string): Promise<ReloadResult>;
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
  const bounds = retryBounds(config.SendTimeoutSec, config.RetryTimeoutSec);
  const metrics = new ProxyMetrics({ sendTimeoutSec: bounds.sendTimeoutMs / 1000 });
  // Where the trace and usage stores register their answers.
  const queries = options.queries ?? localQueries();
  // The trace of recent notifications (and the inspector, a view of it): kept across reloads.
  const trace = instanceTrace(config, queries);
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
    const surfaces = listenerSurfaces(config);
    const publicTracker = new RequestTracker();
    const adminTracker = new RequestTracker();
    let lastReload: ReloadStatus | undefined;
    // Usage per tenant (GET /api/v1/usage), counted for every answered notification; kept across reloads.
    const usage = openUsageStore(config, { logger, queries });
    closers.push(() => usage.close());
    const parts: InstanceParts = {
      logger,
      metrics,
      trustedCa: options.trustedCa,
      env: options.env ?? process.env,
      clock: options.clock,
      inspector: trace.inspector,
      traceAttempts: trace.store !== undefined,
      observe: composeObservers(trace.store?.record, usage.record),
      onReceipt: trace.onReceipt,
      operatorRouters: [usageRouter(usage, config.UsageRetentionDays), trace.router],
      metricsText: options.metricsText,
      version: { ...buildInfo(), mode: config.Mode, config: options.configSource ?? 'built-in' },
      draining: () => publicTracker.draining,
      instanceDetails: () => (lastReload ? { reload: lastReload } : {}),
    };

    let state = await buildServingState(config, parts);
    closers.push(() => state.close());
    metrics.watchEntries(() => state.configured.watched);
    metrics.configReloadedAt.set(Math.floor(Date.now() / 1000));

    // Certificates that end: a gauge each, and warnings in the log as the end nears.
    const expiryWatch = new CertificateExpiryWatch(state.expiring, logger);
    const showExpiry = (certificates: readonly WatchedCertificate[]): void => {
      metrics.certificateExpiry.reset();
      for (const { name, notAfter } of certificates)
        metrics.certificateExpiry.set({ certificate: name }, Math.floor(notAfter.getTime() / 1000));
    };
    showExpiry(state.expiring);
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
        // Each request goes to the handlers of the state serving when it arrives.
        adminTracker.wrap((req, res) => state.adminApp!(req, res)),
        logger,
      );
      listenerClosers.push(gracefulCloser(adminServer, adminTracker));
      const port = await listen(adminServer, adminAddress);
      admin = { url: listenerUrl(adminServer, 'http'), port, server: adminServer };
    }

    const server = createListener(
      config,
      publicTracker.wrap((req, res) => state.publicApp(req, res)),
      logger,
    );
    listenerClosers.push(gracefulCloser(server, publicTracker));
    const port = await listen(server, options.listen ?? parseListenAddress(config.ListenAddress));
    let closing: Promise<void> | undefined;

    // Old states still finishing the sends they were given; each closes once those have their answers.
    const retiring = new Set<Promise<void>>();
    const retire = (old: ServingState, successor: ServingState): void => {
      // A send_push that arrived before the switch may still be reading its body, then sending: bounded by both timers.
      const boundMs =
        old.config.RequestTimeoutSec * 1000 +
        retryBounds(old.config.SendTimeoutSec, old.config.RetryTimeoutSec).sendTimeoutMs +
        DRAIN_MARGIN_MS;
      let timer: NodeJS.Timeout | undefined;
      const bound = new Promise<void>((resolve) => (timer = setTimeout(resolve, boundMs).unref()));
      const done = Promise.race([publicTracker.whenAnswered((path) => path === SEND_PUSH_PATH), bound])
        .then(() => {
          clearTimeout(timer);
          return old.close(successor);
        })
        .catch((err: unknown) => logger.error({ err }, 'closing the services replaced by a reload failed'))
        .finally(() => retiring.delete(done));
      retiring.add(done);
    };

    const files = (running: ProxyConfig): string[] =>
      [options.reload?.configFile, ...credentialFilesOf(running), running.TLSCertFile, running.TLSKeyFile, running.TLSClientCAFile].filter(
        (file): file is string => Boolean(file),
      );

    /**
     * Loads the configuration again, builds a whole new state from it with every start-up check, and switches to it;
     * anything wrong leaves the running state as it is. One reload at a time.
     */
    const reloadNow = async (trigger: string): Promise<ReloadResult> => {
      const load = options.reload?.load;
      if (!load) {
        logger.info(`${trigger}: no configuration file to reload (the built-in test configuration is in use)`);
        return { result: 'unchanged' };
      }
      const running = state.config;
      const levelBefore = logger.level;
      let next: ServingState;
      let loaded: LoadedConfig;
      try {
        loaded = load();
        const changes = compareForReload(running, loaded.config);
        if (changes.refusal) throw new ConfigError(changes.refusal);
        for (const warning of loaded.warnings) logger.warn(warning);
        if (changes.needRestart.length > 0) {
          logger.warn(
            { keys: changes.needRestart },
            `${trigger}: ${changes.needRestart.join(', ')} changed, which takes a restart; the rest of the new configuration is applied now`,
          );
        }
        // Set before the build, so the new services' loggers already log at the new level.
        logger.level = loaded.config.LogLevel;
        next = await buildServingState({ ...loaded.config, ...restartOnly(running, loaded.config) }, parts, state);
      } catch (err) {
        logger.level = levelBefore;
        const problem = err instanceof ConfigError ? err.message : `unexpected error: ${(err as Error)?.message ?? String(err)}`;
        metrics.configReloads.inc({ result: 'refused' });
        lastReload = { at: new Date().toISOString(), trigger, result: 'refused', error: problem };
        logger.error(
          { trigger },
          `${trigger}: the new configuration was refused and the running one keeps serving: ${problem}. Fix it; the next change to the file (or SIGHUP) tries again.`,
        );
        return { result: 'refused', error: problem };
      }
      // From here on nothing can fail: the switch is whole.
      if (next.tls && state.tls && server instanceof https.Server && !sameTls(next.tls, state.tls)) server.setSecureContext(next.tls);
      const old = state;
      state = next;
      showExpiry(next.expiring);
      expiryWatch.replace(next.expiring);
      usage.configured(next.config);
      retire(old, next);
      metrics.configReloads.inc({ result: 'reloaded' });
      metrics.configReloadedAt.set(Math.floor(Date.now() / 1000));
      lastReload = { at: new Date().toISOString(), trigger, result: 'reloaded' };
      const ready = next.configured
        .states()
        .filter((entry) => entry.state === 'ready')
        .map((entry) => entry.type);
      logger.info(
        { trigger, platforms: ready },
        `${trigger}: configuration reloaded; new notifications use it, those under way finish as they began`,
      );
      return { result: 'reloaded' };
    };
    let reloading: Promise<unknown> = Promise.resolve();
    const reload = (trigger: string): Promise<ReloadResult> => {
      const result = reloading.then(() => (closing ? { result: 'unchanged' as const } : reloadNow(trigger)));
      reloading = result.catch(() => undefined);
      return result;
    };

    let watch: FilesWatch | undefined;
    if (options.reload) {
      watch = new FilesWatch(
        await versionsOf(files(state.config)),
        async (changed, seen) => {
          await reload(`file changed (${changed.join(', ')})`);
          return baselineAfter(files(state.config), seen);
        },
        options.reload.pollIntervalMs,
      );
      const stopWatching = watch;
      closers.push(() => stopWatching.close());
    }

    return {
      url: listenerUrl(server, config.TLSCertFile ? 'https' : 'http'),
      port,
      server,
      admin,
      metrics,
      get config() {
        return state.config;
      },
      get entryStates() {
        return state.configured.states();
      },
      async reload(trigger = 'reload') {
        const seen = await versionsOf(files(state.config));
        const result = await reload(trigger);
        watch?.reset(await baselineAfter(files(state.config), seen));
        return result;
      },
      startDraining: () => {
        publicTracker.beginDraining();
        adminTracker.beginDraining();
      },
      requestsUnderWay: () => [...publicTracker.describe(), ...adminTracker.describe()],
      close() {
        closing ??= (async () => {
          watch?.close();
          await reloading;
          await closeListeners();
          await Promise.all(retiring);
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

/** The keys a reload cannot change keep their running values (compareForReload warned about them). */
function restartOnly(running: ProxyConfig, next: ProxyConfig): Partial<ProxyConfig> {
  const kept: Record<string, unknown> = {};
  for (const key of RESTART_KEYS) kept[key] = running[key];
  // HTTPS or client certificates turned on or off: the listener keeps what it started with, files and all.
  if (Boolean(running.TLSCertFile) !== Boolean(next.TLSCertFile) || Boolean(running.TLSClientCAFile) !== Boolean(next.TLSClientCAFile)) {
    for (const key of ['TLSCertFile', 'TLSKeyFile', 'TLSClientCAFile'] as const) kept[key] = running[key];
  }
  return kept as Partial<ProxyConfig>;
}

/** The versions a reload read its files at, and the current ones of files it did not watch before. */
async function baselineAfter(files: string[], seen: ReadonlyMap<string, string>): Promise<Map<string, string>> {
  const fresh = await versionsOf(files.filter((file) => !seen.has(file)));
  return new Map(files.map((file) => [file, seen.get(file) ?? fresh.get(file)!]));
}

function sameTls(a: https.ServerOptions, b: https.ServerOptions): boolean {
  return String(a.cert) === String(b.cert) && String(a.key) === String(b.key) && String(a.ca) === String(b.ca);
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
