/**
 * A Prometheus histogram of durations for the hot path, registered in a prom-client Registry next to
 * prom-client's own metrics and exported in exactly their format. Written by hand because prom-client's
 * `observe`, even on a child, builds a label object and a hash string and looks the bucket up by a number
 * turned into a property name, on every call: three of them per notification were about 2 % of the CPU a
 * notification costs (docs/performance.md). Here a child is a plain array of counts; nothing is allocated
 * until the registry is read.
 */
import type { Metric, Registry } from 'prom-client';

/** One label set: bucket counts (not cumulative), their sum and count. */
export class DurationSeries {
  /** counts[i]: observations in (bound[i-1], bound[i]]; the last slot holds those above every bound (+Inf). */
  private readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(
    private readonly bounds: Float64Array,
    readonly labels: Readonly<Record<string, string>>,
  ) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(seconds: number): void {
    // A non-finite value (a clock that went wrong) is not a duration: dropped, as a metric must never throw.
    if (!Number.isFinite(seconds)) return;
    const { bounds } = this;
    let i = 0;
    while (i < bounds.length && seconds > bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += seconds;
    this.count++;
  }

  /** Count of observations at or below each bound, cumulative, as Prometheus wants them. */
  cumulative(): number[] {
    const out: number[] = [];
    let acc = 0;
    for (let i = 0; i < this.bounds.length; i++) out.push((acc += this.counts[i]!));
    return out;
  }
}

/** What prom-client's Registry reads of a metric (`get` for JSON and workers, `getForPromString` for the text). */
interface ExportedValue {
  labels: Record<string, string | number>;
  sharedLabels?: Record<string, string>;
  value: number;
  metricName: string;
}

export class DurationHistogram {
  readonly type = 'histogram';
  /** Summed over workers, as prom-client's own histograms. */
  readonly aggregator = 'sum';
  private readonly bounds: Float64Array;
  private readonly series = new Map<string, DurationSeries>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelNames: readonly string[],
    buckets: readonly number[],
    registry: Registry,
  ) {
    this.bounds = Float64Array.from([...buckets].sort((a, b) => a - b));
    // prom-client exports an unlabelled histogram from the start, at 0.
    if (labelNames.length === 0) this.labels();
    // The registry takes any object that answers `get` (its type lists only prom-client's own classes).
    registry.registerMetric(this as unknown as Metric);
  }

  /** The series of these label values, in `labelNames` order; callers keep it (label values here are bounded: platforms). */
  labels(...values: string[]): DurationSeries {
    if (values.length !== this.labelNames.length)
      throw new Error(`${this.name} has labels ${this.labelNames.join(', ') || '(none)'}, got ${values.length} value(s)`);
    const key = values.join('\0');
    let series = this.series.get(key);
    if (!series) {
      const labels: Record<string, string> = {};
      this.labelNames.forEach((name, i) => (labels[name] = values[i]!));
      series = new DurationSeries(this.bounds, labels);
      this.series.set(key, series);
    }
    return series;
  }

  /** As prom-client's histograms: `_bucket` per bound and `+Inf`, `_sum`, `_count`, the series' labels shared. */
  getForPromString(): Promise<{ name: string; help: string; type: string; aggregator: string; values: ExportedValue[] }> {
    const values: ExportedValue[] = [];
    const bucket = `${this.name}_bucket`;
    for (const series of this.series.values()) {
      // A labelled series counts from its first observation, as in prom-client.
      if (series.count === 0 && this.labelNames.length > 0) continue;
      const shared = { ...series.labels };
      series
        .cumulative()
        .forEach((value, i) => values.push({ labels: { le: this.bounds[i]! }, sharedLabels: shared, value, metricName: bucket }));
      values.push({ labels: { le: '+Inf' }, sharedLabels: shared, value: series.count, metricName: bucket });
      values.push({ labels: {}, sharedLabels: shared, value: series.sum, metricName: `${this.name}_sum` });
      values.push({ labels: {}, sharedLabels: shared, value: series.count, metricName: `${this.name}_count` });
    }
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values });
  }

  /** The same values with each series' labels merged in, as prom-client's `get` (registry JSON, workers' aggregation). */
  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: ExportedValue[] }> {
    const data = await this.getForPromString();
    data.values = data.values.map(({ labels, sharedLabels, value, metricName }) => ({
      labels: { ...labels, ...sharedLabels },
      value,
      metricName,
    }));
    return data;
  }

  /** prom-client's `Registry.resetMetrics`. */
  reset(): void {
    this.series.clear();
    if (this.labelNames.length === 0) this.labels();
  }
}
