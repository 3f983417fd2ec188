/**
 * `push-proxy tenants add|list|revoke`: finds the TenantsFile (--tenants-file, PUSH_PROXY_TENANTS_FILE, or the
 * configuration's TenantsFile), then edits it (`tenants usage` asks the running proxy instead: tenants-usage.ts). Each function takes the file and parsed arguments
 * and returns the text to print; a running proxy picks the change up by itself (it polls the file).
 * Problems with the arguments or a tenant are CommandError (print the message, no stack); problems with
 * the file itself are ConfigError.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { CommandError } from './errors';
import { runTenantsUsage } from './tenants-usage';
import { ConfigError } from '../config/errors';
import { findConfigFile, loadConfigFile } from '../config/load';
import { checkTenantId, generateTenantKey, hashKey } from '../tenants/keys';
import { parseTenantsFile, serializeTenantsFile, TENANTS_FILE_VERSION, type TenantsFileData } from '../tenants/file';

export const TENANTS_USAGE = `Usage:
  push-proxy tenants add <tenant-id> [--server-id ID]... [--platform TYPE]... [--rate N]
  push-proxy tenants list
  push-proxy tenants revoke <tenant-id> [--key N]
  push-proxy tenants usage [<tenant-id>] [--from DAY] [--to DAY] [--json]

  add      adds a tenant and prints its key, once; for an existing tenant, adds a new key (rotation)
           and replaces the restrictions given
             --server-id ID   allow only this Mattermost server_id (repeat for several; default: any)
             --platform TYPE  allow only this platform type, e.g. apple_rn (repeat; default: any)
             --rate N         requests per second for this tenant (default: the proxy's)
  list     lists tenants and their keys, without secrets
  revoke   revokes a tenant, or with --key N only its key number N as "list" shows it
  usage    notifications per tenant, day, platform and outcome, asked of the running proxy
           ("push-proxy tenants usage --help")

Tenant ids: 1 to 63 lowercase letters, digits, "_" or "-", starting with a letter or digit.
The file edited is the configuration's TenantsFile; a running proxy reloads it by itself.`;

/** The command line's entry: finds the tenants file, then runs the subcommand on it. */
export async function runTenants(argv: readonly string[], env: Record<string, string | undefined>, cwd: string): Promise<string> {
  const rest: string[] = [];
  const configArgs: string[] = [];
  let file: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--tenants-file') file = argv[++i];
    else if (arg.startsWith('--tenants-file=')) file = arg.slice('--tenants-file='.length);
    else if (arg === '--config' || arg === '-config') configArgs.push(arg, argv[++i] ?? '');
    else if (arg.startsWith('--config=') || arg.startsWith('-config=')) configArgs.push(arg);
    else rest.push(arg);
  }
  // Usage asks the running proxy: it needs the configuration, not the tenants file.
  if (rest[0] === 'usage') return runTenantsUsage(rest.slice(1), configArgs, env, cwd);
  if (rest.length === 0 || rest.includes('--help') || rest.includes('-h')) return TENANTS_USAGE;
  file ??= env.PUSH_PROXY_TENANTS_FILE || undefined;
  if (!file) {
    const configFile = findConfigFile(configArgs, env, cwd);
    if (configFile) file = loadConfigFile(configFile, env).config.TenantsFile || undefined;
  }
  if (!file) {
    throw new ConfigError(
      `no tenants file: give --tenants-file FILE, set PUSH_PROXY_TENANTS_FILE, or set TenantsFile in the config (--config FILE).\n${TENANTS_USAGE}`,
    );
  }
  return runTenantsCommand(file, rest);
}

export interface TenantsAddOptions {
  id: string;
  serverIds?: string[];
  platforms?: string[];
  ratePerSec?: number;
}

export interface TenantsRevokeOptions {
  /** The key's number as `tenants list` shows it, starting at 1. */
  keyIndex?: number;
}

export type TenantsCommand =
  ({ command: 'add' } & TenantsAddOptions) | { command: 'list' } | ({ command: 'revoke'; id: string } & TenantsRevokeOptions);

export function parseTenantsArgs(argv: readonly string[]): TenantsCommand {
  const [command, ...rest] = argv;
  const positional: string[] = [];
  const options = new Map<string, string[]>();
  const takesValue: Record<string, readonly string[]> = { add: ['--server-id', '--platform', '--rate'], list: [], revoke: ['--key'] };
  if (command === undefined) usageError('a command is needed');
  if (!(command in takesValue)) usageError(`unknown command ${JSON.stringify(command)}`);
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i]!;
    if (!arg.startsWith('-')) {
      positional.push(arg);
      continue;
    }
    const equals = arg.indexOf('=');
    const name = equals < 0 ? arg : arg.slice(0, equals);
    if (!takesValue[command]!.includes(name)) usageError(`unknown option ${JSON.stringify(name)} for "${command}"`);
    const value = equals < 0 ? rest[++i] : arg.slice(equals + 1);
    if (value === undefined || value === '') usageError(`${name} needs a value`);
    options.set(name, [...(options.get(name) ?? []), value]);
  }
  const single = (name: string): string | undefined => {
    const values = options.get(name);
    if (values && values.length > 1) usageError(`${name} is given more than once`);
    return values?.[0];
  };

  if (command === 'list') {
    if (positional.length > 0) usageError(`"list" takes no arguments, got ${JSON.stringify(positional[0])}`);
    return { command: 'list' };
  }
  if (positional.length !== 1)
    usageError(`"${command}" needs exactly one tenant id${positional.length > 1 ? `, got ${positional.length}` : ''}`);
  const id = positional[0]!;
  try {
    checkTenantId(id);
  } catch (err) {
    usageError((err as Error).message);
  }

  if (command === 'revoke') {
    const key = single('--key');
    if (key === undefined) return { command: 'revoke', id };
    if (!/^[1-9]\d{0,5}$/.test(key)) usageError(`--key takes a key number as "list" shows it (1, 2, …), not ${JSON.stringify(key)}`);
    return { command: 'revoke', id, keyIndex: Number(key) };
  }

  const parsed: TenantsCommand = { command: 'add', id };
  const serverIds = options.get('--server-id');
  if (serverIds) parsed.serverIds = [...new Set(serverIds)];
  const platforms = options.get('--platform');
  if (platforms) {
    const suffixed = platforms.find((p) => p.includes('-v'));
    // Restrictions match the platform type; "apple_rn-v2" would match nothing and refuse every request.
    if (suffixed)
      usageError(
        `--platform takes a platform type without its version suffix: "${suffixed.slice(0, suffixed.indexOf('-v'))}", not "${suffixed}"`,
      );
    parsed.platforms = [...new Set(platforms)];
  }
  const rate = single('--rate');
  if (rate !== undefined) {
    if (!/^\d+(\.\d+)?$/.test(rate) || Number(rate) <= 0)
      usageError(`--rate takes requests per second above 0, not ${JSON.stringify(rate)}`);
    parsed.ratePerSec = Number(rate);
  }
  return parsed;
}

/** Parses `argv` (the arguments after "tenants") and runs the command on `file`. */
export async function runTenantsCommand(file: string, argv: readonly string[]): Promise<string> {
  const parsed = parseTenantsArgs(argv);
  switch (parsed.command) {
    case 'add':
      return tenantsAdd(file, parsed);
    case 'list':
      return tenantsList(file);
    case 'revoke':
      return tenantsRevoke(file, parsed.id, parsed);
  }
}

export async function tenantsAdd(file: string, options: TenantsAddOptions): Promise<string> {
  try {
    checkTenantId(options.id);
  } catch (err) {
    throw new CommandError((err as Error).message);
  }
  const data = (await readTenants(file)) ?? { version: TENANTS_FILE_VERSION, tenants: [] };
  const key = generateTenantKey(options.id);
  const keyEntry = { hash: await hashKey(key), created: new Date().toISOString(), revoked: false };

  let tenant = data.tenants.find((t) => t.id === options.id);
  const rotation = tenant !== undefined;
  if (tenant) {
    if (tenant.revoked) {
      throw new CommandError(
        `tenant "${tenant.id}" is revoked, so a new key would be refused too. Choose another id, or set its "revoked" to false in ${file} first.`,
      );
    }
    tenant.keys.push(keyEntry);
  } else {
    tenant = { id: options.id, keys: [keyEntry], revoked: false };
    data.tenants.push(tenant);
  }
  const changed: string[] = [];
  if (options.serverIds) {
    tenant.serverIds = [...options.serverIds];
    changed.push('server ids');
  }
  if (options.platforms) {
    tenant.platforms = [...options.platforms];
    changed.push('platforms');
  }
  if (options.ratePerSec !== undefined) {
    tenant.ratePerSec = options.ratePerSec;
    changed.push('rate');
  }
  await writeTenants(file, data);

  const keyNumber = tenant.keys.length;
  const stillActive = tenant.keys.filter((k) => !k.revoked).length - 1;
  const lines = rotation
    ? [
        `Added key ${keyNumber} to tenant "${tenant.id}" in ${file}${changed.length > 0 ? `, and set its ${changed.join(', ')}` : ''}.`,
        ...(stillActive > 0
          ? [
              `Its ${stillActive} other active key${stillActive === 1 ? '' : 's'} keep${stillActive === 1 ? 's' : ''} working until revoked (push-proxy tenants revoke ${tenant.id} --key N).`,
            ]
          : []),
      ]
    : [`Added tenant "${tenant.id}" to ${file}.`];
  lines.push(
    '',
    'Its key, shown this once: it cannot be shown again (only its hash is stored). Keep it now:',
    '',
    `  ${key}`,
    '',
    "Set the Mattermost server's Push Notification Server to (with this proxy's host):",
    '',
    `  https://${tenant.id}:${key}@push.example.com`,
    '',
    `or send the header "Authorization: Bearer <key>".`,
  );
  return lines.join('\n') + '\n';
}

export async function tenantsList(file: string): Promise<string> {
  const data = await readExistingTenants(file);
  if (data.tenants.length === 0) return `No tenants in ${file}. Add one with: push-proxy tenants add <tenant-id>\n`;
  const tenantRows = data.tenants.map((t) => {
    const revokedKeys = t.keys.filter((k) => k.revoked).length;
    return [
      t.id,
      `${t.keys.length - revokedKeys} active, ${revokedKeys} revoked`,
      t.serverIds?.join(',') ?? 'any',
      t.platforms?.join(',') ?? 'any',
      t.ratePerSec === undefined ? 'default' : String(t.ratePerSec),
      t.revoked ? 'revoked' : 'active',
    ];
  });
  const keyRows = data.tenants.flatMap((t) =>
    t.keys.map((k, i) => [t.id, String(i + 1), k.created, k.revoked ? 'revoked' : t.revoked ? 'active (tenant revoked)' : 'active']),
  );
  return (
    [
      `Tenants in ${file}:`,
      '',
      ...table(['TENANT', 'KEYS', 'SERVER IDS', 'PLATFORMS', 'RATE/S', 'STATUS'], tenantRows),
      '',
      ...table(['TENANT', 'KEY', 'CREATED', 'STATUS'], keyRows),
    ].join('\n') + '\n'
  );
}

export async function tenantsRevoke(file: string, id: string, options: TenantsRevokeOptions = {}): Promise<string> {
  const data = await readExistingTenants(file);
  const tenant = data.tenants.find((t) => t.id === id);
  if (!tenant) {
    const known = data.tenants.map((t) => t.id);
    throw new CommandError(
      `tenant ${JSON.stringify(id)} is not in ${file}${known.length > 0 ? ` (tenants: ${known.join(', ')})` : ' (it has no tenants)'}.`,
    );
  }
  const reload = 'A running proxy refuses it once it reloads the file, within a few seconds.';
  if (options.keyIndex === undefined) {
    if (tenant.revoked) return `Tenant "${id}" was already revoked.\n`;
    tenant.revoked = true;
    await writeTenants(file, data);
    return `Revoked tenant "${id}": every one of its keys is refused. ${reload}\n`;
  }
  const key = tenant.keys[options.keyIndex - 1];
  if (!Number.isInteger(options.keyIndex) || !key) {
    throw new CommandError(
      `tenant "${id}" has no key ${options.keyIndex}: its keys are ${tenant.keys.length === 0 ? 'none' : `1 to ${tenant.keys.length}`} (see push-proxy tenants list).`,
    );
  }
  if (key.revoked) return `Key ${options.keyIndex} of tenant "${id}" was already revoked.\n`;
  key.revoked = true;
  await writeTenants(file, data);
  const active = tenant.keys.filter((k) => !k.revoked).length;
  const left =
    active === 0
      ? ` Tenant "${id}" has no active key left: add one with "push-proxy tenants add ${id}".`
      : ` ${active} active key${active === 1 ? '' : 's'} left.`;
  return `Revoked key ${options.keyIndex} of tenant "${id}".${left} ${reload}\n`;
}

function usageError(problem: string): never {
  throw new CommandError(`${problem}\n\n${TENANTS_USAGE}`);
}

async function readTenants(file: string): Promise<TenantsFileData | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    throw new ConfigError(`TenantsFile ${file} cannot be read (${code ?? (err as Error).message}). Check its path and permissions.`);
  }
  return parseTenantsFile(text, file);
}

async function readExistingTenants(file: string): Promise<TenantsFileData> {
  const data = await readTenants(file);
  if (!data) throw new ConfigError(`TenantsFile ${file} does not exist. Create it with "push-proxy tenants add <tenant-id>".`);
  return data;
}

/** Temp file then rename: the proxy polling the file sees the old content or the new, never half of it. */
async function writeTenants(file: string, data: TenantsFileData): Promise<void> {
  const text = serializeTenantsFile(data, file);
  const dir = path.dirname(file);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const temp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(temp, 'wx', 0o600);
  try {
    await handle.writeFile(text);
    await handle.chmod(0o600); // whatever the umask
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(temp, file);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  return [header, ...rows].map((row) => row.map((cell, c) => (c === row.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  '));
}
