/**
 * `GET /api/v1/trace?ack_id=…|post_id=…|server_id=…[&limit=N]` on the operator's API: every process's matching
 * records, newest first, each with its receipt when the device acknowledged it. 400 names the parameter at
 * fault, 404 says how many notifications are kept (an old one may have left the ring).
 */
import express, { type Request, type Response } from 'express';
import type { OperatorQueries } from '../operator-queries';
import type { TraceFilter } from './store';
import { joinReceipts, mergeTraceAnswers, parseTraceQuery, receiptsOf, TRACE_QUERY, type TraceQueryParams } from './query';

export const TRACE_PATH = '/api/v1/trace';

export interface TraceRouteOptions {
  queries: OperatorQueries;
  /** A public test service: server_id is required (see parseTraceQuery). */
  requireServerId?: boolean;
}

export function traceRoutes(options: TraceRouteOptions): express.Router {
  const router = express.Router({ strict: true, caseSensitive: true });
  router
    .route(TRACE_PATH)
    .get((req, res, next) => void answer(req, res, options).catch(next))
    .all((_req, res) => void res.status(405).end());
  return router;
}

async function answer(req: Request, res: Response, options: TraceRouteOptions): Promise<void> {
  let parsed: ReturnType<typeof parseTraceQuery>;
  try {
    parsed = parseTraceQuery(req.query, { requireServerId: options.requireServerId });
  } catch {
    parsed = { ok: false, error: 'unreadable query string' };
  }
  if (!parsed.ok) return fail(res, 400, parsed.error);
  const { filter } = parsed;
  const ask: TraceQueryParams = { filter };
  const merged = mergeTraceAnswers(await options.queries.ask(TRACE_QUERY, ask), filter.limit);
  if (merged.records.length === 0) return fail(res, 404, notFound(filter, merged.capacity));
  let records = merged.records;
  // A receipt may have reached another process than its notification: ask every process for the missing ones
  // (a question by ack_id had every process's receipt for it in its first answers).
  const missing = records.filter((r) => r.ack_id !== undefined && r.receipt === undefined).map((r) => r.ack_id!);
  if (missing.length > 0 && filter.ackId === undefined) {
    const receipts: TraceQueryParams = { receiptsFor: missing };
    records = joinReceipts(records, receiptsOf(await options.queries.ask(TRACE_QUERY, receipts)));
  }
  res.status(200).set('Cache-Control', 'no-store').json({ notifications: records });
}

function notFound(filter: TraceFilter, capacity: number): string {
  if (capacity === 0) return 'the trace keeps no notifications: TraceCapacity is 0';
  const asked = [
    filter.ackId !== undefined ? `ack_id "${filter.ackId}"` : undefined,
    filter.postId !== undefined ? `post_id "${filter.postId}"` : undefined,
    filter.serverId !== undefined ? `server_id "${filter.serverId}"` : undefined,
  ]
    .filter((s) => s !== undefined)
    .join(' and ');
  return `no notification with ${asked} among the last ${capacity} each process keeps (TraceCapacity): older ones are gone`;
}

function fail(res: Response, status: number, error: string): void {
  res.status(status).set('Cache-Control', 'no-store').json({ status: 'FAIL', error });
}
