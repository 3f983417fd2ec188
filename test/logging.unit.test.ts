/** Logs: console and file, plain and JSON, and what must never be written whole. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLogger, redactToken, type LogSettings } from '../src/logging';
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
