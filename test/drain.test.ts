/**
 * Stopping without losing anything, with real processes and real signals: SIGTERM makes /readyz 503 at once,
 * requests are served through the grace (on open keep-alive connections too), every accepted request gets
 * its answer, the process exits 0; a second signal or the deadline ends it with 1 and says what was cut.
 * SIGHUP reopens the log file and stops nothing. The same with Workers.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, renameSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { REPEATED_SIGNAL_WINDOW_MS, RequestTracker } from '../src/http/drain';
import { createListener } from '../src/http/listener';
import { listeningUrl, runCli, type Cli } from './cli-process';
import {
  APPLE_TOKEN,
  capturedLogger,
  get,
  startApnsFixture,
  startTestProxy,
  tempDir,
  testConfig,
  writeTemp,
  type ApnsFixture,
} from './support';

interface Answer {
  status: number;
  text: string;
  headers: http.IncomingHttpHeaders;
  reusedSocket: boolean;
}

/** One request; `agent` false opens a new connection, a keep-alive agent reuses its open one. */
function send(url: string, urlPath: string, body?: object, agent: http.Agent | false = false): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}${urlPath}`, { method: body ? 'POST' : 'GET', agent }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text, headers: res.headers, reusedSocket: req.reusedSocket }));
    });
    req.on('error', reject);
    req.end(body ? JSON.stringify(body) : undefined);
  });
}

const push = (token = APPLE_TOKEN) => ({ platform: 'apple_rn', server_id: 'srv', device_id: token, type: 'message', message: 'hi' });
const OK = '{"status":"OK"}\n';
const SLOW = 'c3'.repeat(32);

function logLines(cli: Cli): Array<Record<string, unknown>> {
  return cli
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

function workerPids(primaryPid: number): number[] {
  try {
    return readFileSync(`/proc/${primaryPid}/task/${primaryPid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

async function waitUntil(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  for (const end = Date.now() + timeoutMs; Date.now() < end; await sleep(50)) if (check()) return;
  assert.fail(`timed out waiting until ${what}`);
}

/** A keep-alive connection that made one request and now sits idle; resolves `closed` when the server ends it. */
async function idleKeepAliveConnection(url: string): Promise<{ closed: Promise<void>; socket: net.Socket }> {
  const { hostname, port } = new URL(url);
  const socket = net.connect(Number(port), hostname);
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  socket.on('error', () => {});
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  socket.write(`GET /healthz HTTP/1.1\r\nHost: ${hostname}\r\nConnection: keep-alive\r\n\r\n`);
  await new Promise<void>((resolve) => socket.once('data', () => resolve()));
  return { closed, socket };
}

async function startProxyProcess(
  apns: ApnsFixture,
  config: object,
  env: Record<string, string> = {},
): Promise<{ cli: Cli; url: string; dir: string }> {
  const dir = tempDir();
  const caFile = writeTemp(dir, 'ca.pem', apns.ca.certPem);
  const file = writeTemp(dir, 'push-proxy.json', JSON.stringify({ ApplePushSettings: [apns.entry()], ...config }));
  const cli = runCli(['--config', file], { NODE_EXTRA_CA_CERTS: caFile, ...env }, dir);
  return { cli, url: await listeningUrl(cli), dir };
}

describe('in process: draining', () => {
  it('/readyz answers 503 "draining", requests are still served and their answers close the connection', async () => {
    const apns = await startApnsFixture();
    const proxy = await startTestProxy(testConfig({ apple: [apns.entry()] }), [apns.ca.certPem]);
    try {
      assert.equal((await get(`${proxy.url}/readyz`)).status, 200);
      proxy.startDraining();
      const ready = await get(`${proxy.url}/readyz`);
      assert.equal(ready.status, 503);
      assert.equal((JSON.parse(ready.text) as { status: string }).status, 'draining');
      const answer = await send(proxy.url, '/api/v1/send_push', push(), new http.Agent({ keepAlive: true }));
      assert.equal(answer.text, OK);
      assert.equal(answer.headers.connection, 'close');
      assert.equal((await get(`${proxy.url}/healthz`)).status, 200, 'alive while draining');
    } finally {
      await proxy.close();
      await apns.close();
    }
  });
});

describe('a single process stops without losing a request', () => {
  let apns: ApnsFixture;
  before(async () => {
    apns = await startApnsFixture();
  });
  after(() => apns.close());

  it('SIGTERM: /readyz 503 at once, served through the grace, every request under way answered OK, exit 0', async () => {
    // The grace (3 s) is well shorter than the peer's delay (7.5 s): the idle connection is closed before the answers go out.
    apns.peer.setDeviceBehaviour(SLOW, { delayMs: 7_500 });
    const { cli, url } = await startProxyProcess(apns, { SendTimeoutSec: 15, RetryTimeoutSec: 15 }, { PUSH_PROXY_DRAIN_GRACE_SEC: '3' });
    try {
      const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 1 });
      assert.equal((await send(url, '/healthz', undefined, keepAlive)).status, 200);
      const idle = await idleKeepAliveConnection(url);
      const events: string[] = [];
      void idle.closed.then(() => events.push('idle connection closed'));

      const before = apns.peer.receivedFor(SLOW).length;
      // Keep-alive connections: only the drain can make their answers close them.
      const busy = new http.Agent({ keepAlive: true });
      const inFlight = Promise.all(
        Array.from({ length: 3 }, () => send(url, '/api/v1/send_push', push(SLOW), busy).then((a) => (events.push('answer'), a))),
      );
      await waitUntil('the peer holds the 3 requests', () => apns.peer.receivedFor(SLOW).length === before + 3);

      cli.child.kill('SIGTERM');
      await cli.waitFor(/SIGTERM received: \/readyz answers 503/);
      events.push('SIGTERM');
      // A new connection during the grace is still accepted, and told the truth.
      const ready = await send(url, '/readyz');
      assert.equal(ready.status, 503);
      assert.equal((JSON.parse(ready.text) as { status: string }).status, 'draining');
      // The load balancer's open keep-alive connection still gets answers, the last one on it.
      const late = await send(url, '/api/v1/send_push', push(), keepAlive);
      assert.equal(late.text, OK);
      assert.equal(late.reusedSocket, true, 'sent on the connection opened before SIGTERM');
      assert.equal(late.headers.connection, 'close');

      const answers = await inFlight;
      assert.deepEqual(
        answers.map((a) => a.text),
        [OK, OK, OK],
      );
      assert.deepEqual(
        answers.map((a) => a.headers.connection),
        ['close', 'close', 'close'],
      );
      assert.equal(await cli.exited, 0, cli.stderr());
      assert.deepEqual(events, ['SIGTERM', 'idle connection closed', 'answer', 'answer', 'answer']);
      const lines = logLines(cli).map((l) => String(l.msg));
      assert.ok(lines.includes('stopped: every accepted request was answered'), lines.join('\n'));
    } finally {
      cli.child.kill('SIGKILL');
      apns.peer.setDeviceBehaviour(SLOW, []);
    }
  });

  it('the same signal delivered twice at once (as `timeout` and a terminal do) is one request to stop: the send under way is answered OK, exit 0', async () => {
    apns.peer.setDeviceBehaviour(SLOW, { delayMs: 1_500 });
    const { cli, url } = await startProxyProcess(apns, { DrainGraceSec: 0 });
    try {
      const before = apns.peer.receivedFor(SLOW).length;
      const inFlight = send(url, '/api/v1/send_push', push(SLOW)).then(
        (a) => a.text,
        (err: Error) => `error: ${err.message}`,
      );
      await waitUntil('the peer holds the request', () => apns.peer.receivedFor(SLOW).length === before + 1);
      cli.child.kill('SIGINT');
      // Two signals sent back to back may reach the process as one (the kernel keeps one pending of a kind):
      // the second goes once the first was taken, as npm's copy of a terminal's Ctrl-C arrives.
      await cli.waitFor(/SIGINT received: /);
      cli.child.kill('SIGINT');
      assert.equal(await inFlight, OK);
      assert.equal(await cli.exited, 0);
      assert.ok(
        logLines(cli).some((l) => /^SIGINT received again at once: the same request to stop/.test(String(l.msg))),
        cli.output(),
      );
    } finally {
      cli.child.kill('SIGKILL');
      apns.peer.setDeviceBehaviour(SLOW, []);
    }
  });

  it('a second SIGTERM ends it at once with code 1 and says what it cut; the cut request gets no false OK', async () => {
    apns.peer.setDeviceBehaviour(SLOW, { delayMs: 60_000 });
    const { cli, url } = await startProxyProcess(apns, { SendTimeoutSec: 120, RetryTimeoutSec: 120 });
    try {
      const before = apns.peer.receivedFor(SLOW).length;
      const inFlight = send(url, '/api/v1/send_push', push(SLOW)).then(
        (a) => a.text,
        (err: Error) => `error: ${err.message}`,
      );
      await waitUntil('the peer holds the request', () => apns.peer.receivedFor(SLOW).length === before + 1);
      cli.child.kill('SIGTERM');
      await cli.waitFor(/listener closing/);
      // A repeat inside the window is the same signal delivered twice (see the Ctrl-C test below).
      await sleep(REPEATED_SIGNAL_WINDOW_MS + 100);
      cli.child.kill('SIGTERM');
      assert.equal(await cli.exited, 1);
      assert.match(await inFlight, /^error: /);
      const forced = logLines(cli).find((l) => /SIGTERM received again: exiting now, 1 request\(s\) under way cut/.test(String(l.msg)));
      assert.ok(forced, cli.output());
      assert.equal((forced.requests as Array<{ path: string }>)[0]!.path, '/api/v1/send_push');
    } finally {
      cli.child.kill('SIGKILL');
      apns.peer.setDeviceBehaviour(SLOW, []);
    }
  });

  it('the deadline (grace + SendTimeoutSec + 5 s) ends a stop that cannot finish, with code 1 and what it cut', async () => {
    const { cli, url } = await startProxyProcess(apns, { SendTimeoutSec: 1, RetryTimeoutSec: 1 });
    try {
      // Accepted (its headers are complete) but its body never ends: only the deadline can end the wait.
      const { hostname, port } = new URL(url);
      const socket = net.connect(Number(port), hostname);
      socket.on('error', () => {});
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      // Node answers 100 Continue in the same step that hands the request over: seeing it, the request is accepted.
      socket.write(`POST /api/v1/send_push HTTP/1.1\r\nHost: ${hostname}\r\nContent-Length: 1000\r\nExpect: 100-continue\r\n\r\n`);
      await new Promise<void>((resolve) => socket.once('data', () => resolve()));
      socket.write('{"platform":');
      cli.child.kill('SIGTERM');
      assert.equal(await cli.exited, 1);
      const forced = logLines(cli).find((l) =>
        /still stopping 6 s after SIGTERM .*: exiting now, 1 request\(s\) under way cut/.test(String(l.msg)),
      );
      assert.ok(forced, cli.output());
      socket.destroy();
    } finally {
      cli.child.kill('SIGKILL');
    }
  });

  it('SIGHUP reopens the log file (moved away by logrotate) and stops nothing', async () => {
    const logDir = tempDir();
    const logFile = path.join(logDir, 'push_proxy.log');
    const { cli, url } = await startProxyProcess(apns, { EnableConsoleLog: true, EnableFileLog: true, LogFileLocation: logFile });
    try {
      assert.equal((await send(url, '/api/v1/send_push', push())).text, OK);
      await waitUntil(
        'the delivery reaches the log file',
        () => existsSync(logFile) && readFileSync(logFile, 'utf8').includes('push delivered'),
      );
      renameSync(logFile, `${logFile}.1`);

      cli.child.kill('SIGHUP');
      await cli.waitFor(/SIGHUP received: log file .* reopened/);
      assert.equal((await send(url, '/api/v1/send_push', push())).text, OK);
      await waitUntil(
        'a new log file holds the new delivery',
        () => existsSync(logFile) && readFileSync(logFile, 'utf8').includes('push delivered'),
      );
      assert.match(readFileSync(logFile, 'utf8'), /SIGHUP received/);
      assert.doesNotMatch(readFileSync(`${logFile}.1`, 'utf8'), /SIGHUP received/, 'the moved file gets nothing after the reopen');
      assert.equal(cli.child.exitCode, null, 'still running');
    } finally {
      cli.child.kill('SIGKILL');
    }
  });
});

/** `npm start` as an operator runs it, on `config`; --ignore-scripts skips the prestart build (the suite runs from its dist/). */
function npmStart(config: string, options: { env?: NodeJS.ProcessEnv; detached?: boolean } = {}) {
  const npm = spawn('npm', ['start', '--ignore-scripts', '--', '--config', config], {
    cwd: path.join(__dirname, '..', '..'),
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.detached ?? false,
  });
  let out = '';
  npm.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => npm.on('exit', (code) => resolve(code)));
  return {
    npm,
    exited,
    output: () => out,
    async url(): Promise<string> {
      await waitUntil('the proxy listens', () => /Push Proxy listening/.test(out), 30_000);
      return (JSON.parse(out.split('\n').find((l) => /Push Proxy listening/.test(l))!) as { url: string }).url;
    },
  };
}

/** SIGKILL to each process still there. */
function killLeft(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone already, as it should be.
    }
  }
}

describe('npm start', () => {
  it("SIGHUP to the proxy npm start runs (as logrotate's postrotate does) stops nothing: it reopens its log and keeps serving; SIGTERM to npm then drains", async () => {
    const dir = tempDir();
    const logFile = path.join(dir, 'push_proxy.log');
    const config = writeTemp(
      dir,
      'push-proxy.json',
      JSON.stringify({
        ListenAddress: '127.0.0.1:0',
        LogFormat: 'json',
        DrainGraceSec: 0,
        EnableFileLog: true,
        EnableConsoleLog: true,
        LogFileLocation: logFile,
      }),
    );
    const started = npmStart(config);
    let proxyPids: number[] = [];
    try {
      const url = await started.url();
      proxyPids = workerPids(started.npm.pid!);
      assert.equal(proxyPids.length, 1, 'npm runs the proxy itself (exec), no shell between');
      // The log file is opened asynchronously: it may not exist yet when the proxy says it listens.
      await waitUntil('the log file is created', () => existsSync(logFile));
      renameSync(logFile, `${logFile}.1`);
      process.kill(proxyPids[0]!, 'SIGHUP');
      await waitUntil('the proxy reopened its log', () => /SIGHUP received: log file .* reopened/.test(started.output()));
      assert.equal((await send(url, '/healthz')).status, 200);
      await waitUntil('the new log file has the line', () => existsSync(logFile) && /SIGHUP received/.test(readFileSync(logFile, 'utf8')));
      started.npm.kill('SIGTERM');
      assert.equal(await started.exited, 0, started.output());
      assert.match(started.output(), /stopped: every accepted request was answered/);
    } finally {
      started.npm.kill('SIGKILL');
      killLeft(proxyPids);
    }
  });

  it('Ctrl-C in a terminal (SIGINT to npm and the proxy alike, and npm passes it on) drains: the request under way is answered OK, exit 0', async () => {
    const apns = await startApnsFixture();
    apns.peer.setDeviceBehaviour(SLOW, { delayMs: 1_500 });
    const dir = tempDir();
    const caFile = writeTemp(dir, 'ca.pem', apns.ca.certPem);
    const config = writeTemp(
      dir,
      'push-proxy.json',
      JSON.stringify({ ListenAddress: '127.0.0.1:0', LogFormat: 'json', DrainGraceSec: 0, ApplePushSettings: [apns.entry()] }),
    );
    // A process group of its own, as a terminal's foreground job: the signal goes to the whole group.
    const started = npmStart(config, { env: { ...process.env, NODE_EXTRA_CA_CERTS: caFile }, detached: true });
    try {
      const url = await started.url();
      const inFlight = send(url, '/api/v1/send_push', push(SLOW)).then(
        (a) => a.text,
        (err: Error) => `error: ${err.message}`,
      );
      await waitUntil('the peer holds the request', () => apns.peer.receivedFor(SLOW).length === 1);
      process.kill(-started.npm.pid!, 'SIGINT');
      assert.equal(await inFlight, OK);
      assert.equal(await started.exited, 0, started.output());
      assert.match(started.output(), /stopped: every accepted request was answered/);
    } finally {
      killLeft([-started.npm.pid!]);
      await apns.close();
    }
  });

  it('passes SIGTERM on to the proxy, which drains and exits 0 (no process left behind)', async () => {
    const config = writeTemp(
      tempDir(),
      'push-proxy.json',
      JSON.stringify({ ListenAddress: '127.0.0.1:0', LogFormat: 'json', DrainGraceSec: 1 }),
    );
    const started = npmStart(config);
    let proxyPids: number[] = [];
    try {
      await started.url();
      // The proxy, and a shell between npm and it if there is one.
      proxyPids = workerPids(started.npm.pid!).flatMap((pid) => [pid, ...workerPids(pid)]);
      assert.ok(proxyPids.length > 0, 'npm runs the proxy');
      started.npm.kill('SIGTERM');
      assert.equal(await started.exited, 0, started.output());
      assert.match(started.output(), /stopped: every accepted request was answered/);
      for (const pid of proxyPids) assert.throws(() => process.kill(pid, 0), /ESRCH/, `process ${pid} outlived npm`);
    } finally {
      started.npm.kill('SIGKILL');
      killLeft(proxyPids);
    }
  });
});

describe('Workers: 2 processes stop without losing a request', () => {
  let apns: ApnsFixture;
  before(async () => {
    apns = await startApnsFixture();
  });
  after(() => apns.close());

  it('SIGHUP reaches every worker (each reopens its log file); SIGTERM drains every worker; the primary exits 0', async () => {
    const logDir = tempDir();
    const logFile = path.join(logDir, 'push_proxy.log');
    apns.peer.setDeviceBehaviour(SLOW, { delayMs: 5_000 });
    const { cli, url } = await startProxyProcess(
      apns,
      { Workers: 2, SendTimeoutSec: 15, EnableConsoleLog: true, EnableFileLog: true, LogFileLocation: logFile },
      { PUSH_PROXY_DRAIN_GRACE_SEC: '3' },
    );
    const pids = workerPids(cli.child.pid!);
    try {
      assert.equal(pids.length, 2);
      await waitUntil('the log file is created', () => existsSync(logFile));
      renameSync(logFile, `${logFile}.1`);
      cli.child.kill('SIGHUP');
      await waitUntil(
        'the primary and both workers reopened',
        () => logLines(cli).filter((l) => /^SIGHUP received: log file .* reopened/.test(String(l.msg))).length === 3,
      );
      assert.equal(
        new Set(
          logLines(cli)
            .filter((l) => /^SIGHUP received/.test(String(l.msg)))
            .map((l) => l.worker),
        ).size,
        3,
        'primary, worker 1, worker 2',
      );
      await waitUntil(
        "the new log file holds the workers' lines",
        () => existsSync(logFile) && (readFileSync(logFile, 'utf8').match(/SIGHUP received/g)?.length ?? 0) === 3,
      );
      assert.deepEqual(workerPids(cli.child.pid!), pids, 'no worker replaced');

      const before = apns.peer.receivedFor(SLOW).length;
      const inFlight = Promise.all(Array.from({ length: 4 }, () => send(url, '/api/v1/send_push', push(SLOW))));
      await waitUntil('the peer holds the 4 requests', () => apns.peer.receivedFor(SLOW).length === before + 4);
      cli.child.kill('SIGTERM');
      await waitUntil(
        'both workers drain',
        () => logLines(cli).filter((l) => /^SIGTERM received: \/readyz answers 503/.test(String(l.msg))).length === 2,
      );
      const ready = await send(url, '/readyz');
      assert.equal(ready.status, 503);
      assert.equal((JSON.parse(ready.text) as { status: string }).status, 'draining');

      assert.deepEqual(
        (await inFlight).map((a) => a.text),
        [OK, OK, OK, OK],
      );
      assert.equal(await cli.exited, 0, cli.stderr());
      for (const pid of pids) assert.throws(() => process.kill(pid, 0), /ESRCH/, `worker ${pid} still runs`);
      assert.equal(logLines(cli).filter((l) => l.msg === 'stopped: every accepted request was answered').length, 2);
    } finally {
      cli.child.kill('SIGKILL');
      for (const pid of workerPids(cli.child.pid!)) process.kill(pid, 'SIGKILL');
      apns.peer.setDeviceBehaviour(SLOW, []);
    }
  });

  it('a second SIGTERM kills the workers and ends the primary with code 1', async () => {
    apns.peer.setDeviceBehaviour(SLOW, { delayMs: 60_000 });
    const { cli, url } = await startProxyProcess(apns, { Workers: 2, SendTimeoutSec: 120, RetryTimeoutSec: 120 });
    const pids = workerPids(cli.child.pid!);
    try {
      const before = apns.peer.receivedFor(SLOW).length;
      const inFlight = send(url, '/api/v1/send_push', push(SLOW)).then(
        (a) => a.text,
        (err: Error) => `error: ${err.message}`,
      );
      await waitUntil('the peer holds the request', () => apns.peer.receivedFor(SLOW).length === before + 1);
      cli.child.kill('SIGTERM');
      await waitUntil('both workers drain', () => logLines(cli).filter((l) => /^listener closing/.test(String(l.msg))).length === 2);
      await sleep(REPEATED_SIGNAL_WINDOW_MS + 100);
      cli.child.kill('SIGTERM');
      assert.equal(await cli.exited, 1);
      assert.match(await inFlight, /^error: /);
      assert.ok(
        logLines(cli).some((l) => /SIGTERM received again: killing [12] worker\(s\)/.test(String(l.msg))),
        cli.output(),
      );
      for (const pid of pids) assert.throws(() => process.kill(pid, 0), /ESRCH/, `worker ${pid} still runs`);
    } finally {
      cli.child.kill('SIGKILL');
      for (const pid of workerPids(cli.child.pid!)) process.kill(pid, 'SIGKILL');
      apns.peer.setDeviceBehaviour(SLOW, []);
    }
  });
});

describe('RequestTracker on a listener', () => {
  it('counts answers written directly and answers Express handled (its own prototype), and waits for the ones asked', async () => {
    const tracker = new RequestTracker();
    const pages = express();
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    pages.get('/page', (_req, res) => void held.then(() => res.send('page')));
    const server = createListener(
      {
        TLSCertFile: '',
        TLSKeyFile: '',
        TLSClientCAFile: '',
        HeadersTimeoutSec: 10,
        RequestTimeoutSec: 60,
        KeepAliveTimeoutSec: 5,
        MaxConnections: 0,
      },
      tracker.wrap((req, res) => {
        if (req.url === '/page') return pages(req, res);
        void held.then(() => res.end('push'));
      }),
      capturedLogger('warn').logger,
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const answers = Promise.all([fetch(`${base}/api/v1/send_push`), fetch(`${base}/page`)].map((p) => p.then((r) => r.text())));
      await waitUntil('both requests arrive', () => tracker.describe().length === 2);
      let pushAnswered = false;
      const pushes = tracker.whenAnswered((p) => p === '/api/v1/send_push').then(() => (pushAnswered = true));
      await sleep(50);
      assert.equal(pushAnswered, false, 'the push is still under way');
      release();
      assert.deepEqual(await answers, ['push', 'page']);
      await pushes;
      await waitUntil('both settled, the Express one too', () => tracker.describe().length === 0);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
