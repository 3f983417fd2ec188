/**
 * The notification inspector's view of the trace (src/trace/store.ts): the same records the trace API answers
 * with, from the same ring, the newest `capacity` of them, and live subscribers (the page's server-sent events).
 * Nothing here is persisted; device tokens arrive shortened.
 */
import type { TraceRecord } from '../trace/record';
import type { TraceListener, TraceStore } from '../trace/store';

export type InspectedNotification = TraceRecord;
export type InspectorListener = TraceListener;

/** What the inspector shows at most: a page and its snapshot stay small whatever TraceCapacity keeps. */
export const DEFAULT_INSPECTOR_CAPACITY = 200;

export class NotificationInspector {
  readonly capacity: number;

  constructor(
    private readonly store: TraceStore,
    capacity = DEFAULT_INSPECTOR_CAPACITY,
  ) {
    this.capacity = Math.min(capacity, store.capacity);
  }

  /** Newest first, optionally only one server's, at most `limit` (and at most the inspector's capacity). */
  list(filter: { serverId?: string; limit?: number } = {}): InspectedNotification[] {
    return this.store.list({ serverId: filter.serverId, limit: Math.min(filter.limit ?? this.capacity, this.capacity) });
  }

  /** Each new record, and a record again when its receipt arrives (same id). */
  subscribe(listener: InspectorListener): () => void {
    return this.store.subscribe(listener);
  }

  get subscribers(): number {
    return this.store.subscribers;
  }
}
