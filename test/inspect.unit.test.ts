/** The notification inspector's view of the trace store (its ring and subscribers), and how its query string is read. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NotificationInspector } from '../src/inspect/inspector';
import { TraceStore } from '../src/trace/store';
import { readInspectQuery } from '../src/inspect/routes';
import { deliveryRecord as record } from './unit-support';

describe('NotificationInspector', () => {
  it('lists newest first, and wraps at its capacity', () => {
    const store = new TraceStore(3, { messageText: false, keepSent: true });
    const inspector = new NotificationInspector(store);
    assert.deepEqual(inspector.list(), []);
    for (let i = 1; i <= 5; i++) store.record(record(`s${i}`));
    assert.deepEqual(
      inspector.list().map((n) => n.id),
      [5, 4, 3],
    );
    assert.deepEqual(
      inspector.list().map((n) => n.server_id),
      ['s5', 's4', 's3'],
    );
  });

  it('gives the time as ISO text and keeps every field', () => {
    const store = new TraceStore(2, { messageText: false, keepSent: true });
    const inspector = new NotificationInspector(store);
    const at = new Date('2030-01-02T03:04:05.678Z');
    store.record(record('s', { at, outcome: 'FAIL', reason: 'r', error: 'e', request: { a: 1 } }));
    assert.deepEqual(inspector.list(), [
      {
        id: 1,
        at: at.toISOString(),
        server_id: 's',
        platform: 'apple_rn-v2',
        type: 'message',
        transport: '',
        device: 'abcdefgh…',
        received: {},
        attempts: [],
        answer: { status: 'FAIL', error: 'e' },
        reason: 'r',
        ms: 5,
        sent: { a: 1 },
      },
    ]);
  });

  it('filters by server id and limits, after a wrap too', () => {
    const store = new TraceStore(4, { messageText: false, keepSent: true });
    const inspector = new NotificationInspector(store);
    for (const id of ['a', 'b', 'a', 'b', 'a', 'a']) store.record(record(id));
    assert.deepEqual(
      inspector.list({ serverId: 'a' }).map((n) => n.id),
      [6, 5, 3],
    );
    assert.deepEqual(
      inspector.list({ serverId: 'b' }).map((n) => n.id),
      [4],
    );
    assert.deepEqual(
      inspector.list({ serverId: 'a', limit: 2 }).map((n) => n.id),
      [6, 5],
    );
    assert.deepEqual(
      inspector.list({ limit: 99 }).map((n) => n.id),
      [6, 5, 4, 3],
    );
    assert.deepEqual(inspector.list({ serverId: 'nobody' }), []);
  });

  it('tells subscribers of each new notification until they unsubscribe; a throwing one harms no other', () => {
    const store = new TraceStore(2, { messageText: false, keepSent: true });
    const inspector = new NotificationInspector(store);
    const seen: number[] = [];
    inspector.subscribe(() => {
      throw new Error('broken subscriber');
    });
    const unsubscribe = inspector.subscribe((n) => seen.push(n.id));
    assert.equal(inspector.subscribers, 2);
    store.record(record('s'));
    store.record(record('s'));
    unsubscribe();
    store.record(record('s'));
    assert.deepEqual(seen, [1, 2]);
    assert.equal(inspector.subscribers, 1);
    assert.deepEqual(
      inspector.list().map((n) => n.id),
      [3, 2],
    );
  });
});

describe('readInspectQuery', () => {
  it('accepts a server id and a limit within 1..capacity; an empty server id means all', () => {
    assert.deepEqual(readInspectQuery({}, 200), { ok: true, serverId: undefined, limit: undefined });
    assert.deepEqual(readInspectQuery({ server_id: 'srv', limit: '200' }, 200), { ok: true, serverId: 'srv', limit: 200 });
    assert.deepEqual(readInspectQuery({ server_id: '' }, 200), { ok: true, serverId: undefined, limit: undefined });
  });

  it('refuses repeated, nested and out-of-range values instead of throwing', () => {
    for (const query of [
      { server_id: ['a', 'b'] },
      { server_id: { x: 'a' } },
      { limit: '0' },
      { limit: '201' },
      { limit: '-1' },
      { limit: '1.5' },
      { limit: 'ten' },
      { limit: '' },
      { limit: ['1', '2'] },
      { limit: '99999999999999999999' },
    ]) {
      const result = readInspectQuery(query, 200);
      assert.equal(result.ok, false, JSON.stringify(query));
    }
    assert.equal(readInspectQuery(null, 200).ok, true);
  });
});
