/**
 * What the service folders have in common: how an entry is named in errors, how its credential files and
 * endpoint are read, which outbound proxy its traffic takes, and the retry policy every provider shares.
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from '../config/errors';
import type { ServiceDeps } from '../delivery/service';
import type { RetryPolicy } from '../delivery/retry';
import { emptyPushNotification, type PushNotification } from '../notification';
import { resolveOutboundProxy, type ProxyTarget } from '../transport/outbound-proxy';
import type { EntrySchema, PlatformEntryConfig } from './platform';

/** `ApplePushSettings entry "apple_rn"`: where an operator finds the entry an error is about. */
export function entryName(settingsKey: string, entry: PlatformEntryConfig): string {
  return `${settingsKey} entry "${entry.Type}"`;
}

/** A credential file's bytes; a ConfigError naming the entry, the key and the fix when it cannot be read. */
export function readCredentialFile(where: string, key: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new ConfigError(`${where}: ${key} ${file} cannot be read (${code}). Check the path and that the proxy's user may read it.`);
  }
}

/** The outbound proxy for traffic to `target` (OutboundProxy, else HTTPS_PROXY/NO_PROXY), or undefined for a direct connection. */
export function entryOutboundProxy(where: string, target: ProxyTarget, deps: ServiceDeps): URL | undefined {
  try {
    return resolveOutboundProxy(target, { configured: deps.outboundProxy, env: deps.env ?? {} });
  } catch (err) {
    throw new ConfigError(`${(err as Error).message} (needed for ${where}, which connects to ${target.host}:${target.port})`);
  }
}

/**
 * docs/protocol.md, Retries and timeouts: three attempts, 1 s then 2 s apart, within SendTimeoutSec each and RetryTimeoutSec
 * in all; `exhausted` is the answer when the budget runs out.
 */
export function providerRetryPolicy(deps: ServiceDeps, exhausted: { budget: string; attempts?: string }): RetryPolicy {
  return {
    maxAttempts: 3,
    backoffMs: [1000, 2000],
    sendTimeoutMs: deps.sendTimeoutMs,
    retryTimeoutMs: deps.retryTimeoutMs,
    budgetExhausted: { error: exhausted.budget, reason: exhausted.budget },
    ...(exhausted.attempts !== undefined ? { attemptsExhausted: { error: exhausted.attempts, reason: exhausted.attempts } } : {}),
  };
}

/**
 * A silent notification (type `clear`, badge -1 leaves a badge alone) to a device token no device has: whatever
 * the provider says about the token (APNs BadDeviceToken, FCM INVALID_ARGUMENT) it says only after accepting the
 * credentials, so a failed entry learns from it whether they work again.
 */
export function silentProbe(type: string, deviceId: string): PushNotification {
  return { ...emptyPushNotification(), platform: type, server_id: 'push-proxy', device_id: deviceId, type: 'clear', badge: -1 };
}

/** One entry's schema: `Type` (every entry has it) and the service's own keys, in the order operators see them. */
export function entrySchema(properties: EntrySchema['properties']): EntrySchema {
  return { type: 'object', properties: { Type: { type: 'string', default: '' }, ...properties } };
}

/** Keys holding text, empty by default (file names, ids, passwords). */
export function textKeys(...names: string[]): EntrySchema['properties'] {
  return Object.fromEntries(names.map((name) => [name, { type: 'string', default: '' }]));
}

/** A key replacing the provider's host: `https://host[:port]` with no path, or empty for the provider's own. */
export function endpointKey(description: string): Record<string, unknown> {
  return { type: 'string', default: '', pattern: '^$|^https://[^/?#]+/?$', description };
}
