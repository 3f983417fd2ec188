/**
 * The tenants file's format: its types, parsing with full validation, and serialisation. Everything that reads or
 * writes the file goes through here (the proxy in reload.ts, `push-proxy tenants` in command.ts), so the proxy
 * never loads, and the command never writes, a file the other would refuse; and every problem found is a
 * ConfigError that names the file, the tenant, the field and the fix.
 *
 * The file (config key `TenantsFile`), version 1. Field names are case-sensitive and unknown fields are refused,
 * because a misspelt restriction silently ignored would widen a tenant's access:
 *
 *   {
 *     "version": 1,
 *     "tenants": [
 *       {
 *         "id": "acme",                          // [a-z0-9][a-z0-9_-]{0,62}; unique
 *         "keys": [                              // several, so a key can be rotated without downtime
 *           { "hash": "scrypt$N=16384,r=8,p=1$<salt>$<hash>", "created": "2025-01-31T12:00:00.000Z", "revoked": false }
 *         ],
 *         "serverIds": ["…"],                    // optional: only these Mattermost server_ids; absent = any
 *         "platforms": ["apple_rn"],             // optional: only these platform types; absent = any
 *         "ratePerSec": 50,                      // optional: requests per second; absent = the proxy's default
 *         "revoked": false                       // optional: true refuses every key of the tenant
 *       }
 *     ]
 *   }
 *
 * Keys are never stored, only their scrypt hashes (see keys.ts); `push-proxy tenants` writes this file.
 */
import Ajv, { type ErrorObject } from 'ajv';
import { ConfigError } from '../config/errors';
import { TENANT_ID_PATTERN, parseKeyHash } from './keys';

export const TENANTS_FILE_VERSION = 1;

export interface TenantKeyEntry {
  hash: string;
  /** ISO date; for the operator only. */
  created: string;
  revoked?: boolean;
}

export interface TenantEntry {
  id: string;
  keys: TenantKeyEntry[];
  serverIds?: string[];
  platforms?: string[];
  ratePerSec?: number;
  revoked?: boolean;
}

export interface TenantsFileData {
  version: typeof TENANTS_FILE_VERSION;
  tenants: TenantEntry[];
}

const FIELDS_BY_LEVEL = {
  file: ['version', 'tenants'],
  tenant: ['id', 'keys', 'serverIds', 'platforms', 'ratePerSec', 'revoked'],
  key: ['hash', 'created', 'revoked'],
} as const;

const stringList = { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } };
const validateTenantsFile = new Ajv({ allErrors: true }).compile({
  type: 'object',
  required: ['version', 'tenants'],
  additionalProperties: false,
  properties: {
    version: { type: 'integer', const: TENANTS_FILE_VERSION },
    tenants: {
      type: 'array',
      items: {
        type: 'object',
        required: ['id', 'keys'],
        additionalProperties: false,
        properties: {
          id: { type: 'string', pattern: TENANT_ID_PATTERN.source },
          keys: {
            type: 'array',
            items: {
              type: 'object',
              required: ['hash', 'created'],
              additionalProperties: false,
              properties: { hash: { type: 'string' }, created: { type: 'string' }, revoked: { type: 'boolean' } },
            },
          },
          serverIds: stringList,
          platforms: stringList,
          ratePerSec: { type: 'number', exclusiveMinimum: 0 },
          revoked: { type: 'boolean' },
        },
      },
    },
  },
});

/** Parses and fully validates a tenants file's text; a ConfigError names the file, the tenant, the field and the fix. */
export function parseTenantsFile(text: string, file: string): TenantsFileData {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(
      `TenantsFile ${file} is not valid JSON: ${describeJsonError(err as Error, text)}. Fix the syntax, or rewrite the file with "push-proxy tenants".`,
    );
  }
  const problems: string[] = [];
  if (!validateTenantsFile(raw)) {
    problems.push(...(validateTenantsFile.errors ?? []).map((e) => describeSchemaError(e, raw)));
  } else {
    const data = raw as TenantsFileData;
    const seen = new Set<string>();
    data.tenants.forEach((tenant, i) => {
      if (seen.has(tenant.id)) problems.push(`tenant "${tenant.id}" (tenants[${i}]) appears twice: merge the two entries`);
      seen.add(tenant.id);
      tenant.keys.forEach((key, k) => {
        if (!parseKeyHash(key.hash))
          problems.push(`tenant "${tenant.id}" (tenants[${i}]) keys[${k}].hash is not a hash written by "push-proxy tenants add"`);
      });
    });
  }
  if (problems.length > 0) {
    const shown = problems.slice(0, 5).join('; ') + (problems.length > 5 ? `; and ${problems.length - 5} more` : '');
    throw new ConfigError(`TenantsFile ${file} is invalid: ${shown}. Fix the file, or rewrite it with "push-proxy tenants".`);
  }
  return raw as TenantsFileData;
}

/** V8 quotes the text around a syntax error, which may be a hash: keep only what and where. */
function describeJsonError(err: Error, text: string): string {
  const what = err.message
    .replace(/, .* is not valid JSON$/s, '')
    .replace(/ in JSON at position \d+.*$/s, '')
    .replace(/ after JSON at position \d+.*$/s, ' after the JSON');
  const position = /at position (\d+)/.exec(err.message);
  if (!position) return what;
  const before = text.slice(0, Number(position[1]));
  const line = before.split('\n').length;
  return `${what} at line ${line}, column ${before.length - before.lastIndexOf('\n')}`;
}

function describeSchemaError(error: ErrorObject, raw: unknown): string {
  const segments = error.instancePath.split('/').slice(1);
  const level = segments.length === 0 ? 'file' : segments.length <= 2 ? 'tenant' : 'key';
  let subject = 'the file';
  let field = segments;
  if (segments[0] === 'tenants' && segments[1] !== undefined) {
    const id = ((raw as { tenants: Array<{ id?: unknown }> }).tenants[Number(segments[1])] ?? {}).id;
    subject = typeof id === 'string' ? `tenant ${JSON.stringify(id)} (tenants[${segments[1]}])` : `tenants[${segments[1]}]`;
    field = segments.slice(2);
  }
  const name = field
    .map((p) => (/^\d+$/.test(p) ? `[${p}]` : `.${p}`))
    .join('')
    .replace(/^\./, '');
  const what = name ? `${subject} ${name}` : subject;
  switch (error.keyword) {
    case 'required':
      return `${what} is missing "${error.params.missingProperty}"`;
    case 'additionalProperties':
      return `${what} has unknown field "${error.params.additionalProperty}" (known fields, case-sensitive: ${FIELDS_BY_LEVEL[level].join(', ')})`;
    case 'const':
      return `${what} must be ${TENANTS_FILE_VERSION}: this Push Proxy reads version ${TENANTS_FILE_VERSION} files`;
    case 'pattern':
      return `${what} must be 1 to 63 lowercase letters, digits, "_" or "-", starting with a letter or digit`;
    case 'minItems':
      return `${what} must list at least one value, or be left out to allow any`;
    case 'minLength':
      return `${what} must not be empty`;
    case 'exclusiveMinimum':
      return `${what} must be a number above 0`;
    case 'type':
      return `${what} must be ${error.params.type === 'integer' ? 'a whole number' : `${/^[aeiou]/.test(String(error.params.type)) ? 'an' : 'a'} ${error.params.type}`}`;
    default:
      return `${what} ${error.message ?? 'is invalid'}`;
  }
}

/** The text `push-proxy tenants` writes, checked first: it never writes a file the proxy would refuse. */
export function serializeTenantsFile(data: TenantsFileData, file: string): string {
  const text = JSON.stringify(data, null, 2) + '\n';
  parseTenantsFile(text, file);
  return text;
}
