/**
 * Byte budgets of the payload builders: the cut on its own, the JSON byte count, and a property test that throws
 * random Unicode, emoji codes, control characters, quotes and long values at both builders for every push type.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { emptyPushNotification, type PushNotification } from '../src/notification';
import { buildApnsRequest } from '../src/platforms/apns/payload';
import { emojize } from '../src/payload/emoji';
import { buildFcmMessage } from '../src/platforms/fcm/payload';
import {
  APNS_PAYLOAD_LIMIT_BYTES,
  APNS_VOIP_PAYLOAD_LIMIT_BYTES,
  cutToJsonBytes,
  FCM_DATA_LIMIT_BYTES,
  FREE_TEXT_CAP_BYTES,
  fitsWithoutMeasuring,
  jsonStringBytes,
  PayloadTooLargeError,
  upperBoundBytes,
} from '../src/payload/fit';
import { truncateNotification } from '../src/payload/truncate';
import { mostGrowingEmojiCode } from './unit-support';

const TARGET = { topic: 'com.mattermost.react.native', appVersion: 2 };
const TOKEN = 'ab'.repeat(32);
const FAMILY = '👨\u200d👩\u200d👧';
const FLAG_US = '🇺🇸';
const HEART = '\u2764\uFE0F';

/** Bytes of a JSON string as JSON.stringify writes it, quotes excluded. */
const encoded = (text: string): number => Buffer.byteLength(JSON.stringify(text)) - 2;

describe('jsonStringBytes', () => {
  it('counts what JSON.stringify writes: escapes, multi-byte characters, pairs and lone surrogates', () => {
    for (const text of [
      '',
      'abc',
      '"\\',
      '\n\t\b\f\r',
      '\u0000\u0001\u001f',
      'é€😀',
      '\ud800',
      '\udc00x',
      '\ud83d\ude00\ud83d',
      '\u2028/<>&',
    ]) {
      assert.equal(jsonStringBytes(text), encoded(text), JSON.stringify(text));
    }
  });

  it('agrees with JSON.stringify on random strings, lone surrogates included', () => {
    fc.assert(
      fc.property(fc.string({ unit: anyUnit() }), (text) => jsonStringBytes(text) === encoded(text)),
      { numRuns: 500 },
    );
  });
});

describe('cutToJsonBytes', () => {
  it('returns the text itself when it fits, exactly at the limit too', () => {
    const text = 'a"b\u0001';
    assert.equal(cutToJsonBytes(text, 100), text);
    assert.equal(cutToJsonBytes(text, encoded(text)), text);
    assert.equal(cutToJsonBytes('', 0), '');
  });

  it('counts the escaped size: a control character is 6 bytes, a quote 2', () => {
    assert.equal(cutToJsonBytes('\u0001\u0001\u0001', 12), '\u0001\u0001');
    assert.equal(cutToJsonBytes('\u0001\u0001\u0001', 11), '\u0001');
    assert.equal(cutToJsonBytes('"""', 5), '""');
    assert.equal(cutToJsonBytes('abc', 0), '');
  });

  it('never splits a surrogate pair; a lone surrogate counts 6 bytes', () => {
    assert.equal(cutToJsonBytes('a😀b', 4), 'a');
    assert.equal(cutToJsonBytes('a😀b', 5), 'a😀');
    assert.equal(cutToJsonBytes('a\ud800b', 6), 'a');
    assert.equal(cutToJsonBytes('a\ud800b', 7), 'a\ud800');
  });

  it('keeps an emoji sequence, a flag and a letter with its combining mark whole', () => {
    assert.equal(cutToJsonBytes(`hi ${FAMILY} there`, 3 + 8), 'hi ');
    assert.equal(cutToJsonBytes(`x${FLAG_US}${FLAG_US}`, 1 + 8 + 4), `x${FLAG_US}`);
    assert.equal(cutToJsonBytes(`I ${HEART} you`, 2 + 3), 'I ');
    assert.equal(cutToJsonBytes('cafe\u0301!', 5), 'caf');
  });

  it('a single grapheme larger than the budget is cut between code points rather than dropping everything', () => {
    const zalgo = 'a' + '\u0301'.repeat(100);
    assert.equal(cutToJsonBytes(zalgo, 5), 'a\u0301\u0301');
  });

  it('property: a prefix of the text, within the budget, never ending inside a surrogate pair', () => {
    fc.assert(
      fc.property(fc.string({ unit: anyUnit(), maxLength: 200 }), fc.nat(1200), (text, max) => {
        const cut = cutToJsonBytes(text, max);
        assert.ok(text.startsWith(cut));
        assert.ok(encoded(cut) <= max || cut === text);
        if (encoded(text) <= max) assert.equal(cut, text);
        const last = cut.charCodeAt(cut.length - 1);
        const next = text.charCodeAt(cut.length);
        assert.ok(!(last >= 0xd800 && last <= 0xdbff && next >= 0xdc00 && next <= 0xdfff), 'split a surrogate pair');
      }),
      { numRuns: 1000 },
    );
  });
});

// ---- the builders ----

function push(fields: Partial<PushNotification>): PushNotification {
  return { ...emptyPushNotification(), server_id: 'srv1', device_id: TOKEN, ...fields };
}

const apnsBytes = (n: PushNotification): number => Buffer.byteLength(JSON.stringify(buildApnsRequest(n, TARGET).payload));
const fcmBytes = (n: PushNotification): number => Buffer.byteLength(JSON.stringify(buildFcmMessage(n).data));

describe('builders within the limits', () => {
  it('an ordinary message is sent whole, a long one is cut to fit exactly up to the limit', () => {
    const ordinary = push({ type: 'message', version: 'v2', message: 'hello :smile:', channel_name: 'Town Square', sender_name: 'alice' });
    assert.deepEqual(buildApnsRequest(ordinary, TARGET).payload.aps, {
      alert: { body: 'hello 😄 ', title: 'Town Square' },
      badge: 0,
      'content-available': 1,
      'mutable-content': 1,
      sound: 'default',
    });
    assert.equal(buildFcmMessage(ordinary).data.message, 'hello 😄 ');

    const escaped = push({ type: 'message', message: '\u0001'.repeat(2046) });
    const size = apnsBytes(escaped);
    assert.ok(size <= APNS_PAYLOAD_LIMIT_BYTES && size > APNS_PAYLOAD_LIMIT_BYTES - 6, `APNs ${size}`);
    const fcmSize = fcmBytes(escaped);
    assert.ok(fcmSize <= FCM_DATA_LIMIT_BYTES && fcmSize > FCM_DATA_LIMIT_BYTES - 6, `FCM ${fcmSize}`);
  });

  it('an emoji-dense message of 2046 bytes is cut after conversion, between emoji', () => {
    const code = mostGrowingEmojiCode();
    const raw = truncateNotification(push({ type: 'message', message: code.repeat(2000) })).message;
    const converted = emojize(raw);
    assert.ok(
      Buffer.byteLength(converted) > APNS_PAYLOAD_LIMIT_BYTES,
      'the conversion must outgrow the limit for this test to mean anything',
    );
    const unit = emojize(code);
    const alert = buildApnsRequest(push({ type: 'message', message: raw }), TARGET).payload.aps as { alert: string };
    assert.ok(converted.startsWith(alert.alert));
    assert.equal(alert.alert.length % unit.length, 0, 'cut inside an emoji');
    assert.ok(apnsBytes(push({ type: 'message', message: raw })) <= APNS_PAYLOAD_LIMIT_BYTES);
    const data = buildFcmMessage(push({ type: 'message', message: raw })).data;
    assert.ok(converted.startsWith(data.message!) && data.message!.length % unit.length === 0);
  });

  it('long names are capped before the message is cut; the message keeps the rest', () => {
    const n = push({ type: 'message', message: 'm'.repeat(2046), sender_name: 's'.repeat(5000), override_username: 'o'.repeat(5000) });
    const data = buildFcmMessage(n).data;
    assert.equal(data.sender_name, 's'.repeat(FREE_TEXT_CAP_BYTES));
    assert.equal(data.override_username, 'o'.repeat(FREE_TEXT_CAP_BYTES));
    assert.ok(data.message!.length > 1000);
    assert.ok(fcmBytes(n) <= FCM_DATA_LIMIT_BYTES);
    const root = buildApnsRequest(n, TARGET).payload;
    assert.equal(root.sender_name, 's'.repeat(FREE_TEXT_CAP_BYTES));
    assert.ok(apnsBytes(n) <= APNS_PAYLOAD_LIMIT_BYTES);
  });

  it('a huge device token is not part of the limited payload', () => {
    const n = push({ type: 'message', message: 'hi', device_id: 'ab'.repeat(100_000) });
    assert.equal(buildApnsRequest(n, TARGET).token, n.device_id);
    assert.equal(buildFcmMessage(n).token, n.device_id);
  });

  it('names that fit are left alone, even long ones', () => {
    const n = push({ type: 'message', message: 'short', sender_name: 's'.repeat(1000) });
    assert.equal(buildFcmMessage(n).data.sender_name, 's'.repeat(1000));
    assert.equal(buildApnsRequest(n, TARGET).payload.sender_name, 's'.repeat(1000));
  });

  it('large ids leave the message less room, and the names go last', () => {
    const n = push({
      type: 'message',
      version: 'v2',
      message: 'hello world',
      channel_name: 'c'.repeat(64),
      sender_name: 'alice',
      signature: 'g'.repeat(3800),
    });
    const aps = buildApnsRequest(n, TARGET).payload.aps as { alert: { body?: string; title: string } };
    assert.equal(aps.alert.body, undefined);
    assert.ok(aps.alert.title.length < 64);
    assert.equal(buildApnsRequest(n, TARGET).payload.signature, 'g'.repeat(3800));
    assert.ok(apnsBytes(n) <= APNS_PAYLOAD_LIMIT_BYTES);
  });

  it('VoIP has 5120 bytes: names are capped, then cut to fit, ids never', () => {
    const capped = push({ transport: 'voip', type: 'message', sender_name: '"'.repeat(100_000), channel_name: 'c'.repeat(64) });
    assert.equal(buildApnsRequest(capped, TARGET).payload.sender_name, '"'.repeat(FREE_TEXT_CAP_BYTES / 2));
    const n = { ...capped, post_id: 'p'.repeat(4700) };
    const payload = buildApnsRequest(n, TARGET).payload;
    const size = apnsBytes(n);
    assert.ok(size <= APNS_VOIP_PAYLOAD_LIMIT_BYTES && size > APNS_VOIP_PAYLOAD_LIMIT_BYTES - 2, `VoIP ${size}`);
    assert.equal(payload.post_id, 'p'.repeat(4700));
    assert.equal(payload.channel_name, 'c'.repeat(64));
    assert.ok((payload.sender_name as string).length < FREE_TEXT_CAP_BYTES / 2);
  });

  it('what cannot be shortened and does not fit: PayloadTooLargeError naming the field and the limit', () => {
    const cases: Array<[() => unknown, string, number]> = [
      [() => buildApnsRequest(push({ type: 'message', signature: 'x'.repeat(5000) }), TARGET), 'signature', APNS_PAYLOAD_LIMIT_BYTES],
      [
        () => buildApnsRequest(push({ type: 'message', override_icon_url: 'https://i/' + 'x'.repeat(4100) }), TARGET),
        'override_icon_url',
        APNS_PAYLOAD_LIMIT_BYTES,
      ],
      [() => buildApnsRequest(push({ transport: 'voip', root_id: 'r'.repeat(6000) }), TARGET), 'root_id', APNS_VOIP_PAYLOAD_LIMIT_BYTES],
      [() => buildFcmMessage(push({ type: 'clear', ack_id: '\u0001'.repeat(700) })), 'ack_id', FCM_DATA_LIMIT_BYTES],
      // The device token is not in the payload (APNs: the path; FCM: beside the data): never the one named.
      [
        () => buildApnsRequest(push({ type: 'message', device_id: 'ab'.repeat(100_000), signature: 'x'.repeat(5000) }), TARGET),
        'signature',
        APNS_PAYLOAD_LIMIT_BYTES,
      ],
      [
        () => buildFcmMessage(push({ type: 'message', device_id: 'ab'.repeat(100_000), signature: 'x'.repeat(5000) })),
        'signature',
        FCM_DATA_LIMIT_BYTES,
      ],
      // aps.thread-id repeats the root id of a CRT reply: the field is root_id.
      [
        () => buildApnsRequest(push({ type: 'message', is_crt_enabled: true, channel_id: 'c', root_id: 'r'.repeat(2100) }), TARGET),
        'root_id',
        APNS_PAYLOAD_LIMIT_BYTES,
      ],
    ];
    for (const [build, field, limit] of cases) {
      assert.throws(build, (err: unknown) => {
        assert.ok(err instanceof PayloadTooLargeError);
        assert.equal(err.field, field);
        assert.equal(err.limit, limit);
        assert.ok(err.bytes > limit);
        assert.match(
          err.message,
          new RegExp(
            `would be ${err.bytes} bytes with message and names emptied, over its limit of ${limit}; the largest field that cannot be shortened is ${field} \\(${err.fieldBytes} bytes as sent\\) serverId=srv1$`,
          ),
        );
        return true;
      });
    }
  });

  it('the cheap bound that skips measuring holds for every shape with its strings empty or all set', () => {
    const shapes: Array<Partial<PushNotification>> = [
      { type: 'message', version: 'v2' },
      { type: 'session' },
      { type: 'message', is_id_loaded: true },
      { type: 'clear' },
      { type: '' },
      { transport: 'voip' },
    ];
    for (const fill of ['', 'x', '\u0001']) {
      const strings = Object.fromEntries(STRING_FIELDS.filter((f) => f !== 'type' && f !== 'version').map((f) => [f, fill]));
      for (const shape of shapes) {
        const n = { ...emptyPushNotification(), ...strings, badge: -9223372036854775808, is_crt_enabled: true, ...shape };
        const text = n.transport === 'voip' ? '' : n.is_id_loaded ? n.message : emojize(n.message);
        const sizes = [apnsBytes(n), fcmBytes(n)];
        for (const size of sizes)
          assert.ok(
            size <= upperBoundBytes(n, text),
            `${JSON.stringify(shape)} fill ${JSON.stringify(fill)}: ${size} > ${upperBoundBytes(n, text)}`,
          );
      }
    }
  });

  it('a realistic notification (400-character signature, ids, a message) is not measured; one with a control character is', () => {
    const real = push({
      type: 'message',
      version: 'v2',
      ack_id: 'a'.repeat(26),
      channel_id: 'c'.repeat(26),
      team_id: 't'.repeat(26),
      post_id: 'p'.repeat(26),
      sender_id: 's'.repeat(26),
      server_id: 'v'.repeat(26),
      root_id: 'r'.repeat(26),
      signature: 'g'.repeat(420),
      sender_name: 'Alice Ärger',
      channel_name: 'Town Square',
      category: 'CAN_REPLY',
      message: 'Lunch at noon?\n"Sure" 😀 :smile:'.repeat(10),
    });
    assert.equal(fitsWithoutMeasuring(real, emojize(real.message), APNS_PAYLOAD_LIMIT_BYTES), true);
    const controlled = { ...real, message: real.message + '\u0001' };
    assert.equal(fitsWithoutMeasuring(controlled, emojize(controlled.message), APNS_PAYLOAD_LIMIT_BYTES), false);
    const lone = { ...real, sender_name: 'x\ud800' };
    assert.equal(fitsWithoutMeasuring(lone, emojize(lone.message), APNS_PAYLOAD_LIMIT_BYTES), false);
  });

  it('a field up to the request body limit (1 MiB) is handled', () => {
    const huge = '€'.repeat(349_000);
    for (const field of ['message', 'sender_name', 'override_username', 'channel_name'] as const) {
      const n = truncateNotification(push({ type: 'message', version: 'v2', [field]: huge }));
      assert.ok(apnsBytes(n) <= APNS_PAYLOAD_LIMIT_BYTES);
      assert.ok(fcmBytes(n) <= FCM_DATA_LIMIT_BYTES);
      assert.ok(apnsBytes({ ...n, transport: 'voip' }) <= APNS_VOIP_PAYLOAD_LIMIT_BYTES);
    }
  });
});

// ---- property: every push type, both builders, VoIP ----

/** One UTF-16 unit or short sequence of the kinds that stress the byte count. */
function anyUnit(): fc.Arbitrary<string> {
  const code = (min: number, max: number) => fc.integer({ min, max }).map((c) => String.fromCharCode(c));
  return fc.oneof(
    fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 1 }),
    fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }), // any code point, astral included
    code(0x00, 0x1f), // control characters
    fc.constantFrom('"', '\\', '\u2028', '\u00e9', '\u20ac'),
    code(0x300, 0x36f), // combining marks
    code(0xd800, 0xdfff), // lone surrogates
    fc.constantFrom('\u200d', '\ufe0f', '👨', '🏽', '🇺', '🇸', FAMILY, HEART),
    fc.constantFrom(':smile:', ':+1:', ':heart:', ':flag-us:', ':a:', ':nope:', '::', ':', ' ', mostGrowingEmojiCode()),
  );
}

function text(): fc.Arbitrary<string> {
  return fc.oneof(
    { arbitrary: fc.string({ unit: anyUnit(), maxLength: 40 }), weight: 6 },
    {
      arbitrary: fc
        .tuple(fc.string({ unit: anyUnit(), minLength: 1, maxLength: 4 }), fc.integer({ min: 20, max: 400 }))
        .map(([s, k]) => s.repeat(k)),
      weight: 1,
    },
    {
      arbitrary: fc
        .tuple(fc.string({ unit: anyUnit(), minLength: 1, maxLength: 6 }), fc.integer({ min: 100, max: 8_000 }))
        .map(([s, k]) => s.repeat(k)),
      weight: 1,
    },
  );
}

const STRING_FIELDS = [
  'ack_id',
  'server_id',
  'post_id',
  'category',
  'message',
  'team_id',
  'channel_id',
  'root_id',
  'channel_name',
  'type',
  'sub_type',
  'sender_id',
  'sender_name',
  'override_username',
  'override_icon_url',
  'from_webhook',
  'version',
  'signature',
] as const;
/** Shortened to fit; every other field is sent exactly as received or the build fails. */
const FREE_TEXT = ['message', 'sender_name', 'override_username', 'channel_name'] as const;

function notification(): fc.Arbitrary<PushNotification> {
  const strings = Object.fromEntries(STRING_FIELDS.map((field) => [field, text()])) as Record<
    (typeof STRING_FIELDS)[number],
    fc.Arbitrary<string>
  >;
  return fc
    .record({
      ...strings,
      type: fc.oneof(fc.constantFrom('message', 'session', 'clear', 'test', 'update_badge', '', 'other'), text()),
      version: fc.constantFrom('v2', '', 'v1'),
      transport: fc.constantFrom('', 'voip'),
      // Go's int64 bounds as a JSON parser reads them (the nearest doubles), written as the same literals on purpose.
      // eslint-disable-next-line no-loss-of-precision
      badge: fc.oneof(fc.integer({ min: -1, max: 100 }), fc.constantFrom(-9223372036854775808, 9223372036854775807)),
      is_crt_enabled: fc.boolean(),
      is_id_loaded: fc.boolean(),
    })
    .map((fields) => ({ ...emptyPushNotification(), device_id: TOKEN, ...fields }));
}

/** The message as the builders are given it by the pipeline: truncated, then converted unless ID-loaded. */
function messageSent(n: PushNotification): string {
  return n.is_id_loaded ? n.message : emojize(n.message);
}

function assertPrefixAtBoundary(sent: string, whole: string, what: string): void {
  assert.ok(whole.startsWith(sent), `${what} is not a prefix of what it was`);
  const last = sent.charCodeAt(sent.length - 1);
  const next = whole.charCodeAt(sent.length);
  assert.ok(!(last >= 0xd800 && last <= 0xdbff && next >= 0xdc00 && next <= 0xdfff), `${what} ends inside a surrogate pair`);
}

/** Free text removed: what a build that threw must also fail on. */
function withoutFreeText(n: PushNotification): PushNotification {
  return { ...n, message: '', sender_name: '', override_username: '', channel_name: '' };
}

describe('property: both builders stay within the limits for any notification', () => {
  it('the bounds that skip measuring never claim a fit the payload does not have, also for sparse notifications', () => {
    // A few fields, each a short random run repeated: sizes around the bounds' break-even, escapes dense or absent.
    const run = fc
      .tuple(fc.string({ unit: anyUnit(), minLength: 1, maxLength: 3 }), fc.integer({ min: 1, max: 1_300 }))
      .map(([s, k]) => s.repeat(k));
    const sparse = fc
      .tuple(
        notification(),
        fc.uniqueArray(fc.constantFrom(...STRING_FIELDS), { minLength: 1, maxLength: 3 }),
        fc.array(run, { minLength: 3, maxLength: 3 }),
      )
      .map(([n, fields, values]) => {
        const cleared: PushNotification = {
          ...n,
          ...Object.fromEntries(STRING_FIELDS.map((field) => [field, ''])),
          type: n.type.length < 20 ? n.type : 'message',
        };
        fields.forEach((field, i) => Object.assign(cleared, { [field]: values[i] }));
        return cleared;
      });
    fc.assert(
      fc.property(sparse, (received) => {
        const n = truncateNotification(received);
        const text = n.transport === 'voip' ? '' : messageSent(n);
        const fcmText = n.is_id_loaded || n.type === 'message' || n.type === 'session' ? messageSent(n) : '';
        try {
          assert.equal(fitsWithoutMeasuring(n, text, apnsBytes(n) - 1), false, 'APNs');
          assert.equal(fitsWithoutMeasuring(n, fcmText, fcmBytes(n) - 1), false, 'FCM');
        } catch (err) {
          if (!(err instanceof PayloadTooLargeError)) throw err;
        }
      }),
      { numRuns: 800 },
    );
  });

  it('APNs (standard and VoIP): body as sent within 4096 / 5120 bytes, free text a prefix, everything else unchanged', () => {
    fc.assert(
      fc.property(notification(), (received) => {
        const n = truncateNotification(received);
        const voip = n.transport === 'voip';
        const limit = voip ? APNS_VOIP_PAYLOAD_LIMIT_BYTES : APNS_PAYLOAD_LIMIT_BYTES;
        let payload: Record<string, unknown>;
        try {
          payload = buildApnsRequest(n, TARGET).payload;
        } catch (err) {
          assert.ok(err instanceof PayloadTooLargeError, String(err));
          assert.throws(() => buildApnsRequest(withoutFreeText(n), TARGET), PayloadTooLargeError);
          return;
        }
        const size = Buffer.byteLength(JSON.stringify(payload));
        assert.ok(size <= limit, `${size} > ${limit}`);
        assert.ok(size <= upperBoundBytes(n, voip ? '' : messageSent(n)), 'the cheap bound is not an upper bound');
        // The bounds are above the unshortened size, which is at least the size sent.
        assert.equal(fitsWithoutMeasuring(n, voip ? '' : messageSent(n), size - 1), false, 'claims a fit it does not have');
        const aps = payload.aps as { alert?: string | { body?: string; title?: string } };
        const alert = aps.alert;
        if (!voip && alert !== undefined) {
          const body = typeof alert === 'string' ? alert : (alert.body ?? '');
          assertPrefixAtBoundary(body, messageSent(n), 'message');
          if (typeof alert === 'object' && alert.title !== undefined) assertPrefixAtBoundary(alert.title, n.channel_name, 'title');
        }
        for (const field of ['sender_name', 'override_username', 'channel_name'] as const) {
          if (typeof payload[field] === 'string') assertPrefixAtBoundary(payload[field], n[field], field);
        }
        for (const field of [
          'ack_id',
          'channel_id',
          'post_id',
          'sender_id',
          'team_id',
          'override_icon_url',
          'from_webhook',
          'sub_type',
          'server_id',
          'type',
        ] as const) {
          if (field in payload) assert.equal(payload[field], n[field], field);
        }
        if (voip) assert.equal(payload.thread_id, n.root_id);
        else if ('root_id' in payload) assert.equal(payload.root_id, n.root_id);
      }),
      { numRuns: 300 },
    );
  });

  it('FCM: data as sent (JSON) within 4096 bytes, free text a prefix, everything else unchanged', () => {
    fc.assert(
      fc.property(notification(), (received) => {
        const n = truncateNotification(received);
        let data: Record<string, string>;
        try {
          data = buildFcmMessage(n).data;
        } catch (err) {
          assert.ok(err instanceof PayloadTooLargeError, String(err));
          assert.throws(() => buildFcmMessage(withoutFreeText(n)), PayloadTooLargeError);
          return;
        }
        const size = Buffer.byteLength(JSON.stringify(data));
        assert.ok(size <= FCM_DATA_LIMIT_BYTES, `${size} > ${FCM_DATA_LIMIT_BYTES}`);
        const alerting = n.is_id_loaded || n.type === 'message' || n.type === 'session';
        assert.ok(size <= upperBoundBytes(n, alerting ? messageSent(n) : ''), 'the cheap bound is not an upper bound');
        // The bounds are above the unshortened size, which is at least the size sent.
        assert.equal(fitsWithoutMeasuring(n, alerting ? messageSent(n) : '', size - 1), false, 'claims a fit it does not have');
        if (data.message !== undefined) assertPrefixAtBoundary(data.message, messageSent(n), 'message');
        for (const field of FREE_TEXT) {
          if (field !== 'message' && data[field] !== undefined && !(field === 'sender_name' && n.is_id_loaded))
            assertPrefixAtBoundary(data[field], n[field], field);
        }
        for (const field of [
          'ack_id',
          'channel_id',
          'post_id',
          'sender_id',
          'team_id',
          'override_icon_url',
          'from_webhook',
          'sub_type',
          'server_id',
          'type',
          'root_id',
          'category',
          'version',
        ] as const) {
          if (field in data) assert.equal(data[field], n[field], field);
        }
      }),
      { numRuns: 300 },
    );
  });
});
