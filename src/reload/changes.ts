/**
 * What a reload can and cannot change in a running proxy.
 * Listeners keep their sockets, processes their number and logs their destination, so the keys that decide those
 * take effect at the next restart, and a warning names them. `Mode` is refused outright: a reload must never turn
 * a production service into a test service (or the reverse) by accident.
 */
import type { ProxyConfig } from '../config/types';

/** Keys read once, when the listeners, the log destination and the per-process stores are set up. */
export const RESTART_KEYS = [
  'ListenAddress',
  'AdminListenAddress',
  'Workers',
  'EnableConsoleLog',
  'EnableFileLog',
  'LogFileLocation',
  'LogFormat',
  'HeadersTimeoutSec',
  'RequestTimeoutSec',
  'KeepAliveTimeoutSec',
  'MaxConnections',
  'DrainGraceSec',
  'Inspector',
  'TraceCapacity',
  'UsageRetentionDays',
] as const satisfies ReadonlyArray<keyof ProxyConfig>;

export interface ConfigChanges {
  /** Why the new configuration cannot be used at all; undefined when it can. */
  refusal?: string;
  /** What differs but waits for a restart (a key, or a description such as "TLS on/off"). */
  needRestart: string[];
}

/** What running with `next` instead of `running` would change that a reload cannot do in place. */
export function compareForReload(running: ProxyConfig, next: ProxyConfig): ConfigChanges {
  if (running.Mode !== next.Mode) {
    return {
      refusal: `Mode cannot change by a reload (running ${running.Mode}, the file says ${next.Mode}): restart the proxy to change its mode`,
      needRestart: [],
    };
  }
  const needRestart: string[] = RESTART_KEYS.filter((key) => JSON.stringify(running[key]) !== JSON.stringify(next[key]));
  // The listener keeps speaking what it started with: a new certificate is served, a switch to or from HTTPS is not.
  if (Boolean(running.TLSCertFile) !== Boolean(next.TLSCertFile)) needRestart.push('TLSCertFile (HTTPS on or off)');
  else if (Boolean(running.TLSClientCAFile) !== Boolean(next.TLSClientCAFile))
    needRestart.push('TLSClientCAFile (client certificates on or off)');
  return { needRestart };
}
