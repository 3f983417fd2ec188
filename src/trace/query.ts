/**
 * The trace question, from the query string to the merged answer: parsing `GET /api/v1/trace`, each process's
 * answer from its own store (registered as the operator query `trace`), and the merge of every process's answers
 * (with Workers each holds its own ring, and a receipt may sit in another worker than its notification).
 */
import type { TraceRecord } from './record';
import { withoutSent } from './record';
import type { HeldReceipt, TraceFilter, TraceStore } from './store';

export const TRACE_QUERY = 'trace';
export const DEFAULT_TRACE_LIMIT = 50;
export const MAX_TRACE_LIMIT = 1000;
const ID_PARAMETERS = ['ack_id', 'post_id', 'server_id'] as const;

export type ParsedTraceQuery = { ok: true; filter: TraceFilter & { limit: number } } | { ok: false; error: string };

/**
 * Query strings are untrusted: a repeated or nested key, an empty id or a bad limit is an error naming the
 * parameter. One id to look for: ack_id or post_id (not both), or server_id alone; server_id may also narrow an
 * ack_id or post_id. Where `requireServerId` (a public test service, where an ack or post id must not reveal
 * another evaluator's notification) server_id is always required.
 */
export function parseTraceQuery(query: unknown, options: { requireServerId?: boolean } = {}): ParsedTraceQuery {
  const q = query !== null && typeof query === 'object' ? (query as Record<string, unknown>) : {};
  const ids: Partial<Record<(typeof ID_PARAMETERS)[number], string>> = {};
  for (const name of ID_PARAMETERS) {
    const value = q[name];
    if (value === undefined) continue;
    if (typeof value !== 'string') return { ok: false, error: `${name} must be given once, as text` };
    if (value === '') return { ok: false, error: `${name} is empty: give the id to look for` };
    ids[name] = value;
  }
  if (options.requireServerId && ids.server_id === undefined)
    return { ok: false, error: 'server_id is required on this test service: each evaluator sees only their own server id' };
  if (ids.ack_id === undefined && ids.post_id === undefined && ids.server_id === undefined)
    return { ok: false, error: 'give one of ack_id, post_id or server_id' };
  if (ids.ack_id !== undefined && ids.post_id !== undefined) return { ok: false, error: 'give ack_id or post_id, not both' };
  let limit = DEFAULT_TRACE_LIMIT;
  if (q.limit !== undefined) {
    limit = typeof q.limit === 'string' && /^[0-9]{1,9}$/.test(q.limit) ? Number(q.limit) : NaN;
    if (!(limit >= 1 && limit <= MAX_TRACE_LIMIT)) return { ok: false, error: `limit must be a whole number from 1 to ${MAX_TRACE_LIMIT}` };
  }
  return { ok: true, filter: { ackId: ids.ack_id, postId: ids.post_id, serverId: ids.server_id, limit } };
}

/** What the route asks every process: the records matching a filter, or only the receipts held for some ack ids. */
export type TraceQueryParams = { filter: TraceFilter } | { receiptsFor: string[] };

/** One process's answer (JSON between processes). */
export interface TraceAnswer {
  capacity: number;
  records: TraceRecord[];
  receipts: HeldReceipt[];
}

/** This process's answer from its store; `includeSent`: keep the request as sent (test mode), else leave it out. */
export function answerTraceQuery(store: TraceStore, params: unknown, includeSent: boolean): TraceAnswer {
  const p = (params ?? {}) as Partial<{ filter: TraceFilter; receiptsFor: string[] }>;
  if (Array.isArray(p.receiptsFor)) return { capacity: store.capacity, records: [], receipts: store.heldReceipts(p.receiptsFor) };
  const filter = p.filter ?? {};
  const records = store.list(filter);
  return {
    capacity: store.capacity,
    records: includeSent ? records : records.map(withoutSent),
    // The usual question names one ack id: its receipt comes in the same round, wherever it is held.
    receipts: filter.ackId !== undefined ? store.heldReceipts([filter.ackId]) : [],
  };
}

/** Every process's answers as one: newest first, at most `limit`, receipts joined by ack_id; `capacity`: the largest ring. */
export function mergeTraceAnswers(answers: readonly unknown[], limit: number): { capacity: number; records: TraceRecord[] } {
  let capacity = 0;
  const records: TraceRecord[] = [];
  for (const answer of answers) {
    if (!isTraceAnswer(answer)) continue;
    capacity = Math.max(capacity, answer.capacity);
    records.push(...answer.records);
  }
  const receipts = receiptsOf(answers);
  records.sort((a, b) => (a.at === b.at ? b.id - a.id : a.at < b.at ? 1 : -1));
  return { capacity, records: joinReceipts(records.slice(0, limit), receipts) };
}

/** Records that lack a receipt get the one held for their ack_id; the records themselves are never changed (copies). */
export function joinReceipts(records: TraceRecord[], receipts: ReadonlyMap<string, HeldReceipt['receipt']>): TraceRecord[] {
  if (receipts.size === 0) return records;
  return records.map((record) => {
    const receipt = record.ack_id !== undefined && record.receipt === undefined ? receipts.get(record.ack_id) : undefined;
    return receipt ? { ...record, receipt } : record;
  });
}

/** Receipts of every process's answers to a `receiptsFor` question, by ack_id. */
export function receiptsOf(answers: readonly unknown[]): Map<string, HeldReceipt['receipt']> {
  const receipts = new Map<string, HeldReceipt['receipt']>();
  for (const answer of answers) {
    if (!isTraceAnswer(answer)) continue;
    for (const held of answer.receipts) if (!receipts.has(held.ack_id)) receipts.set(held.ack_id, held.receipt);
  }
  return receipts;
}

function isTraceAnswer(value: unknown): value is TraceAnswer {
  const answer = value as Partial<TraceAnswer> | null;
  return (
    answer !== null &&
    typeof answer === 'object' &&
    typeof answer.capacity === 'number' &&
    Array.isArray(answer.records) &&
    Array.isArray(answer.receipts)
  );
}
