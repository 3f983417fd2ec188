/** The `push-proxy` command as a child process, as an operator runs it, with its output readable. */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { tempDir } from './support';

const CLI = path.join(__dirname, '..', 'src', 'cli.js');

export interface Cli {
  child: ChildProcess;
  output: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
  /** Resolves with the first stdout line matching `pattern`. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
}

export function runCli(args: string[], env: Record<string, string> = {}, cwd = tempDir()): Cli {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd,
    // No load balancer watches these instances: a stop need not wait DrainGraceSec (drain tests set their own).
    env: {
      PATH: process.env.PATH ?? '',
      PUSH_PROXY_LISTEN_ADDRESS: '127.0.0.1:0',
      PUSH_PROXY_LOG_FORMAT: 'json',
      PUSH_PROXY_DRAIN_GRACE_SEC: '0',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const waiters: Array<{ pattern: RegExp; resolve: (line: string) => void }> = [];
  child.stdout!.on('data', (chunk: Buffer) => {
    out += chunk.toString();
    for (const waiter of [...waiters]) {
      const line = out.split('\n').find((l) => waiter.pattern.test(l));
      if (line) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(line);
      }
    }
  });
  child.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    output: () => out,
    stderr: () => err,
    exited,
    waitFor(pattern, timeoutMs = 30_000) {
      const existing = out.split('\n').find((l) => pattern.test(l));
      if (existing) return Promise.resolve(existing);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no line matching ${pattern} in:\n${out}\n${err}`)), timeoutMs);
        waiters.push({ pattern, resolve: (line) => (clearTimeout(timer), resolve(line)) });
        void exited.then((code) => reject(new Error(`exited with ${code} before ${pattern}:\n${out}\n${err}`)));
      });
    },
  };
}

export async function listeningUrl(cli: Cli): Promise<string> {
  const line = await cli.waitFor(/Push Proxy listening/);
  return (JSON.parse(line) as { url: string }).url;
}

export async function stop(cli: Cli): Promise<number | null> {
  cli.child.kill('SIGTERM');
  return cli.exited;
}
