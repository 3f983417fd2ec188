/**
 * Usage per tenant, the pure parts: day keys and the retention window, counting and pruning, the query of
 * GET /api/v1/usage, the answers of several workers summed, and the command's arguments and tables.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { DeliveryRecord } from '../src/delivery/dispatcher';
import { composeObservers } from '../src/delivery/observers';
import { QueryHandlers, type OperatorQueries } from '../src/operator-queries';
import {
  addDays,
  fieldKey,
  isDay,
  mergeRows,
  oldestKeptDay,
  parseFieldKey,
  parseUsageQuery,
  UsageCounts,
  usageAnswer,
  UsageQueryError,
  usageRowsOf,
  utcDay,
  type UsageRow,
} from '../src/usage/counts';
import { MemoryUsageStore, UsageLabels } from '../src/usage/store';
import { formatUsage, parseTenantsUsageArgs } from '../src/commands/tenants-usage';
import { CommandError } from '../src/commands/errors';
import { adminBaseUrl } from '../src/commands/admin-client';

const LABELS_CONFIG = {
  ApplePushSettings: [{ Type: 'apple_rn' }, { Type: 'apple' }],
  AndroidPushSettings: [{ Type: 'android_rn' }],
} as unknown as ConstructorParameters<typeof UsageLabels>[0];

function record(fields: Partial<DeliveryRecord> & { at: Date }): DeliveryRecord {
  return {
    serverId: 'srv',
    platform: 'apple_rn-v2',
    pushType: 'message',
    transport: '',
    outcome: 'OK',
    attempts: 1,
    ms: 1,
    device: 'x',
    ...fields,
  };
}

/** Several workers' memories behind one OperatorQueries, as the cluster's `ask` puts a question to each of them. */
function workersQueries(count: number): { queries: OperatorQueries[] } {
  const workers = Array.from({ length: count }, () => new QueryHandlers());
  const ask = async (name: string, params: unknown) => {
    const answers = await Promise.all(workers.map((w) => w.run(name, params)));
    return answers.filter((a) => a.answered).map((a) => a.value);
  };
  return { queries: workers.map((handlers) => ({ answer: (name, handler) => handlers.set(name, handler), ask })) };
}

describe('usage: days and the retention window', () => {
  it('a day is the UTC date', () => {
    assert.equal(utcDay(Date.parse('2026-12-06T23:59:59.999Z')), '2026-12-06');
    assert.equal(utcDay(Date.parse('2026-12-07T00:00:00+01:00')), '2026-12-06');
    assert.equal(addDays('2026-12-31', 1), '2027-01-01');
    assert.equal(addDays('2024-03-01', -1), '2024-02-29');
  });

  it('N days kept: today and the N-1 before', () => {
    assert.equal(oldestKeptDay('2026-12-06', 35), '2026-11-02');
    assert.equal(oldestKeptDay('2026-12-06', 1), '2026-12-06');
  });

  it('isDay takes real calendar dates only', () => {
    for (const day of ['2026-12-06', '2024-02-29']) assert.equal(isDay(day), true, day);
    for (const day of ['2026-02-30', '2026-13-01', '2026-1-01', '20261206', '2026-12-06T00:00:00Z', ''])
      assert.equal(isDay(day), false, day);
  });
});

describe('usage: counting', () => {
  it('field keys read back whatever the platform type holds', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[a-z0-9][a-z0-9_-]{0,10}$/),
        fc.string(),
        fc.constantFrom('OK', 'REMOVE', 'FAIL'),
        (tenant, platform, outcome) => {
          assert.deepEqual(parseFieldKey(fieldKey(tenant, platform, outcome as 'OK')), { tenant, platform, outcome });
        },
      ),
    );
    assert.equal(parseFieldKey('acme apple_rn MAYBE'), undefined);
    assert.equal(parseFieldKey('acme'), undefined);
  });

  it('labels: the entry Type without its version, "other" for a Type no entry has, "-" without a tenant', () => {
    const labels = new UsageLabels(LABELS_CONFIG);
    const at = new Date('2026-12-06T10:00:00Z');
    assert.equal(labels.keyOf(record({ at, tenant: 'acme' })), 'acme apple_rn OK');
    assert.equal(labels.keyOf(record({ at, platform: 'android_rn', outcome: 'REMOVE' })), '- android_rn REMOVE');
    assert.equal(labels.keyOf(record({ at, platform: 'made-up-v2', outcome: 'FAIL' })), '- other FAIL');
    assert.equal(labels.dayOf(at), '2026-12-06');
    assert.equal(labels.dayOf(new Date('2026-12-07T00:00:00Z')), '2026-12-07');
    assert.equal(labels.dayOf(new Date('2026-12-06T23:59:59Z')), '2026-12-06');
  });

  it('counts per day, tenant, platform and outcome; prunes and trims whole days', () => {
    const counts = new UsageCounts();
    counts.add('2026-12-05', 'acme apple_rn OK');
    counts.add('2026-12-06', 'acme apple_rn OK');
    counts.add('2026-12-06', 'acme apple_rn OK');
    counts.add('2026-12-06', 'beta other FAIL', 3);
    assert.equal(counts.size, 3);
    assert.deepEqual(counts.rows({ tenant: 'acme', from: '2026-12-06', to: '2026-12-06' }), [
      { day: '2026-12-06', tenant: 'acme', platform: 'apple_rn', outcome: 'OK', count: 2 },
    ]);
    assert.equal(counts.pruneBefore('2026-12-06'), 1);
    assert.equal(counts.size, 2);
    counts.add('2026-12-07', 'acme apple_rn OK');
    assert.equal(counts.trimOldest(1), 5);
    assert.deepEqual(counts.rows({ from: '2026-01-01', to: '2026-12-31' }), [
      { day: '2026-12-07', tenant: 'acme', platform: 'apple_rn', outcome: 'OK', count: 1 },
    ]);
  });

  it('the memory store forgets days that leave the retention window', async () => {
    let now = Date.parse('2026-12-06T12:00:00Z');
    const { queries } = workersQueries(1);
    const store = new MemoryUsageStore(new UsageLabels(LABELS_CONFIG), 3, { queries: queries[0]!, now: () => now });
    store.record(record({ at: new Date('2026-12-04T12:00:00Z') }));
    store.record(record({ at: new Date('2026-12-06T12:00:00Z'), tenant: 'acme' }));
    const all = { from: '2026-01-01', to: '2026-12-31' };
    assert.deepEqual(
      (await store.read(all)).map((r) => r.day),
      ['2026-12-04', '2026-12-06'],
    );
    // A notification on a later day moves the window: 2026-12-04 is the fourth day back.
    store.record(record({ at: new Date('2026-12-07T00:00:01Z') }));
    assert.deepEqual((await store.read(all)).map((r) => r.day).sort(), ['2026-12-06', '2026-12-07']);
    // And so does time alone, when asked.
    now = Date.parse('2026-12-09T00:00:00Z');
    assert.deepEqual(
      (await store.read(all)).map((r) => r.day),
      ['2026-12-07'],
    );
  });

  it('with workers, each counts its own and any of them answers with the sum', async () => {
    const { queries } = workersQueries(3);
    const stores = queries.map((q) => new MemoryUsageStore(new UsageLabels(LABELS_CONFIG), 35, { queries: q }));
    const at = new Date();
    stores[0]!.record(record({ at, tenant: 'acme' }));
    stores[1]!.record(record({ at, tenant: 'acme' }));
    stores[1]!.record(record({ at, tenant: 'beta', outcome: 'REMOVE' }));
    const day = utcDay(at.getTime());
    for (const store of stores) {
      const rows = await store.read({ from: day, to: day });
      assert.deepEqual(rows.map((r) => `${r.tenant} ${r.outcome} ${r.count}`).sort(), ['acme OK 2', 'beta REMOVE 1']);
    }
    // Worker answers are JSON from other processes: a question they cannot read gets no counts.
    assert.deepEqual(stores[0]!.localRows({ from: 'yesterday', to: day }), []);
  });

  it('composeObservers hands each record to every observer given', () => {
    const seen: string[] = [];
    const both = composeObservers(
      (r) => seen.push(`a:${r.serverId}`),
      undefined,
      (r) => seen.push(`b:${r.serverId}`),
    )!;
    both(record({ at: new Date() }));
    assert.deepEqual(seen, ['a:srv', 'b:srv']);
    assert.equal(composeObservers(undefined), undefined);
  });
});

describe('usage: merging the answers of several workers', () => {
  const row = fc.record({
    day: fc.constantFrom('2026-12-05', '2026-12-06'),
    tenant: fc.constantFrom('acme', 'beta', '-'),
    platform: fc.constantFrom('apple_rn', 'android_rn', 'other'),
    outcome: fc.constantFrom<'OK' | 'REMOVE' | 'FAIL'>('OK', 'REMOVE', 'FAIL'),
    count: fc.integer({ min: 1, max: 1000 }),
  });
  const canonical = (rows: UsageRow[]) => rows.map((r) => `${r.day} ${r.tenant} ${r.platform} ${r.outcome} ${r.count}`).sort();

  it('the sum does not depend on how counts are split between workers nor on the order of their answers', () => {
    fc.assert(
      fc.property(fc.array(fc.array(row, { maxLength: 20 }), { maxLength: 5 }), fc.nat(), (answers, turn) => {
        const k = answers.length === 0 ? 0 : turn % answers.length;
        const shuffled = [...answers.slice(k), ...answers.slice(0, k)].reverse().map((a) => [...a].reverse());
        const merged = mergeRows(answers);
        assert.deepEqual(canonical(mergeRows(shuffled)), canonical(merged));
        assert.deepEqual(canonical(mergeRows([answers.flat()])), canonical(merged));
        const total = (rows: UsageRow[]) => rows.reduce((sum, r) => sum + r.count, 0);
        assert.equal(total(merged), total(answers.flat()));
        assert.equal(new Set(canonical(merged).map((line) => line.replace(/ \d+$/, ''))).size, merged.length);
      }),
    );
  });

  it('an answer that is not a list of counts contributes nothing', () => {
    const good = { day: '2026-12-06', tenant: 'acme', platform: 'apple_rn', outcome: 'OK', count: 2 };
    assert.deepEqual(usageRowsOf(null), []);
    assert.deepEqual(usageRowsOf({ rows: [good] }), []);
    assert.deepEqual(usageRowsOf([good, { ...good, outcome: 'MAYBE' }, { ...good, count: '2' }, null]), [good]);
  });
});

describe('usage: the query and the answer', () => {
  const today = '2026-12-06';
  const parse = (query: Record<string, unknown>) => parseUsageQuery(query, today, 35);

  it('defaults to every tenant and the whole window; clamps days to it', () => {
    assert.deepEqual(parse({}), { from: '2026-11-02', to: today });
    assert.deepEqual(parse({ tenant: 'acme', from: '2026-12-01', to: '2026-12-02' }), {
      tenant: 'acme',
      from: '2026-12-01',
      to: '2026-12-02',
    });
    assert.deepEqual(parse({ tenant: '-', from: '2020-01-01', to: '2030-01-01' }), { tenant: '-', from: '2026-11-02', to: today });
    assert.deepEqual(parse({ tenant: '' }), { from: '2026-11-02', to: today });
  });

  it('a bad parameter is refused with its name', () => {
    const refused = (query: Record<string, unknown>, name: RegExp) =>
      assert.throws(
        () => parse(query),
        (err: Error) => err instanceof UsageQueryError && name.test(err.message),
      );
    refused({ tenant: 'Not A Tenant' }, /^tenant /);
    refused({ tenant: ['a', 'b'] }, /^tenant must be given once/);
    refused({ from: '2026-02-30' }, /^from must be a date/);
    refused({ to: 'today' }, /^to must be a date/);
    refused({ from: '2026-12-05', to: '2026-12-01' }, /^from \(2026-12-05\) must not be after to/);
  });

  it('the answer: per tenant and per day, tenant and platform, counts by outcome', () => {
    const rows: UsageRow[] = [
      { day: '2026-12-06', tenant: 'beta', platform: 'android_rn', outcome: 'OK', count: 4 },
      { day: '2026-12-05', tenant: 'acme', platform: 'apple_rn', outcome: 'OK', count: 2 },
      { day: '2026-12-05', tenant: 'acme', platform: 'apple_rn', outcome: 'FAIL', count: 1 },
      { day: '2026-12-06', tenant: 'acme', platform: 'apple_rn', outcome: 'REMOVE', count: 1 },
    ];
    const answer = usageAnswer(rows, { from: '2026-12-01', to: today }, { retentionDays: 35, store: 'memory' });
    assert.deepEqual(answer, {
      retentionDays: 35,
      store: 'memory',
      from: '2026-12-01',
      to: today,
      tenants: [
        { tenant: 'acme', OK: 2, REMOVE: 1, FAIL: 1, total: 4 },
        { tenant: 'beta', OK: 4, REMOVE: 0, FAIL: 0, total: 4 },
      ],
      days: [
        { day: '2026-12-05', tenant: 'acme', platform: 'apple_rn', OK: 2, REMOVE: 0, FAIL: 1, total: 3 },
        { day: '2026-12-06', tenant: 'acme', platform: 'apple_rn', OK: 0, REMOVE: 1, FAIL: 0, total: 1 },
        { day: '2026-12-06', tenant: 'beta', platform: 'android_rn', OK: 4, REMOVE: 0, FAIL: 0, total: 4 },
      ],
    });
    assert.equal(
      formatUsage(answer),
      [
        'Usage from 2026-12-01 to 2026-12-06 (UTC days; memory store, 35 days kept)',
        '',
        'TENANT  OK  REMOVE  FAIL  TOTAL',
        'acme     2       1     1      4',
        'beta     4       0     0      4',
        '',
        'DAY         TENANT  PLATFORM    OK  REMOVE  FAIL  TOTAL',
        '2026-12-05  acme    apple_rn     2       0     1      3',
        '2026-12-06  acme    apple_rn     0       1     0      1',
        '2026-12-06  beta    android_rn   4       0     0      4',
      ].join('\n'),
    );
    assert.match(formatUsage({ ...answer, tenants: [], days: [] }), /No notifications counted\.$/);
  });
});

describe('usage: the command arguments', () => {
  it('a tenant, days, --json and --help', () => {
    assert.deepEqual(parseTenantsUsageArgs([]), { json: false, help: false });
    assert.deepEqual(parseTenantsUsageArgs(['acme', '--from', '2026-12-01', '--to=2026-12-06', '--json']), {
      tenant: 'acme',
      from: '2026-12-01',
      to: '2026-12-06',
      json: true,
      help: false,
    });
    assert.equal(parseTenantsUsageArgs(['--help']).help, true);
    assert.equal(parseTenantsUsageArgs(['-']).tenant, '-');
  });

  it('bad arguments: CommandError with exit code 2 that says what is wrong', () => {
    const refused = (argv: string[], message: RegExp) =>
      assert.throws(
        () => parseTenantsUsageArgs(argv),
        (err: Error) => err instanceof CommandError && err.exitCode === 2 && message.test(err.message),
      );
    refused(['acme', 'beta'], /one tenant at most/);
    refused(['ACME'], /"ACME" is not a tenant id/);
    refused(['--from'], /--from takes a date written YYYY-MM-DD, not ""/);
    refused(['--to', '2026-02-30'], /--to takes a date/);
    refused(['--from', '2026-12-06', '--to', '2026-12-01'], /--from 2026-12-06 is after --to 2026-12-01/);
    refused(['--since', 'x'], /unknown option "--since"/);
  });
});

describe('usage: where the command asks', () => {
  const url = (config: Partial<Parameters<typeof adminBaseUrl>[0]>) =>
    adminBaseUrl({ ListenAddress: ':8066', AdminListenAddress: '', TLSCertFile: '', Mode: 'eas', ...config });

  it('the admin listener, plain HTTP, when there is one; else the single listener, HTTPS with TLSCertFile', () => {
    assert.equal(url({ AdminListenAddress: '10.0.0.5:9066', TLSCertFile: 'cert.pem' }), 'http://10.0.0.5:9066');
    assert.equal(url({}), 'http://127.0.0.1:8066');
    assert.equal(url({ TLSCertFile: 'cert.pem' }), 'https://127.0.0.1:8066');
    assert.equal(url({ ListenAddress: '' }), 'http://127.0.0.1:80');
  });

  it('a wildcard host is asked on 127.0.0.1; an IPv6 address in brackets', () => {
    for (const wildcard of [':9066', '0.0.0.0:9066', '[::]:9066'])
      assert.equal(url({ AdminListenAddress: wildcard }), 'http://127.0.0.1:9066');
    assert.equal(url({ AdminListenAddress: '[::1]:9066' }), 'http://[::1]:9066');
  });
});
