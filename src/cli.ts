#!/usr/bin/env node
/**
 * `push-proxy [--config FILE]`: loads the configuration (or, with none, starts test mode with the built-in
 * sandbox peers), starts the proxy (in `Workers` processes when asked) and shuts it down cleanly on SIGTERM/SIGINT.
 * Problems the operator must fix end the process with code 2 and a message saying what to do.
 */
import cluster from 'node:cluster';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { loadConfigFile, loadStartupConfig, type LoadedConfig } from './config/load';
import { ConfigError } from './config/errors';
import { CERTS_USAGE, runCerts } from './commands/certs';
import { CHECK_CONFIG_USAGE, runCheckConfig } from './commands/check-config';
import { runDevCert } from './commands/dev-cert';
import { runHealthcheck } from './commands/healthcheck';
import { runSendTest } from './commands/send-test';
import { runTenants } from './commands/tenants';
import { runTrace, TRACE_USAGE } from './commands/trace';
import { CommandError } from './commands/errors';
import { retryBounds } from './delivery/retry';
import { drainDeadlineMs, forcesExit } from './http/drain';
import { createLogging, flushLogsOnExit, type Logging } from './logging';
import { startInstance, type ProxyInstance, type StartOptions } from './instance';
import { tuneHeap } from './runtime';
import { startSandbox, type Sandbox } from './sandbox/start';
import { buildInfo } from './version';
import { resolveWorkerCount, runPrimary, singleProcessReason, WorkerLink, workerNotices } from './workers';

export const EXIT_CONFIG_ERROR = 2;

const USAGE = `Usage: push-proxy [--config FILE] [--require-config] [--version]
       push-proxy tenants add|list|revoke|usage … [--tenants-file FILE | --config FILE]
       push-proxy dev-cert [--out DIR] [--host NAME]...
       push-proxy healthcheck [--config FILE]
       push-proxy check-config [--config FILE]
       push-proxy certs inspect FILE | convert IN.p12 OUT.pem [--password PASSWORD]
       push-proxy send-test --platform TYPE --token TOKEN [--message TEXT] [--dry-run] [--config FILE]
       push-proxy trace ACK_ID | --post-id ID | --server-id ID [--config FILE] [--json]

  --config FILE     configuration file (also: PUSH_PROXY_CONFIG). Without one, the first that exists of
                    config/push-proxy.json, then the original's mattermost-push-proxy.json in the
                    temporary directory (/tmp), config/, ../config/ and the working directory;
                    with none, test mode with the built-in sandbox APNs and FCM peers
  --require-config  with no configuration file found, stop (exit code 2) instead of starting test mode
                    (also: PUSH_PROXY_REQUIRE_CONFIG=true; the Docker image sets it). PUSH_PROXY_MODE=test
                    still starts the built-in test mode
  --version         print build information
  tenants           manage hosted mode's tenants and their keys, see their usage ("push-proxy tenants --help")
  dev-cert          make a development CA, server and client certificate for HTTPS and mTLS
  healthcheck       exit 0 if the local instance answers /healthz (the container's HEALTHCHECK)
  check-config      every check start-up makes, without listening or contacting Apple or Google
  certs             what an APNs key or certificate file holds; a .p12 turned into PEM ("push-proxy certs --help")
  send-test         send one notification through a configured entry and print the provider's answer
                    ("push-proxy send-test --help")
  trace             what became of a recent notification: attempts, answer, receipt ("push-proxy trace --help")
`;

async function main(argv: string[]): Promise<void> {
  if (argv[0] === 'tenants') {
    process.stdout.write((await runTenants(argv.slice(1), process.env, process.cwd())) + '\n');
    return;
  }
  if (argv[0] === 'healthcheck') {
    // A container runtime reserves exit code 2 of a health check: a configuration it cannot read is unhealthy (1).
    process.exitCode = (await runHealthcheck(argv.slice(1), process.env, process.cwd()).catch((err: unknown) => {
      if (!(err instanceof ConfigError)) throw err;
      process.stderr.write(`push-proxy healthcheck: configuration error: ${err.message}\n`);
      return false;
    }))
      ? 0
      : 1;
    return;
  }
  if (argv[0] === 'send-test') {
    // Exit code 2 for anything but the provider accepting the notification: an operator's script tells the two apart.
    const report = await runSendTest(argv.slice(1), process.env, process.cwd()).catch((err: unknown) => {
      if (!(err instanceof CommandError)) throw err;
      process.stderr.write(`push-proxy send-test: ${err.message}\n`);
      return undefined;
    });
    if (report) process.stdout.write(report.text + '\n');
    process.exitCode = report?.ok ? 0 : EXIT_CONFIG_ERROR;
    return;
  }
  if (argv[0] === 'check-config' || argv[0] === 'certs') {
    const help = argv.includes('--help') || argv.includes('-h');
    const command =
      argv[0] === 'certs'
        ? { usage: CERTS_USAGE, run: () => runCerts(argv.slice(1)) }
        : { usage: CHECK_CONFIG_USAGE, run: () => runCheckConfig(argv.slice(1), process.env, process.cwd()) };
    process.stdout.write((help ? command.usage : await command.run()) + '\n');
    return;
  }
  if (argv[0] === 'trace') {
    const help = argv.includes('--help') || argv.includes('-h');
    process.stdout.write((help ? TRACE_USAGE : await runTrace(argv.slice(1), process.env, process.cwd())) + '\n');
    return;
  }
  if (argv[0] === 'dev-cert') {
    process.stdout.write(runDevCert(argv.slice(1)) + '\n');
    return;
  }
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(USAGE);
    return;
  }
  if (argv.includes('--version') || argv.includes('-version')) {
    process.stdout.write(JSON.stringify(buildInfo()) + '\n');
    return;
  }

  tuneHeap();
  const loaded = loadStartupConfig(argv, process.env, process.cwd());
  const { config } = loaded;
  if (cluster.isWorker) return runWorker(loaded);

  const logging = createLogging(config);
  flushLogsOnExit(logging);
  const { logger } = logging;
  for (const warning of loaded.warnings) logger.warn(warning);
  const workers = resolveWorkerCount(config.Workers);
  if (workers > 1) {
    const reason = singleProcessReason(config, loaded.source === null);
    if (!reason) return runWorkers(loaded, workers, logging);
    logger.warn(`Workers is ${config.Workers}, but ${reason}: running one process`);
  }
  await runSingleProcess(loaded, logging);
}

/** SIGHUP's first part: logrotate moved the log file away, so open it again under its name. */
function reopenLogFile(logging: Logging): void {
  const file = logging.reopenFile();
  if (file) logging.logger.info(`SIGHUP received: log file ${file} reopened`);
}

/**
 * The whole proxy in this process. SIGTERM/SIGINT drain it: /readyz answers 503 at once, requests are served
 * for DrainGraceSec more, then the listener closes and every accepted request gets its answer; a second
 * signal, or the deadline (DrainGraceSec + SendTimeoutSec + 5 s), ends the process at once with code 1.
 */
async function runSingleProcess(loaded: LoadedConfig, logging: Logging, link?: WorkerLink): Promise<void> {
  const { config } = loaded;
  const { logger } = logging;
  let sandbox: Sandbox | undefined;
  let instance: ProxyInstance | undefined;
  let stopping = false;
  let stoppingSince = 0;
  const deadlineMs = drainDeadlineMs(config.DrainGraceSec, retryBounds(config.SendTimeoutSec, config.RetryTimeoutSec).sendTimeoutMs);
  const forceExit = (why: string): void => {
    const cut = instance?.requestsUnderWay() ?? [];
    logger.error({ requests: cut }, `${why}: exiting now, ${cut.length} request(s) under way cut without an answer`);
    logger.flush();
    process.exit(1);
  };
  const shutdown = async (signal: string): Promise<void> => {
    // A worker hears Ctrl-C from the terminal and SIGTERM from the primary: one shutdown either way; the
    // primary is the one that forces. Alone, a second signal a second or more later is the operator insisting.
    if (stopping) {
      if (link) return;
      if (forcesExit(stoppingSince, performance.now())) forceExit(`${signal} received again`);
      else
        logger.info(
          `${signal} received again at once: the same request to stop (a terminal and npm both pass Ctrl-C on); send it again to stop at once`,
        );
      return;
    }
    stopping = true;
    stoppingSince = performance.now();
    setTimeout(() => forceExit(`still stopping ${deadlineMs / 1000} s after ${signal} (DrainGraceSec + SendTimeoutSec + 5 s)`), deadlineMs);
    instance?.startDraining();
    logger.info(
      `${signal} received: /readyz answers 503; serving ${config.DrainGraceSec} s more (DrainGraceSec), then finishing requests under way and stopping. A second signal (a second or more later) stops at once.`,
    );
    await sleep(config.DrainGraceSec * 1000);
    logger.info({ requests: instance?.requestsUnderWay().length ?? 0 }, 'listener closing: answering the requests under way');
    await instance?.close();
    await sandbox?.close();
    logger.info('stopped: every accepted request was answered');
    logger.flush();
    process.exit(0);
  };
  process.on('SIGTERM', (s) => void shutdown(s));
  process.on('SIGINT', (s) => void shutdown(s));
  // SIGHUP: reopen the log file (logrotate), then reload the configuration and the files it names.
  process.on('SIGHUP', () => {
    reopenLogFile(logging);
    if (instance) void instance.reload('SIGHUP');
    else logger.warn('SIGHUP received while starting: nothing reloaded; send it again once the proxy listens');
  });

  if (loaded.source === null) {
    sandbox = await startSandbox(logger.child({ component: 'sandbox' }));
    Object.assign(config, sandbox.settings);
  }

  try {
    instance = await startInstance(config, {
      logger,
      trustedCa: sandbox?.trustedCa,
      metricsText: link?.metricsText,
      queries: link?.queries,
      configSource: loaded.source,
      reload: reloadFrom(loaded),
    });
  } catch (err) {
    await sandbox?.close();
    throw err;
  }
  const platforms = instance.entryStates.filter((e) => e.state === 'ready').map((e) => e.type);
  if (link) {
    link.shareRegistry(instance.metrics.registry);
    link.reportReady(instance.url, platforms, instance.admin?.url);
    return;
  }
  printBanner(logger, loaded, { url: instance.url, platforms, adminUrl: instance.admin?.url }, 1, sandbox);
}

/** Where a reload reads the configuration: the file start-up read, with the same environment overrides. */
function reloadFrom(loaded: LoadedConfig): StartOptions['reload'] {
  const file = loaded.source;
  if (file === null) return undefined;
  return { configFile: file, load: () => loadConfigFile(file, process.env) };
}

/** One of several workers: the primary already logged the config's warnings and prints the banner. */
function runWorker(loaded: LoadedConfig): Promise<void> {
  const logging = createLogging(loaded.config);
  flushLogsOnExit(logging);
  return runSingleProcess(loaded, { ...logging, logger: logging.logger.child({ worker: cluster.worker?.id }) }, new WorkerLink());
}

async function runWorkers(loaded: LoadedConfig, count: number, logging: Logging): Promise<void> {
  const { config } = loaded;
  const { logger } = logging;
  for (const notice of workerNotices(config, count)) logger.warn(notice);
  const code = await runPrimary({
    count,
    logger,
    onListening: (first) => printBanner(logger, loaded, first, count, undefined),
    shutdownTimeoutMs: drainDeadlineMs(config.DrainGraceSec, retryBounds(config.SendTimeoutSec, config.RetryTimeoutSec).sendTimeoutMs),
    onHangup: () => reopenLogFile(logging),
  });
  logger.flush();
  process.exit(code);
}

function printBanner(
  logger: Logger,
  loaded: LoadedConfig,
  listening: { url: string; platforms: string[]; adminUrl?: string },
  workers: number,
  sandbox: Sandbox | undefined,
): void {
  const { config } = loaded;
  const { url, platforms, adminUrl } = listening;
  const processes = workers > 1 ? ` with ${workers} workers` : '';
  const source = loaded.source ?? 'built-in';
  logger.info(
    { mode: config.Mode, config: source, url, platforms, workers },
    `Push Proxy listening on ${url} in ${config.Mode} mode${processes} (config: ${source})`,
  );
  if (adminUrl) {
    logger.info(
      { admin_url: adminUrl },
      `admin listener on ${adminUrl}: /metrics, /readyz with its details, the inspector (keep it private)`,
    );
  }
  if (config.Mode === 'test') {
    const inspector = config.Inspector
      ? `; each chat server's notifications are shown at ${adminUrl ?? url}/inspect?server_id=YOUR_SERVER_ID (the server_id it sends)`
      : '';
    logger.warn(`TEST MODE: a test service, not for production traffic${inspector}`);
  }
  if (sandbox) {
    logger.info(
      `No configuration file, so notifications go to the built-in sandbox peers (APNs ${sandbox.apns.url}, FCM ${sandbox.fcm.url}), never to Apple or Google. ` +
        `Try: curl -s ${url}/api/v1/send_push -d '{"platform":"apple_rn","server_id":"demo","device_id":"${'ab'.repeat(32)}","type":"message","message":"hello :wave:"}'`,
    );
  }
}

function isListenError(err: unknown): err is NodeJS.ErrnoException {
  const code = (err as NodeJS.ErrnoException)?.code;
  return code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL';
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof CommandError) {
    process.stderr.write(`push-proxy: ${err.message}\n`);
    process.exit(err.exitCode);
  }
  if (err instanceof ConfigError) {
    process.stderr.write(`push-proxy: configuration error: ${err.message}\n`);
    process.exit(EXIT_CONFIG_ERROR);
  }
  if (isListenError(err)) {
    process.stderr.write(
      `push-proxy: cannot listen (${err.code}: ${err.message}). Stop what holds the port, or set ListenAddress (or PUSH_PROXY_LISTEN_ADDRESS) and, if set, AdminListenAddress (or PUSH_PROXY_ADMIN_LISTEN_ADDRESS).\n`,
    );
    process.exit(EXIT_CONFIG_ERROR);
  }
  process.stderr.write(`push-proxy: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
