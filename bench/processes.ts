/**
 * Starting, talking to and stopping the bench's processes. Forked ones (peers, baseline) talk over IPC and
 * exit when the orchestrator goes; the proxy runs under coreutils' `timeout`, so it too has a hard end.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { ControlMessage, ControlRequest, PeerStats } from './common';
import { processTree } from './procstat';

const started = new Set<ChildProcess>();

/** A control request before it gets its id. */
type ControlBody = ControlRequest extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;

/** Kills every process this module started that is still alive (used on exit and on signals). */
export function killAllStarted(signal: NodeJS.Signals = 'SIGKILL'): void {
  for (const child of started) {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      // The proxy's node process too, not only its `timeout` wrapper.
      for (const pid of processTree(child.pid).reverse()) {
        try {
          process.kill(pid, signal);
        } catch {
          // already gone
        }
      }
    }
  }
}

function waitForExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** A process forked from dist/bench with a control channel. */
export class ForkedProcess {
  readonly port: Promise<number>;
  private readonly child: ChildProcess;
  private nextId = 1;
  private readonly pending = new Map<number, (message: Extract<ControlMessage, { type: 'reply' }>) => void>();

  constructor(
    readonly name: string,
    script: string,
    settings: unknown,
    workDir: string,
    env: NodeJS.ProcessEnv,
    execArgv: string[] = [],
    readyTimeoutMs = 20_000,
  ) {
    const settingsFile = path.join(workDir, `${name}.json`);
    writeFileSync(settingsFile, JSON.stringify(settings), { mode: 0o600 });
    const log = openSync(path.join(workDir, `${name}.log`), 'a');
    this.child = fork(script, [settingsFile], { env, execArgv, stdio: ['ignore', log, log, 'ipc'] });
    closeSync(log);
    started.add(this.child);
    this.port = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name} did not start within ${readyTimeoutMs} ms`)), readyTimeoutMs);
      this.child.on('message', (message: ControlMessage) => {
        if (message.type === 'ready') {
          clearTimeout(timer);
          resolve(message.port);
        } else if (message.type === 'fatal') {
          clearTimeout(timer);
          reject(new Error(`${name} failed: ${message.error}`));
        } else if (message.type === 'reply') {
          this.pending.get(message.id)?.(message);
          this.pending.delete(message.id);
        }
      });
      this.child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`${name} exited (${signal ?? code}); see ${path.join(workDir, `${name}.log`)}`));
        for (const [, answer] of this.pending) answer({ type: 'reply', id: -1 });
        this.pending.clear();
      });
    });
    this.port.catch(() => undefined);
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  private request(body: ControlBody, timeoutMs = 10_000): Promise<Extract<ControlMessage, { type: 'reply' }>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (!this.child.connected) return reject(new Error(`${this.name} is not running`));
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.name} did not answer ${body.cmd}`));
      }, timeoutMs);
      this.pending.set(id, (message) => {
        clearTimeout(timer);
        if (message.id === -1) reject(new Error(`${this.name} exited`));
        else resolve(message);
      });
      this.child.send({ ...body, id } as ControlRequest);
    });
  }

  async reset(run: string, latencyMs: number): Promise<void> {
    await this.request({ cmd: 'reset', run, latencyMs });
  }

  async stats(): Promise<PeerStats> {
    const reply = await this.request({ cmd: 'stats' });
    if (!reply.stats) throw new Error(`${this.name} keeps no statistics`);
    return reply.stats;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    await this.request({ cmd: 'stop' }, 3000).catch(() => undefined);
    if (!(await waitForExit(this.child, 3000))) {
      this.child.kill('SIGKILL');
      await waitForExit(this.child, 2000);
    }
    started.delete(this.child);
  }
}

/** The proxy: `timeout -k 5 <limit> node [nodeArgs] dist/src/cli.js --config <file>`. */
export class ProxyProcess {
  private readonly child: ChildProcess;
  private nodePid: number | undefined;
  readonly logFile: string;

  constructor(
    readonly name: string,
    cliPath: string,
    configFile: string,
    workDir: string,
    env: NodeJS.ProcessEnv,
    lifetimeSec: number,
    nodeArgs: string[] = [],
  ) {
    this.logFile = path.join(workDir, `${name}.out`);
    const log = openSync(this.logFile, 'a');
    this.child = spawn(
      'timeout',
      ['-k', '5', String(Math.ceil(lifetimeSec)), process.execPath, ...nodeArgs, cliPath, '--config', configFile],
      {
        env,
        cwd: workDir,
        stdio: ['ignore', log, log],
      },
    );
    closeSync(log);
    started.add(this.child);
  }

  get exited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  /** How it ended (`timeout` passes the proxy's own exit code on): a code, a signal name, or null while running. */
  get exitStatus(): number | string | null {
    return this.child.exitCode ?? this.child.signalCode;
  }

  /** The proxy's own node process (the `timeout` wrapper is left out of every measurement). */
  get pid(): number {
    if (this.nodePid === undefined) {
      const tree = processTree(this.child.pid ?? -1);
      if (tree.length < 2) throw new Error(`${this.name}: its node process is not running`);
      this.nodePid = tree[1]!;
    }
    return this.nodePid;
  }

  async waitReady(baseUrl: string, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      if (this.exited) break;
      try {
        const res = await fetch(`${baseUrl}/readyz`, { signal: AbortSignal.timeout(2000) });
        last = await res.text();
        if (res.status === 200) return;
      } catch (err) {
        last = (err as Error).message;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    let tail = '';
    try {
      tail = readFileSync(this.logFile, 'utf8').split('\n').slice(-20).join('\n');
    } catch {
      // no log
    }
    throw new Error(`${this.name} did not become ready (${this.exited ? 'it exited' : last}); its output:\n${tail}`);
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    // timeout passes SIGTERM on to the proxy, which finishes what is under way and exits.
    this.child.kill('SIGTERM');
    if (!(await waitForExit(this.child, 15_000))) {
      for (const pid of processTree(this.child.pid ?? -1).reverse()) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
      await waitForExit(this.child, 2000);
    }
    started.delete(this.child);
  }
}

/** A port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}
