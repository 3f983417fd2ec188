/**
 * The bench's pure parts: which scenarios a run selects, how its targets are judged from the summarized sides,
 * how the proxy's delivery lines are counted, and the wrk script's bodies for mixed traffic.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { countDeliveryLines } from '../bench/common';
import { wrkScript } from '../bench/driver';
import { roundsOf, SCENARIOS, selectScenarios } from '../bench/scenarios';
import { judgeTargets, RATIO_TARGETS, renderVerdicts, type Comparison, type Side } from '../bench/targets';

function side(values: Partial<Side>): Side {
  return { rps: 1000, p50: 10, p99: 20, cpuPer1k: 0.1, rssMb: 100, runs: 8, noisy: 0, ok: true, ...values };
}

function comparison(proxy: Partial<Side>, base: Partial<Side> = {}): Comparison {
  return { base: side(base), proxy: side(proxy) };
}

describe('bench targets', () => {
  it('judges CPU on the worst default-logging APNs scenario, against its ceiling', () => {
    const verdicts = judgeTargets(
      new Map([
        ['apns-c64-0ms', comparison({ cpuPer1k: 0.13 })],
        ['apns-c256-20ms', comparison({ cpuPer1k: 0.14 })],
        ['apns-c256-0ms', comparison({ cpuPer1k: 0.12 })],
      ]),
    );
    const cpu = verdicts.find((v) => v.name.startsWith('CPU per notification, default logging'))!;
    assert.equal(cpu.scenario, 'apns-c256-20ms');
    assert.ok(Math.abs(cpu.measured - 1.4) < 1e-9);
    assert.equal(cpu.limit, 1.35);
    assert.equal(cpu.met, false);
  });

  it('judges throughput against a floor, and a ratio exactly at its limit meets it', () => {
    const [met] = judgeTargets(new Map([['workers2-c256-0ms', comparison({ rps: 850 })]]));
    assert.equal(met!.name, 'throughput, Workers 2 vs the bare relay in 2 processes');
    assert.equal(met!.atMost, false);
    assert.equal(met!.met, true);
    const [missed] = judgeTargets(new Map([['workers2-c256-0ms', comparison({ rps: 849 })]]));
    assert.equal(missed!.met, false);
  });

  it('judges each target on its own scenario: FCM twice, mixed, warn, JSON, p99', () => {
    const verdicts = judgeTargets(
      new Map([
        ['fcm-c64-0ms', comparison({ cpuPer1k: 0.15, rps: 600 })],
        ['mixed-c256-0ms', comparison({ cpuPer1k: 0.146 })],
        ['apns-c256-0ms-warn', comparison({ cpuPer1k: 0.125 })],
        ['apns-c256-0ms-json', comparison({ cpuPer1k: 0.131 })],
        ['apns-c64-20ms', comparison({ p99: 26 })],
      ]),
    );
    const byName = new Map(verdicts.map((v) => [v.name, v.met]));
    assert.equal(byName.get('CPU per notification, FCM'), true);
    assert.equal(byName.get('throughput, FCM'), false);
    assert.equal(byName.get('CPU per notification, mixed APNs and FCM'), false);
    assert.equal(byName.get('CPU per notification, warn'), true);
    assert.equal(byName.get('CPU per notification, info JSON'), false);
    assert.equal(byName.get('p99, default logging'), true);
    // apns-c64-20ms alone is also a default-logging APNs scenario: its CPU (1.0×) is judged.
    assert.equal(byName.get('CPU per notification, default logging, worst APNs scenario'), true);
    assert.equal(verdicts.length, 7);
  });

  it('leaves out targets whose scenarios did not run, and judges peak RSS when given', () => {
    assert.deepEqual(judgeTargets(new Map()), []);
    const [rss] = judgeTargets(new Map(), 161);
    assert.equal(rss!.unit, ' MB');
    assert.equal(rss!.met, false);
    assert.equal(judgeTargets(new Map(), 160)[0]!.met, true);
  });

  it('renders a ratio that rounds to its limit with a third digit', () => {
    const lines = renderVerdicts(judgeTargets(new Map([['apns-c256-0ms', comparison({ rps: 749 })]])));
    assert.match(
      lines.find((l) => l.startsWith('| throughput'))!,
      /\| 0\.749× \| ≥ 0\.75× \| \*\*missed\*\* \|/,
    );
  });
});

describe('bench scenarios', () => {
  it('names only scenarios that exist in its targets', () => {
    const ids = new Set(SCENARIOS.map((s) => s.id));
    for (const target of RATIO_TARGETS) for (const id of target.scenarios) assert.ok(ids.has(id), `${target.name}: ${id}`);
  });

  it('--quick runs one scenario for each target, the mixed one included', () => {
    const quick = selectScenarios({ quick: true, extras: true });
    const ids = new Set(quick.map((s) => s.id));
    for (const target of RATIO_TARGETS)
      assert.ok(
        target.scenarios.some((id) => ids.has(id)),
        target.name,
      );
    assert.ok(quick.some((s) => s.target === 'mixed'));
    assert.ok(quick.length < SCENARIOS.length);
  });

  it('runs the extras unless --no-extras, in half the rounds', () => {
    const all = selectScenarios({ quick: false, extras: true });
    const main = selectScenarios({ quick: false, extras: false });
    assert.equal(all.length, SCENARIOS.length);
    assert.ok(main.every((s) => !s.extra));
    assert.deepEqual(
      all.filter((s) => s.extra).map((s) => s.id),
      ['bare2-c256-0ms', 'apns-c256-0ms-warn', 'apns-c256-0ms-json'],
    );
    assert.equal(
      roundsOf(
        all.find((s) => s.extra)!,
        4,
      ),
      2,
    );
    assert.equal(
      roundsOf(
        all.find((s) => s.extra)!,
        1,
      ),
      1,
    );
    assert.equal(roundsOf(main[0]!, 4), 4);
  });

  it('measures the main rows at the default logging, Workers 2 against the bare relay in 2 processes', () => {
    for (const s of selectScenarios({ quick: false, extras: false }))
      assert.ok('proxy' in s.subject && (s.subject.proxy === 'default' || s.subject.proxy === 'workers-2'), s.id);
    const workers = SCENARIOS.find((s) => s.id === 'workers2-c256-0ms')!;
    assert.deepEqual(workers.base, { bare: 2 });
  });

  it('--only selects exactly the ids given and refuses an unknown one', () => {
    assert.deepEqual(
      selectScenarios({ quick: true, extras: false, only: new Set(['bare2-c256-0ms', 'fcm-c64-0ms']) }).map((s) => s.id),
      ['fcm-c64-0ms', 'bare2-c256-0ms'],
    );
    assert.throws(
      () => selectScenarios({ quick: false, extras: true, only: new Set(['info-json-file']) }),
      /unknown scenario info-json-file/,
    );
  });
});

describe('bench log check', () => {
  const line = (ack: string, message = 'push delivered'): string =>
    `[2026-12-06 11:04:10.270] INFO: ${message} {"platform":"apple_rn","ack_id":"${ack}","outcome":"OK"}`;

  it("counts the run's delivery lines, in plain and JSON, and no other run's or message's", () => {
    const text = [
      line('r12-1-1'),
      line('r12-a-1-2'),
      line('r1-1-1'),
      line('r123-1-1'),
      line('r12-1-3', 'push failed'),
      '{"level":30,"time":"2026-12-06T11:04:10.270Z","ack_id":"r12-f-1-4","msg":"push delivered"}',
      'WARN: something else',
    ].join('\n');
    assert.equal(countDeliveryLines(text, 'r12'), 3);
    assert.equal(countDeliveryLines(text, 'r1'), 1);
    assert.equal(countDeliveryLines('', 'r12'), 0);
    assert.equal(countDeliveryLines(line('r12-1-1'), 'r12'), 1);
  });
});

describe('bench wrk script', () => {
  it('alternates the targets, each body with its platform, token and ack_id prefix', () => {
    const script = wrkScript({
      targets: [
        { platform: 'apple_rn-v2', deviceId: 'ab'.repeat(32), ackPrefix: 'r3-a' },
        { platform: 'android_rn-v2', deviceId: 'fcm:token', ackPrefix: 'r3-f' },
      ],
    });
    const prefixes = /^local prefixes = \{ \[\[(.*)\]\], \[\[(.*)\]\] \}$/m.exec(script);
    assert.ok(prefixes, script);
    assert.match(prefixes[1]!, /"platform":"apple_rn-v2".*"device_id":"abab.*"ack_id":"r3-a-$/);
    assert.match(prefixes[2]!, /"platform":"android_rn-v2".*"device_id":"fcm:token".*"ack_id":"r3-f-$/);
    assert.match(script, /local k = \(sent - 1\) % kinds \+ 1/);
    assert.match(script, /prefixes\[k\] \.\. tid \.\. "-" \.\. sent \.\. suffixes\[k\]/);
    assert.throws(() => wrkScript({ targets: [] }));
  });
});
