/**
 * Draining before a stop: the instance stops looking ready at once, keeps answering for a grace period (a
 * load balancer may not have seen the 503 yet), then stops listening and waits for every request it accepted.
 * Each notification has its own bound (SendTimeoutSec), so the wait has one too.
 */
import { ServerResponse, type IncomingMessage, type RequestListener, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { requestPath } from './push-api';

/** Time after the last listener closed for closing services and flushing logs. */
export const DRAIN_MARGIN_MS = 5_000;

/**
 * A stop signal this soon after the first is the same request delivered twice, not an operator insisting: a
 * terminal's Ctrl-C reaches both npm and the proxy (and npm passes it on), and `timeout` signals the process
 * and then its whole group. Only a later one forces the exit.
 */
export const REPEATED_SIGNAL_WINDOW_MS = 1_000;

/** Whether a stop signal at `nowMs` forces the exit, the first having come at `firstAtMs` (both monotonic). */
export function forcesExit(firstAtMs: number, nowMs: number): boolean {
  return nowMs - firstAtMs >= REPEATED_SIGNAL_WINDOW_MS;
}

/**
 * How long after the first signal the process may live: the grace, one notification's whole budget (a request
 * accepted at the end of the grace may take all of it), and a margin for closing services.
 */
export function drainDeadlineMs(drainGraceSec: number, sendTimeoutMs: number): number {
  return drainGraceSec * 1000 + sendTimeoutMs + DRAIN_MARGIN_MS;
}

export interface RequestUnderWay {
  method: string;
  path: string;
  /** Whole seconds since the request arrived. */
  ageSec: number;
}

/**
 * The answer object of every request the listeners create (`createListener` passes it to Node as `ServerResponse`):
 * it tells its tracker when it closes, answered or abandoned, and is itself the tracker's list link. Written by
 * hand because every request passes here: a 'close' listener per request cost 1.22x the CPU per notification of no
 * tracking, a Set of answers and an `emit(...args)` override about 1.12x (docs/performance.md, Drain tracking).
 */
export class TrackedResponse<Request extends IncomingMessage = IncomingMessage> extends ServerResponse<Request> {
  /** The tracker that counts this request, set when the tracker's handler takes it; undefined once settled. */
  tracker: RequestTracker | undefined = undefined;
  /** When the request arrived (Date.now()), for the log line of a forced stop. */
  arrivedAt = 0;
  /** Neighbours in the tracker's list of answers under way. */
  previousUnderWay: TrackedResponse | undefined = undefined;
  nextUnderWay: TrackedResponse | undefined = undefined;

  override emit(event: string | symbol): boolean {
    if (event === 'close' && this.tracker !== undefined) this.tracker.settle(this);
    // `arguments` passed on whole: V8 forwards it without building an array, which a rest parameter and a spread
    // call would do for every event of every answer.
    // eslint-disable-next-line prefer-rest-params
    return ServerResponse.prototype.emit.apply(this, arguments as unknown as [string | symbol, ...unknown[]]);
  }
}

/**
 * Knows every request that has not had its answer yet. Once draining, answers carry `Connection: close`
 * so keep-alive connections end with their last answer instead of waiting for an idle timeout.
 */
export class RequestTracker {
  /**
   * The answers not yet sent, as a list linked through the answers themselves: adding and removing one allocates
   * nothing and hashes nothing (a Set cost about half of what tracking cost, docs/performance.md). Only a stop or a
   * reload walks it.
   */
  private newest: TrackedResponse | undefined = undefined;
  private count = 0;
  private drainingFlag = false;
  private idleWaiters: Array<() => void> = [];
  /** Resolvers of `whenAnswered`, each with the answers it still waits for. */
  private answeredWaiters: Array<{ waiting: Set<ServerResponse>; resolve: () => void }> = [];

  /** Called whenever a request got its answer (or lost its connection). */
  onSettled: (() => void) | undefined;

  /** One listener function for every answer that needs one (see `wrap`). */
  private readonly settleOnClose: (this: ServerResponse) => void;

  constructor() {
    const settle = (res: ServerResponse): void => this.settle(res);
    this.settleOnClose = function (this: ServerResponse) {
      settle(this);
    };
  }

  get draining(): boolean {
    return this.drainingFlag;
  }

  /** How many requests wait for their answer. */
  get size(): number {
    return this.count;
  }

  /**
   * The listener's handler: counts each request until its answer closes ('close' comes after the answer is sent,
   * or when the client went away first: either way nothing is left to do). The listener must create
   * TrackedResponse answers (`createListener` does).
   */
  wrap(app: RequestListener): RequestListener {
    return (req: IncomingMessage, res: ServerResponse) => {
      const tracked = res as TrackedResponse;
      tracked.tracker = this;
      tracked.arrivedAt = Date.now();
      this.link(tracked);
      if (this.drainingFlag) res.setHeader('connection', 'close');
      app(req, res);
      // Express gives the answers it handles a prototype of its own, without TrackedResponse's `emit`: those (the
      // operator's pages, never the push API) are settled by a listener. 'close' comes later, never synchronously.
      if (!(res instanceof TrackedResponse)) res.once('close', this.settleOnClose);
    };
  }

  beginDraining(): void {
    this.drainingFlag = true;
    for (const res of this.underWay()) {
      if (!res.headersSent) res.setHeader('connection', 'close');
    }
  }

  /** Resolves once no request is waiting for its answer. */
  whenIdle(): Promise<void> {
    if (this.count === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Resolves once every request under way now whose path `matches` has its answer (later ones are not waited
   * for): a reload retires the services those requests were given only after them.
   */
  whenAnswered(matches: (path: string) => boolean): Promise<void> {
    const waiting = new Set<ServerResponse>(this.underWay().filter((res) => matches(requestPath(res.req.url))));
    if (waiting.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.answeredWaiters.push({ waiting, resolve }));
  }

  /** The requests still waiting, for the log line of a forced stop. */
  describe(now = Date.now()): RequestUnderWay[] {
    return this.underWay().map((res) => ({
      method: res.req.method ?? '',
      path: requestPath(res.req.url),
      ageSec: Math.floor((now - res.arrivedAt) / 1000),
    }));
  }

  /** A tracked answer closed (TrackedResponse calls this); a second call for the same answer changes nothing. */
  settle(res: ServerResponse): void {
    const tracked = res as TrackedResponse;
    if (tracked.tracker !== this) return;
    tracked.tracker = undefined;
    this.unlink(tracked);
    if (this.answeredWaiters.length > 0) this.settleWaiters(res);
    this.onSettled?.();
    if (this.count === 0) {
      const waiters = this.idleWaiters.splice(0);
      for (const resolve of waiters) resolve();
    }
  }

  private link(res: TrackedResponse): void {
    res.previousUnderWay = undefined;
    res.nextUnderWay = this.newest;
    if (this.newest !== undefined) this.newest.previousUnderWay = res;
    this.newest = res;
    this.count++;
  }

  private unlink(res: TrackedResponse): void {
    const { previousUnderWay: previous, nextUnderWay: next } = res;
    if (previous !== undefined) previous.nextUnderWay = next;
    else this.newest = next;
    if (next !== undefined) next.previousUnderWay = previous;
    res.previousUnderWay = res.nextUnderWay = undefined;
    this.count--;
  }

  /** The answers under way, newest first. */
  private underWay(): TrackedResponse[] {
    const list: TrackedResponse[] = [];
    for (let res = this.newest; res !== undefined; res = res.nextUnderWay) list.push(res);
    return list;
  }

  private settleWaiters(res: ServerResponse): void {
    this.answeredWaiters = this.answeredWaiters.filter(({ waiting, resolve }) => {
      waiting.delete(res);
      if (waiting.size > 0) return true;
      resolve();
      return false;
    });
  }
}

/**
 * How a listening server closes without cutting a request it accepted: it stops listening, idle keep-alive
 * connections close at once and busy ones after their answer (sent with Connection: close), and once the tracker
 * has nothing under way the connections left (idle, or never done sending headers) are ended. Call it before the
 * server listens: it watches every client socket from then on, HTTP or not yet (a TLS handshake under way).
 */
export function gracefulCloser(server: Server, tracker: RequestTracker): () => Promise<void> {
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  let closing: Promise<void> | undefined;
  return () =>
    (closing ??= (async () => {
      tracker.beginDraining();
      // A server that never listened calls back at once (with an error there is nothing to do about).
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      tracker.onSettled = () => server.closeIdleConnections();
      await tracker.whenIdle();
      for (const socket of sockets) socket.destroy();
      await closed;
    })());
}
