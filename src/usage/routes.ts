/**
 * GET /api/v1/usage[?tenant=T&from=YYYY-MM-DD&to=YYYY-MM-DD]: usage per tenant, on the listener that serves the
 * operator's API (src/http/surfaces.ts). A bad parameter is a 400 naming it; a store that cannot answer (Redis
 * away) is a 503; both with the push API's JSON FAIL shape.
 */
import express, { type Response } from 'express';
import { parseUsageQuery, usageAnswer, UsageQueryError, utcDay, type UsageQuery } from './counts';
import type { UsageStore } from './store';

export const USAGE_PATH = '/api/v1/usage';

export function usageRouter(store: UsageStore, retentionDays: number, now: () => number = Date.now): express.Router {
  const router = express.Router({ strict: true, caseSensitive: true });
  router
    .route(USAGE_PATH)
    .get(async (req, res) => {
      let query: UsageQuery;
      try {
        query = parseUsageQuery(req.query as Record<string, unknown>, utcDay(now()), retentionDays);
      } catch (err) {
        if (!(err instanceof UsageQueryError)) throw err;
        return fail(res, 400, err.message);
      }
      let rows;
      try {
        rows = await store.read(query);
      } catch (err) {
        return fail(res, 503, `the usage store (${store.kind}) did not answer: ${(err as Error).message}`);
      }
      const dropped = store.dropped();
      res
        .status(200)
        .set('Cache-Control', 'no-store')
        .json({ ...usageAnswer(rows, query, { retentionDays, store: store.kind }), ...(dropped > 0 ? { droppedCounts: dropped } : {}) });
    })
    .all((_req, res) => void res.status(405).end());
  return router;
}

function fail(res: Response, status: number, error: string): void {
  res.status(status).set('Cache-Control', 'no-store').json({ status: 'FAIL', error });
}
