/** Logs: console and file, plain and JSON, and what must never be written whole. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawnSync } from 'node:child_process';
import fc from 'fast-check';
import pino from 'pino';
import {
  censorLogObject,
  createLogger,
  IsoTimeFormat,
  LocalTimeFormat,
  logFlat,
  parsedPlainLine,
  plainLine,
  redactToken,
  type LogSettings,
} from '../src/logging';
import { tempDir } from './unit-support';

const TOKEN = 'f0'.repeat(32);

function settings(fields: Partial<LogSettings>): LogSettings {
  return { EnableConsoleLog: true, EnableFileLog: false, LogFileLocation: '', LogFormat: 'json', LogLevel: 'info', ...fields };
}

function consoleCapture(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
  return { stream, text: () => text };
}

describe('logging', () => {
  it('redactToken keeps only a prefix', () => {
    assert.equal(redactToken(TOKEN), 'f0f0f0f0…');
    assert.equal(redactToken('short'), '…');
  });

  it('JSON lines; tokens, message text and signatures are censored even when passed by mistake', async () => {
    const out = consoleCapture();
    const logger = createLogger(settings({}), out.stream);
    logger.info({ device_id: TOKEN, message: 'secret words', signature: 'jwt', nested: { token: TOKEN } }, 'hello');
    await sleep(50);
    const line = JSON.parse(out.text().trim()) as Record<string, unknown>;
    assert.equal(line.msg, 'hello');
    assert.equal(line.device_id, 'f0f0f0f0…');
    assert.equal(line.message, '[redacted]');
    assert.equal(line.signature, '[redacted]');
    assert.deepEqual(line.nested, { token: 'f0f0f0f0…' });
  });

  it('plain format is one readable line per entry', async () => {
    const out = consoleCapture();
    createLogger(settings({ LogFormat: 'plain' }), out.stream).warn({ platform: 'apple_rn' }, 'entry skipped');
    await sleep(50);
    assert.match(out.text(), /^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\] WARN: entry skipped \{"platform":"apple_rn"\}\n$/);
  });

  it('the level filters', async () => {
    const out = consoleCapture();
    const logger = createLogger(settings({ LogLevel: 'warn' }), out.stream);
    logger.info('quiet');
    logger.error('loud');
    await sleep(50);
    assert.doesNotMatch(out.text(), /quiet/);
    assert.match(out.text(), /loud/);
  });

  it('file logging writes to LogFileLocation, creating its folder; console stays off unless asked', async () => {
    const file = path.join(tempDir(), 'deep', 'push_proxy.log');
    const out = consoleCapture();
    const logger = createLogger(settings({ EnableConsoleLog: false, EnableFileLog: true, LogFileLocation: file }), out.stream);
    logger.info('to the file');
    logger.flush();
    await sleep(200);
    assert.match(readFileSync(file, 'utf8'), /"msg":"to the file"/);
    assert.equal(out.text(), '');
  });

  it('both switches off means console on, as the original', async () => {
    const out = consoleCapture();
    createLogger(settings({ EnableConsoleLog: false, EnableFileLog: false }), out.stream).info('still here');
    await sleep(50);
    assert.match(out.text(), /still here/);
  });
});

describe('the plain format', () => {
  const clock = () => new LocalTimeFormat();

  it('level, local time to the millisecond, message, the other fields as compact JSON', () => {
    const at = new Date(2026, 11, 6, 9, 5, 7, 42).getTime();
    const json = JSON.stringify({ level: 30, time: at, platform: 'apple_rn', ms: 3, msg: 'push delivered' });
    assert.equal(plainLine(json, clock()), '[2026-12-06 09:05:07.042] INFO: push delivered {"platform":"apple_rn","ms":3}\n');
    assert.equal(plainLine(JSON.stringify({ level: 50, time: at, msg: 'alone' }), clock()), '[2026-12-06 09:05:07.042] ERROR: alone\n');
  });

  it("an error's stack follows on indented lines; the error's message stays in the fields", () => {
    const json = JSON.stringify({
      level: 40,
      time: 0,
      err: { type: 'Error', message: 'boom', stack: 'Error: boom\n    at x' },
      msg: 'failed',
    });
    const line = plainLine(json, clock());
    assert.match(line, /WARN: failed \{"err":\{"type":"Error","message":"boom"\}\}\n {4}Error: boom\n {8}at x\n$/);
  });

  it('what is not JSON passes as it is', () => {
    assert.equal(plainLine('not json\n', clock()), 'not json\n');
  });

  it('the time is what Date says, whatever the millisecond (also across seconds, with the cache)', () => {
    const format = clock();
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 4_102_444_800_000 }), (ms) => {
        const d = new Date(ms);
        const two = (n: number) => String(n).padStart(2, '0');
        const expected = `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, '0')}`;
        assert.equal(format.format(ms), expected);
        assert.equal(format.format(ms), expected, 'from the cache');
      }),
    );
  });
});

describe('the JSON time', () => {
  it('is what toISOString says, whatever the millisecond (also across seconds, with the cache)', () => {
    const format = new IsoTimeFormat();
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 4_102_444_800_000 }), (ms) => {
        assert.equal(format.format(ms), new Date(ms).toISOString());
        assert.equal(format.format(ms), new Date(ms).toISOString(), 'from the cache');
      }),
    );
  });
});

describe('censorLogObject', () => {
  it('leaves an object with nothing to censor as it is (no copy)', () => {
    const fields = { platform: 'apple_rn', device: 'f0f0f0f0…', attempts: 1, nested: { a: 1 }, list: [1] };
    assert.equal(censorLogObject(fields), fields);
  });

  it('shortens tokens and replaces secrets at the top level and one level down, without touching the original', () => {
    const fields = {
      device_id: TOKEN,
      key: 'k',
      req: { headers: { authorization: 'Basic x' } },
      notification: { message: 'hi', token: TOKEN },
    };
    const censored = censorLogObject(fields);
    assert.deepEqual(censored, {
      device_id: 'f0f0f0f0…',
      key: '[redacted]',
      req: { headers: { authorization: '[redacted]' } },
      notification: { message: '[redacted]', token: 'f0f0f0f0…' },
    });
    assert.equal(fields.device_id, TOKEN, 'the caller keeps its object');
  });

  it("an error's message is left for the operator", () => {
    const err = new Error('connect ECONNREFUSED');
    assert.equal(censorLogObject({ err }).err, err);
  });

  it('no token survives whole, wherever it is put at the top two levels', () => {
    const secretKey = fc.constantFrom('device_id', 'token', 'message', 'signature', 'password', 'key', 'authorization');
    fc.assert(
      fc.property(
        fc.dictionary(fc.string(), fc.oneof(fc.string(), fc.integer())),
        secretKey,
        fc.boolean(),
        fc.string(),
        (other, key, nested, where) => {
          const token = `${TOKEN}${where}`;
          const fields = nested ? { ...other, [where || 'x']: { [key]: token } } : { ...other, [key]: token };
          assert.ok(!JSON.stringify(censorLogObject(fields)).includes(TOKEN), JSON.stringify(fields));
        },
      ),
    );
  });
});

describe('nothing logged is lost', () => {
  const script = (ending: string) => `
    const { createLogging, flushLogsOnExit } = require(${JSON.stringify(path.join(__dirname, '..', 'src', 'logging.js'))});
    const logging = createLogging({ EnableConsoleLog: true, EnableFileLog: false, LogFileLocation: '', LogFormat: 'plain', LogLevel: 'info' });
    flushLogsOnExit(logging);
    for (let i = 0; i < 20000; i++) logging.logger.info({ i }, 'line');
    ${ending}
  `;
  const run = (ending: string) => spawnSync(process.execPath, ['-e', script(ending)], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });

  it('on process.exit, every buffered line is written', () => {
    const result = run('process.exit(3);');
    assert.equal(result.status, 3);
    assert.equal(result.stdout.split('\n').filter((l) => l.includes('INFO: line')).length, 20000);
  });

  it('on a crash, every buffered line and the crash itself are written', () => {
    const result = run("setImmediate(() => { throw new Error('a bug'); });");
    assert.equal(result.status, 1);
    const lines = result.stdout.split('\n');
    assert.equal(lines.filter((l) => l.includes('INFO: line')).length, 20000);
    assert.ok(
      lines.some((l) => /FATAL: the proxy crashed.*a bug/.test(l)),
      result.stdout.slice(-500),
    );
    assert.match(result.stderr, /Error: a bug/);
  });
});

describe('the plain format without parsing', () => {
  it('gives what parsing gives, for any fields and message pino writes', () => {
    let written = '';
    const logger = pino(
      { base: undefined, timestamp: pino.stdTimeFunctions.epochTime, formatters: { log: censorLogObject } },
      {
        write: (line: string) => (written = line),
      },
    );
    const value = fc.oneof(fc.string(), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean(), fc.constant(null));
    const fields = fc.dictionary(
      fc.string().filter((k) => !['level', 'time', 'msg', 'err', '__proto__'].includes(k)),
      fc.oneof(
        value,
        fc.dictionary(
          fc.string().filter((k) => k !== '__proto__'),
          value,
        ),
        fc.array(value),
      ),
    );
    fc.assert(
      fc.property(fields, fc.option(fc.string(), { nil: undefined }), fc.integer({ min: 0, max: 4_102_444_800_000 }), (object, msg, at) => {
        const line = (() => {
          if (msg === undefined) logger.info(object);
          else logger.info(object, msg);
          return written.replace(/"time":\d+/, `"time":${at}`);
        })();
        assert.equal(plainLine(line, new LocalTimeFormat()), parsedPlainLine(line, new LocalTimeFormat()), line);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('the line of every notification (logFlat)', () => {
  it('is the line pino writes for the same fields, in JSON and plain, from a logger and its child', () => {
    const key = fc.constantFrom('platform', 'server_id', 'device', 'device_id', 'token', 'message', 'signature', 'password', 'ms', 'a_1');
    // Any UTF-16 unit but lone surrogates, which pino writes raw on Node 20 (the output then has U+FFFD) and logFlat
    // escapes (`\ud800`), as pino itself does from Node 25 on: both lines read back the same.
    const unit = fc.oneof(fc.integer({ min: 0, max: 0xd7ff }), fc.integer({ min: 0xe000, max: 0xffff })).map((c) => String.fromCharCode(c));
    const text = fc.string({ unit });
    const value = fc.oneof(text, fc.string({ unit: 'binary-ascii' }), fc.integer(), fc.double(), fc.constant(undefined));
    const normalized = (line: string) => line.replace(/"time":"[^"]+"/, '"time":"T"').replace(/^\[[^\]]+\]/, '[T]');
    for (const format of ['json', 'plain'] as const) {
      let written = '';
      const capture = { write: (line: string) => (written = line) } as unknown as NodeJS.WritableStream;
      const root = createLogger(settings({ LogFormat: format }), capture);
      const loggers = [root, root.child({ worker: 2 })];
      fc.assert(
        fc.property(
          fc.dictionary(key, value),
          text,
          fc.constantFrom(0, 1),
          fc.constantFrom('info', 'warn') as fc.Arbitrary<'info' | 'warn'>,
          (fields, msg, which, level) => {
            const logger = loggers[which]!;
            logger[level](fields, msg);
            const viaPino = normalized(written);
            written = '';
            logFlat(logger, level, fields, msg);
            assert.equal(normalized(written), viaPino);
          },
        ),
        { numRuns: 1000 },
      );
    }
  });

  it('a logger made elsewhere (a test pino) logs through pino', () => {
    let written = '';
    const logger = pino({ base: undefined }, { write: (line: string) => (written = line) });
    logFlat(logger, 'warn', { platform: 'apple', device_id: TOKEN }, 'push failed');
    const line = JSON.parse(written) as Record<string, unknown>;
    assert.equal(line.level, 40);
    assert.equal(line.platform, 'apple');
    assert.equal(line.device_id, TOKEN, 'a test logger has no censor: the line is pino as given');
    assert.equal(line.msg, 'push failed');
  });
});
