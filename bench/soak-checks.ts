/**
 * The soak's fault plan and its judge (bench/soak.ts runs them): which fault each notification meets, what
 * the chat server should hear back for it, and the checks of answers against what the peers saw. Pure
 * functions over plain records, so test/soak-checks.unit.test.ts can feed them every kind of failure.
 *
 * What "delivered" means: the peer handed a complete 200 to an open connection (APNs: the stream closed
 * without error after END_STREAM, its connection still up; FCM: the response finished on a live socket).
 * From then on the client can read it and Apple/Google would pass the notification on, whatever the client
 * does next. So a 200 that leaves after the proxy's attempt timed out but before the proxy cancelled it,
 * followed by a retry, is two deliveries: the device shows the notification twice, and the soak says so.
 * A 200 cut off by a cancel never left, and is not a delivery. One written just as the connection dropped
 * may or may not have left: its fate is unknown, and it counts neither way (see `judge`).
 */
import type { DeviceBehaviour } from '../src/sandbox/apns-peer';
import type { FcmBehaviour } from '../src/sandbox/fcm-peer';

export type Platform = 'apple' | 'android';
export type Outcome = 'OK' | 'REMOVE' | 'FAIL';
export const PLATFORMS: readonly Platform[] = ['apple', 'android'];

export interface FaultKind {
  id: string;
  /** Slots in each platform's cycle of 500 notifications (see planFaults). */
  weight: Record<Platform, number>;
  apns: DeviceBehaviour[];
  fcm: FcmBehaviour[];
  expected: Record<Platform, Outcome>;
}

/**
 * The fault plan for a per-attempt bound of `retryTimeoutMs`, in a cycle of 500 notifications per platform.
 * Behaviour lists are used one per request, the last entry sticking, so `[fault, healthy]` is a fault on the
 * first attempt only. The proxy gives APNs HTTP answers as they are (FAIL or REMOVE) and retries only a
 * missing answer, except that a status the library would re-send, met on a connection that is closing, counts
 * as missing: so APNs gets its status on every attempt, which makes FAIL the one right answer. FCM retries
 * INTERNAL, QUOTA_EXCEEDED, a 503 and a broken connection as further attempts, and re-sends once at once within
 * the attempt when a kept-alive connection is reset before any answer. On FCM's HTTP/1.1 a reset is a closed connection, so `close-then-ok` resets there; on
 * APNs it drops the one HTTP/2 connection every notification in flight shares, hence its low weight. After
 * an APNs 500 the proxy replaces its connection, and sends that race the change may be refused (never
 * processed, retried): APNs gets few 500s, as a notification retried that way can run out of time.
 */
export function faultKinds(retryTimeoutMs: number): FaultKind[] {
  const slowBelow = Math.round(retryTimeoutMs / 2);
  const slowAbove = Math.round(retryTimeoutMs * 1.5);
  const healthyApns: DeviceBehaviour = { status: 200 };
  const healthyFcm: FcmBehaviour = { ok: true };
  const ok = { apple: 'OK', android: 'OK' } as const;
  const both = (n: number): Record<Platform, number> => ({ apple: n, android: n });
  const fail = { apple: 'FAIL', android: 'FAIL' } as const;
  return [
    { id: 'healthy', weight: { apple: 320, android: 294 }, apns: [], fcm: [], expected: ok },
    {
      id: 'dead-token',
      weight: both(30),
      apns: [{ status: 410, reason: 'Unregistered' }],
      fcm: [{ error: 'UNREGISTERED' }],
      expected: { apple: 'REMOVE', android: 'REMOVE' },
    },
    { id: 'hang-then-ok', weight: both(20), apns: [{ hang: true }, healthyApns], fcm: [{ hang: true }, healthyFcm], expected: ok },
    { id: 'hang-always', weight: both(10), apns: [{ hang: true }], fcm: [{ hang: true }], expected: fail },
    { id: 'reset-then-ok', weight: both(20), apns: [{ reset: true }, healthyApns], fcm: [{ reset: true }, healthyFcm], expected: ok },
    { id: 'reset-always', weight: both(10), apns: [{ reset: true }], fcm: [{ reset: true }], expected: fail },
    {
      id: 'http500-once',
      weight: { apple: 2, android: 20 },
      apns: [{ status: 500, reason: 'InternalServerError' }],
      fcm: [{ error: 'INTERNAL' }, healthyFcm],
      expected: { apple: 'FAIL', android: 'OK' },
    },
    {
      id: 'http503-once',
      weight: both(15),
      apns: [{ status: 503, reason: 'ServiceUnavailable' }],
      fcm: [{ error: 'UNAVAILABLE' }, healthyFcm],
      expected: { apple: 'FAIL', android: 'OK' },
    },
    {
      id: 'http429-once',
      weight: both(15),
      apns: [{ status: 429, reason: 'TooManyRequests' }],
      fcm: [{ error: 'QUOTA_EXCEEDED' }, healthyFcm],
      expected: { apple: 'FAIL', android: 'OK' },
    },
    {
      id: 'http500-always',
      weight: { apple: 2, android: 10 },
      apns: [{ status: 500, reason: 'InternalServerError' }],
      fcm: [{ error: 'INTERNAL' }],
      expected: fail,
    },
    { id: `slow-${slowBelow}ms`, weight: both(25), apns: [{ delayMs: slowBelow }], fcm: [{ delayMs: slowBelow }], expected: ok },
    {
      id: `slow-${slowAbove}ms-then-ok`,
      weight: both(20),
      apns: [{ delayMs: slowAbove }, healthyApns],
      fcm: [{ delayMs: slowAbove }, healthyFcm],
      expected: ok,
    },
    { id: `slow-${slowAbove}ms-always`, weight: both(10), apns: [{ delayMs: slowAbove }], fcm: [{ delayMs: slowAbove }], expected: fail },
    {
      id: 'close-then-ok',
      weight: both(1),
      apns: [{ closeConnection: true }, healthyApns],
      fcm: [{ reset: true }, healthyFcm],
      expected: ok,
    },
  ];
}

/**
 * Which kind notification `index` gets: platforms alternate, and each platform walks a cycle of slots (one
 * per unit of weight) spread by a fixed shuffle, so every run, and every two cycles of notifications, has
 * the same mix.
 */
export function planFaults(count: number, kinds: FaultKind[]): Array<{ platform: Platform; kind: FaultKind }> {
  const cycles = Object.fromEntries(PLATFORMS.map((platform) => [platform, shuffledSlots(kinds, platform)])) as Record<
    Platform,
    FaultKind[]
  >;
  return Array.from({ length: count }, (_, index) => {
    const platform: Platform = index % 2 === 0 ? 'apple' : 'android';
    const slots = cycles[platform];
    return { platform, kind: slots[Math.floor(index / 2) % slots.length]! };
  });
}

function shuffledSlots(kinds: FaultKind[], platform: Platform): FaultKind[] {
  const slots: FaultKind[] = [];
  for (const kind of kinds) for (let i = 0; i < Math.round(kind.weight[platform]); i++) slots.push(kind);
  if (slots.length === 0) throw new Error(`the fault plan has no weight for ${platform}`);
  // A fixed linear congruential shuffle: the same order every run, faults not bunched together.
  let seed = 0x5eed;
  for (let i = slots.length - 1; i > 0; i--) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    const j = seed % (i + 1);
    [slots[i], slots[j]] = [slots[j]!, slots[i]!];
  }
  return slots;
}

/** One send_push as the soak sent it and what came back. Times in ms on one clock (Date.now()). */
export interface SentRequest {
  ackId: string;
  platform: Platform;
  kindId: string;
  expected: Outcome;
  sentAt: number;
  /** When the request had been written to its connection (for the report). */
  writtenAt?: number;
  /** When the HTTP answer (or the client's error) came. */
  answeredAt?: number;
  httpStatus?: number;
  /** `status` of a 200 answer's JSON body, when it is one of OK, REMOVE, FAIL. */
  outcome?: Outcome;
  /** The body when it was not a definite answer, or the client's error. */
  problem?: string;
  /** Outcomes the proxy's log gives for this notification (one line expected); unset: not read. */
  logged?: string[];
  /** Attempts the proxy's log counts for it. */
  attempts?: number;
}

/** One request that reached a peer. */
export interface PeerReceipt {
  platform: Platform;
  /** `ack_id` of the payload; undefined when the body had none. */
  ackId?: string;
  receivedAt: number;
  /** Unset while the exchange is still open. */
  endedAt?: number;
  /** `unknown`: a 200 written as its connection dropped. */
  delivery: 'yes' | 'no' | 'unknown';
  /** It was a programmed connection drop: every notification of its platform in flight then is exposed. */
  drop: boolean;
  /** Its connection went down before it ended, and not by its own programmed fault. */
  collateral: boolean;
}

export interface Limits {
  /** The latest acceptable answer, after sending (SendTimeoutSec + 2 s). */
  answerWithinMs: number;
  /**
   * How far apart two events on different sockets of the soak process may be stamped out of order: the
   * process's longest event-loop stall (a request and an answer read in one turn come in no set order).
   */
  orderingToleranceMs: number;
}

export interface Problem {
  ackId?: string;
  check: CheckName;
  detail: string;
}

export type CheckName =
  | 'no definite answer'
  | 'late answer'
  | 'unexpected outcome'
  | 'duplicate delivery'
  | 'OK but not delivered'
  | 'delivered but not OK'
  | 'received after its answer'
  | 'exchange never ended'
  | 'receipt matches no request'
  | 'log disagrees with the answer';

export const CHECKS: readonly CheckName[] = [
  'no definite answer',
  'late answer',
  'unexpected outcome',
  'duplicate delivery',
  'OK but not delivered',
  'delivered but not OK',
  'received after its answer',
  'exchange never ended',
  'receipt matches no request',
  'log disagrees with the answer',
];

export interface KindFigures {
  kindId: string;
  platform: Platform;
  expected: Outcome;
  sent: number;
  outcomes: Record<Outcome, number>;
  /** Requests that reached the peer (attempts, library re-sends included). */
  receipts: number;
  deliveries: number;
  /** 200s written as their connection dropped: delivered or not, nobody can tell. */
  unknownDeliveries: number;
  /** Notifications in flight when another notification's fault dropped the connection. */
  exposed: number;
  latenciesMs: number[];
}

export interface Judgement {
  problems: Problem[];
  counts: Record<CheckName, number>;
  kinds: KindFigures[];
  /** Most ms a receipt came after its notification's answer (negative: none did). */
  maxReceiptAfterAnswerMs: number;
  latenciesMs: number[];
  /** Answered OK with one delivery and one or more of unknown fate: a duplicate on the device, perhaps. */
  possibleDuplicates: number;
  /** Answered OK and delivered exactly once. */
  okDeliveredOnce: number;
}

/**
 * Judges every answer against what the peers saw. A notification one of whose attempts was cut off when another
 * one's fault dropped the connection (exposed: a receipt of its own was cut off, or it made more attempts than
 * reached the peer while a drop happened) may end OK or FAIL whatever its kind expects. Delivery is judged strictly all the same: OK means delivered exactly
 * once, REMOVE and FAIL mean not delivered. A delivery of unknown fate can excuse an OK without a certain
 * delivery, and never makes a failure by itself; the possible duplicates are counted.
 */
export function judge(requests: readonly SentRequest[], receipts: readonly PeerReceipt[], limits: Limits): Judgement {
  const problems: Problem[] = [];
  const byAck = new Map<string, PeerReceipt[]>();
  const known = new Set(requests.map((r) => r.ackId));
  let maxReceiptAfterAnswerMs = -Infinity;
  for (const receipt of receipts) {
    if (receipt.ackId === undefined || !known.has(receipt.ackId)) {
      problems.push({
        ackId: receipt.ackId,
        check: 'receipt matches no request',
        detail: `${receipt.platform} peer, ack_id ${receipt.ackId ?? '(none)'}`,
      });
      continue;
    }
    const list = byAck.get(receipt.ackId) ?? [];
    list.push(receipt);
    byAck.set(receipt.ackId, list);
  }

  const drops = receipts.filter((r) => r.drop);
  const kinds = new Map<string, KindFigures>();
  const latenciesMs: number[] = [];
  let possibleDuplicates = 0;
  let okDeliveredOnce = 0;
  for (const request of requests) {
    const key = `${request.kindId}/${request.platform}`;
    let figures = kinds.get(key);
    if (!figures) {
      figures = {
        kindId: request.kindId,
        platform: request.platform,
        expected: request.expected,
        sent: 0,
        outcomes: { OK: 0, REMOVE: 0, FAIL: 0 },
        receipts: 0,
        deliveries: 0,
        unknownDeliveries: 0,
        exposed: 0,
        latenciesMs: [],
      };
      kinds.set(key, figures);
    }
    const mine = byAck.get(request.ackId) ?? [];
    const deliveries = mine.filter((r) => r.delivery === 'yes').length;
    const unknown = mine.filter((r) => r.delivery === 'unknown').length;
    const end = request.answeredAt ?? Infinity;
    // An attempt cut off by the drop reached the peer (collateral), or never did: more attempts than receipts.
    const lostAttempt = request.attempts !== undefined && request.attempts > mine.length;
    const exposed =
      mine.some((r) => r.collateral) ||
      (lostAttempt &&
        drops.some(
          (d) => d.platform === request.platform && d.ackId !== request.ackId && d.receivedAt >= request.sentAt && d.receivedAt <= end,
        ));
    figures.sent++;
    figures.receipts += mine.length;
    figures.deliveries += deliveries;
    figures.unknownDeliveries += unknown;
    if (exposed) figures.exposed++;
    const report = (check: CheckName, detail: string): void =>
      void problems.push({ ackId: request.ackId, check, detail: `${request.platform} ${request.kindId}: ${detail}` });

    for (const receipt of mine) {
      if (receipt.endedAt === undefined)
        report('exchange never ended', `a request received at +${receipt.receivedAt - request.sentAt} ms is still open`);
    }
    if (request.answeredAt === undefined || request.httpStatus !== 200 || request.outcome === undefined) {
      report('no definite answer', request.problem ?? `HTTP ${request.httpStatus ?? 'none'}`);
      continue;
    }
    const latency = request.answeredAt - request.sentAt;
    latenciesMs.push(latency);
    figures.latenciesMs.push(latency);
    figures.outcomes[request.outcome]++;
    if (request.logged !== undefined && (request.logged.length !== 1 || request.logged[0] !== request.outcome)) {
      report(
        'log disagrees with the answer',
        `answered ${request.outcome}, logged ${request.logged.length === 0 ? 'nothing' : request.logged.join(', ')}`,
      );
    }
    if (latency > limits.answerWithinMs) {
      const written =
        request.writtenAt === undefined || Number.isNaN(request.writtenAt)
          ? ''
          : `, the request written after ${request.writtenAt - request.sentAt} ms`;
      report('late answer', `${request.outcome} after ${latency} ms (limit ${limits.answerWithinMs} ms${written})`);
    }
    const acceptable = request.outcome === request.expected || (exposed && request.outcome !== 'REMOVE');
    if (!acceptable) report('unexpected outcome', `${request.outcome}, expected ${request.expected}`);
    if (deliveries > 1) report('duplicate delivery', `${deliveries} deliveries, answered ${request.outcome}`);
    if (request.outcome === 'OK' && deliveries === 0 && unknown === 0)
      report('OK but not delivered', `${mine.length} requests reached the peer, none delivered`);
    if (request.outcome === 'OK' && deliveries <= 1 && deliveries + unknown > 1) possibleDuplicates++;
    if (request.outcome === 'OK' && deliveries === 1) okDeliveredOnce++;
    if (request.outcome !== 'OK' && deliveries > 0) report('delivered but not OK', `answered ${request.outcome}`);
    for (const receipt of mine) {
      const after = receipt.receivedAt - request.answeredAt;
      maxReceiptAfterAnswerMs = Math.max(maxReceiptAfterAnswerMs, after);
      if (after > limits.orderingToleranceMs)
        report('received after its answer', `the peer received a request ${after} ms after the answer`);
    }
  }

  const counts = Object.fromEntries(CHECKS.map((c) => [c, 0])) as Record<CheckName, number>;
  for (const problem of problems) counts[problem.check]++;
  return { problems, counts, kinds: [...kinds.values()], maxReceiptAfterAnswerMs, latenciesMs, possibleDuplicates, okDeliveredOnce };
}

/** Resident memory at the end against after warm-up: growth beyond `maxGrowth` (0.2 = 20 %) fails. */
export function judgeRss(warmKb: number, endKb: number, maxGrowth: number): { ok: boolean; growth: number } {
  const growth = warmKb > 0 ? endKb / warmKb - 1 : Infinity;
  return { ok: growth <= maxGrowth, growth };
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** A plain-text table: the first row is the header; numbers right-aligned. */
export function table(rows: ReadonlyArray<ReadonlyArray<string | number>>): string {
  const cells = rows.map((row) => row.map((c) => String(c)));
  const widths = cells[0]!.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const numeric = (s: string): boolean => /^[-+]?[\d.,]+( ?(%|ms|s|MB))?$/.test(s);
  const line = (row: string[]): string =>
    row
      .map((c, i) => (numeric(c) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(cells[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}
