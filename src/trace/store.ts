/**
 * One process's memory of recent notifications: a ring of trace records (the trace API and the inspector read
 * the same one), an index by ack_id so a receipt finds its record, and a bounded map of receipts whose
 * notification this process did not see (with Workers, an ack may reach another worker than its send).
 * Nothing is persisted.
 */
import { LRUCache } from 'lru-cache';
import type { DeliveryRecord } from '../delivery/dispatcher';
import type { PushAck } from '../notification';
import { traceReceipt, traceRecord, type TraceReceipt, type TraceRecord, type TraceRecordOptions } from './record';

export type TraceListener = (record: TraceRecord) => void;

/** Which records a question asks for: by one id, or one server's, optionally narrowed by an id. */
export interface TraceFilter {
  ackId?: string;
  postId?: string;
  serverId?: string;
  limit?: number;
}

/** A receipt this process holds for an ack_id whose notification it does not hold. */
export interface HeldReceipt {
  ack_id: string;
  receipt: TraceReceipt;
}

export class TraceStore {
  private readonly ring: Array<TraceRecord | undefined>;
  private next = 0;
  private readonly byAck = new Map<string, TraceRecord>();
  private readonly orphans: LRUCache<string, HeldReceipt> | undefined;
  private readonly listeners = new Set<TraceListener>();

  constructor(
    readonly capacity: number,
    private readonly options: TraceRecordOptions,
  ) {
    this.ring = new Array<TraceRecord | undefined>(capacity);
    this.orphans = capacity > 0 ? new LRUCache<string, HeldReceipt>({ max: capacity }) : undefined;
  }

  /** A DeliveryObserver: hand it to the dispatcher. */
  readonly record = (delivery: DeliveryRecord): void => {
    if (this.capacity === 0) return;
    const record = traceRecord(delivery, this.next + 1, this.options);
    const slot = this.next % this.capacity;
    const evicted = this.ring[slot];
    if (evicted?.ack_id !== undefined && this.byAck.get(evicted.ack_id) === evicted) this.byAck.delete(evicted.ack_id);
    this.ring[slot] = record;
    this.next++;
    if (record.ack_id !== undefined) this.byAck.set(record.ack_id, record);
    this.tell(record);
  };

  /** The device acknowledged a notification: its record gets the receipt, or the receipt is held for another worker's record. */
  acknowledged(ack: PushAck, at = new Date()): void {
    if (this.capacity === 0) return;
    const record = this.byAck.get(ack.id);
    // The first receipt is the device's: an app that acknowledges again changes nothing.
    if (record) {
      if (record.receipt !== undefined) return;
      record.receipt = traceReceipt(ack, at);
      return this.tell(record);
    }
    if (!this.orphans!.has(ack.id)) this.orphans!.set(ack.id, { ack_id: ack.id, receipt: traceReceipt(ack, at) });
  }

  /** Newest first, at most `limit` (all kept by default), those matching every id given. */
  list(filter: TraceFilter = {}): TraceRecord[] {
    const limit = Math.min(filter.limit ?? this.capacity, this.capacity);
    const result: TraceRecord[] = [];
    if (filter.ackId !== undefined) {
      const record = this.byAck.get(filter.ackId);
      return record && matches(record, filter) && limit > 0 ? [record] : [];
    }
    for (let i = this.next - 1; i >= Math.max(0, this.next - this.capacity) && result.length < limit; i--) {
      const record = this.ring[i % this.capacity]!;
      if (matches(record, filter)) result.push(record);
    }
    return result;
  }

  /** Receipts held without their record, for the ack ids given. */
  heldReceipts(ackIds: readonly string[]): HeldReceipt[] {
    if (!this.orphans) return [];
    const held: HeldReceipt[] = [];
    for (const ackId of ackIds) {
      const receipt = this.orphans.get(ackId);
      if (receipt) held.push(receipt);
    }
    return held;
  }

  subscribe(listener: TraceListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get subscribers(): number {
    return this.listeners.size;
  }

  /** Each new record, and a record again when its receipt arrives. */
  private tell(record: TraceRecord): void {
    for (const listener of this.listeners) {
      try {
        listener(record);
      } catch {
        // A broken subscriber must not lose the record for the others.
      }
    }
  }
}

function matches(record: TraceRecord, filter: TraceFilter): boolean {
  return (
    (filter.serverId === undefined || record.server_id === filter.serverId) &&
    (filter.postId === undefined || record.post_id === filter.postId) &&
    (filter.ackId === undefined || record.ack_id === filter.ackId)
  );
}
