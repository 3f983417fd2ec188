/**
 * `push-proxy check-config`: every check start-up makes, on the configuration start-up would read, without
 * opening a port and without contacting Apple, Google or Redis. An operator runs it before a restart (or in CI on
 * a changed configuration) and learns then, not from a stopped proxy, what would keep the proxy from starting.
 */
import { Writable } from 'node:stream';
import pino from 'pino';
import { loadStartupConfig, parseListenAddress, REQUIRE_CONFIG_FLAG } from '../config/load';
import type { ProxyConfig } from '../config/types';
import { retryBounds } from '../delivery/retry';
import { loadTlsOptions } from '../http/listener';
import type { PlatformDefinition } from '../platforms/platform';
import { entriesOf, PLATFORMS } from '../platforms/registry';
import { TenantStore } from '../tenants/store';
import { expiryStage } from '../tls/expiry';
import { CommandError, EXIT_CHECK_FAILED } from './errors';

export const CHECK_CONFIG_USAGE = `Usage: push-proxy check-config [--config FILE] [--require-config]
  Runs every check start-up runs on the configuration start-up would read (found the same way: --config,
  PUSH_PROXY_CONFIG, then the default places): keys and likely typos, every entry's credentials (keys,
  certificates, their expiry and APNs environment, service-account files), the TLS and tenants files.
  Opens no port and contacts neither Apple, Google nor Redis.
  Prints one line per entry and the warnings; exit code 0 when start-up would succeed, 2 with what to fix when not.`;

/** The report, or a ConfigError (start-up's own, exit code 2) for the first problem that would stop start-up. */
export async function runCheckConfig(argv: readonly string[], env: Record<string, string | undefined>, cwd: string): Promise<string> {
  checkArguments(argv);
  const loaded = loadStartupConfig(argv, env, cwd);
  const { config } = loaded;
  if (loaded.source === null) {
    return `no configuration file found: push-proxy would start the built-in test mode (sandbox APNs and FCM peers on this machine, nothing sent to Apple or Google). Name the file to check with --config FILE.`;
  }
  const listen = parseListenAddress(config.ListenAddress);
  const lines = [`config ${loaded.source}: ${config.Mode} mode, would listen on ${listen.host ?? 'every address'} port ${listen.port}`];
  const warnings = [...loaded.warnings];
  lines.push(...(await checkEntries(config, env, warnings)));
  if (config.TLSCertFile) {
    loadTlsOptions(config);
    lines.push(`HTTPS: TLSCertFile ${config.TLSCertFile} and TLSKeyFile ${config.TLSKeyFile} ready`);
  }
  if (config.TenantsFile) {
    const tenants = await TenantStore.open(config.TenantsFile, { logger: pino({ level: 'silent' }) });
    tenants.close();
    lines.push(`TenantsFile ${config.TenantsFile}: ${tenants.size} tenant(s)`);
  }
  if (config.RateLimitStore.Type === 'redis')
    lines.push(`RateLimitStore: redis at ${redactUrl(config.RateLimitStore.URL)} (not contacted)`);
  lines.push(...warnings.map((warning) => `warning: ${warning}`));
  lines.push('OK: start-up would succeed with this configuration');
  return lines.join('\n');
}

/**
 * Builds each entry's service as start-up does (credentials read and checked, nothing connected: the
 * transports connect at their first send) and closes it again. One line per entry; notices become warnings.
 */
async function checkEntries(config: ProxyConfig, env: Record<string, string | undefined>, warnings: string[]): Promise<string[]> {
  const lines: string[] = [];
  const deps = {
    // What a service logs while being built is information about traffic (an outbound proxy), not a finding.
    logger: pino({ level: 'warn' }, new Writable({ write: (line: Buffer, _encoding, done) => (warnings.push(logMessage(line)), done()) })),
    ...retryBounds(config.SendTimeoutSec, config.RetryTimeoutSec),
    outboundProxy: config.OutboundProxy || undefined,
    env,
  };
  for (const definition of PLATFORMS as readonly PlatformDefinition[]) {
    for (const entry of entriesOf(config, definition)) {
      const result = definition.create(entry, deps);
      const name = `${definition.id} entry "${entry.Type}" (${definition.settingsKey})`;
      if ('skipped' in result) {
        lines.push(`${name}: skipped: ${result.skipped}`);
        continue;
      }
      await result.service.close();
      warnings.push(...result.notices);
      // The running proxy warns from 30 days ahead (src/tls/expiry.ts); a check says the same at once.
      const { certificate } = result;
      if (certificate && expiryStage(Date.now(), certificate.notAfter.getTime()) !== undefined) {
        warnings.push(`certificate of ${entry.Type} expires on ${certificate.notAfter.toISOString()}: ${certificate.renewal}`);
      }
      lines.push(`${name}: ready`);
    }
  }
  return lines;
}

function logMessage(line: Buffer): string {
  try {
    return String((JSON.parse(line.toString()) as { msg?: unknown }).msg);
  } catch {
    return line.toString().trim();
  }
}

/** A Redis URL without its password, which the report must not print. */
function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return url;
  }
}

function checkArguments(argv: readonly string[]): void {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--config' || arg === '-config') i++;
    else if (!arg.startsWith('--config=') && !arg.startsWith('-config=') && arg !== REQUIRE_CONFIG_FLAG) {
      throw new CommandError(`check-config: unexpected argument "${arg}"\n${CHECK_CONFIG_USAGE}`, EXIT_CHECK_FAILED);
    }
  }
}
