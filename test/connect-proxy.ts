/**
 * A real HTTP CONNECT proxy for tests: Debian's `tinyproxy` (apt package `tinyproxy`), run in the foreground
 * on a free loopback port with a generated config, its log read back to see which tunnels it opened.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { tempDir } from './support';

export interface TinyproxyOptions {
  /** `Deny 127.0.0.1`: every request (CONNECT included) gets `403 Access denied`. */
  deny?: boolean;
  /** `BasicAuth user password`: requests without these credentials get `407`. */
  basicAuth?: { user: string; password: string };
}

export interface Tinyproxy {
  readonly port: number;
  /** `http://[user:password@]127.0.0.1:port`. */
  readonly url: string;
  /** The `host:port` of every CONNECT request it received so far, in order. */
  connects(): string[];
  /** Kills the process (by its pid) and waits for it to exit; the port is closed afterwards. */
  stop(): Promise<void>;
}

/** A port nothing listens on (just released by the kernel: good enough for a test). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export async function startTinyproxy(options: TinyproxyOptions = {}): Promise<Tinyproxy> {
  const dir = tempDir();
  const port = await freePort();
  const logFile = path.join(dir, 'tinyproxy.log');
  const configFile = path.join(dir, 'tinyproxy.conf');
  // No ConnectPort line: tinyproxy then allows CONNECT to every port (tinyproxy.conf(5)).
  const lines = [
    `Port ${port}`,
    'Listen 127.0.0.1',
    'Timeout 60',
    'MaxClients 100',
    options.deny ? 'Deny 127.0.0.1' : 'Allow 127.0.0.1',
    `LogFile "${logFile}"`,
    'LogLevel Connect',
    `PidFile "${path.join(dir, 'tinyproxy.pid')}"`,
    ...(options.basicAuth ? [`BasicAuth ${options.basicAuth.user} ${options.basicAuth.password}`] : []),
  ];
  writeFileSync(configFile, lines.join('\n') + '\n');

  let child: ChildProcess;
  try {
    child = spawn('tinyproxy', ['-d', '-c', configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    throw new Error(`cannot start tinyproxy (apt-get install -y tinyproxy): ${(err as Error).message}`);
  }
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  // Whatever happens to the test, the proxy does not outlive it.
  const killOnExit = (): void => {
    child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      process.off('exit', killOnExit);
      resolve();
    }),
  );
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));

  const deadline = Date.now() + 5_000;
  for (;;) {
    const failure = await Promise.race([
      spawnError,
      exited.then(() => new Error(`tinyproxy exited: ${stderr}`)),
      sleep(50).then(() => undefined),
    ]);
    if (failure) throw new Error(`cannot start tinyproxy (apt-get install -y tinyproxy): ${failure.message}`);
    if (await accepts(port)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`tinyproxy did not listen on 127.0.0.1:${port} within 5 s: ${stderr}`);
    }
  }

  const auth = options.basicAuth ? `${options.basicAuth.user}:${options.basicAuth.password}@` : '';
  return {
    port,
    url: `http://${auth}127.0.0.1:${port}`,
    connects: () => {
      let log = '';
      try {
        log = readFileSync(logFile, 'utf8');
      } catch {
        return [];
      }
      return [...log.matchAll(/Request \(file descriptor \d+\): CONNECT (\S+) HTTP\/1\.[01]/g)].map((m) => m[1]!);
    },
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        // tinyproxy may linger over open tunnels; a test must not.
        const grace = setTimeout(() => child.kill('SIGKILL'), 2_000);
        await exited;
        clearTimeout(grace);
      }
      await exited;
    },
  };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
