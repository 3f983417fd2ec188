/**
 * One process's memory of recent notifications: a ring of trace records (the trace API and the inspector read
 * the same one), an index by ack_id so a receipt finds its record, and a bounded map of receipts whose
 * notification this process did not see (with Workers, an ack may reach another worker than its send).
 * Nothing is persisted.
 *
 * The ring keeps the fields of each delivery as the dispatcher recorded them and builds its trace record (tokens
 * shortened, message text only in test mode, src/trace/record.ts) when the record is first read or a subscriber is
 * listening: built for every notification, records that are seldom read cost 3 % of the CPU per notification
 * (docs/performance.md, The trace). The full token and the message stay in memory as long as the ring holds the
 * delivery, as they do while any notification is under way; nothing leaves the process unredacted.
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

/**
 * One delivery in the ring: what its trace record is built from (the delivery's fields), its number, the
 * receipt once the device sent one, and its record once built. The fields are copied, not the delivery kept:
 * the request as sent (an object tree per notification) stays only where the record shows it (`keepSent`),
 * since everything the ring holds outlives the young generation and costs the collector a copy or two.
 */
class Kept implements DeliveryRecord {
  readonly at: Date;
  readonly serverId: string;
  readonly tenant: string | undefined;
  readonly ackId: string | undefined;
  readonly postId: string | undefined;
  readonly platform: string;
  readonly pushType: string;
  readonly transport: string;
  readonly outcome: DeliveryRecord['outcome'];
  readonly reason: string | undefined;
  readonly error: string | undefined;
  readonly attempts: number;
  readonly ms: number;
  readonly device: string;
  readonly request: unknown;
  readonly received: DeliveryRecord['received'];
  readonly attemptLog: DeliveryRecord['attemptLog'];
  readonly providerId: string | undefined;
  receipt: TraceReceipt | undefined = undefined;
  built: TraceRecord | undefined = undefined;

  constructor(
    readonly id: number,
    d: DeliveryRecord,
    keepSent: boolean,
  ) {
    this.at = d.at;
    this.serverId = d.serverId;
    this.tenant = d.tenant;
    this.ackId = d.ackId;
    this.postId = d.postId;
    this.platform = d.platform;
    this.pushType = d.pushType;
    this.transport = d.transport;
    this.outcome = d.outcome;
    this.reason = d.reason;
    this.error = d.error;
    this.attempts = d.attempts;
    this.ms = d.ms;
    this.device = d.device;
    this.request = keepSent ? d.request : undefined;
    this.received = d.received;
    this.attemptLog = d.attemptLog;
    this.providerId = d.providerId;
  }
}

export class TraceStore {
  private readonly ring: Array<Kept | undefined>;
  private next = 0;
  private readonly byAck = new Map<string, Kept>();
  private readonly orphans: LRUCache<string, HeldReceipt> | undefined;
  private readonly listeners = new Set<TraceListener>();

  constructor(
    readonly capacity: number,
    private readonly options: TraceRecordOptions,
  ) {
    this.ring = new Array<Kept | undefined>(capacity);
    this.orphans = capacity > 0 ? new LRUCache<string, HeldReceipt>({ max: capacity }) : undefined;
  }

  /** A DeliveryObserver: hand it to the dispatcher. */
  readonly record = (delivery: DeliveryRecord): void => {
    if (this.capacity === 0) return;
    const kept = new Kept(this.next + 1, delivery, this.options.keepSent);
    const slot = this.next % this.capacity;
    const evicted = this.ring[slot];
    const evictedAck = evicted?.ackId;
    if (evictedAck !== undefined && this.byAck.get(evictedAck) === evicted) this.byAck.delete(evictedAck);
    this.ring[slot] = kept;
    this.next++;
    if (delivery.ackId !== undefined) this.byAck.set(delivery.ackId, kept);
    if (this.listeners.size > 0) this.tell(this.built(kept));
  };

  /** The device acknowledged a notification: its record gets the receipt, or the receipt is held for another worker's record. */
  acknowledged(ack: PushAck, at = new Date()): void {
    if (this.capacity === 0) return;
    const kept = this.byAck.get(ack.id);
    // The first receipt is the device's: an app that acknowledges again changes nothing.
    if (kept) {
      if (kept.receipt !== undefined) return;
      kept.receipt = traceReceipt(ack, at);
      if (kept.built) kept.built.receipt = kept.receipt;
      if (this.listeners.size > 0) this.tell(this.built(kept));
      return;
    }
    if (!this.orphans!.has(ack.id)) this.orphans!.set(ack.id, { ack_id: ack.id, receipt: traceReceipt(ack, at) });
  }

  /** Newest first, at most `limit` (all kept by default), those matching every id given. */
  list(filter: TraceFilter = {}): TraceRecord[] {
    const limit = Math.min(filter.limit ?? this.capacity, this.capacity);
    const result: TraceRecord[] = [];
    if (filter.ackId !== undefined) {
      const kept = this.byAck.get(filter.ackId);
      return kept && matches(kept, filter) && limit > 0 ? [this.built(kept)] : [];
    }
    for (let i = this.next - 1; i >= Math.max(0, this.next - this.capacity) && result.length < limit; i--) {
      const kept = this.ring[i % this.capacity]!;
      if (matches(kept, filter)) result.push(this.built(kept));
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

  /** The delivery's trace record, built once, with its receipt. */
  private built(kept: Kept): TraceRecord {
    if (kept.built === undefined) {
      kept.built = traceRecord(kept, kept.id, this.options);
      if (kept.receipt !== undefined) kept.built.receipt = kept.receipt;
    }
    return kept.built;
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

function matches(delivery: DeliveryRecord, filter: TraceFilter): boolean {
  return (
    (filter.serverId === undefined || delivery.serverId === filter.serverId) &&
    (filter.postId === undefined || delivery.postId === filter.postId) &&
    (filter.ackId === undefined || delivery.ackId === filter.ackId)
  );
}
