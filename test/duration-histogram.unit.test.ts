/** The hot path's duration histogram exports exactly what prom-client's own histogram does for the same observations. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { AggregatorRegistry, Histogram, Registry } from 'prom-client';
import { DurationHistogram } from '../src/duration-histogram';

const bucketsArb = fc
  .uniqueArray(fc.double({ min: 0.001, max: 600, noNaN: true }), { minLength: 1, maxLength: 12 })
  .map((b) => b.sort((x, y) => x - y));
const observationArb = fc.oneof(
  fc.double({ min: 0, max: 700, noNaN: true }),
  // On a bound exactly: counted in that bound's bucket.
  fc.constantFrom(0.005, 0.1, 1, 30),
);

interface Case {
  buckets: number[];
  labelled: boolean;
  observations: Array<{ platform: 'apple' | 'android'; seconds: number }>;
}

const caseArb: fc.Arbitrary<Case> = fc.record({
  buckets: bucketsArb,
  labelled: fc.boolean(),
  observations: fc.array(fc.record({ platform: fc.constantFrom('apple' as const, 'android' as const), seconds: observationArb }), {
    maxLength: 60,
  }),
});

/** The same observations in a registry with prom-client's histogram and in one with ours. */
function both(c: Case): { theirs: Registry; ours: Registry } {
  const labelNames = c.labelled ? ['platform'] : [];
  const theirs = new Registry();
  const ours = new Registry();
  const reference = new Histogram({ name: 'x_seconds', help: 'durations', labelNames, buckets: c.buckets, registers: [theirs] });
  const histogram = new DurationHistogram('x_seconds', 'durations', labelNames, c.buckets, ours);
  for (const { platform, seconds } of c.observations) {
    if (c.labelled) {
      reference.labels(platform).observe(seconds);
      histogram.labels(platform).observe(seconds);
    } else {
      reference.observe(seconds);
      histogram.labels().observe(seconds);
    }
  }
  return { theirs, ours };
}

describe('DurationHistogram', () => {
  it('writes the text prom-client writes, labelled or not, observed or not (property)', async () => {
    await fc.assert(
      fc.asyncProperty(caseArb, async (c) => {
        const { theirs, ours } = both(c);
        assert.equal(await ours.metrics(), await theirs.metrics());
      }),
      { numRuns: 300 },
    );
  });

  it('gives the JSON prom-client gives, and workers aggregate it alike (property)', async () => {
    await fc.assert(
      fc.asyncProperty(caseArb, caseArb, async (a, b) => {
        const second = { ...b, buckets: a.buckets, labelled: a.labelled };
        const [one, two] = [both(a), both(second)];
        // prom-client adds `exemplar: null` to bucket values, which nothing reads without exemplars enabled.
        const json = async (r: Registry): Promise<unknown> =>
          JSON.parse(JSON.stringify(await r.getMetricsAsJSON(), (key, value: unknown) => (key === 'exemplar' ? undefined : value)));
        assert.deepEqual(await json(one.ours), await json(one.theirs));
        const aggregated = async (x: Registry, y: Registry): Promise<string> =>
          AggregatorRegistry.aggregate([await x.getMetricsAsJSON(), await y.getMetricsAsJSON()]).metrics();
        assert.equal(await aggregated(one.ours, two.ours), await aggregated(one.theirs, two.theirs));
      }),
      { numRuns: 200 },
    );
  });

  it('counts a value on a bound in that bound, and drops one that is not a number', async () => {
    const registry = new Registry();
    const histogram = new DurationHistogram('y_seconds', 'durations', [], [0.1, 1], registry);
    const series = histogram.labels();
    series.observe(0.1);
    series.observe(Number.NaN);
    series.observe(Infinity);
    series.observe(5);
    const text = await registry.metrics();
    assert.match(text, /^y_seconds_bucket\{le="0\.1"\} 1$/m);
    assert.match(text, /^y_seconds_bucket\{le="1"\} 1$/m);
    assert.match(text, /^y_seconds_bucket\{le="\+Inf"\} 2$/m);
    assert.match(text, /^y_seconds_count 2$/m);
  });

  it('refuses label values that do not match its label names', () => {
    const histogram = new DurationHistogram('z_seconds', 'durations', ['platform'], [1], new Registry());
    assert.throws(() => histogram.labels(), /z_seconds has labels platform, got 0 value/);
  });

  it('starts again from zero when the registry resets its metrics', async () => {
    const registry = new Registry();
    new DurationHistogram('w_seconds', 'durations', [], [1], registry).labels().observe(0.5);
    registry.resetMetrics();
    assert.match(await registry.metrics(), /^w_seconds_count 0$/m);
  });
});
