/**
 * What `npm run bench` measures: the proxy configurations it runs (variants) and the scenarios, each one
 * relay against its yardstick in alternating runs. Pure data and selection, shared by bench/run.ts and its tests.
 */

/** A proxy configuration: the logging operators choose, and the process count. */
export interface ProxyVariant {
  logLevel: 'info' | 'warn';
  logFormat: 'plain' | 'json';
  workers: number;
  /** how the report names it: level, format, destination (and workers) */
  label: string;
}

/**
 * Every proxy logs to its console (EnableConsoleLog), its stdout redirected to a file as a service manager
 * captures it: the default logging is `info`, `plain`, one line per notification.
 */
export const VARIANTS = {
  default: { logLevel: 'info', logFormat: 'plain', workers: 1, label: 'proxy (info, plain, stdout to a file)' },
  warn: { logLevel: 'warn', logFormat: 'plain', workers: 1, label: 'proxy (warn, plain, stdout to a file)' },
  json: { logLevel: 'info', logFormat: 'json', workers: 1, label: 'proxy (info, JSON, stdout to a file)' },
  'workers-2': { logLevel: 'info', logFormat: 'plain', workers: 2, label: 'proxy, Workers 2 (info, plain, stdout to a file)' },
} as const satisfies Record<string, ProxyVariant>;

export type VariantName = keyof typeof VARIANTS;

/** One side of a scenario: a proxy configuration, or the bare relay (bench/baseline.ts) in N processes. */
export type RelaySpec = { proxy: VariantName } | { bare: number };

export interface Scenario {
  id: string;
  label: string;
  /** where the notifications go: one platform, or APNs and FCM taking turns (every other request) */
  target: 'apns' | 'fcm' | 'mixed';
  connections: number;
  latencyMs: number;
  /** the A side of A B B A (the yardstick; with --versus, another build of the proxy in the subject's configuration) */
  base: { bare: number };
  /** the B side */
  subject: RelaySpec;
  /** extras run unless --no-extras, in half the rounds */
  extra: boolean;
  /** run by --quick: one of each kind, enough for every target */
  quick: boolean;
}

const BARE = { bare: 1 };

// In the order they run: a relay stops after the last scenario that needs it (bare2 right after Workers 2).
export const SCENARIOS: Scenario[] = [
  apns('apns-c64-0ms', 64, 0, false),
  apns('apns-c256-0ms', 256, 0, true),
  apns('apns-c64-20ms', 64, 20, true),
  apns('apns-c256-20ms', 256, 20, false),
  {
    id: 'fcm-c64-0ms',
    label: 'FCM, c=64, peer 0 ms',
    target: 'fcm',
    connections: 64,
    latencyMs: 0,
    base: BARE,
    subject: { proxy: 'default' },
    extra: false,
    quick: true,
  },
  {
    id: 'mixed-c256-0ms',
    label: 'APNs and FCM alternating, c=256, peers 0 ms',
    target: 'mixed',
    connections: 256,
    latencyMs: 0,
    base: BARE,
    subject: { proxy: 'default' },
    extra: false,
    quick: true,
  },
  {
    id: 'workers2-c256-0ms',
    label: 'APNs, c=256, peer 0 ms',
    target: 'apns',
    connections: 256,
    latencyMs: 0,
    base: { bare: 2 },
    subject: { proxy: 'workers-2' },
    extra: false,
    quick: true,
  },
  {
    id: 'bare2-c256-0ms',
    label: 'APNs, c=256, peer 0 ms',
    target: 'apns',
    connections: 256,
    latencyMs: 0,
    base: BARE,
    subject: { bare: 2 },
    extra: true,
    quick: false,
  },
  {
    id: 'apns-c256-0ms-warn',
    label: 'APNs, c=256, peer 0 ms',
    target: 'apns',
    connections: 256,
    latencyMs: 0,
    base: BARE,
    subject: { proxy: 'warn' },
    extra: true,
    quick: true,
  },
  {
    id: 'apns-c256-0ms-json',
    label: 'APNs, c=256, peer 0 ms',
    target: 'apns',
    connections: 256,
    latencyMs: 0,
    base: BARE,
    subject: { proxy: 'json' },
    extra: true,
    quick: true,
  },
];

function apns(id: string, connections: number, latencyMs: number, quick: boolean): Scenario {
  return {
    id,
    label: `APNs, c=${connections}, peer ${latencyMs} ms`,
    target: 'apns',
    connections,
    latencyMs,
    base: BARE,
    subject: { proxy: 'default' },
    extra: false,
    quick,
  };
}

/** The scenarios a run measures: `--only` ids as given, else --quick's, else all (extras unless --no-extras). */
export function selectScenarios(options: { quick: boolean; extras: boolean; only?: ReadonlySet<string> }): Scenario[] {
  if (options.only) {
    const unknown = [...options.only].filter((id) => !SCENARIOS.some((s) => s.id === id));
    if (unknown.length > 0)
      throw new Error(`unknown scenario ${unknown.join(', ')}; the scenarios: ${SCENARIOS.map((s) => s.id).join(', ')}`);
    return SCENARIOS.filter((s) => options.only!.has(s.id));
  }
  if (options.quick) return SCENARIOS.filter((s) => s.quick && (options.extras || !s.extra));
  return SCENARIOS.filter((s) => options.extras || !s.extra);
}

/** A B B A rounds of a scenario: extras run half as many (at least one). */
export function roundsOf(scenario: Scenario, rounds: number): number {
  return scenario.extra ? Math.max(1, Math.ceil(rounds / 2)) : rounds;
}

/** How the report names a relay. */
export function relayLabel(spec: RelaySpec): string {
  if ('proxy' in spec) return VARIANTS[spec.proxy].label;
  return spec.bare === 1 ? 'baseline' : `baseline (${spec.bare} processes)`;
}
