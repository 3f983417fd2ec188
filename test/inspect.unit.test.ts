/** The notification inspector's ring buffer and subscribers, and how its query string is read. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NotificationInspector } from '../src/inspect/inspector';
import { readInspectQuery } from '../src/inspect/routes';
import { deliveryRecord as record } from './unit-support';

describe('NotificationInspector', () => {
  it('lists newest first, and wraps at its capacity', () => {
    const inspector = new NotificationInspector(3);
    assert.deepEqual(inspector.list(), []);
    for (let i = 1; i <= 5; i++) inspector.record(record(`s${i}`));
    assert.deepEqual(
      inspector.list().map((n) => n.id),
      [5, 4, 3],
    );
    assert.deepEqual(
      inspector.list().map((n) => n.serverId),
      ['s5', 's4', 's3'],
    );
  });

  it('gives the time as ISO text and keeps every field', () => {
    const inspector = new NotificationInspector(2);
    const at = new Date('2030-01-02T03:04:05.678Z');
    inspector.record(record('s', { at, outcome: 'FAIL', reason: 'r', error: 'e', sent: { a: 1 } }));
    assert.deepEqual(inspector.list(), [
      { ...record('s', { outcome: 'FAIL', reason: 'r', error: 'e', sent: { a: 1 } }), at: at.toISOString(), id: 1 },
    ]);
  });

  it('filters by server id and limits, after a wrap too', () => {
    const inspector = new NotificationInspector(4);
    for (const id of ['a', 'b', 'a', 'b', 'a', 'a']) inspector.record(record(id));
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
    const inspector = new NotificationInspector(2);
    const seen: number[] = [];
    inspector.subscribe(() => {
      throw new Error('broken subscriber');
    });
    const unsubscribe = inspector.subscribe((n) => seen.push(n.id));
    assert.equal(inspector.subscribers, 2);
    inspector.record(record('s'));
    inspector.record(record('s'));
    unsubscribe();
    inspector.record(record('s'));
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
