/**
 * The notification inspector's memory: the most recent answered notifications in a bounded ring, and live
 * subscribers (the page's server-sent events). Nothing here is persisted; device tokens arrive redacted.
 */
import type { DeliveryRecord } from '../delivery/dispatcher';

export interface InspectedNotification extends Omit<DeliveryRecord, 'at'> {
  /** Increasing per proxy instance: the page orders and de-duplicates by it. */
  id: number;
  at: string;
}

export type InspectorListener = (notification: InspectedNotification) => void;

export const DEFAULT_INSPECTOR_CAPACITY = 200;

export class NotificationInspector {
  private readonly ring: Array<InspectedNotification | undefined>;
  private next = 0;
  private readonly listeners = new Set<InspectorListener>();

  constructor(readonly capacity = DEFAULT_INSPECTOR_CAPACITY) {
    this.ring = new Array<InspectedNotification | undefined>(capacity);
  }

  /** A DeliveryObserver: hand it to the dispatcher. */
  readonly record = (record: DeliveryRecord): void => {
    const notification: InspectedNotification = { ...record, id: this.next + 1, at: record.at.toISOString() };
    this.ring[this.next % this.capacity] = notification;
    this.next++;
    for (const listener of this.listeners) {
      try {
        listener(notification);
      } catch {
        // A broken subscriber must not lose the notification for the others.
      }
    }
  };

  /** Newest first, optionally only one server's, at most `limit`. */
  list(filter: { serverId?: string; limit?: number } = {}): InspectedNotification[] {
    const limit = Math.min(filter.limit ?? this.capacity, this.capacity);
    const result: InspectedNotification[] = [];
    for (let i = this.next - 1; i >= Math.max(0, this.next - this.capacity) && result.length < limit; i--) {
      const notification = this.ring[i % this.capacity]!;
      if (filter.serverId === undefined || notification.serverId === filter.serverId) result.push(notification);
    }
    return result;
  }

  subscribe(listener: InspectorListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get subscribers(): number {
    return this.listeners.size;
  }
}
