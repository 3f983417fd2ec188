/** The pieces of the operator metrics that need no sockets: pending acks, duration buckets, an entry's counters. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PendingAcks } from '../src/delivery/pending-acks';
import { durationBuckets, ProxyMetrics } from '../src/metrics';

describe('pending acks', () => {
  it('a receipt takes its answer once; unknown ids give nothing', () => {
    const pending = new PendingAcks<string>();
    pending.answered('a', 1_000, 'apple');
    assert.equal(pending.take('unknown', 1_500), undefined);
    assert.deepEqual(pending.take('a', 1_500), { at: 1_000, label: 'apple' });
    assert.equal(pending.take('a', 1_600), undefined);
    assert.equal(pending.size, 0);
  });

  it('an answer older than the maximum age measures nothing, and is forgotten', () => {
    const pending = new PendingAcks<string>(10, 60_000);
    pending.answered('old', 0, 'android');
    pending.answered('fresh', 0, 'android');
    assert.equal(pending.take('old', 60_001), undefined);
    assert.equal(pending.size, 1);
    assert.deepEqual(pending.take('fresh', 60_000), { at: 0, label: 'android' });
  });

  it('keeps at most `max` ids: the oldest answered goes first', () => {
    const pending = new PendingAcks<string>(3);
    for (const id of ['1', '2', '3', '4']) pending.answered(id, 0, 'apple');
    assert.equal(pending.size, 3);
    assert.equal(pending.take('1', 0), undefined);
    assert.ok(pending.take('4', 0));
  });
});

describe('duration buckets', () => {
  it("end at SendTimeoutSec: prom-client's defaults below it, coarser ones past 10 s", () => {
    assert.deepEqual(durationBuckets(4), [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 4]);
    assert.deepEqual(durationBuckets(30), [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 20, 30]);
    assert.equal(durationBuckets(1000).at(-1), 1000);
  });

  it('an instance without SendTimeoutSec takes its default, 30 s', () => {
    assert.equal(new ProxyMetrics().durationBuckets.at(-1), 30);
    assert.equal(new ProxyMetrics({ sendTimeoutSec: 0 }).durationBuckets.at(-1), 30);
    assert.equal(new ProxyMetrics({ sendTimeoutSec: 45 }).durationBuckets.at(-1), 45);
  });
});

describe("an entry's counters", () => {
  it('count slot waits and credential refresh failures under the entry, at 0 before the first', async () => {
    const metrics = new ProxyMetrics();
    const entry = metrics.entryMetrics('apple', 'apple_rn');
    // The same entry's counters, whoever asks.
    assert.equal(metrics.entryMetrics('apple', 'apple_rn'), entry);
    assert.match(await metrics.registry.metrics(), /^service_send_slot_waits_total\{platform_type="apple_rn"\} 0$/m);
    entry.slotWaited();
    entry.slotWaited();
    entry.credentialRefreshFailed('apns_token');
    const text = await metrics.registry.metrics();
    assert.match(text, /^service_send_slot_waits_total\{platform_type="apple_rn"\} 2$/m);
    assert.match(text, /^service_credential_refresh_failures_total\{platform_type="apple_rn",kind="apns_token"\} 1$/m);
    assert.match(text, /^service_sends_in_flight\{platform_type="apple_rn"\} 0$/m);
  });
});
