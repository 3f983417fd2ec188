/**
 * Slow and greedy clients over real TCP sockets: a client that never finishes its headers (or sends nothing)
 * is cut off within HeadersTimeoutSec while others are served; past MaxConnections new connections are
 * closed at once and the log says so. The settings and pure parts: client-limits.unit.test.ts.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createCertificateAuthority, createServerCertificate } from '../src/tls/certificates';
import { APPLE_TOKEN, capturedLogger, post, startApnsFixture, startTestProxy, tempDir, testConfig, writeTemp } from './support';

const push = { platform: 'apple_rn', server_id: 'srv', device_id: APPLE_TOKEN, type: 'message', message: 'hi' };
const OK = '{"status":"OK"}\n';

interface RawClient {
  socket: net.Socket;
  received: () => string;
  closed: Promise<number>;
}

/** A raw TCP client; `closed` resolves with the milliseconds from connecting until the server closed it. */
async function rawClient(url: string): Promise<RawClient> {
  const { hostname, port } = new URL(url);
  const socket = net.connect(Number(port), hostname);
  let data = '';
  socket.on('data', (chunk: Buffer) => (data += chunk.toString()));
  socket.on('error', () => {});
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  const start = Date.now();
  const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now() - start)));
  return { socket, received: () => data, closed };
}

describe('slow clients', () => {
  it('a client that never finishes its headers is cut off within HeadersTimeoutSec, while another is served', async () => {
    const apns = await startApnsFixture();
    const proxy = await startTestProxy(testConfig({ apple: [apns.entry()], HeadersTimeoutSec: 1, RequestTimeoutSec: 2 }), [
      apns.ca.certPem,
    ]);
    try {
      const slow = await rawClient(proxy.url);
      slow.socket.write('POST /api/v1/send_push HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty');
      const silent = await rawClient(proxy.url);
      const answer = await post(`${proxy.url}/api/v1/send_push`, push);
      assert.equal(answer.text, OK);
      // Without the listener's settings Node would hold them 60 s or more: 10 s leaves room for a slow machine.
      // Unref'd, so that once the race is won the timer does not hold the test process open for 10 s.
      const [slowMs, silentMs] = await Promise.race([
        Promise.all([slow.closed, silent.closed]),
        sleep(10_000, undefined, { ref: false }).then(() => assert.fail('a slow client was not cut off within 10 s')),
      ]);
      assert.ok(slowMs >= 900, `cut after ${slowMs} ms, before its time`);
      assert.ok(silentMs >= 900, `cut after ${silentMs} ms, before its time`);
      assert.match(slow.received(), /^HTTP\/1\.1 408 /);
    } finally {
      await proxy.close();
      await apns.close();
    }
  });
});

describe('slow clients over HTTPS', () => {
  it('a client that never starts its TLS handshake is cut off within HeadersTimeoutSec', async () => {
    const tls = createServerCertificate(createCertificateAuthority(), ['127.0.0.1']);
    const dir = tempDir();
    const config = testConfig({
      HeadersTimeoutSec: 1,
      RequestTimeoutSec: 2,
      TLSCertFile: writeTemp(dir, 'cert.pem', tls.certPem),
      TLSKeyFile: writeTemp(dir, 'key.pem', tls.keyPem),
    });
    const proxy = await startTestProxy(config, []);
    try {
      assert.match(proxy.url, /^https:/);
      const silent = await rawClient(proxy.url);
      // Node's own handshake timeout is 120 s: 10 s leaves room for a slow machine.
      const silentMs = await Promise.race([
        silent.closed,
        sleep(10_000, undefined, { ref: false }).then(() => assert.fail('a silent TLS client was not cut off within 10 s')),
      ]);
      assert.ok(silentMs >= 900, `cut after ${silentMs} ms, before its time`);
    } finally {
      await proxy.close();
    }
  });
});

describe('greedy clients: MaxConnections', () => {
  it('past the cap a new connection is closed at once and the log says so; after one closes, a new one is served', async () => {
    const apns = await startApnsFixture();
    const log = capturedLogger('info');
    const proxy = await startTestProxy(testConfig({ apple: [apns.entry()], MaxConnections: 2 }), [apns.ca.certPem], log.logger);
    const request = 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n';
    try {
      const held = [await rawClient(proxy.url), await rawClient(proxy.url)];
      for (const client of held) client.socket.write(request);
      for (const client of held) for (let i = 0; !client.received().includes('200 OK'); i++) await sleep(20);

      const third = await rawClient(proxy.url);
      third.socket.write(request);
      await third.closed;
      assert.equal(third.received(), '', 'no answer past the cap');
      const line = log.lines().find((l) => /MaxConnections \(2\) reached: 1 new connection\(s\) closed at once/.test(String(l.msg)));
      assert.ok(line, log.text());
      assert.equal(line.level, 40);

      held[0]!.socket.destroy();
      await held[0]!.closed;
      // The server counts the connection gone once it has seen it close.
      for (let open = 2; open >= 2; await sleep(20))
        open = await new Promise<number>((resolve) => proxy.server.getConnections((_err, n) => resolve(n)));
      const fourth = await rawClient(proxy.url);
      fourth.socket.write(
        'POST /api/v1/send_push HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ' +
          JSON.stringify(push).length +
          '\r\n\r\n' +
          JSON.stringify(push),
      );
      for (let i = 0; !fourth.received().includes(OK.trim()); i++) await sleep(20);
      assert.match(fourth.received(), /^HTTP\/1\.1 200 OK/);
      for (const client of [...held, fourth]) client.socket.destroy();
    } finally {
      await proxy.close();
      await apns.close();
    }
  });
});
