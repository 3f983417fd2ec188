/**
 * Logs with pino: console and/or file, plain or JSON. Device tokens and secrets never appear whole,
 * message content never at info level: callers log `redactToken(token)`, and a censor catches slips.
 *
 * One line per notification is the default (`info`), so a line must cost little (docs/performance.md, Logging):
 * - writes are asynchronous and batched (sonic-boom: while one write is under way the next lines gather, so a busy
 *   proxy makes one write call per batch, an idle one writes each line at once); `flushSync` empties the buffer,
 *   and the caller runs it on exit and on a crash;
 * - the censor looks at the keys of the logged object and of the objects directly in it, once, instead of pino's
 *   path-based redaction, which copies and scans every line;
 * - the plain format is written here rather than by pino-pretty, whose general formatting cost as much as the
 *   rest of a notification;
 * - the line of every notification (`logFlat`) goes straight to the outputs, each writing its own format, instead
 *   of through pino's general serializer and the plain format's reading of pino's JSON.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import pino, { type DestinationStream, type Logger } from 'pino';
import type { ProxyConfig } from './config/types';

export const DEFAULT_LOG_FILE = './logs/push_proxy.log';

/** Enough of a token to find it again in the chat server's records, not enough to push to it. */
export function redactToken(token: string): string {
  return token.length <= 12 ? '…' : `${token.slice(0, 8)}…`;
}

/** Keys whose string value is a device token: shortened. */
const TOKEN_KEYS = new Set(['device_id', 'token']);
/** Keys whose value is message content or a secret: replaced. */
const SECRET_KEYS = new Set(['message', 'signature', 'password', 'key', 'authorization']);
const CENSORED = '[redacted]';

/**
 * The logged object with tokens shortened and secrets replaced, at its top level and one level down (`headers`,
 * a notification logged by mistake): the same object when nothing needed it, a copy otherwise. Errors are left
 * whole: their message is the operator's clue, and pino serializes them itself.
 */
export function censorLogObject(object: Record<string, unknown>): Record<string, unknown> {
  return censorKeys(object, true);
}

/**
 * `object` with its keys' values censored, or itself when none needed it. `deeper`: also the plain objects
 * directly in it (at the top level); one level down only `headers` is looked into (`req.headers.authorization`
 * is the deepest the proxy logs).
 */
function censorKeys(object: Record<string, unknown>, deeper: boolean): Record<string, unknown> {
  let copy: Record<string, unknown> | undefined;
  for (const key in object) {
    const value = object[key];
    let censored: unknown = value;
    if (TOKEN_KEYS.has(key)) censored = typeof value === 'string' ? redactToken(value) : CENSORED;
    else if (SECRET_KEYS.has(key)) censored = CENSORED;
    else if (
      (deeper || key === 'headers') &&
      value !== null &&
      typeof value === 'object' &&
      !(value instanceof Error) &&
      !Array.isArray(value)
    ) {
      censored = censorKeys(value as Record<string, unknown>, false);
    }
    if (censored !== value) {
      copy ??= { ...object };
      copy[key] = censored;
    }
  }
  return copy ?? object;
}

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
  /** Writes out every line still buffered, synchronously: on exit and on a crash, so nothing logged is lost. */
  flushSync(): void;
}

/**
 * Where lines go: pino writes each as a JSON string; `logFlat` hands over the parts of one (`props`: the fields as
 * `,"key":value…`), which each output puts in its own format. `flushSync` empties what is buffered.
 */
interface Output extends DestinationStream {
  writeEntry(level: number, time: number, props: string, msg: string): void;
  flushSync(): void;
}

/** What pino's `logger.flush()` calls: the buffer is written out before it returns. */
function flushable(output: Output): Output & { flush(done: () => void): void } {
  return {
    write: (line: string) => output.write(line),
    writeEntry: (level, time, props, msg) => output.writeEntry(level, time, props, msg),
    flushSync: () => output.flushSync(),
    flush(done) {
      output.flushSync();
      done();
    },
  };
}

/** The line pino writes in the JSON format (ISO time, no base fields). */
function jsonLine(level: number, time: string, props: string, msg: string): string {
  return `{"level":${level},"time":"${time}"${props},"msg":${JSON.stringify(msg)}}\n`;
}

/** Outputs created by createLogging's loggers (and their children), for `logFlat`. */
const ENTRY_OUTPUT = Symbol('push-proxy log output');
const LEVEL_NUMBERS = { info: 30, warn: 40 } as const;

/** A line's fields for `logFlat`: plain names (letters, digits, underscores), each a string or a number; undefined ones are left out. */
export type FlatFields = Record<string, string | number | undefined>;

/**
 * `logger[level](fields, msg)` for fields that are strings and numbers, at less cost: the line is the one pino writes
 * (a property test holds the two equal), made without pino's general serializer and, in the plain format, without
 * reading pino's JSON again. The censor applies to the field names as on any line. The caller has checked that the
 * level is enabled. A logger not made by createLogging (a test's) logs through pino.
 */
export function logFlat(logger: Logger, level: keyof typeof LEVEL_NUMBERS, fields: FlatFields, msg: string): void {
  const internals = logger as unknown as Record<symbol, unknown>;
  const output = internals[ENTRY_OUTPUT] as Output | undefined;
  if (output === undefined) return void logger[level](fields, msg);
  let props = internals[pino.symbols.chindingsSym] as string;
  for (const key in fields) {
    const value = fields[key];
    let text: string;
    // As censorLogObject: a token or secret field is censored whatever it holds, even nothing.
    if (TOKEN_KEYS.has(key)) text = JSON.stringify(typeof value === 'string' ? redactToken(value) : CENSORED);
    else if (SECRET_KEYS.has(key)) text = `"${CENSORED}"`;
    else if (value === undefined) continue;
    else if (typeof value === 'string') text = JSON.stringify(value);
    else text = Number.isFinite(value) ? String(value) : 'null';
    props += `,"${key}":${text}`;
  }
  output.writeEntry(LEVEL_NUMBERS[level], Date.now(), props, msg);
}

export function createLogging(settings: LogSettings, consoleStream: NodeJS.WritableStream = process.stdout): Logging {
  const outputs: Output[] = [];
  let fileDestination: { file: string; stream: ReturnType<typeof pino.destination> } | undefined;
  const plain = settings.LogFormat !== 'json';
  // Both off means console on, as the original.
  if (settings.EnableConsoleLog || !settings.EnableFileLog) {
    // The process's own stdout is written by file descriptor, batched; another stream (a test's) as given.
    const console: Output =
      consoleStream === process.stdout
        ? sonicOutput(pino.destination({ dest: 1, sync: false, contentMode: 'buffer' }))
        : jsonOutput({ write: (line: string) => consoleStream.write(line), flushSync: () => {} });
    outputs.push(plain ? plainOutput(console, Boolean((consoleStream as { isTTY?: boolean }).isTTY)) : console);
  }
  if (settings.EnableFileLog) {
    const file = settings.LogFileLocation || DEFAULT_LOG_FILE;
    mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    const destination = pino.destination({ dest: file, sync: false, mkdir: true, contentMode: 'buffer' });
    fileDestination = { file, stream: destination };
    // A log file that cannot be written (disk full, a directory gone at reopen) must not stop the service.
    destination.on('error', (err: Error) => process.stderr.write(`push-proxy: log file ${file}: ${err.message}\n`));
    const output = sonicOutput(destination);
    outputs.push(plain ? plainOutput(output, false) : output);
  }
  const destination = flushable(outputs.length === 1 ? outputs[0]! : fanOut(outputs));
  const logger = pino(
    {
      level: settings.LogLevel,
      base: undefined,
      formatters: { log: censorLogObject },
      // The plain format shows local time, made from the number at less cost than from an ISO string.
      timestamp: plain ? pino.stdTimeFunctions.epochTime : pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
  Object.defineProperty(logger, ENTRY_OUTPUT, { value: destination });
  return {
    logger,
    reopenFile() {
      if (!fileDestination) return undefined;
      fileDestination.stream.reopen();
      return fileDestination.file;
    },
    flushSync: () => destination.flushSync(),
  };
}

/**
 * Lines are written asynchronously in batches: whatever is still buffered is written out when the process exits,
 * and when it crashes (after logging the crash, which Node then reports on stderr as always). For the process's
 * own logging, once: the handlers are the process's.
 */
export function flushLogsOnExit(logging: Logging, proc: NodeJS.Process = process): void {
  proc.on('exit', () => logging.flushSync());
  proc.on('uncaughtExceptionMonitor', (err, origin) => {
    logging.logger.fatal({ err, origin }, 'the proxy crashed: a bug; the error follows on stderr');
    logging.flushSync();
  });
}

/**
 * sonic-boom's destination, in its buffer mode: in text mode each write measures the whole batch gathered so far
 * (up to 16 KB) again, which cost more than formatting the line; a Buffer per line costs a copy of it.
 * `flushSync` before it opened (a crash at start-up) has nothing to write.
 */
function sonicOutput(stream: ReturnType<typeof pino.destination>): Output {
  return jsonOutput({
    write: (line: string) => stream.write(Buffer.from(line) as unknown as string),
    flushSync() {
      try {
        stream.flushSync();
      } catch {
        // Not open yet, or the descriptor is gone: nothing more can be written anyway.
      }
    },
  });
}

/** An output of JSON lines as given. */
function jsonOutput(lines: Pick<Output, 'write' | 'flushSync'>): Output {
  const clock = new IsoTimeFormat();
  return {
    write: lines.write,
    writeEntry: (level, time, props, msg) => lines.write(jsonLine(level, clock.format(time), props, msg)),
    flushSync: lines.flushSync,
  };
}

function fanOut(outputs: Output[]): Output {
  return {
    write(line: string) {
      for (const output of outputs) output.write(line);
    },
    writeEntry(level, time, props, msg) {
      for (const output of outputs) output.writeEntry(level, time, props, msg);
    },
    flushSync() {
      for (const output of outputs) output.flushSync();
    },
  };
}

const LEVEL_LABELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

/**
 * pino's JSON line as operators read it: `[2026-12-06 11:04:10.270] INFO: push delivered {"platform":"apple_rn",…}`,
 * local time, the other fields as compact JSON, an error's stack on the lines after.
 */
export function plainLine(json: string, clock: LocalTimeFormat = new LocalTimeFormat()): string {
  return slicedPlainLine(json, clock) ?? parsedPlainLine(json, clock);
}

/**
 * The common line without parsing it: pino writes `{"level":N,"time":N,` first and `"msg":"…"` last, so the fields
 * are the text between, already compact JSON. Undefined for anything else (an error with its stack, no message, a
 * nested `msg` last), which `parsedPlainLine` formats. Written by hand: parsing and serializing the line again
 * cost as much as pino's own work.
 */
function slicedPlainLine(json: string, clock: LocalTimeFormat): string | undefined {
  if (!json.startsWith('{"level":') || json.includes('"stack":')) return undefined;
  let i = 9;
  let level = 0;
  for (let c = json.charCodeAt(i); c >= 48 && c <= 57; c = json.charCodeAt(++i)) level = level * 10 + (c - 48);
  if (!json.startsWith(',"time":', i)) return undefined;
  i += 8;
  let time = 0;
  const timeStart = i;
  for (let c = json.charCodeAt(i); c >= 48 && c <= 57; c = json.charCodeAt(++i)) time = time * 10 + (c - 48);
  if (i === timeStart) return undefined;
  let end = json.length;
  while (end > i && json.charCodeAt(end - 1) === 10) end--;
  if (json.charCodeAt(end - 1) !== 125) return undefined;
  // `,"a":1,…,"msg":"text"` or `,"msg":"text"`
  const body = json.slice(i, end - 1);
  const msgAt = body.lastIndexOf(',"msg":"');
  if (msgAt === -1 || body.charCodeAt(body.length - 1) !== 34) return undefined;
  let msg: unknown;
  try {
    msg = JSON.parse(body.slice(msgAt + 7));
  } catch {
    return undefined;
  }
  return plainText(level, clock.format(time), String(msg), msgAt > 0 ? body.slice(0, msgAt) : '');
}

/** `[time] LEVEL: msg {fields}`; `props`: the fields as `,"key":value…` (empty for none). */
function plainText(level: number, time: string, msg: string, props: string): string {
  const label = LEVEL_LABELS[level] ?? String(level);
  return `[${time}] ${label}:${msg === '' ? '' : ` ${msg}`}${props === '' ? '' : ` {${props.slice(1)}}`}\n`;
}

/** Any line pino writes, parsed; what is not JSON passes as it is. */
export function parsedPlainLine(json: string, clock: LocalTimeFormat = new LocalTimeFormat()): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const { level, time, msg, err, ...rest } = entry;
  const label = LEVEL_LABELS[level as number] ?? String(level);
  const fields = err !== undefined && err !== null && typeof err === 'object' ? { ...rest, err: withoutStack(err) } : rest;
  const text = msg === undefined ? '' : String(msg);
  let line = `[${typeof time === 'number' ? clock.format(time) : String(time)}] ${label}:${text === '' ? '' : ` ${text}`}`;
  if (hasKeys(fields)) line += ` ${JSON.stringify(fields)}`;
  const stack = err !== null && typeof err === 'object' ? (err as { stack?: unknown }).stack : undefined;
  if (typeof stack === 'string') line += `\n    ${stack.replace(/\n/g, '\n    ')}`;
  return `${line}\n`;
}

function hasKeys(object: object): boolean {
  for (const _key in object) return true;
  return false;
}

function withoutStack(err: object): Record<string, unknown> {
  const { stack: _stack, ...rest } = err as Record<string, unknown>;
  return rest;
}

/** A time to the millisecond whose part down to the second (`prefixOf`) is made once per second. */
class PerSecondTimeFormat {
  private second = -1;
  private prefix = '';

  constructor(
    private readonly prefixOf: (second: Date) => string,
    private readonly suffix: string,
  ) {}

  format(ms: number): string {
    const second = Math.floor(ms / 1000);
    if (second !== this.second) {
      this.second = second;
      this.prefix = this.prefixOf(new Date(second * 1000));
    }
    const millis = ms - second * 1000;
    return this.prefix + (millis < 10 ? `00${millis}` : millis < 100 ? `0${millis}` : String(millis)) + this.suffix;
  }
}

/** Local time as `yyyy-mm-dd HH:MM:ss.mmm`. */
export class LocalTimeFormat extends PerSecondTimeFormat {
  constructor() {
    super(
      (d) =>
        `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.`,
      '',
    );
  }
}

/** `Date.prototype.toISOString` (made anew for every line, it cost a fifth of a JSON line). */
export class IsoTimeFormat extends PerSecondTimeFormat {
  constructor() {
    super((d) => d.toISOString().slice(0, 20), 'Z');
  }
}

function pad(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/** Plain lines to `output`; on a terminal the level is coloured. */
function plainOutput(output: Output, colorize: boolean): Output {
  const clock = new LocalTimeFormat();
  return {
    write: (json: string) => output.write(colorize ? colourLevel(plainLine(json, clock)) : plainLine(json, clock)),
    writeEntry(level, time, props, msg) {
      const line = plainText(level, clock.format(time), msg, props);
      output.write(colorize ? colourLevel(line) : line);
    },
    flushSync: () => output.flushSync(),
  };
}

const LEVEL_COLOURS: Record<string, string> = { WARN: '\x1b[33m', ERROR: '\x1b[31m', FATAL: '\x1b[41m', INFO: '\x1b[32m' };

function colourLevel(line: string): string {
  const start = line.indexOf('] ') + 2;
  const end = line.indexOf(':', start);
  const colour = LEVEL_COLOURS[line.slice(start, end)];
  return colour ? `${line.slice(0, start)}${colour}${line.slice(start, end)}\x1b[39m${line.slice(end)}` : line;
}
