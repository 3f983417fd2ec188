/**
 * `push-proxy tenants usage [TENANT]`: asks the running proxy's GET /api/v1/usage (found from the same
 * configuration as the proxy's) and prints the counts as tables, or the JSON answer with --json. Anything that
 * keeps it from answering (nothing listening, bad arguments, a tenant without counts) exits with code 2.
 */
import { loadStartupConfig } from '../config/load';
import { isDay, NO_TENANT, type OutcomeCounts, type UsageAnswer } from '../usage/counts';
import { USAGE_PATH } from '../usage/routes';
import { isValidTenantId } from '../tenants/keys';
import { getAdminJson } from './admin-client';
import { CommandError, EXIT_CHECK_FAILED } from './errors';

export const TENANTS_USAGE_HELP = `Usage:
  push-proxy tenants usage [TENANT] [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--json] [--config FILE]

Asks the running proxy (its AdminListenAddress, else its ListenAddress) for the notifications it answered,
per tenant, UTC day, platform type and outcome (OK, REMOVE, FAIL), and prints them.
  TENANT           only this tenant ("${NO_TENANT}": notifications sent without a tenant)
  --from, --to     the first and last day (default: every day kept, UsageRetentionDays)
  --json           print the API's JSON answer
  --config FILE    the proxy's configuration, found as the proxy finds it by default
Exit code 0 with the counts; 2 when the proxy cannot be asked, the arguments are wrong, or TENANT has no counts.`;

export interface TenantsUsageArgs {
  tenant?: string;
  from?: string;
  to?: string;
  json: boolean;
  help: boolean;
}

export function parseTenantsUsageArgs(argv: readonly string[]): TenantsUsageArgs {
  const parsed: TenantsUsageArgs = { json: false, help: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--help' || arg === '-h') parsed.help = true;
    else if (arg === '--json') parsed.json = true;
    else if (!arg.startsWith('-') || arg === NO_TENANT) {
      if (parsed.tenant !== undefined) usageError(`one tenant at most, got ${JSON.stringify(parsed.tenant)} and ${JSON.stringify(arg)}`);
      if (arg !== NO_TENANT && !isValidTenantId(arg)) usageError(`${JSON.stringify(arg)} is not a tenant id`);
      parsed.tenant = arg;
    } else {
      const equals = arg.indexOf('=');
      const name = equals < 0 ? arg : arg.slice(0, equals);
      if (name !== '--from' && name !== '--to') usageError(`unknown option ${JSON.stringify(name)}`);
      const value = equals < 0 ? argv[++i] : arg.slice(equals + 1);
      if (value === undefined || !isDay(value)) usageError(`${name} takes a date written YYYY-MM-DD, not ${JSON.stringify(value ?? '')}`);
      parsed[name === '--from' ? 'from' : 'to'] = value;
    }
  }
  if (parsed.from && parsed.to && parsed.from > parsed.to) usageError(`--from ${parsed.from} is after --to ${parsed.to}`);
  return parsed;
}

/** `argv`: the arguments after "tenants usage"; `configArgs`: the --config given, for the configuration search. */
export async function runTenantsUsage(
  argv: readonly string[],
  configArgs: readonly string[],
  env: Record<string, string | undefined>,
  cwd: string,
): Promise<string> {
  const args = parseTenantsUsageArgs(argv);
  if (args.help) return TENANTS_USAGE_HELP;
  const { config } = loadStartupConfig(configArgs, env, cwd);
  const params = new URLSearchParams();
  for (const name of ['tenant', 'from', 'to'] as const) if (args[name] !== undefined) params.set(name, args[name]);
  const query = params.toString() ? `?${params}` : '';
  const { url, status, body } = await getAdminJson(config, `${USAGE_PATH}${query}`);
  if (status !== 200) {
    const error = (body as { error?: unknown } | null)?.error;
    throw new CommandError(
      `the proxy at ${url} answered ${status}: ${typeof error === 'string' ? error : JSON.stringify(body)}`,
      EXIT_CHECK_FAILED,
    );
  }
  const answer = body as UsageAnswer;
  if (args.tenant !== undefined && !answer.tenants.some((t) => t.tenant === args.tenant)) {
    throw new CommandError(
      `no notifications of tenant ${JSON.stringify(args.tenant)} counted from ${answer.from} to ${answer.to} (is the tenant id right? ` +
        `"push-proxy tenants usage" without one lists every tenant with counts).`,
      EXIT_CHECK_FAILED,
    );
  }
  return args.json ? JSON.stringify(answer, null, 2) : formatUsage(answer);
}

/** The answer as two tables: totals per tenant, then per day, tenant and platform. */
export function formatUsage(answer: UsageAnswer): string {
  const heading = `Usage from ${answer.from} to ${answer.to} (UTC days; ${answer.store} store, ${answer.retentionDays} days kept)`;
  if (answer.tenants.length === 0) return `${heading}\n\nNo notifications counted.`;
  const outcomes = (c: OutcomeCounts) => [String(c.OK), String(c.REMOVE), String(c.FAIL), String(c.total)];
  return [
    heading,
    '',
    ...table(
      ['TENANT', 'OK', 'REMOVE', 'FAIL', 'TOTAL'],
      answer.tenants.map((t) => [t.tenant, ...outcomes(t)]),
      1,
    ),
    '',
    ...table(
      ['DAY', 'TENANT', 'PLATFORM', 'OK', 'REMOVE', 'FAIL', 'TOTAL'],
      answer.days.map((d) => [d.day, d.tenant, d.platform, ...outcomes(d)]),
      3,
    ),
  ].join('\n');
}

/** Columns from `firstNumber` on are counts, aligned to the right. */
function table(header: string[], rows: string[][], firstNumber: number): string[] {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  return [header, ...rows].map((row) =>
    row
      .map((cell, c) => (c >= firstNumber ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!)))
      .join('  ')
      .trimEnd(),
  );
}

function usageError(problem: string): never {
  throw new CommandError(`tenants usage: ${problem}\n\n${TENANTS_USAGE_HELP}`, EXIT_CHECK_FAILED);
}
