/**
 * The retry loop shared by every service (docs/protocol.md, Retries and timeouts): a few attempts with backoff, each bounded by the
 * per-attempt timeout and all of them by the per-notification budget. Which answers are final is the
 * transport's call; when to stop is this module's.
 */
import type { AttemptRecord, AttemptResult, DeliveryResult } from './types';

export interface RetryPolicy {
  maxAttempts: number;
  /** Wait before attempt 2, 3, … */
  backoffMs: readonly number[];
  /** Budget for the whole notification (`SendTimeoutSec`). */
  sendTimeoutMs: number;
  /** Bound on each attempt (`RetryTimeoutSec`, capped at the budget). */
  retryTimeoutMs: number;
  /** The FAIL to answer when the budget runs out before another attempt can start. */
  budgetExhausted: { error: string; reason: string };
  /** The FAIL to answer after the last retryable attempt; defaults to that attempt's own error. */
  attemptsExhausted?: { error: string; reason: string };
}

export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/**
 * What the loop tells about every attempt it makes (the metrics of one entry). Methods on one object, called
 * in order `started`, `ended`, then `retrying` before the next attempt: the hot path builds no closure for them.
 */
export interface AttemptObserver {
  /** An attempt goes to the transport. */
  started(): void;
  /** It ended after `seconds`: its verdict, or undefined when it threw. */
  ended(seconds: number, result: AttemptResult | undefined): void;
  /** Another attempt starts after a retryable one that said `reason`. */
  retrying(reason: string): void;
}

/**
 * `request`: what the attempts send, kept on the result for inspection. `observer` hears each attempt start and
 * end (its duration in seconds and verdict, whether it answered or threw) and each retry. `logAttempts`: the
 * result carries `attemptLog`, one record per attempt (the trace); off, nothing of the kind is built.
 */
export function deliverWithRetries(
  attempt: (timeoutMs: number) => Promise<AttemptResult>,
  policy: RetryPolicy,
  clock: Clock = systemClock,
  request?: unknown,
  observer?: AttemptObserver,
  logAttempts = false,
): Promise<DeliveryResult> {
  const started = clock.now();
  const deadline = started + policy.sendTimeoutMs;
  const log: AttemptRecord[] | undefined = logAttempts ? [] : undefined;
  if (policy.maxAttempts < 1 || policy.sendTimeoutMs <= 0)
    return retryUntilDone(attempt, policy, clock, deadline, 0, undefined, request, observer, started, log);
  // Most notifications end at the first answer: no async frame and no promise but the attempt's own.
  let first: Promise<AttemptResult>;
  observer?.started();
  try {
    first = attempt(Math.min(policy.retryTimeoutMs, policy.sendTimeoutMs));
  } catch (err) {
    observer?.ended((clock.now() - started) / 1000, undefined);
    throw err;
  }
  return first.then(
    (result) => {
      const ms = clock.now() - started;
      observer?.ended(ms / 1000, result);
      log?.push(attemptRecord(result, 0, ms));
      return result.kind === 'final'
        ? finalResult(result, 1, request, log)
        : retryUntilDone(
            attempt,
            policy,
            clock,
            deadline,
            1,
            { error: result.error, reason: result.reason },
            request,
            observer,
            started,
            log,
          );
    },
    (err: unknown) => {
      observer?.ended((clock.now() - started) / 1000, undefined);
      throw err;
    },
  );
}

/** Attempts 2, 3, … after `attempts` retryable ones, whose last said `last`. */
async function retryUntilDone(
  attempt: (timeoutMs: number) => Promise<AttemptResult>,
  policy: RetryPolicy,
  clock: Clock,
  deadline: number,
  attempts: number,
  last: { error: string; reason: string } | undefined,
  request: unknown,
  observer: AttemptObserver | undefined,
  firstStarted: number,
  log: AttemptRecord[] | undefined,
): Promise<DeliveryResult> {
  for (let i = attempts; i < policy.maxAttempts; i++) {
    if (i > 0) {
      const wait = policy.backoffMs[Math.min(i - 1, policy.backoffMs.length - 1)] ?? 0;
      // The original gives up when the budget ends during the wait; answering at once is kinder.
      if (clock.now() + wait >= deadline) break;
      await clock.sleep(wait);
    }
    const started = clock.now();
    const remaining = deadline - started;
    if (remaining <= 0) break;

    attempts++;
    if (last) observer?.retrying(last.reason);
    observer?.started();
    let result: AttemptResult | undefined;
    try {
      result = await attempt(Math.min(policy.retryTimeoutMs, remaining));
    } finally {
      const ms = clock.now() - started;
      observer?.ended(ms / 1000, result);
      log?.push(attemptRecord(result, started - firstStarted, ms));
    }
    if (result.kind === 'final') {
      return finalResult(result, attempts, request, log);
    }
    last = { error: result.error, reason: result.reason };
  }

  const exhausted = attempts < policy.maxAttempts || !last ? policy.budgetExhausted : (policy.attemptsExhausted ?? last);
  const failed: DeliveryResult = { outcome: 'FAIL', error: exhausted.error, reason: exhausted.reason, attempts, request };
  if (log) failed.attemptLog = log;
  return failed;
}

/** A final answer as the notification's result; the provider's code, the evidence, the provider's id and the attempts only when present. */
function finalResult(
  result: Extract<AttemptResult, { kind: 'final' }>,
  attempts: number,
  request: unknown,
  log: AttemptRecord[] | undefined,
): DeliveryResult {
  const delivered: DeliveryResult = { outcome: result.outcome, error: result.error, reason: result.reason, attempts, request };
  if (result.providerReason !== undefined) delivered.providerReason = result.providerReason;
  if (result.evidence !== undefined) delivered.evidence = result.evidence;
  if (result.providerId !== undefined) delivered.providerId = result.providerId;
  if (log) delivered.attemptLog = log;
  return delivered;
}

/** One attempt for the trace; `result` undefined: the transport threw. Durations rounded to 0.1 ms. */
function attemptRecord(result: AttemptResult | undefined, startMs: number, ms: number): AttemptRecord {
  return {
    startMs: Math.round(startMs * 10) / 10,
    ms: Math.round(ms * 10) / 10,
    verdict: result === undefined ? 'threw' : result.kind === 'final' ? result.outcome : 'retry',
    status: result?.status,
    reason: result?.reason || undefined,
    providerId: result?.providerId,
  };
}

/** Per-attempt and overall bounds from the config, with the original's defaults and cap. */
export function retryBounds(sendTimeoutSec: number, retryTimeoutSec: number): { sendTimeoutMs: number; retryTimeoutMs: number } {
  const send = sendTimeoutSec === 0 ? 30 : sendTimeoutSec;
  const retry = retryTimeoutSec === 0 ? 8 : retryTimeoutSec;
  return { sendTimeoutMs: send * 1000, retryTimeoutMs: Math.min(retry, send) * 1000 };
}
