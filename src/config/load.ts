/**
 * Finds, reads and validates the configuration. A superset of `mattermost-push-proxy.json`: its keys, matched
 * case-insensitively as Go does, its defaults, plus Push Proxy's own keys and environment overrides.
 * Anything an operator must fix is a ConfigError naming the key and what to do.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Ajv, { type ErrorObject } from 'ajv';
import schema from '../../config/push-proxy.schema.json';
import { ConfigError } from './errors';
import { entriesOf, PLATFORMS } from '../platforms/registry';
import type { LogFormat, Mode, ProxyConfig } from './types';

export const DEFAULT_CONFIG_FILE = 'config/push-proxy.json';
/** The original's default file name: an operator's existing file, mounted as is, must be found. */
export const ORIGINAL_CONFIG_NAME = 'mattermost-push-proxy.json';
/** With it, starting without a configuration file is an error instead of test mode (the Docker image sets it). */
export const REQUIRE_CONFIG_ENV = 'PUSH_PROXY_REQUIRE_CONFIG';
export const REQUIRE_CONFIG_FLAG = '--require-config';
export const TEST_MODE_LISTEN_ADDRESS = ':8066';

/** Environment variables for what operators change per deployment. */
export const ENV_OVERRIDES: ReadonlyArray<{
  env: string;
  key: keyof ProxyConfig;
  type: 'string' | 'integer' | 'boolean' | 'list' | 'workers';
}> = [
  { env: 'PUSH_PROXY_MODE', key: 'Mode', type: 'string' },
  { env: 'PUSH_PROXY_LISTEN_ADDRESS', key: 'ListenAddress', type: 'string' },
  { env: 'PUSH_PROXY_ADMIN_LISTEN_ADDRESS', key: 'AdminListenAddress', type: 'string' },
  { env: 'PUSH_PROXY_LOG_FORMAT', key: 'LogFormat', type: 'string' },
  { env: 'PUSH_PROXY_LOG_LEVEL', key: 'LogLevel', type: 'string' },
  { env: 'PUSH_PROXY_ENABLE_METRICS', key: 'EnableMetrics', type: 'boolean' },
  { env: 'PUSH_PROXY_SEND_TIMEOUT_SEC', key: 'SendTimeoutSec', type: 'integer' },
  { env: 'PUSH_PROXY_RETRY_TIMEOUT_SEC', key: 'RetryTimeoutSec', type: 'integer' },
  { env: 'PUSH_PROXY_ENABLE_CONSOLE_LOG', key: 'EnableConsoleLog', type: 'boolean' },
  { env: 'PUSH_PROXY_ENABLE_FILE_LOG', key: 'EnableFileLog', type: 'boolean' },
  { env: 'PUSH_PROXY_LOG_FILE_LOCATION', key: 'LogFileLocation', type: 'string' },
  { env: 'PUSH_PROXY_TLS_CERT_FILE', key: 'TLSCertFile', type: 'string' },
  { env: 'PUSH_PROXY_TLS_KEY_FILE', key: 'TLSKeyFile', type: 'string' },
  { env: 'PUSH_PROXY_TLS_CLIENT_CA_FILE', key: 'TLSClientCAFile', type: 'string' },
  { env: 'PUSH_PROXY_TRUSTED_PROXIES', key: 'TrustedProxies', type: 'list' },
  { env: 'PUSH_PROXY_TENANTS_FILE', key: 'TenantsFile', type: 'string' },
  { env: 'PUSH_PROXY_INSPECTOR', key: 'Inspector', type: 'boolean' },
  { env: 'PUSH_PROXY_ALLOWED_CLIENTS', key: 'AllowedClients', type: 'list' },
  { env: 'PUSH_PROXY_OUTBOUND_PROXY', key: 'OutboundProxy', type: 'string' },
  { env: 'PUSH_PROXY_WORKERS', key: 'Workers', type: 'workers' },
  { env: 'PUSH_PROXY_DRAIN_GRACE_SEC', key: 'DrainGraceSec', type: 'integer' },
  { env: 'PUSH_PROXY_MAX_CONNECTIONS', key: 'MaxConnections', type: 'integer' },
  { env: 'PUSH_PROXY_USAGE_RETENTION_DAYS', key: 'UsageRetentionDays', type: 'integer' },
  { env: 'PUSH_PROXY_TRACE_CAPACITY', key: 'TraceCapacity', type: 'integer' },
];

/** Sets RateLimitStore to Redis at this URL (the one nested key operators change per deployment). */
export const REDIS_URL_ENV = 'PUSH_PROXY_REDIS_URL';

export interface LoadedConfig {
  config: ProxyConfig;
  /** The file read, or null for the built-in test-mode defaults. */
  source: string | null;
  /** Things worth a log line that do not stop start-up. */
  warnings: string[];
}

type Env = Record<string, string | undefined>;

/** The general keys' schema with each delivery service's entry list added under its settings key. */
const fullSchema = {
  ...schema,
  properties: {
    ...schema.properties,
    ...Object.fromEntries(PLATFORMS.map((p) => [p.settingsKey, { type: 'array', default: [], items: p.entrySchema }])),
  },
};
const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false });
const validateConfig = ajv.compile(fullSchema);

const TOP_LEVEL_KEYS = Object.keys(fullSchema.properties);
const NESTED_OBJECT_KEYS = {
  RateLimits: Object.keys(schema.properties.RateLimits.properties),
  RateLimitStore: Object.keys(schema.properties.RateLimitStore.properties),
  RemoveGuard: Object.keys(schema.properties.RemoveGuard.properties),
} as const;

/**
 * Where a configuration is looked for when none is named, in order: ours, then the original's default name in
 * the original's places (the temporary directory, ./config, ../config, the working directory).
 * The original looks in /tmp literally; we take os.tmpdir() (which is /tmp unless TMPDIR is set) so that a test
 * can point it at a directory of its own instead of the machine's shared /tmp.
 */
export function defaultConfigCandidates(cwd: string, tmpDir: string): string[] {
  return [
    path.resolve(cwd, DEFAULT_CONFIG_FILE),
    path.resolve(tmpDir, ORIGINAL_CONFIG_NAME),
    path.resolve(cwd, 'config', ORIGINAL_CONFIG_NAME),
    path.resolve(cwd, '..', 'config', ORIGINAL_CONFIG_NAME),
    path.resolve(cwd, ORIGINAL_CONFIG_NAME),
  ];
}

export interface ConfigSearch {
  /** The file found, or null. */
  file: string | null;
  /** Every path looked at, in order (for the message when a configuration is required and none was found). */
  tried: string[];
}

/**
 * `--config FILE`, `--config=FILE` or the original's `-config FILE`, then PUSH_PROXY_CONFIG (a named file must
 * exist); with neither, the first of defaultConfigCandidates that exists.
 */
export function searchConfigFile(argv: readonly string[], env: Env, cwd: string, tmpDir = os.tmpdir()): ConfigSearch {
  let named: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--config' || arg === '-config') {
      named = argv[i + 1];
      if (named === undefined) throw new ConfigError(`${arg} needs a file name: ${arg} config/push-proxy.json`);
      i++;
    } else if (arg.startsWith('--config=') || arg.startsWith('-config=')) {
      named = arg.slice(arg.indexOf('=') + 1);
    }
  }
  named ??= env.PUSH_PROXY_CONFIG || undefined;
  if (named !== undefined) {
    // As given, then where the original looks for a bare name.
    const candidates = [path.resolve(cwd, named), path.resolve(cwd, 'config', named), path.resolve(cwd, '..', 'config', named)];
    const found = candidates.find((c) => existsSync(c));
    if (!found)
      throw new ConfigError(
        `config file ${named} not found (looked in ${candidates.join(', ')}). Check the path given with --config or PUSH_PROXY_CONFIG.`,
      );
    return { file: found, tried: candidates };
  }
  const candidates = defaultConfigCandidates(cwd, tmpDir);
  const file = candidates.find((c) => existsSync(c)) ?? null;
  if (file !== null && path.dirname(file) === path.resolve(tmpDir)) checkSharedDirectoryFile(file);
  return { file, tried: candidates };
}

/**
 * Anyone on the host may write to the temporary directory: a configuration found there (and never named) is
 * used only when this user or root owns it and no one else may change it, or a stranger's file could send
 * every notification to a server of theirs.
 */
export function checkSharedDirectoryFile(file: string, uid: number | undefined = process.getuid?.()): void {
  const stat = statSync(file);
  const owner = stat.uid === 0 || uid === undefined || stat.uid === uid;
  if (!owner || (stat.mode & 0o022) !== 0) {
    throw new ConfigError(
      `config file ${file} is in the shared temporary directory and ${owner ? 'others may write to it' : `belongs to another user (uid ${stat.uid})`}: ` +
        'it is not used. Move it to config/ (or name it with --config), or make it yours and writable by you alone (chmod go-w).',
    );
  }
}

/** The file searchConfigFile finds, or null. */
export function findConfigFile(argv: readonly string[], env: Env, cwd: string, tmpDir = os.tmpdir()): string | null {
  return searchConfigFile(argv, env, cwd, tmpDir).file;
}

/** Why a configuration file is required (`--require-config`, or PUSH_PROXY_REQUIRE_CONFIG=true), or null. */
export function configRequiredBy(argv: readonly string[], env: Env): string | null {
  if (argv.includes(REQUIRE_CONFIG_FLAG)) return REQUIRE_CONFIG_FLAG;
  const value = env[REQUIRE_CONFIG_ENV];
  if (!value) return null;
  const lower = value.toLowerCase();
  if (lower === 'true' || lower === '1') return `${REQUIRE_CONFIG_ENV}=${value}`;
  if (lower === 'false' || lower === '0') return null;
  throw new ConfigError(
    `environment ${REQUIRE_CONFIG_ENV}="${value}" must be true or false (true: refuse to start without a configuration file).`,
  );
}

/**
 * The configuration the proxy starts with: the file found, else the built-in test mode. When a file is
 * required, a missing one is a ConfigError listing every place looked at, unless test mode was asked for
 * explicitly (PUSH_PROXY_MODE=test): a fleet that mounts no file must not answer OK into sandbox peers by accident.
 */
export function loadStartupConfig(argv: readonly string[], env: Env, cwd: string, tmpDir = os.tmpdir()): LoadedConfig {
  const { file, tried } = searchConfigFile(argv, env, cwd, tmpDir);
  if (file) return loadConfigFile(file, env);
  const requiredBy = configRequiredBy(argv, env);
  if (requiredBy && env.PUSH_PROXY_MODE !== 'test') {
    throw new ConfigError(
      `no configuration file found, and ${requiredBy} requires one. Looked for:\n` +
        tried.map((c) => `  ${c}\n`).join('') +
        `Give one with --config FILE or PUSH_PROXY_CONFIG, or put it in one of those places under the name ${path.basename(DEFAULT_CONFIG_FILE)} or ${ORIGINAL_CONFIG_NAME}. ` +
        `Docker: -v /etc/push-proxy:/app/config:ro with the file named ${path.basename(DEFAULT_CONFIG_FILE)} or ${ORIGINAL_CONFIG_NAME} in /etc/push-proxy. ` +
        `Kubernetes: a ConfigMap or Secret mounted at /app/config, or PUSH_PROXY_CONFIG set to the file's path. ` +
        `To run the built-in test service without a file, set PUSH_PROXY_MODE=test.`,
    );
  }
  return builtInTestConfig(env);
}

export function loadConfigFile(file: string, env: Env): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(
      `config file ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? err}). Check its path and permissions.`,
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(
      `config file ${file} is not valid JSON: ${(err as Error).message}. Fix the syntax (a trailing comma or a missing quote is the usual cause).`,
    );
  }
  return parseConfig(raw, file, env, 'eas');
}

/** No file: test mode, served on :8066; the caller adds the sandbox peers' entries. */
export function builtInTestConfig(env: Env): LoadedConfig {
  // No load balancer watches a local demo's /readyz: Ctrl-C need not wait for one to notice.
  return parseConfig({ ListenAddress: TEST_MODE_LISTEN_ADDRESS, EnableMetrics: true, DrainGraceSec: 0 }, null, env, 'test');
}

export function parseConfig(raw: unknown, source: string | null, env: Env, defaultMode: Mode): LoadedConfig {
  const where = source ? `config file ${source}` : 'built-in config';
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(`${where} must hold a JSON object, like the original's mattermost-push-proxy.json.`);
  }
  const warnings: string[] = [];
  const config = foldKeys(raw as Record<string, unknown>, TOP_LEVEL_KEYS, '', where, warnings);
  for (const { settingsKey: list, entrySchema } of PLATFORMS) {
    const keys = Object.keys(entrySchema.properties);
    const entries = config[list];
    if (Array.isArray(entries)) {
      config[list] = entries.map((entry, i) =>
        entry !== null && typeof entry === 'object' && !Array.isArray(entry)
          ? foldKeys(entry as Record<string, unknown>, keys, `${list}[${i}].`, where, warnings)
          : entry,
      );
    }
  }
  for (const [key, keys] of Object.entries(NESTED_OBJECT_KEYS)) {
    const value = config[key];
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      config[key] = foldKeys(value as Record<string, unknown>, keys, `${key}.`, where, warnings);
    }
  }
  applyEnvOverrides(config, env);
  config.Mode ??= defaultMode;
  config.RateLimits ??= {};
  config.Inspector ??= config.Mode === 'test';
  for (const { settingsKey, modeDefaults } of PLATFORMS) {
    const entries = config[settingsKey];
    if (!modeDefaults || !Array.isArray(entries)) continue;
    for (const entry of entries) {
      if (entry !== null && typeof entry === 'object' && !Array.isArray(entry))
        modeDefaults(entry as Record<string, unknown>, config.Mode as Mode);
    }
  }

  if (!validateConfig(config)) {
    throw new ConfigError(`${where}: ${describeSchemaErrors(validateConfig.errors ?? [], config)}`);
  }
  const valid = config as unknown as ProxyConfig;
  if (valid.LogFormat !== 'json' && valid.LogFormat !== 'plain') {
    warnings.push(`LogFormat "${valid.LogFormat}" is not plain or json: using plain`);
    valid.LogFormat = 'plain' as LogFormat;
  }
  parseListenAddress(valid.ListenAddress, where);
  checkAdminListenAddress(valid, where);
  if (valid.HeadersTimeoutSec > valid.RequestTimeoutSec) {
    // node:http refuses a server whose headers may take longer than the whole request.
    throw new ConfigError(
      `${where}: HeadersTimeoutSec (${valid.HeadersTimeoutSec}) is longer than RequestTimeoutSec (${valid.RequestTimeoutSec}). Make HeadersTimeoutSec at most RequestTimeoutSec.`,
    );
  }
  checkTlsAndHosting(valid, where);
  warnHostedOperatorPages(valid, warnings);
  warnDuplicateTypes(valid, warnings);
  return { config: valid, source, warnings };
}

/**
 * Go's encoding/json matches keys case-insensitively and ignores unknown ones. We do too, except for a key
 * that is almost a known one: a typo silently ignored is an outage found late.
 */
function foldKeys(
  object: Record<string, unknown>,
  known: readonly string[],
  prefix: string,
  where: string,
  warnings: string[],
): Record<string, unknown> {
  const byLower = new Map(known.map((k) => [k.toLowerCase(), k]));
  const folded: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(object)) {
    const canonical = byLower.get(key.toLowerCase());
    if (canonical) {
      if (value !== null) folded[canonical] = value;
      continue;
    }
    const suggestion = closestKey(key, known);
    if (suggestion) {
      throw new ConfigError(`${where}: unknown key "${prefix}${key}". Did you mean "${prefix}${suggestion}"? Rename it, or remove it.`);
    }
    warnings.push(`${where}: unknown key "${prefix}${key}" ignored`);
  }
  return folded;
}

function closestKey(key: string, known: readonly string[]): string | undefined {
  const lower = key.toLowerCase().replace(/[_-]/g, '');
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const distance = editDistance(lower, candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  const allowed = Math.max(1, Math.min(3, Math.floor(lower.length / 4)));
  return bestDistance <= allowed ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}

function applyEnvOverrides(config: Record<string, unknown>, env: Env): void {
  for (const { env: name, key, type } of ENV_OVERRIDES) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    if (type === 'string') config[key] = value;
    else if (type === 'list') config[key] = value.split(/[\s,]+/).filter(Boolean);
    else if (type === 'workers') {
      if (value !== 'auto' && !/^\d+$/.test(value))
        throw new ConfigError(`environment ${name}="${value}" must be a whole number or "auto" (it sets ${key}).`);
      config[key] = value === 'auto' ? value : Number(value);
    } else if (type === 'integer') {
      if (!/^-?\d+$/.test(value)) throw new ConfigError(`environment ${name}="${value}" must be a whole number (it sets ${key}).`);
      config[key] = Number(value);
    } else {
      const lower = value.toLowerCase();
      if (!['true', 'false', '1', '0'].includes(lower))
        throw new ConfigError(`environment ${name}="${value}" must be true or false (it sets ${key}).`);
      config[key] = lower === 'true' || lower === '1';
    }
  }
  const redisUrl = env[REDIS_URL_ENV];
  if (redisUrl) config.RateLimitStore = { ...(config.RateLimitStore as object | undefined), Type: 'redis', URL: redisUrl };
}

function describeSchemaErrors(errors: ErrorObject[], config: Record<string, unknown>): string {
  const first = errors[0];
  if (!first) return 'invalid configuration';
  const key =
    first.instancePath
      .slice(1)
      .split('/')
      .map((p) => (/^\d+$/.test(p) ? `[${p}]` : `.${p}`))
      .join('')
      .replace(/^\./, '') || '(top level)';
  const actual = JSON.stringify(
    first.instancePath
      .split('/')
      .slice(1)
      .reduce<unknown>((o, p) => (o as Record<string, unknown>)?.[p], config),
  );
  if (key === 'Workers') return `Workers must be a whole number from 1 to 256, or "auto" (one per available core), not ${actual}.`;
  switch (first.keyword) {
    case 'type':
      return `${key} must be ${first.params.type === 'integer' ? 'a whole number' : `a ${first.params.type}`}, not ${actual}. Fix its value.`;
    case 'enum':
      return `${key} must be one of ${(first.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}, not ${actual}.`;
    case 'pattern':
      return key === 'OutboundProxy'
        ? `${key} must be http://[user:password@]host:port (an HTTP CONNECT proxy), not ${actual}.`
        : `${key} must be https://host:port with no path, not ${actual}.`;
    default:
      return `${key} ${first.message ?? 'is invalid'} (${actual}).`;
  }
}

export interface ListenAddress {
  host: string | undefined;
  port: number;
}

/** Go's `host:port` syntax: ":8066", "127.0.0.1:8066", "[::1]:8066"; empty means port 80, as the original. */
export function parseListenAddress(address: string, where = 'config', key = 'ListenAddress'): ListenAddress {
  if (address === '') return { host: undefined, port: 80 };
  const match = /^(?:\[([^\]]*)\]|([^:]*)):(\w*)$/.exec(address);
  const portText = match?.[3] ?? '';
  const named: Record<string, number> = { http: 80, https: 443, '': 80 };
  const port = /^\d+$/.test(portText) ? Number(portText) : named[portText];
  if (!match || port === undefined || port > 65535) {
    throw new ConfigError(`${where}: ${key} "${address}" must be host:port, such as ":8066" or "127.0.0.1:8066".`);
  }
  const host = match[1] ?? match[2];
  return { host: host === '' ? undefined : host, port };
}

/** The admin listener's address, or undefined when there is none (AdminListenAddress empty). */
export function adminListenAddress(config: Pick<ProxyConfig, 'AdminListenAddress'>, where = 'config'): ListenAddress | undefined {
  return config.AdminListenAddress === '' ? undefined : parseListenAddress(config.AdminListenAddress, where, 'AdminListenAddress');
}

const WILDCARD_HOSTS = new Set([undefined, '0.0.0.0', '::']);

/**
 * The admin listener must not take the public port: both on one port would fail to listen, or worse, with
 * two addresses of one host, serve the operator's pages where the push API is. Port 0 (any free port) never clashes.
 */
function checkAdminListenAddress(config: ProxyConfig, where: string): void {
  const admin = adminListenAddress(config, where);
  if (!admin) return;
  const listen = parseListenAddress(config.ListenAddress, where);
  const sameHost = admin.host === listen.host || WILDCARD_HOSTS.has(admin.host) || WILDCARD_HOSTS.has(listen.host);
  if (admin.port !== 0 && admin.port === listen.port && sameHost) {
    throw new ConfigError(
      `${where}: AdminListenAddress "${config.AdminListenAddress}" uses the port of ListenAddress "${config.ListenAddress}" (${listen.port}). Give the admin listener a port of its own, such as "127.0.0.1:9066".`,
    );
  }
}

/**
 * Hosted mode serves the public internet: /metrics and the inspector (every tenant's notifications) are never
 * on its public listener, so an operator who turned them on learns where they are, or that they are nowhere.
 */
function warnHostedOperatorPages(config: ProxyConfig, warnings: string[]): void {
  if (config.Mode !== 'hosted') return;
  const pages = [config.EnableMetrics ? '/metrics (EnableMetrics)' : '', config.Inspector ? 'the inspector (Inspector)' : ''].filter(
    Boolean,
  );
  if (pages.length === 0) return;
  if (!config.AdminListenAddress) {
    warnings.push(
      `hosted mode never serves ${pages.join(' or ')} on the public listener, and AdminListenAddress is not set: they are not served. ` +
        'Set AdminListenAddress to a private address (such as "127.0.0.1:9066") to serve them there.',
    );
  } else if (config.Inspector) {
    warnings.push(
      `Inspector is on in hosted mode: anyone who can reach the admin listener (${config.AdminListenAddress}) reads every tenant's notifications. Keep it private.`,
    );
  }
}

function checkTlsAndHosting(config: ProxyConfig, where: string): void {
  if (Boolean(config.TLSCertFile) !== Boolean(config.TLSKeyFile)) {
    throw new ConfigError(
      `${where}: HTTPS needs both TLSCertFile and TLSKeyFile; only ${config.TLSCertFile ? 'TLSCertFile' : 'TLSKeyFile'} is set.`,
    );
  }
  if (config.TLSClientCAFile && !config.TLSCertFile) {
    throw new ConfigError(`${where}: TLSClientCAFile (client certificates) needs HTTPS: set TLSCertFile and TLSKeyFile too.`);
  }
  if (config.Mode === 'hosted') {
    if (!config.TLSCertFile && config.TrustedProxies.length === 0) {
      throw new ConfigError(
        `${where}: hosted mode serves the public internet and needs HTTPS: set TLSCertFile and TLSKeyFile, or, behind a TLS-terminating load balancer, TrustedProxies (its CIDRs).`,
      );
    }
    if (!config.TenantsFile) {
      throw new ConfigError(
        `${where}: hosted mode authenticates every chat server: set TenantsFile and add tenants with "push-proxy tenants add <id> --tenants-file FILE".`,
      );
    }
  }
  if (config.RateLimitStore.Type === 'redis' && !/^rediss?:\/\//.test(config.RateLimitStore.URL)) {
    throw new ConfigError(`${where}: RateLimitStore.Type is redis: set RateLimitStore.URL to redis://host:port (or rediss:// for TLS).`);
  }
}

function warnDuplicateTypes(config: ProxyConfig, warnings: string[]): void {
  const seen = new Set<string>();
  for (const entry of PLATFORMS.flatMap((definition) => entriesOf(config, definition))) {
    if (seen.has(entry.Type)) warnings.push(`platform type "${entry.Type}" is configured twice: the later entry wins, as in the original`);
    seen.add(entry.Type);
  }
}
