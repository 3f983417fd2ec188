/**
 * The notification inspector's HTTP routes end to end over real sockets (a proxy delivering to the sandbox
 * APNs peer, the JSON list, the server-sent event stream, the page's assets). Its ring buffer and how its
 * query is read: inspect.unit.test.ts.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import express from 'express';
import helmet from 'helmet';
import { INSPECTOR_SCRIPT } from '../src/inspect/client';
import { NotificationInspector, type InspectedNotification } from '../src/inspect/inspector';
import { inspectorRoutes, SERVER_ID_HINT } from '../src/inspect/routes';
import { TraceStore } from '../src/trace/store';
import type { ProxyInstance } from '../src/instance';
import { APPLE_TOKEN, get, post, serveOnLoopback, startApnsFixture, startTestProxy, testConfig, type ApnsFixture } from './support';
import { deliveryRecord as record } from './unit-support';

interface SseEvent {
  event: string;
  data: string;
}

/** Node's own HTTP client on an event stream: events in order, comments counted. */
async function openStream(url: string): Promise<{
  response: http.IncomingMessage;
  next(timeoutMs?: number): Promise<SseEvent>;
  comments(): number;
  ended: Promise<void>;
  close(): void;
}> {
  const request = http.get(url);
  const response = await new Promise<http.IncomingMessage>((resolve, reject) => request.once('response', resolve).once('error', reject));
  const events: SseEvent[] = [];
  const waiters: Array<() => void> = [];
  let buffer = '';
  let comments = 0;
  response.setEncoding('utf8');
  response.on('data', (chunk: string) => {
    buffer += chunk;
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = 'message';
      const data: string[] = [];
      let fields = 0;
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) comments++;
        else if (line.startsWith('event: ')) {
          event = line.slice(7);
          fields++;
        } else if (line.startsWith('data: ')) {
          data.push(line.slice(6));
          fields++;
        }
      }
      if (fields > 0 && data.length > 0) events.push({ event, data: data.join('\n') });
    }
    for (const wake of waiters.splice(0)) wake();
  });
  const ended = new Promise<void>((resolve) => {
    response
      .once('end', resolve)
      .once('close', resolve)
      .once('error', () => resolve());
  });
  return {
    response,
    ended,
    comments: () => comments,
    async next(timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      while (events.length === 0) {
        if (Date.now() > deadline) throw new Error('no event within the time limit');
        await Promise.race([new Promise<void>((resolve) => waiters.push(resolve)), sleep(50)]);
      }
      return events.shift()!;
    },
    close: () => request.destroy(),
  };
}

async function fetchInspect(
  base: string,
  query = '',
): Promise<{ status: number; body: { notifications: InspectedNotification[]; hint?: string; status?: string; error?: string } }> {
  const answer = await get(`${base}/api/v1/inspect${query}`);
  return { status: answer.status, body: JSON.parse(answer.text) };
}

function message(fields: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    platform: 'apple_rn-v2',
    server_id: 'srv1',
    device_id: APPLE_TOKEN,
    type: 'message',
    version: 'v2',
    message: 'Hello from the inspector test',
    channel_name: 'Town Square',
    channel_id: 'ch1',
    sender_name: 'alice',
    ...fields,
  };
}

describe('inspector over HTTP, end to end', () => {
  let apns: ApnsFixture;
  let proxy: ProxyInstance;
  let send: string;
  const REMOVED_TOKEN = 'cd'.repeat(32);

  before(async () => {
    apns = await startApnsFixture();
    proxy = await startTestProxy(testConfig({ apple: [apns.entry()], Inspector: true }), [apns.ca.certPem]);
    send = `${proxy.url}/api/v1/send_push`;
    apns.peer.unregister(REMOVED_TOKEN);
    assert.equal((await post(send, message())).text, '{"status":"OK"}\n');
    assert.equal((await post(send, message({ server_id: 'srv2', device_id: REMOVED_TOKEN }))).text, '{"status":"REMOVE"}\n');
    const refused = await post(send, message({ platform: 'windows-v2' }));
    assert.equal(
      refused.text,
      '{"error":"Did not send message because of missing platform property type=windows serverId=srv1","status":"FAIL"}\n',
    );
  });
  after(async () => {
    await proxy.close();
    await apns.close();
  });

  it('GET /api/v1/inspect: newest first, with outcome, reason, timing and the request as APNs received it', async () => {
    const { status, body } = await fetchInspect(proxy.url);
    assert.equal(status, 200);
    const [failed, removed, delivered] = body.notifications;
    assert.equal(body.notifications.length, 3);
    assert.deepEqual(
      body.notifications.map((n) => n.answer.status),
      ['FAIL', 'REMOVE', 'OK'],
    );
    assert.ok(failed!.id > removed!.id && removed!.id > delivered!.id);

    assert.equal(delivered!.server_id, 'srv1');
    assert.equal(delivered!.platform, 'apple_rn-v2');
    assert.equal(delivered!.type, 'message');
    assert.equal(delivered!.transport, '');
    assert.equal(delivered!.attempts.length, 1);
    assert.equal(delivered!.attempts[0]!.verdict, 'OK');
    assert.equal(delivered!.attempts[0]!.status, 200);
    assert.match(delivered!.attempts[0]!.provider_id ?? '', /^[0-9A-F-]{36}$/i);
    assert.ok(delivered!.ms >= 0 && delivered!.ms < 10_000);
    assert.ok(!Number.isNaN(Date.parse(delivered!.at)) && delivered!.at.endsWith('Z'));
    assert.equal(delivered!.device, `${APPLE_TOKEN.slice(0, 8)}…`);
    const sent = delivered!.sent as { token: string; headers: Record<string, unknown>; payload: unknown };
    const received = apns.peer.received.find((n) => n.token === APPLE_TOKEN)!;
    assert.deepEqual(sent.payload, received.payload);
    assert.equal(sent.headers['apns-topic'], received.headers['apns-topic']);
    assert.equal(sent.headers['apns-push-type'], received.headers['apns-push-type']);
    assert.equal(sent.token, `${APPLE_TOKEN.slice(0, 8)}…`);

    assert.equal(removed!.server_id, 'srv2');
    assert.equal(removed!.reason, 'Unregistered');
    assert.deepEqual((removed!.sent as { payload: unknown }).payload, apns.peer.received.find((n) => n.token === REMOVED_TOKEN)!.payload);

    assert.equal(failed!.reason, 'bad request');
    assert.equal(failed!.answer.error, 'Did not send message because of missing platform property type=windows serverId=srv1');
    assert.equal(failed!.sent, undefined);
    assert.deepEqual(failed!.attempts, []);
  });

  it('never shows a device token in full', async () => {
    const text = (await get(`${proxy.url}/api/v1/inspect`)).text;
    assert.ok(!text.includes(APPLE_TOKEN), 'full token in /api/v1/inspect');
    assert.ok(!text.includes(REMOVED_TOKEN), 'full token in /api/v1/inspect');
  });

  it('?server_id= filters, ?limit= bounds, both together', async () => {
    assert.deepEqual(
      (await fetchInspect(proxy.url, '?server_id=srv2')).body.notifications.map((n) => n.answer.status),
      ['REMOVE'],
    );
    assert.deepEqual(
      (await fetchInspect(proxy.url, '?server_id=srv1')).body.notifications.map((n) => n.answer.status),
      ['FAIL', 'OK'],
    );
    assert.deepEqual(
      (await fetchInspect(proxy.url, '?limit=1')).body.notifications.map((n) => n.answer.status),
      ['FAIL'],
    );
    assert.deepEqual(
      (await fetchInspect(proxy.url, '?server_id=srv1&limit=1')).body.notifications.map((n) => n.answer.status),
      ['FAIL'],
    );
    assert.deepEqual((await fetchInspect(proxy.url, '?server_id=nobody')).body.notifications, []);
    assert.equal((await fetchInspect(proxy.url, '?server_id=')).body.notifications.length, 3);
  });

  it("eas mode: without a server id, every server's notifications and no hint", async () => {
    const { body } = await fetchInspect(proxy.url);
    assert.deepEqual([...new Set(body.notifications.map((n) => n.server_id))].sort(), ['srv1', 'srv2']);
    assert.equal(body.hint, undefined);
    const stream = await openStream(`${proxy.url}/inspect/events`);
    try {
      const data = JSON.parse((await stream.next()).data) as {
        notifications: InspectedNotification[];
        serverIdRequired: boolean;
        hint?: string;
      };
      assert.equal(data.serverIdRequired, false);
      assert.equal(data.hint, undefined);
      assert.deepEqual([...new Set(data.notifications.map((n) => n.server_id))].sort(), ['srv1', 'srv2']);
    } finally {
      stream.close();
    }
  });

  it('odd query strings get a 400 JSON FAIL or are ignored, never an error page', async () => {
    for (const query of ['?limit=0', '?limit=201', '?limit=abc', '?limit=', '?limit=1&limit=2', '?server_id=a&server_id=b']) {
      const answer = await get(`${proxy.url}/api/v1/inspect${query}`);
      assert.equal(answer.status, 400, query);
      assert.match(answer.headers.get('content-type') ?? '', /^application\/json/);
      const body = JSON.parse(answer.text) as { status: string; error: string };
      assert.equal(body.status, 'FAIL');
      assert.ok(body.error.length > 0);
    }
    for (const query of ['?server_id[a]=b', '?server_id=%E0%A4%A', '?%%%=&&&', '?limit[]=1', '?__proto__=x&constructor=y']) {
      assert.equal((await get(`${proxy.url}/api/v1/inspect${query}`)).status, 200, query);
    }
    assert.equal((await get(`${proxy.url}/inspect/events?server_id=a&server_id=b`)).status, 400);
  });

  it('GET /inspect/events: the snapshot, then each new notification live, filtered by server id', async () => {
    const stream = await openStream(`${proxy.url}/inspect/events?server_id=srv1`);
    try {
      assert.equal(stream.response.statusCode, 200);
      assert.equal(stream.response.headers['content-type'], 'text/event-stream; charset=utf-8');
      assert.equal(stream.response.headers['x-accel-buffering'], 'no');
      assert.match(String(stream.response.headers['cache-control']), /no-cache/);

      const snapshot = await stream.next();
      assert.equal(snapshot.event, 'snapshot');
      const data = JSON.parse(snapshot.data) as { capacity: number; notifications: InspectedNotification[] };
      assert.equal(data.capacity, 200);
      assert.deepEqual(
        data.notifications.map((n) => n.answer.status),
        ['FAIL', 'OK'],
      );

      // Another server's notification is not sent to this stream; the next one of srv1's is, at once.
      assert.equal((await post(send, message({ server_id: 'srv2' }))).text, '{"status":"OK"}\n');
      assert.equal((await post(send, message({ message: 'live one' }))).text, '{"status":"OK"}\n');
      const live = await stream.next();
      assert.equal(live.event, 'notification');
      const n = JSON.parse(live.data) as InspectedNotification;
      assert.equal(n.server_id, 'srv1');
      assert.equal(n.answer.status, 'OK');
      const payload = (n.sent as { payload: { aps: { alert: { body: string } } } }).payload;
      assert.equal(payload.aps.alert.body, 'live one');
      assert.deepEqual(payload, apns.peer.received.at(-1)!.payload);
    } finally {
      stream.close();
    }
  });

  it('serves the page, its script and stylesheet with a strict, plain-HTTP-safe CSP', async () => {
    const page = await get(`${proxy.url}/inspect`);
    assert.equal(page.status, 200);
    assert.equal(page.headers.get('content-type'), 'text/html; charset=utf-8');
    const csp = page.headers.get('content-security-policy') ?? '';
    assert.match(csp, /script-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline|upgrade-insecure-requests/);
    assert.doesNotMatch(page.text, /<script>/, 'no inline script');

    const scriptPath = /<script src="(inspect\/inspector\.js\?v=[0-9a-f]+)"/.exec(page.text)?.[1];
    const stylePath = /<link rel="stylesheet" href="(inspect\/inspector\.css\?v=[0-9a-f]+)"/.exec(page.text)?.[1];
    assert.ok(scriptPath && stylePath);
    const script = await get(`${proxy.url}/${scriptPath}`);
    assert.equal(script.status, 200);
    assert.equal(script.headers.get('content-type'), 'text/javascript; charset=utf-8');
    assert.match(script.headers.get('cache-control') ?? '', /immutable/);
    assert.equal(script.text, INSPECTOR_SCRIPT);
    const style = await get(`${proxy.url}/${stylePath}`);
    assert.equal(style.headers.get('content-type'), 'text/css; charset=utf-8');

    // Unversioned URLs revalidate; a matching ETag costs a 304.
    const plain = await fetch(`${proxy.url}/inspect/inspector.js`);
    assert.equal(plain.headers.get('cache-control'), 'no-cache');
    await plain.arrayBuffer();
    const again = await fetch(`${proxy.url}/inspect/inspector.js`, { headers: { 'If-None-Match': plain.headers.get('etag')! } });
    assert.equal(again.status, 304);

    assert.equal((await get(`${proxy.url}/inspect`, 'POST')).status, 405);
    assert.equal((await get(`${proxy.url}/inspect/`)).status, 404);
  });

  it('the page script builds the DOM from text only', () => {
    for (const sink of [
      'innerHTML',
      'outerHTML',
      'insertAdjacentHTML',
      'document.write',
      'eval(',
      'new Function',
      'srcdoc',
      'createContextualFragment',
    ]) {
      assert.ok(!INSPECTOR_SCRIPT.includes(sink), `the script uses ${sink}`);
    }
    // It must parse as JavaScript (it is shipped as a string, so tsc does not check it).
    assert.doesNotThrow(() => new Function(INSPECTOR_SCRIPT));
  });
});

describe('test mode: each evaluator sees only the server id asked for', () => {
  let apns: ApnsFixture;
  let proxy: ProxyInstance;
  let send: string;

  before(async () => {
    apns = await startApnsFixture();
    proxy = await startTestProxy(testConfig({ apple: [apns.entry()], Mode: 'test' }), [apns.ca.certPem]);
    send = `${proxy.url}/api/v1/send_push`;
    assert.equal((await post(send, message({ server_id: 'alice-server', message: 'secret of alice' }))).text, '{"status":"OK"}\n');
    assert.equal((await post(send, message({ server_id: 'bob-server', message: 'secret of bob' }))).text, '{"status":"OK"}\n');
  });
  after(async () => {
    await proxy.close();
    await apns.close();
  });

  it("JSON: only the asked server id's notifications; none without one, with a hint saying how to ask", async () => {
    const alice = await get(`${proxy.url}/api/v1/inspect?server_id=alice-server`);
    const aliceBody = JSON.parse(alice.text) as { notifications: InspectedNotification[]; hint?: string };
    assert.deepEqual(
      aliceBody.notifications.map((n) => n.server_id),
      ['alice-server'],
    );
    assert.equal(aliceBody.hint, undefined);
    assert.ok(alice.text.includes('secret of alice'));
    assert.ok(!alice.text.includes('secret of bob'), "another server's message text is shown");

    for (const query of ['', '?server_id=', '?limit=5']) {
      const answer = await get(`${proxy.url}/api/v1/inspect${query}`);
      assert.equal(answer.status, 200, query);
      assert.deepEqual(JSON.parse(answer.text), { notifications: [], hint: SERVER_ID_HINT }, query);
    }
    assert.match(SERVER_ID_HINT, /\?server_id=YOUR_SERVER_ID/);
  });

  it('event stream: the snapshot and live notifications of the asked server id only', async () => {
    const stream = await openStream(`${proxy.url}/inspect/events?server_id=bob-server`);
    try {
      const snapshot = JSON.parse((await stream.next()).data) as {
        notifications: InspectedNotification[];
        serverIdRequired: boolean;
        hint?: string;
      };
      assert.equal(snapshot.serverIdRequired, true);
      assert.equal(snapshot.hint, undefined);
      assert.deepEqual(
        snapshot.notifications.map((n) => n.server_id),
        ['bob-server'],
      );
      // Sent in this order, so the first event this stream gets tells whether alice's was let through.
      assert.equal((await post(send, message({ server_id: 'alice-server', message: 'alice live' }))).text, '{"status":"OK"}\n');
      assert.equal((await post(send, message({ server_id: 'bob-server', message: 'bob live' }))).text, '{"status":"OK"}\n');
      const live = await stream.next();
      assert.equal(live.event, 'notification');
      assert.equal((JSON.parse(live.data) as InspectedNotification).server_id, 'bob-server');
      assert.ok(live.data.includes('bob live'));
    } finally {
      stream.close();
    }
  });

  it('event stream without a server id: an empty snapshot with the hint, and nothing live', async () => {
    const stream = await openStream(`${proxy.url}/inspect/events`);
    const alice = await openStream(`${proxy.url}/inspect/events?server_id=alice-server`);
    try {
      const snapshot = JSON.parse((await stream.next()).data) as {
        notifications: InspectedNotification[];
        serverIdRequired: boolean;
        hint?: string;
      };
      assert.deepEqual(snapshot, { capacity: 200, serverId: null, serverIdRequired: true, notifications: [], hint: SERVER_ID_HINT });
      await alice.next();
      assert.equal((await post(send, message({ server_id: 'alice-server', message: 'alice again' }))).text, '{"status":"OK"}\n');
      // Once alice's own stream has it, every stream that was going to get it has been written to.
      assert.equal((await alice.next()).event, 'notification');
      await assert.rejects(stream.next(500), /no event within the time limit/);
    } finally {
      stream.close();
      alice.close();
    }
  });
});

describe('event streams are bounded and tidy', () => {
  let store: TraceStore;
  let inspector: NotificationInspector;
  let served: Awaited<ReturnType<typeof serveOnLoopback>>;
  let base: string;

  before(async () => {
    store = new TraceStore(10, { messageText: false, keepSent: true });
    inspector = new NotificationInspector(store);
    const app = express();
    app.use(helmet());
    app.use(inspectorRoutes(inspector, { maxStreams: 2, heartbeatMs: 100 }));
    served = await serveOnLoopback(app);
    base = served.base;
  });
  after(() => served.close());

  it('refuses streams past the bound with a 503 JSON FAIL, and frees a place when one closes', async () => {
    const first = await openStream(`${base}/inspect/events`);
    const second = await openStream(`${base}/inspect/events`);
    assert.equal(inspector.subscribers, 2);
    const refused = await get(`${base}/inspect/events`);
    assert.equal(refused.status, 503);
    assert.deepEqual(JSON.parse(refused.text), { status: 'FAIL', error: 'too many inspector streams open; try again later' });
    assert.equal(refused.headers.get('retry-after'), '30');

    first.close();
    await first.ended;
    for (let i = 0; i < 50 && inspector.subscribers > 1; i++) await sleep(20);
    assert.equal(inspector.subscribers, 1, 'a closed stream unsubscribes');
    const third = await openStream(`${base}/inspect/events`);
    assert.equal((await third.next()).event, 'snapshot');
    third.close();
    second.close();
    await Promise.all([second.ended, third.ended]);
    for (let i = 0; i < 50 && inspector.subscribers > 0; i++) await sleep(20);
    assert.equal(inspector.subscribers, 0);
  });

  it('sends heartbeat comments on an idle stream', async () => {
    const stream = await openStream(`${base}/inspect/events`);
    try {
      assert.equal((await stream.next()).event, 'snapshot');
      // Heartbeats every 100 ms: the first is due at once; 5 s leaves room for a slow machine.
      for (const end = Date.now() + 5000; stream.comments() === 0 && Date.now() < end;) await sleep(20);
      assert.ok(stream.comments() >= 1, `heartbeats: ${stream.comments()}`);
    } finally {
      stream.close();
    }
  });

  it('JSON stays one data line even when the text holds newlines', async () => {
    const stream = await openStream(`${base}/inspect/events`);
    try {
      await stream.next();
      store.record(record('s', { outcome: 'FAIL', error: 'line one\n\nevent: fake\ndata: {}\r\n' }));
      const event = await stream.next();
      assert.equal(event.event, 'notification');
      assert.equal((JSON.parse(event.data) as InspectedNotification).answer.error, 'line one\n\nevent: fake\ndata: {}\r\n');
    } finally {
      stream.close();
    }
  });
});

describe('inspector lifecycle', () => {
  it('an open stream does not hold up the proxy closing', async () => {
    const proxy = await startTestProxy(testConfig({ Inspector: true }), []);
    const stream = await openStream(`${proxy.url}/inspect/events`);
    assert.equal((await stream.next()).event, 'snapshot');
    const started = Date.now();
    await proxy.close();
    await stream.ended;
    assert.ok(Date.now() - started < 5000, `closing took ${Date.now() - started} ms`);
  });

  it('with Inspector false there is no inspector at all: 404', async () => {
    const proxy = await startTestProxy(testConfig({ Inspector: false }), []);
    try {
      for (const path of ['/inspect', '/api/v1/inspect', '/inspect/events', '/inspect/inspector.js', '/inspect/inspector.css']) {
        assert.equal((await get(`${proxy.url}${path}`)).status, 404, path);
      }
    } finally {
      await proxy.close();
    }
  });
});
