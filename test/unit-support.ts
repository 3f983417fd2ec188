/**
 * Helpers of test/support.ts that load nothing of the proxy: the unit tests import them from here, so that a
 * pure test does not pay for loading the whole proxy (the HTTP stack, both providers' libraries).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';
import codemap from '../src/payload/emoji-codemap.json';
import type { DeliveryRecord } from '../src/delivery/dispatcher';

export function tempDir(): string {
  return mkdtempSync(path.join(os.tmpdir(), 'push-proxy-test-'));
}

export function writeTemp(dir: string, name: string, content: string | Buffer): string {
  const file = path.join(dir, name);
  writeFileSync(file, content, { mode: 0o600 });
  return file;
}

/** A logger whose JSON lines the test can read back. */
export function capturedLogger(level: pino.Level = 'debug'): {
  logger: Logger;
  lines: () => Array<Record<string, unknown>>;
  text: () => string;
} {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, callback) {
      chunks.push(chunk.toString());
      callback();
    },
  });
  const logger = pino({ level }, stream);
  return {
    logger,
    text: () => chunks.join(''),
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

/** The emoji code that grows the most when converted, per byte sent: the worst case for a payload's size. */
export function mostGrowingEmojiCode(): string {
  let best = '';
  let ratio = 0;
  for (const [code, value] of Object.entries(codemap as Record<string, string>)) {
    const r = (Buffer.byteLength(value) + 1) / Buffer.byteLength(code);
    if (r > ratio) [best, ratio] = [code, r];
  }
  return best;
}

/** An answered notification as the inspector records it: OK to an APNs device, `fields` on top. */
export function deliveryRecord(serverId: string, fields: Partial<DeliveryRecord> = {}): DeliveryRecord {
  return {
    at: new Date(),
    serverId,
    platform: 'apple_rn-v2',
    pushType: 'message',
    transport: '',
    outcome: 'OK',
    attempts: 1,
    ms: 5,
    device: 'abcdefgh…',
    ...fields,
  };
}
