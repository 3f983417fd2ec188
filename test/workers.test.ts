/**
 * `Workers`: real processes (node:cluster) sharing one port, each delivering to the sandbox APNs peer over
 * its own connections; /metrics summed over workers; a killed worker replaced; graceful shutdown that
 * answers requests under way; start-up errors once, with exit code 2.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { listeningUrl, runCli, type Cli } from './cli-process';
import { APPLE_TOKEN, startApnsFixture, tempDir, writeTemp, type ApnsFixture } from './support';

/** A new connection per request, so the primary hands each to the next worker in turn. */
function send(url: string, path: string, body?: object): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}${path}`, { method: body ? 'POST' : 'GET', agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end(body ? JSON.stringify(body) : undefined);
  });
}

const push = (token = APPLE_TOKEN) => ({ platform: 'apple_rn', server_id: 'srv', device_id: token, type: 'message', message: 'hi' });
const OK = '{"status":"OK"}\n';

function logLines(cli: Cli): Array<Record<string, unknown>> {
  return cli
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Worker pids: the primary's children, as Linux lists them. */
function workerPids(primaryPid: number): number[] {
  return readFileSync(`/proc/${primaryPid}/task/${primaryPid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
}

function metricValue(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : NaN;
}

async function waitUntil(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  for (const end = Date.now() + timeoutMs; Date.now() < end; await sleep(50)) if (check()) return;
  assert.fail(`timed out waiting until ${what}`);
}

describe('Workers: 2 processes on one port', () => {
  let apns: ApnsFixture;
  let cli: Cli;
  let url: string;
  let caFile: string;
  let dir: string;

  before(async () => {
    apns = await startApnsFixture();
    dir = tempDir();
    caFile = writeTemp(dir, 'ca.pem', apns.ca.certPem);
    const config = writeTemp(
      dir,
      'push-proxy.json',
      JSON.stringify({ Workers: 2, EnableMetrics: true, ApplePushSettings: [apns.entry()] }),
    );
    cli = runCli(['--config', config], { NODE_EXTRA_CA_CERTS: caFile });
    url = await listeningUrl(cli);
  });
  after(async () => {
    cli.child.kill('SIGKILL');
    for (const pid of safeWorkerPids(cli)) process.kill(pid, 'SIGKILL');
    await apns.close();
  });

  it('one banner names the workers; both workers deliver', async () => {
    const banners = logLines(cli).filter((l) => String(l.msg).startsWith('Push Proxy listening'));
    assert.equal(banners.length, 1, cli.output());
    assert.match(String(banners[0]!.msg), /with 2 workers/);
    assert.equal(workerPids(cli.child.pid!).length, 2);

    apns.peer.reset();
    const answers = await Promise.all(Array.from({ length: 20 }, () => send(url, '/api/v1/send_push', push())));
    assert.deepEqual(new Set(answers.map((a) => a.text)), new Set([OK]));
    assert.equal(apns.peer.receivedFor(APPLE_TOKEN).length, 20);
    await waitUntil('20 delivery lines are logged', () => logLines(cli).filter((l) => l.msg === 'push delivered').length >= 20);
    const workers = new Set(
      logLines(cli)
        .filter((l) => l.msg === 'push delivered')
        .map((l) => l.worker),
    );
    assert.equal(workers.size, 2, `deliveries by workers ${[...workers].join(', ')}`);
  });

  it('/metrics from any worker counts the notifications of all of them', async () => {
    const before = await send(url, '/metrics');
    const base = metricValue(before.text, 'service_success_total{platform="apple",type="message",transport=""}');
    assert.ok(base >= 20, before.text.slice(0, 2000));
    await Promise.all(Array.from({ length: 6 }, () => send(url, '/api/v1/send_push', push())));
    // Successive connections go to different workers: each must show the same sum.
    for (let i = 0; i < 4; i++) {
      const text = (await send(url, '/metrics')).text;
      assert.equal(metricValue(text, 'service_success_total{platform="apple",type="message",transport=""}'), base + 6);
      assert.equal(metricValue(text, 'service_notification_duration_seconds_count{platform="apple"}'), base + 6);
    }
  });

  it('/api/v1/usage from any worker counts what every worker answered (operator queries through the primary)', async () => {
    const total = async (): Promise<number> => {
      const answer = JSON.parse((await send(url, '/api/v1/usage')).text) as { tenants: Array<{ tenant: string; OK: number }> };
      return answer.tenants.find((t) => t.tenant === '-')?.OK ?? 0;
    };
    const base = await total();
    assert.ok(base >= 26, `usage so far: ${base}`);
    await Promise.all(Array.from({ length: 8 }, () => send(url, '/api/v1/send_push', push())));
    // Successive connections go to different workers: each asks both.
    for (let i = 0; i < 4; i++) assert.equal(await total(), base + 8);
  });

  it('a worker that dies is replaced, and the port keeps serving', async () => {
    const [victim] = workerPids(cli.child.pid!);
    process.kill(victim!, 'SIGKILL');
    await waitUntil('the replacement listens', () => logLines(cli).some((l) => l.msg === 'replacement worker is listening'));
    const pids = workerPids(cli.child.pid!);
    assert.equal(pids.length, 2);
    assert.ok(!pids.includes(victim!));
    assert.ok(logLines(cli).some((l) => /stopped unexpectedly \(SIGKILL\)/.test(String(l.msg)) && l.level === 50));
    const answers = await Promise.all(Array.from({ length: 10 }, () => send(url, '/api/v1/send_push', push())));
    assert.deepEqual(new Set(answers.map((a) => a.text)), new Set([OK]));
  });

  it('SIGTERM: requests under way are answered, then every process exits with 0', async () => {
    const slow = 'b2'.repeat(32);
    apns.peer.setDeviceBehaviour(slow, { delayMs: 1_500 });
    const pids = workerPids(cli.child.pid!);
    const inFlight = Promise.all(Array.from({ length: 4 }, () => send(url, '/api/v1/send_push', push(slow))));
    await waitUntil('the peer holds the requests', () => apns.peer.receivedFor(slow).length === 4);
    cli.child.kill('SIGTERM');
    const answers = await inFlight;
    assert.deepEqual(
      answers.map((a) => a.text),
      [OK, OK, OK, OK],
    );
    assert.equal(await cli.exited, 0);
    for (const pid of pids) assert.throws(() => process.kill(pid, 0), /ESRCH/, `worker ${pid} still runs`);
  });
});

function safeWorkerPids(cli: Cli): number[] {
  try {
    return workerPids(cli.child.pid!);
  } catch {
    return [];
  }
}

describe('Workers: start-up', () => {
  it('a configuration error is reported once and ends the primary with code 2', async () => {
    const config = writeTemp(
      tempDir(),
      'push-proxy.json',
      JSON.stringify({
        Workers: 3,
        ApplePushSettings: [
          { Type: 'apple_rn', ApplePushTopic: 't', AppleAuthKeyFile: '/nonexistent/AuthKey.p8', AppleAuthKeyID: 'K', AppleTeamID: 'T' },
        ],
      }),
    );
    const cli = runCli(['--config', config]);
    assert.equal(await cli.exited, 2, cli.stderr());
    assert.equal(cli.stderr().match(/AppleAuthKeyFile \/nonexistent\/AuthKey\.p8 cannot be read/g)?.length, 1, cli.stderr());
  });

  it('with the inspector on, one process and a warning', async () => {
    const config = writeTemp(tempDir(), 'push-proxy.json', JSON.stringify({ Workers: 2, Mode: 'test', Inspector: true }));
    const cli = runCli(['--config', config]);
    try {
      await listeningUrl(cli);
      assert.match(cli.output(), /Workers is 2, but the inspector keeps notifications in the memory of one process: running one process/);
      assert.deepEqual(safeWorkerPids(cli), []);
    } finally {
      cli.child.kill('SIGKILL');
    }
  });
});

describe('Workers: 2 processes with an admin listener', () => {
  let apns: ApnsFixture;
  let cli: Cli;
  let url: string;
  let admin: string;

  before(async () => {
    apns = await startApnsFixture();
    const dir = tempDir();
    const caFile = writeTemp(dir, 'ca.pem', apns.ca.certPem);
    const config = writeTemp(
      dir,
      'push-proxy.json',
      JSON.stringify({ Workers: 2, EnableMetrics: true, AdminListenAddress: '127.0.0.1:0', ApplePushSettings: [apns.entry()] }),
    );
    cli = runCli(['--config', config], { NODE_EXTRA_CA_CERTS: caFile });
    url = await listeningUrl(cli);
    admin = (JSON.parse(await cli.waitFor(/admin listener on/)) as { admin_url: string }).admin_url;
  });
  after(async () => {
    cli.child.kill('SIGKILL');
    for (const pid of safeWorkerPids(cli)) process.kill(pid, 'SIGKILL');
    await apns.close();
  });

  it('both workers share the admin port; its /metrics is the sum over them; the public port serves no /metrics', async () => {
    assert.match(admin, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.notEqual(admin, url);
    assert.equal(workerPids(cli.child.pid!).length, 2);
    const answers = await Promise.all(Array.from({ length: 10 }, () => send(url, '/api/v1/send_push', push())));
    assert.deepEqual(new Set(answers.map((a) => a.text)), new Set([OK]));
    await waitUntil(
      'both workers delivered',
      () =>
        new Set(
          logLines(cli)
            .filter((l) => l.msg === 'push delivered')
            .map((l) => l.worker),
        ).size === 2,
    );
    // Successive connections go to different workers: each must show the same sum.
    for (let i = 0; i < 4; i++) {
      const metrics = await send(admin, '/metrics');
      assert.equal(metrics.status, 200);
      assert.equal(metricValue(metrics.text, 'service_success_total{platform="apple",type="message",transport=""}'), 10);
      const ready = JSON.parse((await send(admin, '/readyz')).text) as { status: string; entries: unknown[] };
      assert.equal(ready.status, 'ready');
      assert.equal(ready.entries.length, 1);
    }
    assert.equal((await send(url, '/metrics')).status, 404);
    assert.deepEqual(JSON.parse((await send(url, '/readyz')).text), { status: 'ready' });
  });

  it('SIGTERM: every process exits with 0 and the admin port is closed', async () => {
    const pids = workerPids(cli.child.pid!);
    cli.child.kill('SIGTERM');
    assert.equal(await cli.exited, 0);
    for (const pid of pids) assert.throws(() => process.kill(pid, 0), /ESRCH/, `worker ${pid} still runs`);
    await assert.rejects(send(admin, '/healthz'), /ECONNREFUSED/);
  });
});
