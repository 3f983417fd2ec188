/** Rate-limit gates for tests: a captured log, bounded checks, counts of allowed checks. */
import { Writable } from 'node:stream';
import pino from 'pino';
import { RateLimitGate, type RateLimitDecision, type RateLimitKeys } from '../src/ratelimit/gate';
import type { RateLimitSettings } from '../src/ratelimit/settings';

export const OFF: RateLimitSettings = { perClientPerSec: 0, perServerIdPerSec: 0, perTenantPerSec: 0 };
/** A decision must never wait on Redis for long; this is a hang detector, not a speed assertion. */
const CHECK_BOUND_MS = 2000;

export function captureLog() {
  const chunks: string[] = [];
  const logger = pino(
    { level: 'debug' },
    new Writable({
      write(chunk, _enc, cb) {
        chunks.push(chunk.toString());
        cb();
      },
    }),
  );
  const lines = () =>
    chunks
      .join('')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { level: number; msg: string; err?: { message: string } });
  return { logger, warnings: () => lines().filter((l) => l.level === 40), infos: () => lines().filter((l) => l.level === 30) };
}

export function memoryGate(settings: Partial<RateLimitSettings>) {
  return new RateLimitGate({ settings: { ...OFF, ...settings }, store: { type: 'memory' }, logger: captureLog().logger });
}

export async function checkBounded(gate: RateLimitGate, keys: RateLimitKeys): Promise<RateLimitDecision> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`check did not resolve within ${CHECK_BOUND_MS} ms`)), CHECK_BOUND_MS);
  });
  try {
    return await Promise.race([gate.check(keys), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** How many of `count` checks are allowed. */
export async function allowedOf(gate: RateLimitGate, keys: RateLimitKeys, count: number): Promise<number> {
  let allowed = 0;
  for (let i = 0; i < count; i++) if ((await checkBounded(gate, keys)).allowed) allowed++;
  return allowed;
}
