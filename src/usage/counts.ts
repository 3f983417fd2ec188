/**
 * Usage per tenant, as pure data: counts of answered notifications by UTC day, tenant, platform type and outcome,
 * the retention window, the query of GET /api/v1/usage and its answer. The stores (store.ts) keep these counts in
 * memory or in Redis; nothing here does I/O or reads the clock.
 */
import { isValidTenantId } from '../tenants/keys';

export type UsageOutcome = 'OK' | 'REMOVE' | 'FAIL';
export const OUTCOMES: readonly UsageOutcome[] = ['OK', 'REMOVE', 'FAIL'];

/** The tenant a notification is counted under when no tenant sent it (no tenants file); no tenant id can be "-". */
export const NO_TENANT = '-';
/** The platform label of a notification whose platform type no configured entry has (the set of labels stays bounded). */
export const OTHER_PLATFORM = 'other';

/** One count: plain data, as it travels between processes. */
export interface UsageRow {
  day: string;
  tenant: string;
  platform: string;
  outcome: UsageOutcome;
  count: number;
}

export interface UsageQuery {
  /** Only this tenant; every tenant when undefined. */
  tenant?: string;
  /** First and last day, YYYY-MM-DD, both included. */
  from: string;
  to: string;
}

const DAY_MS = 86_400_000;
const DAY_PATTERN = /^\d{4}-\d{2}-\d{2}$/;

/** The UTC date of a time, YYYY-MM-DD. */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** The day `days` days after `day` (before, when negative). */
export function addDays(day: string, days: number): string {
  return utcDay(Date.parse(`${day}T00:00:00Z`) + days * DAY_MS);
}

/** The start of a day, in ms since the epoch. */
export function dayStartMs(day: string): number {
  return Date.parse(`${day}T00:00:00Z`);
}

/** The oldest day kept on `today`: with a retention of N days, today and the N-1 days before it. */
export function oldestKeptDay(today: string, retentionDays: number): string {
  return addDays(today, -(retentionDays - 1));
}

/** True for a real calendar date written YYYY-MM-DD (not 2026-02-30). */
export function isDay(text: string): boolean {
  return DAY_PATTERN.test(text) && !Number.isNaN(Date.parse(`${text}T00:00:00Z`)) && utcDay(Date.parse(`${text}T00:00:00Z`)) === text;
}

/**
 * One key per tenant, platform and outcome within a day. Tenant ids and outcomes hold no space, so the platform
 * (whatever a configured Type holds) is what lies between the first and the last space.
 */
export function fieldKey(tenant: string, platform: string, outcome: UsageOutcome): string {
  return `${tenant} ${platform} ${outcome}`;
}

export function parseFieldKey(key: string): { tenant: string; platform: string; outcome: UsageOutcome } | undefined {
  const first = key.indexOf(' ');
  const last = key.lastIndexOf(' ');
  if (first < 0 || last <= first) return undefined;
  const outcome = key.slice(last + 1);
  if (!OUTCOMES.includes(outcome as UsageOutcome)) return undefined;
  return { tenant: key.slice(0, first), platform: key.slice(first + 1, last), outcome: outcome as UsageOutcome };
}

/** Counts by day, then by field key: one Map lookup and one increment per notification. */
export class UsageCounts {
  private readonly days = new Map<string, Map<string, number>>();
  private fields = 0;

  /** Distinct (day, tenant, platform, outcome) counted. */
  get size(): number {
    return this.fields;
  }

  add(day: string, key: string, count = 1): void {
    let fields = this.days.get(day);
    if (!fields) {
      fields = new Map();
      this.days.set(day, fields);
    }
    const before = fields.get(key);
    if (before === undefined) this.fields++;
    fields.set(key, (before ?? 0) + count);
  }

  addRow(row: UsageRow): void {
    this.add(row.day, fieldKey(row.tenant, row.platform, row.outcome), row.count);
  }

  /** Adds every count of `other` to these. */
  merge(other: UsageCounts): void {
    for (const [day, fields] of other.days) for (const [key, count] of fields) this.add(day, key, count);
  }

  /** Each day's counts, oldest day first. */
  entries(): Array<[string, ReadonlyMap<string, number>]> {
    return [...this.days].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  /** Forgets the days before `oldest`; returns how many notifications they counted. */
  pruneBefore(oldest: string): number {
    let dropped = 0;
    for (const [day, fields] of this.days) {
      if (day >= oldest) continue;
      dropped += this.forget(day, fields);
    }
    return dropped;
  }

  /** Forgets whole days, oldest first, until at most `maxFields` are left; returns how many notifications they counted. */
  trimOldest(maxFields: number): number {
    let dropped = 0;
    for (const [day, fields] of this.entries()) {
      if (this.fields <= maxFields) break;
      dropped += this.forget(day, fields);
    }
    return dropped;
  }

  /** The counts of the days and tenant asked for, as plain rows. */
  rows(query: UsageQuery): UsageRow[] {
    const rows: UsageRow[] = [];
    for (const [day, fields] of this.days) {
      if (day < query.from || day > query.to) continue;
      for (const [key, count] of fields) {
        const field = parseFieldKey(key);
        if (!field || (query.tenant !== undefined && field.tenant !== query.tenant)) continue;
        rows.push({ day, ...field, count });
      }
    }
    return rows;
  }

  private forget(day: string, fields: ReadonlyMap<string, number>): number {
    let count = 0;
    for (const n of fields.values()) count += n;
    this.fields -= fields.size;
    this.days.delete(day);
    return count;
  }
}

/** The answers of several processes as one: counts of the same day, tenant, platform and outcome are summed. */
export function mergeRows(answers: readonly (readonly UsageRow[])[]): UsageRow[] {
  const merged = new UsageCounts();
  for (const rows of answers) for (const row of rows) merged.addRow(row);
  return merged.rows({ from: '0000-00-00', to: '9999-99-99' });
}

/** Rows from another process, checked: an answer that is not a list of counts contributes nothing. */
export function usageRowsOf(answer: unknown): UsageRow[] {
  if (!Array.isArray(answer)) return [];
  return answer.filter(
    (row: unknown): row is UsageRow =>
      row !== null &&
      typeof row === 'object' &&
      typeof (row as UsageRow).day === 'string' &&
      typeof (row as UsageRow).tenant === 'string' &&
      typeof (row as UsageRow).platform === 'string' &&
      OUTCOMES.includes((row as UsageRow).outcome) &&
      Number.isSafeInteger((row as UsageRow).count),
  );
}

/** A query parameter GET /api/v1/usage cannot use; the message names it. */
export class UsageQueryError extends Error {
  override readonly name = 'UsageQueryError';
}

/**
 * `tenant`, `from` and `to` of GET /api/v1/usage, each optional and given at most once. The days default to the
 * retention window and are clamped to it: older days are gone, later ones have nothing yet.
 */
export function parseUsageQuery(query: Record<string, unknown>, today: string, retentionDays: number): UsageQuery {
  const single = (name: string): string | undefined => {
    const value = query[name];
    if (value === undefined || value === '') return undefined;
    if (typeof value !== 'string') throw new UsageQueryError(`${name} must be given once, as text`);
    return value;
  };
  const tenant = single('tenant');
  if (tenant !== undefined && tenant !== NO_TENANT && !isValidTenantId(tenant)) {
    throw new UsageQueryError(`tenant ${JSON.stringify(tenant)} is not a tenant id (or "${NO_TENANT}" for notifications without a tenant)`);
  }
  const day = (name: string): string | undefined => {
    const value = single(name);
    if (value !== undefined && !isDay(value))
      throw new UsageQueryError(`${name} must be a date written YYYY-MM-DD, not ${JSON.stringify(value)}`);
    return value;
  };
  const oldest = oldestKeptDay(today, retentionDays);
  const from = day('from') ?? oldest;
  const to = day('to') ?? today;
  if (from > to) throw new UsageQueryError(`from (${from}) must not be after to (${to})`);
  return { ...(tenant === undefined ? {} : { tenant }), from: from < oldest ? oldest : from, to: to > today ? today : to };
}

/** Counts of one group by outcome. */
export type OutcomeCounts = Record<UsageOutcome, number> & { total: number };

export interface UsageAnswer {
  retentionDays: number;
  store: 'memory' | 'redis';
  tenant?: string;
  from: string;
  to: string;
  /** Per tenant, over the days asked for; tenants in alphabetical order. */
  tenants: Array<{ tenant: string } & OutcomeCounts>;
  /** Per day, tenant and platform; by day, then tenant, then platform. */
  days: Array<{ day: string; tenant: string; platform: string } & OutcomeCounts>;
}

/** The answer of GET /api/v1/usage: counts by outcome, one line per tenant and one per day, tenant and platform. */
export function usageAnswer(rows: readonly UsageRow[], query: UsageQuery, meta: Pick<UsageAnswer, 'retentionDays' | 'store'>): UsageAnswer {
  const tenants = new Map<string, OutcomeCounts>();
  const days = new Map<string, { day: string; tenant: string; platform: string } & OutcomeCounts>();
  for (const row of rows) {
    let total = tenants.get(row.tenant);
    if (!total) tenants.set(row.tenant, (total = zeroCounts()));
    const key = fieldKey(row.tenant, row.platform, 'OK') + row.day;
    let line = days.get(key);
    if (!line) days.set(key, (line = { day: row.day, tenant: row.tenant, platform: row.platform, ...zeroCounts() }));
    for (const counts of [total, line]) {
      counts[row.outcome] += row.count;
      counts.total += row.count;
    }
  }
  const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  return {
    ...meta,
    ...(query.tenant === undefined ? {} : { tenant: query.tenant }),
    from: query.from,
    to: query.to,
    tenants: [...tenants].sort(([a], [b]) => byText(a, b)).map(([tenant, counts]) => ({ tenant, ...counts })),
    days: [...days.values()].sort((a, b) => byText(a.day, b.day) || byText(a.tenant, b.tenant) || byText(a.platform, b.platform)),
  };
}

function zeroCounts(): OutcomeCounts {
  return { OK: 0, REMOVE: 0, FAIL: 0, total: 0 };
}
