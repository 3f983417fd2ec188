/**
 * deploy/grafana-dashboard.json against a running instance: every series its queries name is declared in
 * /metrics, so a renamed or dropped metric cannot leave a panel empty without a test failing.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ProxyInstance } from '../src/instance';
import { get, startTestProxy, testConfig } from './support';

const DASHBOARD = path.join(__dirname, '..', '..', 'deploy', 'grafana-dashboard.json');
const HISTOGRAM_SERIES = /_(bucket|sum|count)$/;

/** Every `expr` in the dashboard, however deep (panels, rows, targets). */
function expressions(node: unknown): string[] {
  if (Array.isArray(node)) return node.flatMap(expressions);
  if (node === null || typeof node !== 'object') return [];
  return Object.entries(node).flatMap(([key, value]) => (key === 'expr' && typeof value === 'string' ? [value] : expressions(value)));
}

/** Every `datasource` object in the dashboard. */
function datasources(node: unknown): Array<{ uid?: string }> {
  if (Array.isArray(node)) return node.flatMap(datasources);
  if (node === null || typeof node !== 'object') return [];
  return Object.entries(node).flatMap(([key, value]) =>
    key === 'datasource' && value !== null && typeof value === 'object' ? [value as { uid?: string }] : datasources(value),
  );
}

/**
 * The proxy's metric names a PromQL expression reads: identifiers followed by a selector, a range or a closing
 * parenthesis, with the proxy's and Node's prefixes (functions, labels and keywords have none of them).
 */
function metricNames(expr: string): string[] {
  const names = [...expr.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*[{[)]/g)].map((m) => m[1]!);
  return names.filter((name) => /^(service_|process_|nodejs_)/.test(name));
}

/** `# TYPE name kind` lines of the text exposition: what /metrics declares. */
function declared(metrics: string): Map<string, string> {
  const types = new Map<string, string>();
  for (const match of metrics.matchAll(/^# TYPE (\S+) (\S+)$/gm)) types.set(match[1]!, match[2]!);
  return types;
}

/** A name is served when declared as is, or as a histogram's (or summary's) `_bucket`, `_sum` or `_count` series. */
function isServed(name: string, types: Map<string, string>): boolean {
  if (types.has(name)) return true;
  const base = name.replace(HISTOGRAM_SERIES, '');
  const kind = types.get(base);
  return base !== name && (kind === 'histogram' || (kind === 'summary' && !name.endsWith('_bucket')));
}

describe('the Grafana dashboard', () => {
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { templating: { list: Array<{ name: string; type: string }> } };
  let proxy: ProxyInstance;

  before(async () => {
    proxy = await startTestProxy(testConfig({}), []);
  });
  after(() => proxy.close());

  it('reads metric names from PromQL', () => {
    assert.deepEqual(
      metricNames(
        'histogram_quantile(0.95, sum by (le, platform) (rate(service_ack_latency_seconds_bucket{job=~"$job"}[$__rate_interval]))) + process_resident_memory_bytes)',
      ),
      ['service_ack_latency_seconds_bucket', 'process_resident_memory_bytes'],
    );
    assert.deepEqual(metricNames('rate(nodejs_gc_duration_seconds_count[5m]) / time()'), ['nodejs_gc_duration_seconds_count']);
  });

  it('takes its Prometheus datasource from a variable, in every panel and query', () => {
    assert.ok(dashboard.templating.list.some((v) => v.name === 'datasource' && v.type === 'datasource'));
    const uids = datasources(dashboard).map((d) => d.uid);
    assert.ok(uids.length >= 20);
    assert.deepEqual(new Set(uids), new Set(['${datasource}']));
  });

  it('every series it queries is declared in /metrics', async () => {
    const exprs = expressions(dashboard);
    const names = [...new Set(exprs.flatMap(metricNames))].sort();
    assert.ok(exprs.length >= 20 && names.length >= 20, `only ${names.length} names in ${exprs.length} expressions`);
    const metrics = await get(`${proxy.url}/metrics`);
    assert.equal(metrics.status, 200);
    const types = declared(metrics.text);
    const missing = names.filter((name) => !isServed(name, types));
    assert.deepEqual(missing, [], `queried by deploy/grafana-dashboard.json but not in /metrics: ${missing.join(', ')}`);
  });
});
