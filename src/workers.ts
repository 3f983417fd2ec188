/**
 * Workers with node:cluster. The primary serves nothing: it forks `Workers` processes that each run a whole
 * proxy (own APNs sessions, own FCM connections) on one shared listening port, replaces a worker that dies,
 * answers workers' /metrics requests with the sum over all of them, and stops them all on SIGTERM/SIGINT
 * (each drains as a single process does; a second signal kills them). SIGHUP goes on to every worker.
 * Start-up errors surface once: the first worker starts alone, and if it exits before listening, the
 * primary exits with its code (2 for a configuration problem).
 */
import cluster, { type Worker } from 'node:cluster';
import os from 'node:os';
import type { Logger } from 'pino';
import { AggregatorRegistry, type Registry } from 'prom-client';
import type { ProxyConfig } from './config/types';
import { forcesExit } from './http/drain';
import { rateLimitsActive } from './ratelimit/settings';
import { QueryHandlers, type OperatorQueries } from './operator-queries';

const READY = 'push-proxy:ready';
const METRICS_REQUEST = 'push-proxy:metrics-request';
const METRICS_ANSWER = 'push-proxy:metrics-answer';
const QUERY_REQUEST = 'push-proxy:query-request';
const QUERY_ASK = 'push-proxy:query-ask';
const QUERY_REPLY = 'push-proxy:query-reply';
const QUERY_ANSWER = 'push-proxy:query-answer';

/** What a worker tells the primary once it listens. */
export interface WorkerReady {
  type: typeof READY;
  url: string;
  platforms: string[];
  /** The admin listener's URL, when there is one (AdminListenAddress). */
  adminUrl?: string;
}

interface MetricsRequest {
  type: typeof METRICS_REQUEST;
  id: number;
}

interface MetricsAnswer {
  type: typeof METRICS_ANSWER;
  id: number;
  text?: string;
  error?: string;
}

/** A worker asks the primary to put an operator query to every worker. */
interface QueryRequest {
  type: typeof QUERY_REQUEST;
  id: number;
  name: string;
  params: unknown;
}

/** The primary puts one query to one worker. */
interface QueryAsk {
  type: typeof QUERY_ASK;
  id: number;
  name: string;
  params: unknown;
}

/** One worker's reply to the primary; `answered` false when it has no handler for the query. */
interface QueryReply {
  type: typeof QUERY_REPLY;
  id: number;
  answered: boolean;
  value?: unknown;
  error?: string;
}

/** Every worker's answers, back to the worker that asked. */
interface QueryAnswer {
  type: typeof QUERY_ANSWER;
  id: number;
  answers?: unknown[];
  error?: string;
}

export function resolveWorkerCount(setting: ProxyConfig['Workers'], cores = os.availableParallelism()): number {
  return setting === 'auto' ? Math.max(1, cores) : setting;
}

/** Why this configuration runs in one process whatever `Workers` says, or undefined when it need not. */
export function singleProcessReason(config: ProxyConfig, sandboxInProcess: boolean): string | undefined {
  if (sandboxInProcess) return 'the built-in sandbox peers (no configuration file) live in one process';
  if (config.Inspector) return 'the inspector keeps notifications in the memory of one process';
  return undefined;
}

/** Notices for the operator about what is counted per worker. */
export function workerNotices(config: ProxyConfig, count: number): string[] {
  if (count > 1 && rateLimitsActive(config) && config.RateLimitStore.Type === 'memory') {
    return [
      `rate limits are counted in each worker's memory: with ${count} workers a client can get up to ${count}× each limit. ` +
        'Set RateLimitStore to redis to count them once for all workers.',
    ];
  }
  return [];
}

export interface PrimaryOptions {
  count: number;
  logger: Logger;
  /** Once every worker of the first generation listens. */
  onListening(first: WorkerReady): void;
  /** How long workers get to finish requests under way before they are killed. */
  shutdownTimeoutMs?: number;
  /** SIGHUP came: the primary's own part (its log file); the signal then goes on to every worker. */
  onHangup?(): void;
  /** Waits before replacing a worker that died, growing with crashes in a row. */
  restartDelaysMs?: readonly number[];
}

/** Runs the primary until every worker is gone; resolves with the exit code for the process. */
export function runPrimary(options: PrimaryOptions): Promise<number> {
  const { count, logger } = options;
  const shutdownTimeoutMs = options.shutdownTimeoutMs ?? 15_000;
  const restartDelaysMs = options.restartDelaysMs ?? [500, 1_000, 2_000, 5_000, 10_000, 30_000];
  // Also answers prom-client's own requests to the workers (each registers its registry).
  const aggregator = new AggregatorRegistry();

  return new Promise<number>((resolve) => {
    const live = new Map<number, { worker: Worker; ready: boolean; startedAt: number }>();
    let started = false;
    let stopping = false;
    let exitCode = 0;
    let crashStreak = 0;
    let lastCrashAt = 0;
    let forceTimer: NodeJS.Timeout | undefined;

    const finishIfEmpty = () => {
      if (!stopping || live.size > 0) return;
      clearTimeout(forceTimer);
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      process.off('SIGHUP', onHangup);
      resolve(exitCode);
    };

    const killAll = (why: string): void => {
      logger.error(`${why}: killing ${live.size} worker(s) with the requests they still hold`);
      exitCode = exitCode || 1;
      for (const { worker } of live.values()) worker.process.kill('SIGKILL');
    };

    const stopAll = (code: number, why: string) => {
      if (stopping) return;
      stopping = true;
      exitCode = code;
      if (live.size > 0) logger.info(`${why}: stopping ${live.size} worker(s), finishing requests under way`);
      for (const { worker } of live.values()) worker.process.kill('SIGTERM');
      forceTimer = setTimeout(() => killAll(`workers still busy after ${shutdownTimeoutMs / 1000} s`), shutdownTimeoutMs);
      finishIfEmpty();
    };

    let signalledAt: number | undefined;
    function onSignal(signal: NodeJS.Signals): void {
      // A second signal is the operator insisting (each worker ignores repeats: Ctrl-C reaches it directly too).
      if (stopping) {
        if (signalledAt === undefined || forcesExit(signalledAt, performance.now())) return killAll(`${signal} received again`);
        return logger.info(`${signal} received again at once: the same request to stop; send it again to stop at once`);
      }
      signalledAt = performance.now();
      stopAll(0, `${signal} received`);
    }
    function onHangup(): void {
      options.onHangup?.();
      // A worker still starting has no handler yet, and SIGHUP's default would end it.
      for (const { worker, ready } of live.values()) if (ready) worker.process.kill('SIGHUP');
    }
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    process.on('SIGHUP', onHangup);

    const fork = (): void => {
      const worker = cluster.fork();
      live.set(worker.id, { worker, ready: false, startedAt: Date.now() });
      worker.on('message', (message: WorkerReady | MetricsRequest | QueryRequest | QueryReply) => {
        if (message?.type === READY) onReady(worker, message);
        else if (message?.type === METRICS_REQUEST) answerMetrics(worker, message.id);
        else if (message?.type === QUERY_REQUEST) askEveryWorker(worker, message);
        else if (message?.type === QUERY_REPLY) replies.get(message.id)?.(worker.id, message);
      });
      worker.on('exit', (code, signal) => onExit(worker, code, signal));
    };

    let first: WorkerReady | undefined;
    const onReady = (worker: Worker, message: WorkerReady): void => {
      const entry = live.get(worker.id);
      if (!entry) return;
      entry.ready = true;
      first ??= message;
      if (!started) {
        // The first worker proved the configuration: the others start together.
        if (live.size === 1 && count > 1) {
          for (let i = 1; i < count; i++) fork();
          return;
        }
        if ([...live.values()].every((e) => e.ready) && live.size === count) {
          started = true;
          options.onListening(first);
        }
        return;
      }
      logger.info({ worker: worker.id }, 'replacement worker is listening');
    };

    const onExit = (worker: Worker, code: number | null, signal: string | null): void => {
      const entry = live.get(worker.id);
      live.delete(worker.id);
      if (stopping) {
        // A worker that had to cut requests (its own deadline) makes the whole stop unclean.
        if (code !== 0 && exitCode === 0) exitCode = 1;
        return finishIfEmpty();
      }
      if (!started) {
        // Its own message (on stderr) says what to fix; exit as it did.
        logger.error(`worker ${worker.id} could not start (${signal ?? `exit code ${code}`}): its message says what to fix`);
        stopAll(code && code !== 0 ? code : 1, 'start-up failed');
        return;
      }
      const now = Date.now();
      crashStreak = now - lastCrashAt > 60_000 ? 0 : crashStreak + 1;
      lastCrashAt = now;
      const delay = restartDelaysMs[Math.min(crashStreak, restartDelaysMs.length - 1)] ?? 1_000;
      const lived = entry ? Math.round((now - entry.startedAt) / 1000) : 0;
      logger.error(
        { worker: worker.id, code, signal, lived_s: lived },
        `worker ${worker.id} stopped unexpectedly (${signal ?? `exit code ${code}`}): starting a new one in ${delay / 1000} s`,
      );
      // Not unref'd: with every worker gone, this timer is what keeps the primary alive.
      setTimeout(() => {
        if (!stopping) fork();
      }, delay);
    };

    const answerMetrics = (worker: Worker, id: number): void => {
      aggregator.clusterMetrics().then(
        (text) => send(worker, { type: METRICS_ANSWER, id, text }),
        (err: Error) => send(worker, { type: METRICS_ANSWER, id, error: err.message }),
      );
    };

    // Queries put to the workers, by id: each waits for every worker that was ready when it was asked.
    const replies = new Map<number, (workerId: number, reply: QueryReply) => void>();
    let nextQueryId = 0;
    const askEveryWorker = (asker: Worker, request: QueryRequest): void => {
      const id = nextQueryId++;
      const waiting = new Set([...live.values()].filter((e) => e.ready).map((e) => e.worker.id));
      const answers: unknown[] = [];
      let failure: string | undefined;
      const finish = (): void => {
        clearTimeout(timer);
        replies.delete(id);
        const answer: QueryAnswer = failure
          ? { type: QUERY_ANSWER, id: request.id, error: failure }
          : { type: QUERY_ANSWER, id: request.id, answers };
        send(asker, answer);
      };
      // A worker that died or hangs must not hold the operator's answer forever: the question fails instead.
      const timer = setTimeout(() => {
        failure = `${waiting.size} worker(s) did not answer within ${QUERY_TIMEOUT_MS / 1000} s`;
        finish();
      }, QUERY_TIMEOUT_MS);
      replies.set(id, (workerId, reply) => {
        if (!waiting.delete(workerId)) return;
        if (reply.error !== undefined) failure ??= `worker ${workerId}: ${reply.error}`;
        else if (reply.answered) answers.push(reply.value);
        if (waiting.size === 0) finish();
      });
      if (waiting.size === 0) return finish();
      for (const workerId of waiting) {
        const ask: QueryAsk = { type: QUERY_ASK, id, name: request.name, params: request.params };
        send(live.get(workerId)!.worker, ask);
      }
    };

    fork();
  });
}

const QUERY_TIMEOUT_MS = 5_000;

function send(worker: Worker, message: MetricsAnswer | QueryAsk | QueryAnswer): void {
  if (worker.isConnected()) worker.send(message);
}

/**
 * A worker's side: reports that it listens, fetches the cluster's /metrics through the primary, and puts
 * operator queries to every worker through it (answering the primary's in turn).
 */
export class WorkerLink {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (text: string) => void; reject: (err: Error) => void; timer: NodeJS.Timeout }>();
  private readonly pendingQueries = new Map<
    number,
    { resolve: (answers: unknown[]) => void; reject: (err: Error) => void; timer: NodeJS.Timeout }
  >();
  private readonly handlers = new QueryHandlers();

  constructor(private readonly timeoutMs = 8_000) {
    // Constructing one in a worker makes prom-client answer the primary's requests for this process's metrics.
    new AggregatorRegistry();
    process.on('message', (message: MetricsAnswer | QueryAsk | QueryAnswer) => {
      if (message?.type === QUERY_ASK) return void this.replyTo(message);
      if (message?.type === QUERY_ANSWER) return this.answered(message);
      if (message?.type !== METRICS_ANSWER) return;
      const waiting = this.pending.get(message.id);
      if (!waiting) return;
      this.pending.delete(message.id);
      clearTimeout(waiting.timer);
      if (message.text !== undefined) waiting.resolve(message.text);
      else waiting.reject(Object.assign(new Error(`metrics from the other workers: ${message.error ?? 'no answer'}`), { status: 503 }));
    });
  }

  /** Operator queries answered by every worker (src/operator-queries.ts). */
  readonly queries: OperatorQueries = {
    answer: (name, handler) => this.handlers.set(name, handler),
    ask: (name, params) =>
      new Promise((resolve, reject) => {
        const id = this.nextId++;
        const timer = setTimeout(() => {
          this.pendingQueries.delete(id);
          reject(Object.assign(new Error(`${name}: the primary process did not answer`), { status: 503 }));
        }, this.timeoutMs);
        this.pendingQueries.set(id, { resolve, reject, timer });
        const request: QueryRequest = { type: QUERY_REQUEST, id, name, params };
        process.send?.(request);
      }),
  };

  private async replyTo(ask: QueryAsk): Promise<void> {
    let reply: QueryReply;
    try {
      const own = await this.handlers.run(ask.name, ask.params);
      reply = { type: QUERY_REPLY, id: ask.id, ...own };
    } catch (err) {
      reply = { type: QUERY_REPLY, id: ask.id, answered: false, error: (err as Error).message };
    }
    process.send?.(reply);
  }

  private answered(message: QueryAnswer): void {
    const waiting = this.pendingQueries.get(message.id);
    if (!waiting) return;
    this.pendingQueries.delete(message.id);
    clearTimeout(waiting.timer);
    if (message.answers) waiting.resolve(message.answers);
    else waiting.reject(Object.assign(new Error(`the other workers: ${message.error ?? 'no answer'}`), { status: 503 }));
  }

  /** The registry prom-client reads when the primary asks this worker. */
  shareRegistry(registry: Registry): void {
    AggregatorRegistry.setRegistries([registry]);
  }

  reportReady(url: string, platforms: string[], adminUrl?: string): void {
    const message: WorkerReady = { type: READY, url, platforms, adminUrl };
    process.send?.(message);
  }

  /** /metrics summed over every worker. */
  readonly metricsText = (): Promise<string> =>
    new Promise((resolve, reject) => {
      const id = this.nextId++;
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(Object.assign(new Error('metrics: the primary process did not answer'), { status: 503 }));
      }, this.timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      const request: MetricsRequest = { type: METRICS_REQUEST, id };
      process.send?.(request);
    });
}
