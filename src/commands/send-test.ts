/**
 * `push-proxy send-test --platform TYPE --token TOKEN [--message TEXT] [--dry-run] [--config FILE]`: sends one
 * notification through the configured credentials of the entry whose Type is TYPE, over the proxy's own delivery
 * path (the entry's service from src/platforms/registry.ts, its retry loop and transport), and reports the
 * provider's answer. The configuration is found as start-up finds it; test mode's built-in sandbox is refused,
 * since it would only test itself. Device tokens are shown shortened, keys and passwords never.
 */
import type { Logger } from 'pino';
import { loadStartupConfig } from '../config/load';
import type { ProxyConfig } from '../config/types';
import { parsePlatform } from '../delivery/platform-string';
import { retryBounds } from '../delivery/retry';
import type { ServiceDeps } from '../delivery/service';
import type { DeliveryResult } from '../delivery/types';
import { createLogger, redactToken } from '../logging';
import { emptyPushNotification, type PushNotification } from '../notification';
import type { PlatformDefinition } from '../platforms/platform';
import { createServices, entriesOf, PLATFORMS } from '../platforms/registry';
import { CommandError } from './errors';

export const SEND_TEST_USAGE = `Usage: push-proxy send-test --platform TYPE --token TOKEN [--message TEXT] [--dry-run] [--config FILE]

Sends one notification through the configured credentials of the entry whose Type is TYPE, and prints the
provider's answer: OK, REMOVE or FAIL, the reason and the provider's code, the attempts, how long it took,
and the provider's id for it (APNs' apns-id, FCM's message name).

  --platform TYPE   the entry's Type (apple_rn, android_rn, …); a suffix such as -v2 sets the app version
  --token TOKEN     the device token to send to (shown shortened in the output)
  --message TEXT    the notification's text (default: "${'Push Proxy test notification'}")
  --dry-run         send nothing: FCM only validates the message (validate_only); for APNs the credentials
                    are loaded and checked as at start-up, and the request that would be sent is printed
  --config FILE     configuration file (also: PUSH_PROXY_CONFIG; otherwise found as the proxy finds it)

Exit code 0 when the provider accepted the notification (or, with --dry-run, the request is valid),
2 otherwise: an unknown TYPE, no configuration file, credentials refused, a REMOVE or a FAIL.`;

const DEFAULT_MESSAGE = 'Push Proxy test notification';
/** The server id the notification carries: what a provider-side log or the app shows as its sender. */
const SEND_TEST_SERVER_ID = 'push-proxy-send-test';
/** How each service's transport names the provider's id for a send, for the report. */

export interface SendTestOptions {
  /** As given: the entry's Type, optionally with an app-version suffix (`apple_rn-v2`). */
  platform: string;
  token: string;
  message: string;
  dryRun: boolean;
  /** `--config FILE` as given, for the configuration search start-up uses. */
  configArgs: string[];
}

/** What the command prints, and whether it succeeded (exit code 0) or not (2). */
export interface SendTestReport {
  text: string;
  ok: boolean;
}

/** The arguments, or 'help'. A CommandError says what is wrong, with the usage. */
export function parseSendTestArgs(argv: readonly string[]): SendTestOptions | 'help' {
  if (argv.includes('--help') || argv.includes('-h')) return 'help';
  const values = new Map<string, string>();
  const configArgs: string[] = [];
  let dryRun = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf('=');
    const name = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg;
    const inline = arg.startsWith('--') && eq > 0 ? arg.slice(eq + 1) : undefined;
    if (name === '--dry-run' && inline === undefined) {
      dryRun = true;
      continue;
    }
    if (!['--platform', '--token', '--message', '--config', '-config'].includes(name)) usageError(`unknown argument "${arg}"`);
    const value = inline ?? argv[++i];
    if (value === undefined) usageError(`${name} needs a value`);
    if (name === '--config' || name === '-config') configArgs.push('--config', value);
    else values.set(name, value);
  }
  const platform = values.get('--platform');
  const token = values.get('--token');
  if (!platform) usageError('--platform TYPE is required');
  if (!token) usageError('--token TOKEN is required');
  return { platform, token, message: values.get('--message') ?? DEFAULT_MESSAGE, dryRun, configArgs };
}

function usageError(problem: string): never {
  throw new CommandError(`${problem}\n${SEND_TEST_USAGE}`);
}

/** The command line's entry: parses, loads the configuration, sends (or checks), and reports. */
export async function runSendTest(argv: readonly string[], env: Record<string, string | undefined>, cwd: string): Promise<SendTestReport> {
  const options = parseSendTestArgs(argv);
  if (options === 'help') return { text: SEND_TEST_USAGE, ok: true };
  const loaded = loadStartupConfig(options.configArgs, env, cwd);
  if (loaded.source === null) {
    throw new CommandError(
      'no configuration file found, and send-test sends through the credentials of a configured entry (without a file the proxy ' +
        'would only start its built-in test mode, whose sandbox peers deliver nothing). Give --config FILE or set PUSH_PROXY_CONFIG.',
    );
  }
  return sendTest(loaded.config, loaded.source, options, env);
}

/** One notification through the entry of `options.platform` in `config` (read from `source`). */
export async function sendTest(
  config: ProxyConfig,
  source: string,
  options: SendTestOptions,
  env: Record<string, string | undefined>,
  // Warnings and errors of the service (its entry refused, a connection failing) go to stderr, redacted as the proxy's own.
  logger: Logger = createLogger(
    { EnableConsoleLog: true, EnableFileLog: false, LogFileLocation: '', LogFormat: 'plain', LogLevel: 'warn' },
    process.stderr,
  ),
): Promise<SendTestReport> {
  const { type, appVersion } = parsePlatform(options.platform);
  const found = findEntry(config, type);
  if (!found) {
    const known = PLATFORMS.flatMap((definition) => entriesOf(config, definition).map((entry) => entry.Type));
    throw new CommandError(
      `no entry has Type "${type}" in ${source}: ` +
        (known.length > 0
          ? `the configured types are ${[...new Set(known)].join(', ')}.`
          : 'it configures no ApplePushSettings or AndroidPushSettings entry.'),
    );
  }
  const { definition, entry } = found;
  const { sendTimeoutMs, retryTimeoutMs } = retryBounds(config.SendTimeoutSec, config.RetryTimeoutSec);
  // A provider without a validate-only request gets none: its dry run builds the service (every start-up check) and never sends.
  const validateOnly = options.dryRun && definition.validatesOnly;
  const deps: ServiceDeps = { logger, sendTimeoutMs, retryTimeoutMs, outboundProxy: config.OutboundProxy || undefined, env, validateOnly };
  // Only this entry: another entry's problem is not this command's to report.
  const only = Object.fromEntries(PLATFORMS.map((p) => [p.settingsKey, p === definition ? [entry] : []]));
  const configured = createServices({ ...config, ...only } as ProxyConfig, deps);
  const service = configured.services.get(type);
  const notification = testNotification(options);
  const heading = `send-test: ${type} (${definition.settingsKey} of ${source}) to device ${redactToken(options.token)}`;
  try {
    if (!service) {
      const state = configured.states().find((s) => s.type === type);
      throw new CommandError(
        `${definition.settingsKey} entry "${type}" cannot send: ${state && 'reason' in state ? state.reason : 'no service'}.`,
      );
    }
    if (options.dryRun && !validateOnly) {
      const request = service.preview(notification, { appVersion });
      const text = [
        `${heading} (dry run: nothing was sent)`,
        'credentials: loaded and checked as at start-up',
        `would send: ${JSON.stringify(request)}`,
      ];
      return withTokenShortened({ text: text.join('\n'), ok: true }, options.token);
    }
    const started = performance.now();
    const result = await service.deliver(notification, { appVersion });
    const report = describeResult(result, definition, performance.now() - started);
    const title = validateOnly ? `${heading} (dry run: the provider was asked only to validate it, nothing was delivered)` : heading;
    return withTokenShortened({ text: [title, ...report].join('\n'), ok: result.outcome === 'OK' }, options.token);
  } finally {
    for (const watched of configured.services.values()) await watched.close();
  }
}

function findEntry(config: ProxyConfig, type: string): { definition: PlatformDefinition; entry: { Type: string } } | undefined {
  let found: { definition: PlatformDefinition; entry: { Type: string } } | undefined;
  // A later entry with the same Type replaces an earlier one, as at start-up.
  for (const definition of PLATFORMS as readonly PlatformDefinition[])
    for (const entry of entriesOf(config, definition)) if (entry.Type === type) found = { definition, entry };
  return found;
}

function testNotification(options: SendTestOptions): PushNotification {
  return {
    ...emptyPushNotification(),
    platform: options.platform,
    server_id: SEND_TEST_SERVER_ID,
    device_id: options.token,
    type: 'message',
    message: options.message,
    channel_name: 'send-test',
    sender_name: 'Push Proxy',
  };
}

/** The outcome lines: what an operator needs to tell "sent" from "refused, and why". */
function describeResult(result: DeliveryResult, definition: PlatformDefinition, elapsedMs: number): string[] {
  const lines = [
    `outcome:  ${result.outcome}`,
    `reason:   ${result.reason || '-'}`,
    `provider: ${result.providerReason ?? (result.reason || '-')}`,
  ];
  if (result.error) lines.push(`error:    ${result.error}`);
  if (result.evidence && result.evidence.kind !== 'credentials-accepted') lines.push(`advice:   ${result.evidence.advice}`);
  lines.push(`attempts: ${result.attempts}`, `took:     ${Math.round(elapsedMs)} ms`);
  lines.push(`${definition.providerIdName}: ${result.providerId ?? '-'}`);
  if (result.request !== undefined) lines.push(`request:  ${JSON.stringify(result.request)}`);
  return lines;
}

/**
 * The device token shortened wherever the report shows it: in the request, and in any text a provider answered
 * with. An operator pastes this output into tickets and chats.
 */
function withTokenShortened(report: SendTestReport, token: string): SendTestReport {
  return { ...report, text: report.text.split(token).join(redactToken(token)) };
}
