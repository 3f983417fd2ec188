/**
 * The bench's targets and how a run is judged against them: each a ratio of the proxy's side to its yardstick's
 * in the same scenario (alternating runs), except peak RSS, which is absolute. Pure: bench/run.ts feeds it the
 * summarized sides.
 */

/** One relay's runs in a scenario, summarized. */
export interface Side {
  /** answers OK per second */
  rps: number;
  p50: number;
  p99: number;
  /** CPU seconds per 1,000 notifications the peer received */
  cpuPer1k: number;
  /** the highest run's peak RSS */
  rssMb: number;
  runs: number;
  noisy: number;
  ok: boolean;
}

/** A scenario's two sides: the yardstick (A) and what is measured against it (B). */
export interface Comparison {
  base: Side;
  proxy: Side;
}

type Measure = 'cpu' | 'throughput' | 'p99';

interface RatioTarget {
  /** what the report says, before the scenario */
  name: string;
  measure: Measure;
  /** judged on the worst of these scenarios (those the run measured) */
  scenarios: string[];
  limit: number;
}

export interface Verdict {
  name: string;
  /** the scenario the figure comes from (the worst one, for a target over several) */
  scenario: string;
  measured: number;
  limit: number;
  /** '×' for a ratio to the yardstick, ' MB' for peak RSS */
  unit: '×' | ' MB';
  /** the limit is a ceiling (CPU, p99, RSS) or a floor (throughput) */
  atMost: boolean;
  met: boolean;
}

export const DEFAULT_LOGGING_APNS = ['apns-c64-0ms', 'apns-c256-0ms', 'apns-c64-20ms', 'apns-c256-20ms'];

export const RATIO_TARGETS: RatioTarget[] = [
  { name: 'CPU per notification, default logging, worst APNs scenario', measure: 'cpu', scenarios: DEFAULT_LOGGING_APNS, limit: 1.35 },
  { name: 'throughput, default logging', measure: 'throughput', scenarios: ['apns-c256-0ms'], limit: 0.75 },
  { name: 'p99, default logging', measure: 'p99', scenarios: ['apns-c64-20ms'], limit: 1.3 },
  { name: 'CPU per notification, info JSON', measure: 'cpu', scenarios: ['apns-c256-0ms-json'], limit: 1.3 },
  { name: 'CPU per notification, warn', measure: 'cpu', scenarios: ['apns-c256-0ms-warn'], limit: 1.25 },
  { name: 'CPU per notification, FCM', measure: 'cpu', scenarios: ['fcm-c64-0ms'], limit: 1.5 },
  { name: 'throughput, FCM', measure: 'throughput', scenarios: ['fcm-c64-0ms'], limit: 0.65 },
  { name: 'CPU per notification, mixed APNs and FCM', measure: 'cpu', scenarios: ['mixed-c256-0ms'], limit: 1.45 },
  { name: 'throughput, Workers 2 vs the bare relay in 2 processes', measure: 'throughput', scenarios: ['workers2-c256-0ms'], limit: 0.85 },
];

/** The default-logging proxy's peak RSS (one process) in the APNs scenarios, in MB. */
export const PEAK_RSS_LIMIT_MB = 160;

function ratioOf(measure: Measure, c: Comparison): number {
  if (measure === 'cpu') return c.proxy.cpuPer1k / c.base.cpuPer1k;
  if (measure === 'throughput') return c.proxy.rps / c.base.rps;
  return c.proxy.p99 / c.base.p99;
}

/**
 * Every target whose scenarios the run measured, judged. `peakRssMb` is the highest peak RSS of the
 * default-logging proxy over its APNs runs (undefined: none ran).
 */
export function judgeTargets(comparisons: ReadonlyMap<string, Comparison>, peakRssMb?: number): Verdict[] {
  const verdicts: Verdict[] = [];
  for (const target of RATIO_TARGETS) {
    const atMost = target.measure !== 'throughput';
    const measured = target.scenarios
      .filter((id) => comparisons.has(id))
      .map((id) => ({ id, r: ratioOf(target.measure, comparisons.get(id)!) }));
    if (measured.length === 0) continue;
    // The worst: the highest of a ceiling, the lowest of a floor.
    const worst = measured.reduce((a, b) => ((atMost ? b.r > a.r : b.r < a.r) ? b : a));
    const met = Number.isFinite(worst.r) && (atMost ? worst.r <= target.limit : worst.r >= target.limit);
    verdicts.push({ name: target.name, scenario: worst.id, measured: worst.r, limit: target.limit, unit: '×', atMost, met });
  }
  if (peakRssMb !== undefined)
    verdicts.push({
      name: 'peak RSS, default logging, APNs',
      scenario: 'the APNs rows',
      measured: peakRssMb,
      limit: PEAK_RSS_LIMIT_MB,
      unit: ' MB',
      atMost: true,
      met: peakRssMb <= PEAK_RSS_LIMIT_MB,
    });
  return verdicts;
}

/** The report's table of verdicts (markdown). */
export function renderVerdicts(verdicts: Verdict[]): string[] {
  const lines = ['| target | scenario | measured | limit | result |', '|---|---|---:|---:|---|'];
  for (const v of verdicts) {
    // A ratio that rounds to its limit gets a third digit, so that "0.75× missed" cannot appear.
    const digits = v.unit === ' MB' ? 0 : Math.abs(v.measured - v.limit) < 0.005 ? 3 : 2;
    const measured = Number.isFinite(v.measured) ? v.measured.toFixed(digits) : '–';
    const limit = v.unit === ' MB' ? String(v.limit) : v.limit.toFixed(2);
    lines.push(
      `| ${v.name} | ${v.scenario} | ${measured}${v.unit} | ${v.atMost ? '≤' : '≥'} ${limit}${v.unit} | ${v.met ? 'met' : '**missed**'} |`,
    );
  }
  return lines;
}
