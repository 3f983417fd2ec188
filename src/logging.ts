/**
 * Logs with pino: console and/or file, plain or JSON. Device tokens and secrets never appear whole,
 * message content never at info level: callers log `redactToken(token)`, and redaction catches slips.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import pino, { type DestinationStream, type Logger } from 'pino';
import pretty from 'pino-pretty';
import type { ProxyConfig } from './config/types';

export const DEFAULT_LOG_FILE = './logs/push_proxy.log';

/** Enough of a token to find it again in the chat server's records, not enough to push to it. */
export function redactToken(token: string): string {
  return token.length <= 12 ? '…' : `${token.slice(0, 8)}…`;
}

const REDACTED_PATHS = [
  'device_id',
  '*.device_id',
  'token',
  '*.token',
  'message',
  '*.message',
  'signature',
  '*.signature',
  'req.headers.authorization',
  'headers.authorization',
  'password',
  '*.password',
  'key',
  '*.key',
];

export type LogSettings = Pick<ProxyConfig, 'EnableConsoleLog' | 'EnableFileLog' | 'LogFileLocation' | 'LogFormat' | 'LogLevel'>;

export function createLogger(settings: LogSettings, consoleStream: NodeJS.WritableStream = process.stdout): Logger {
  return createLogging(settings, consoleStream).logger;
}

export interface Logging {
  logger: Logger;
  /**
   * Opens the log file again under its configured name (after logrotate moved it away), so lines go to a
   * new file instead of the moved one. Returns the file reopened, or undefined when there is no log file.
   */
  reopenFile(): string | undefined;
}

export function createLogging(settings: LogSettings, consoleStream: NodeJS.WritableStream = process.stdout): Logging {
  const streams: pino.StreamEntry[] = [];
  let fileDestination: { file: string; stream: ReturnType<typeof pino.destination> } | undefined;
  const plain = settings.LogFormat !== 'json';
  // Both off means console on, as the original.
  if (settings.EnableConsoleLog || !settings.EnableFileLog) {
    streams.push({
      level: 'trace',
      stream: plain ? plainStream(consoleStream, Boolean((consoleStream as { isTTY?: boolean }).isTTY)) : consoleStream,
    });
  }
  if (settings.EnableFileLog) {
    const file = settings.LogFileLocation || DEFAULT_LOG_FILE;
    mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    const destination = pino.destination({ dest: file, sync: false, mkdir: true });
    fileDestination = { file, stream: destination };
    // A log file that cannot be written (disk full, a directory gone at reopen) must not stop the service.
    destination.on('error', (err: Error) => process.stderr.write(`push-proxy: log file ${file}: ${err.message}\n`));
    streams.push({ level: 'trace', stream: plain ? plainStream(destination, false) : destination });
  }
  const logger = pino(
    {
      level: settings.LogLevel,
      base: undefined,
      redact: { paths: REDACTED_PATHS, censor: censorValue },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    pino.multistream(streams),
  );
  return {
    logger,
    reopenFile() {
      if (!fileDestination) return undefined;
      fileDestination.stream.reopen();
      return fileDestination.file;
    },
  };
}

function plainStream(destination: NodeJS.WritableStream | DestinationStream, colorize: boolean): DestinationStream {
  return pretty({
    destination: destination as NodeJS.WritableStream,
    colorize,
    sync: true,
    singleLine: true,
    translateTime: 'SYS:yyyy-mm-dd HH:MM:ss.l',
    ignore: 'pid,hostname',
  });
}

function censorValue(value: unknown, keyPath: string[]): string {
  const key = keyPath[keyPath.length - 1];
  if ((key === 'device_id' || key === 'token') && typeof value === 'string') return redactToken(value);
  return '[redacted]';
}
