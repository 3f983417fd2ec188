/**
 * The admin listener (AdminListenAddress) over real sockets: the public listener keeps the push API, /healthz,
 * /version and a bare /readyz; the admin listener serves /metrics, /readyz with its details and the inspector.
 * Hosted mode never serves /metrics or the inspector on the public listener; without AdminListenAddress the
 * other modes serve everything on one listener, as before. With Workers: workers.test.ts.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { tenantsAdd } from '../src/commands/tenants';
import pino from 'pino';
import { startInstance, type ProxyInstance } from '../src/instance';
import { listeningUrl, runCli } from './cli-process';
import { APPLE_TOKEN, get, post, startApnsFixture, startTestProxy, tempDir, testConfig, writeTemp, type ApnsFixture } from './support';

const push = { platform: 'apple_rn', server_id: 'srv-admin', device_id: APPLE_TOKEN, type: 'message', message: 'hi' };
const OK = '{"status":"OK"}\n';
const OPERATOR_PATHS = ['/metrics', '/inspect', '/api/v1/inspect', '/inspect/events'];

async function statusOf(url: string): Promise<number> {
  return (await get(url)).status;
}

/** Whether a TCP connection to the URL's port is refused (nothing listens). */
function refused(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect(Number(port), hostname);
    socket.once('connect', () => (socket.destroy(), resolve(false)));
    socket.once('error', () => resolve(true));
  });
}

describe('admin listener: the split', () => {
  let apns: ApnsFixture;
  let proxy: ProxyInstance;
  let admin: string;

  before(async () => {
    apns = await startApnsFixture();
    proxy = await startTestProxy(
      testConfig({ apple: [apns.entry()], EnableMetrics: true, Inspector: true, AdminListenAddress: '127.0.0.1:0' }),
      [apns.ca.certPem],
    );
    admin = proxy.admin!.url;
  });
  after(async () => {
    await proxy.close();
    await apns.close();
  });

  it('listens on its own port, plain HTTP', () => {
    assert.match(admin, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.notEqual(proxy.admin!.port, proxy.port);
  });

  it('public: the push API, /healthz, /version and / work; /metrics and the inspector are 404', async () => {
    assert.equal((await post(`${proxy.url}/api/v1/send_push`, push)).text, OK);
    assert.equal((await post(`${proxy.url}/api/v1/ack`, { id: 'n1', platform: 'apple_rn', type: 'message' })).status, 200);
    assert.equal(await statusOf(`${proxy.url}/healthz`), 200);
    assert.equal(await statusOf(`${proxy.url}/version`), 200);
    assert.equal(await statusOf(`${proxy.url}/`), 200);
    for (const path of OPERATOR_PATHS) {
      const answer = await get(`${proxy.url}${path}`);
      assert.equal(answer.status, 404, path);
      assert.equal(answer.text, '404 page not found\n', path);
    }
  });

  it('public /readyz: the status alone, for load balancers', async () => {
    const answer = await get(`${proxy.url}/readyz`);
    assert.equal(answer.status, 200);
    assert.deepEqual(JSON.parse(answer.text), { status: 'ready' });
  });

  it('admin: /metrics, /readyz with its details, the inspector, /healthz and /version', async () => {
    assert.equal((await post(`${proxy.url}/api/v1/send_push`, push)).text, OK);
    const metrics = await get(`${admin}/metrics`);
    assert.equal(metrics.status, 200);
    assert.match(metrics.text, /service_success_total\{platform="apple",type="message",transport=""\} [1-9]/);
    const ready = JSON.parse((await get(`${admin}/readyz`)).text) as { status: string; entries: Array<{ type: string; state: string }> };
    assert.equal(ready.status, 'ready');
    assert.deepEqual(
      ready.entries.map((e) => [e.type, e.state]),
      [['apple_rn', 'ready']],
    );
    assert.equal(await statusOf(`${admin}/inspect`), 200);
    const listed = JSON.parse((await get(`${admin}/api/v1/inspect?server_id=srv-admin`)).text) as { notifications: unknown[] };
    assert.ok(listed.notifications.length >= 1);
    assert.equal(await statusOf(`${admin}/healthz`), 200);
    assert.equal(await statusOf(`${admin}/version`), 200);
  });

  it('admin: no push API and no root page', async () => {
    assert.equal((await post(`${admin}/api/v1/send_push`, push)).status, 404);
    assert.equal((await post(`${admin}/api/v1/ack`, {})).status, 404);
    assert.equal(await statusOf(`${admin}/`), 404);
  });

  it('draining: both /readyz answer 503 "draining" (details on the admin one only) while both keep serving', async () => {
    proxy.startDraining();
    const publicReady = await get(`${proxy.url}/readyz`);
    assert.equal(publicReady.status, 503);
    assert.deepEqual(JSON.parse(publicReady.text), { status: 'draining' });
    const adminReady = await get(`${admin}/readyz`);
    assert.equal(adminReady.status, 503);
    const body = JSON.parse(adminReady.text) as { status: string; entries?: unknown[] };
    assert.equal(body.status, 'draining');
    assert.ok(Array.isArray(body.entries));
    assert.equal((await post(`${proxy.url}/api/v1/send_push`, push)).text, OK);
    assert.equal(await statusOf(`${admin}/metrics`), 200);
  });

  it('close(): an open inspector stream ends, and neither port listens any more', async () => {
    const stream = http.get(`${admin}/inspect/events?server_id=srv-admin`);
    const response = await new Promise<http.IncomingMessage>((resolve, reject) => stream.once('response', resolve).once('error', reject));
    assert.equal(response.statusCode, 200);
    const ended = new Promise<void>((resolve) => response.once('close', resolve));
    response.resume();
    await proxy.close();
    await ended;
    assert.equal(await refused(proxy.url), true);
    assert.equal(await refused(admin), true);
  });
});

describe('admin listener: hosted mode', () => {
  let apns: ApnsFixture;
  let tenantsFile: string;
  const hosted = (extra: Record<string, unknown>) =>
    testConfig({
      Mode: 'hosted',
      apple: [apns.entry()],
      TrustedProxies: ['127.0.0.0/8'],
      TenantsFile: tenantsFile,
      EnableMetrics: true,
      Inspector: true,
      ...extra,
    });

  before(async () => {
    apns = await startApnsFixture();
    tenantsFile = `${tempDir()}/tenants.json`;
    await tenantsAdd(tenantsFile, { id: 'acme' });
  });
  after(() => apns.close());

  it('without AdminListenAddress: /metrics and the inspector are not served at all; /readyz keeps its details', async () => {
    const proxy = await startTestProxy(hosted({}), [apns.ca.certPem]);
    try {
      assert.equal(proxy.admin, undefined);
      for (const path of OPERATOR_PATHS) assert.equal(await statusOf(`${proxy.url}${path}`), 404, path);
      const ready = JSON.parse((await get(`${proxy.url}/readyz`)).text) as { status: string; entries: unknown[]; tenants: number };
      assert.equal(ready.status, 'ready');
      assert.equal(ready.entries.length, 1);
      assert.equal(ready.tenants, 1);
    } finally {
      await proxy.close();
    }
  });

  it('with AdminListenAddress: only the admin listener serves them', async () => {
    const proxy = await startTestProxy(hosted({ AdminListenAddress: '127.0.0.1:0' }), [apns.ca.certPem]);
    try {
      for (const path of OPERATOR_PATHS) assert.equal(await statusOf(`${proxy.url}${path}`), 404, path);
      assert.equal(await statusOf(`${proxy.admin!.url}/metrics`), 200);
      assert.equal(await statusOf(`${proxy.admin!.url}/inspect`), 200);
      assert.equal(await statusOf(`${proxy.admin!.url}/api/v1/inspect`), 200);
    } finally {
      await proxy.close();
    }
  });
});

describe('admin listener: not set (the default)', () => {
  let apns: ApnsFixture;
  let proxy: ProxyInstance;

  before(async () => {
    apns = await startApnsFixture();
    proxy = await startTestProxy(testConfig({ apple: [apns.entry()], EnableMetrics: true, Inspector: true }), [apns.ca.certPem]);
  });
  after(async () => {
    await proxy.close();
    await apns.close();
  });

  it('one listener serves everything, as before', async () => {
    assert.equal(proxy.admin, undefined);
    assert.equal((await post(`${proxy.url}/api/v1/send_push`, push)).text, OK);
    assert.equal(await statusOf(`${proxy.url}/metrics`), 200);
    assert.equal(await statusOf(`${proxy.url}/inspect`), 200);
    assert.equal(await statusOf(`${proxy.url}/api/v1/inspect`), 200);
    const ready = JSON.parse((await get(`${proxy.url}/readyz`)).text) as { entries: unknown[] };
    assert.equal(ready.entries.length, 1);
  });
});

describe('admin listener: start-up', () => {
  it('the public port already taken: start-up fails and the admin listener, opened first, is closed again', async () => {
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const taken = (holder.address() as net.AddressInfo).port;
    // The admin listener's port, chosen here so the test can see it is free again afterwards.
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const adminPort = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    try {
      await assert.rejects(
        startInstance(testConfig({ AdminListenAddress: `127.0.0.1:${adminPort}` }), {
          logger: pino({ level: 'silent' }),
          listen: { host: '127.0.0.1', port: taken },
        }),
        /EADDRINUSE/,
      );
      assert.equal(await refused(`http://127.0.0.1:${adminPort}`), true);
    } finally {
      await new Promise<void>((resolve) => holder.close(() => resolve()));
    }
  });
});

describe('admin listener: the process', () => {
  it('the banner names the admin URL; on SIGTERM its /readyz answers 503 "draining" through the grace, then it closes', async () => {
    const apns = await startApnsFixture();
    const dir = tempDir();
    const config = writeTemp(
      dir,
      'push-proxy.json',
      JSON.stringify({ EnableMetrics: true, AdminListenAddress: '127.0.0.1:0', ApplePushSettings: [apns.entry()] }),
    );
    const cli = runCli(['--config', config], {
      NODE_EXTRA_CA_CERTS: writeTemp(dir, 'ca.pem', apns.ca.certPem),
      PUSH_PROXY_DRAIN_GRACE_SEC: '3',
    });
    try {
      const url = await listeningUrl(cli);
      const admin = (JSON.parse(await cli.waitFor(/admin listener on/)) as { admin_url: string }).admin_url;
      assert.match(admin, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.equal(await statusOf(`${admin}/metrics`), 200);
      cli.child.kill('SIGTERM');
      await cli.waitFor(/SIGTERM received/);
      const ready = await get(`${admin}/readyz`);
      assert.equal(ready.status, 503);
      assert.equal((JSON.parse(ready.text) as { status: string }).status, 'draining');
      assert.equal(await statusOf(`${admin}/metrics`), 200);
      assert.equal(await cli.exited, 0);
      assert.equal(await refused(admin), true);
      assert.equal(await refused(url), true);
    } finally {
      cli.child.kill('SIGKILL');
      await apns.close();
    }
  });
});
