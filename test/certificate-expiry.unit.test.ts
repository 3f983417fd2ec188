/** When the proxy warns about a certificate's end: the pure rule on fixed dates, and the watch applying it. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CertificateExpiryWatch, expiryNotice, expiryStage, type LastExpiryNotice } from '../src/tls/expiry';
import { capturedLogger } from './unit-support';

const DAY = 86_400_000;
const HOUR = 3_600_000;
const NOT_AFTER = Date.parse('2027-03-01T12:00:00Z');
/** The moment `days` days before NOT_AFTER. */
const before = (days: number) => NOT_AFTER - days * DAY;

describe('expiryStage', () => {
  const cases: Array<[number, ReturnType<typeof expiryStage>]> = [
    [31, undefined],
    [30.01, undefined],
    [30, 30],
    [8, 30],
    [7, 7],
    [2, 7],
    [1, 1],
    [0.5, 1],
    [0, 'expired'],
    [-3, 'expired'],
  ];
  for (const [days, stage] of cases) {
    it(`${days} days before the end: ${String(stage)}`, () => assert.equal(expiryStage(before(days), NOT_AFTER), stage));
  }
});

describe('expiryNotice', () => {
  it('nothing more than 30 days ahead', () => {
    assert.equal(expiryNotice(before(31), NOT_AFTER, undefined), undefined);
  });

  it('the first look within 30 days warns, whatever the stage', () => {
    assert.equal(expiryNotice(before(30), NOT_AFTER, undefined), 30);
    assert.equal(expiryNotice(before(8), NOT_AFTER, undefined), 30);
    assert.equal(expiryNotice(before(2), NOT_AFTER, undefined), 7);
    assert.equal(expiryNotice(before(0.5), NOT_AFTER, undefined), 1);
    assert.equal(expiryNotice(before(-1), NOT_AFTER, undefined), 'expired');
  });

  it('repeated daily, not more often', () => {
    const last: LastExpiryNotice = { at: before(20), stage: 30 };
    assert.equal(expiryNotice(before(20) + HOUR, NOT_AFTER, last), undefined);
    assert.equal(expiryNotice(before(20) + DAY - 1, NOT_AFTER, last), undefined);
    assert.equal(expiryNotice(before(19), NOT_AFTER, last), 30);
  });

  it('crossing 7 days, 1 day and the end warns at once, then daily again', () => {
    const at8 = { at: before(7) - HOUR, stage: 30 } as const;
    assert.equal(expiryNotice(before(7), NOT_AFTER, at8), 7);
    assert.equal(expiryNotice(before(7) + HOUR, NOT_AFTER, { at: before(7), stage: 7 }), undefined);
    assert.equal(expiryNotice(before(1), NOT_AFTER, { at: before(1) - HOUR, stage: 7 }), 1);
    assert.equal(expiryNotice(NOT_AFTER, NOT_AFTER, { at: NOT_AFTER - HOUR, stage: 1 }), 'expired');
    assert.equal(expiryNotice(NOT_AFTER + HOUR, NOT_AFTER, { at: NOT_AFTER, stage: 'expired' }), undefined);
    assert.equal(expiryNotice(NOT_AFTER + DAY, NOT_AFTER, { at: NOT_AFTER, stage: 'expired' }), 'expired');
  });
});

describe('CertificateExpiryWatch', () => {
  it('checked hourly over 40 days: one warning a day from 30 days ahead, one more at 7 and at 1 day, then an error a day', () => {
    const { logger, lines } = capturedLogger('info');
    let now = before(40);
    const watch = new CertificateExpiryWatch([{ name: 'apple_rn', notAfter: new Date(NOT_AFTER), renewal: 'renew it' }], logger, () => now);
    for (; now <= NOT_AFTER + 2 * DAY; now += HOUR) watch.check();
    const warnings = lines().filter((l) => l.level === 40);
    const errors = lines().filter((l) => l.level === 50);
    // Days 30..1 ahead: 30 daily warnings at the same hour, the 7- and 1-day ones falling on it.
    assert.equal(warnings.length, 30);
    assert.equal(warnings[0]!.days_left, 30);
    assert.equal(warnings.at(-1)!.days_left, 1);
    assert.equal(errors.length, 3, 'at the end, then a day and two days later');
    assert.match(String(errors[0]!.msg), /certificate apple_rn expired on 2027-03-01T12:00:00\.000Z: renew it/);
    assert.match(String(warnings[0]!.msg), /certificate apple_rn expires on 2027-03-01T12:00:00\.000Z, in 30 day\(s\): renew it/);
  });

  it('a threshold crossed between two daily warnings gets its own', () => {
    const { logger, lines } = capturedLogger('info');
    // Started 7.5 days ahead: the daily warnings fall at 7.5, 6.5, … days; crossing 7 days adds one.
    let now = before(7.5);
    const watch = new CertificateExpiryWatch([{ name: 'apple', notAfter: new Date(NOT_AFTER), renewal: 'renew it' }], logger, () => now);
    for (; now <= before(6); now += HOUR) watch.check();
    const daysLeft = lines()
      .filter((l) => l.level === 40)
      .map((l) => l.days_left);
    assert.deepEqual(daysLeft, [8, 7, 6], '7.5 days ahead, at 7 days, then a day after that');
  });
});
