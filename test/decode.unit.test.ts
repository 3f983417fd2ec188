import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodePushAck, decodePushNotification } from '../src/http/decode';
import { emptyPushAck, emptyPushNotification, type PushNotification } from '../src/notification';

const decode = (text: string) => decodePushNotification(Buffer.from(text, 'utf8'));
const decodeAck = (text: string) => decodePushAck(Buffer.from(text, 'utf8'));
const notification = (fields: Partial<PushNotification>): PushNotification => ({ ...emptyPushNotification(), ...fields });
const typeError = (what: string, field: string, goType: string) =>
  `json: cannot unmarshal ${what} into Go struct field PushNotification.${field} of type ${goType}`;

test('a full body fills every field', () => {
  const full: PushNotification = {
    ack_id: 'ack',
    platform: 'apple_rn-v2',
    server_id: 'srv',
    device_id: 'dev',
    post_id: 'post',
    category: 'CAN_REPLY',
    sound: 'none',
    message: 'héllo 😀 "quoted"\n',
    badge: -1,
    cont_ava: 1,
    team_id: 'team',
    channel_id: 'chan',
    root_id: 'root',
    channel_name: 'town-square',
    type: 'message',
    sub_type: 'calls',
    transport: 'voip',
    sender_id: 'sender',
    sender_name: 'Someone',
    override_username: 'bot',
    override_icon_url: 'https://x/icon.png',
    from_webhook: 'true',
    version: 'v2',
    is_crt_enabled: true,
    is_id_loaded: true,
    signature: 'sig',
  };
  assert.deepEqual(decode(JSON.stringify(full)), { ok: true, value: full });
});

test('keys match struct tags case-insensitively, as Go folds them', () => {
  assert.deepEqual(decode('{"Server_Id":"a","DEVICE_ID":"b","Is_Crt_Enabled":true}'), {
    ok: true,
    value: notification({ server_id: 'a', device_id: 'b', is_crt_enabled: true }),
  });
  // ſ and the Kelvin sign fold to s and k in Go; dotless ı does not fold to i.
  assert.deepEqual(decode('{"\u017Ferver_id":"a","AC\u212A_ID":"b","\u0131s_id_loaded":true}'), {
    ok: true,
    value: notification({ server_id: 'a', ack_id: 'b' }),
  });
  // Escapes in keys are decoded before matching.
  assert.deepEqual(decode('{"\\u0064evice_id":"d"}'), { ok: true, value: notification({ device_id: 'd' }) });
});

test('a later key for the same field wins', () => {
  assert.deepEqual(decode('{"device_id":"a","DEVICE_ID":"b","badge":1,"Badge":2}'), {
    ok: true,
    value: notification({ device_id: 'b', badge: 2 }),
  });
});

test('null leaves the zero value or the earlier value', () => {
  assert.deepEqual(decode('{"badge":null,"server_id":null,"is_id_loaded":null}'), { ok: true, value: emptyPushNotification() });
  assert.deepEqual(decode('{"badge":5,"server_id":"s","Badge":null,"SERVER_ID":null}'), {
    ok: true,
    value: notification({ badge: 5, server_id: 's' }),
  });
});

test('unknown keys are ignored whatever their value', () => {
  assert.deepEqual(decode('{"foo":[1,{"a":[true,null]}],"bar":{"badge":"x"},"server_idx":1,"device_id":"d"}'), {
    ok: true,
    value: notification({ device_id: 'd' }),
  });
});

test('only the first value is read: trailing bytes are ignored', () => {
  const expected = { ok: true, value: notification({ device_id: 'a' }) };
  assert.deepEqual(decode('  \n{"device_id":"a"} garbage'), expected);
  assert.deepEqual(decode('{"device_id":"a"}{"device_id":"b"'), expected);
  assert.deepEqual(decode('{"device_id":"a"}\u0000\u00ff'), expected);
});

test('an empty or blank body is EOF', () => {
  assert.deepEqual(decodePushNotification(Buffer.alloc(0)), { ok: false, error: 'EOF' });
  assert.deepEqual(decode(' \t\r\n '), { ok: false, error: 'EOF' });
  assert.deepEqual(decodePushAck(Buffer.alloc(0)), { ok: false, error: 'EOF' });
});

test('a body that ends inside the first value is unexpected EOF', () => {
  for (const text of [
    '{',
    '{"a":',
    '{"a"',
    '{"a',
    '{"a":1',
    '{"a":1,',
    '{"a":"\\',
    '{"a":"\\u12',
    '[',
    '[1,',
    '"abc',
    'tru',
    'nul',
    '-',
    '1.',
    '1e',
    '1e+',
    '{"a":[{}',
  ]) {
    assert.deepEqual(decode(text), { ok: false, error: 'unexpected EOF' }, text);
  }
});

test('syntax errors read as Go writes them', () => {
  const cases: [string, string][] = [
    ['x', "invalid character 'x' looking for beginning of value"],
    ['{}', ''],
    ['{"a":1,}', "invalid character '}' looking for beginning of object key string"],
    ['{,', "invalid character ',' looking for beginning of object key string"],
    ['{"a" x', "invalid character 'x' after object key"],
    ['{"a":1 x', "invalid character 'x' after object key:value pair"],
    ['{"a":[1 x', "invalid character 'x' after array element"],
    ['{"a":[1,]}', "invalid character ']' looking for beginning of value"],
    ['{"a":"b\nc"}', "invalid character '\\n' in string literal"],
    ['{"a":"\t"}', "invalid character '\\t' in string literal"],
    ['{"a":"\u0001"}', "invalid character '\\x01' in string literal"],
    ['{"a":"\\q"}', "invalid character 'q' in string escape code"],
    ['{"a":"\\u12g4"}', "invalid character 'g' in \\u hexadecimal character escape"],
    ['{"a":tx}', "invalid character 'x' in literal true (expecting 'r')"],
    ['{"a":fals}', "invalid character '}' in literal false (expecting 'e')"],
    ['{"a":nUll}', "invalid character 'U' in literal null (expecting 'u')"],
    ['{"a":-x}', "invalid character 'x' in numeric literal"],
    ['{"a":1.x}', "invalid character 'x' after decimal point in numeric literal"],
    ['{"a":1ex}', "invalid character 'x' in exponent of numeric literal"],
    ['{"a":01}', "invalid character '1' after object key:value pair"],
    ['{"a":\'b\'}', "invalid character '\\'' looking for beginning of value"],
    ['{"a":1"', "invalid character '\"' after object key:value pair"],
    ['\\', "invalid character '\\\\' looking for beginning of value"],
    ['\u007f', "invalid character '\\x7f' looking for beginning of value"],
  ];
  for (const [text, error] of cases) {
    const result = decode(text);
    if (error === '') assert.equal(result.ok, true, text);
    else assert.deepEqual(result, { ok: false, error }, text);
  }
  // Go names the byte as a Latin-1 rune: é starts with 0xC3, a BOM with 0xEF; 0x85 and 0xA0 are not printable.
  assert.deepEqual(decode('é'), { ok: false, error: "invalid character 'Ã' looking for beginning of value" });
  assert.deepEqual(decode('\uFEFF{}'), { ok: false, error: "invalid character 'ï' looking for beginning of value" });
  assert.deepEqual(decodePushNotification(Buffer.from([0x85])), {
    ok: false,
    error: "invalid character '\\u0085' looking for beginning of value",
  });
  assert.deepEqual(decodePushNotification(Buffer.from([0xa0])), {
    ok: false,
    error: "invalid character '\\u00a0' looking for beginning of value",
  });
});

test('nesting deeper than 10000 is refused like Go', () => {
  assert.deepEqual(decode('['.repeat(10001)), { ok: false, error: "invalid character '[' exceeded max depth" });
  assert.deepEqual(decode('['.repeat(10000)), { ok: false, error: 'unexpected EOF' });
  const deepest = `{"x":${'['.repeat(9999)}${']'.repeat(9999)},"device_id":"d"}`;
  assert.deepEqual(decode(deepest), { ok: true, value: notification({ device_id: 'd' }) });
  assert.deepEqual(decode(`{"x":${'{"y":'.repeat(10000)}`), { ok: false, error: "invalid character '{' exceeded max depth" });
});

test('a wrong JSON type for a string field is an error', () => {
  assert.deepEqual(decode('{"server_id":3}'), { ok: false, error: typeError('number', 'server_id', 'string') });
  assert.deepEqual(decode('{"device_id":true}'), { ok: false, error: typeError('bool', 'device_id', 'string') });
  assert.deepEqual(decode('{"message":{}}'), { ok: false, error: typeError('object', 'message', 'string') });
  assert.deepEqual(decode('{"Signature":["s"]}'), { ok: false, error: typeError('array', 'signature', 'string') });
});

test('a wrong JSON type for an int field is an error', () => {
  assert.deepEqual(decode('{"badge":"3"}'), { ok: false, error: typeError('string', 'badge', 'int') });
  assert.deepEqual(decode('{"cont_ava":false}'), { ok: false, error: typeError('bool', 'cont_ava', 'int') });
  assert.deepEqual(decode('{"badge":[]}'), { ok: false, error: typeError('array', 'badge', 'int') });
});

test('a wrong JSON type for a bool field is an error', () => {
  assert.deepEqual(decode('{"is_id_loaded":"true"}'), { ok: false, error: typeError('string', 'is_id_loaded', 'bool') });
  assert.deepEqual(decode('{"is_crt_enabled":1}'), { ok: false, error: typeError('number', 'is_crt_enabled', 'bool') });
  assert.deepEqual(decode('{"is_crt_enabled":{"a":1}}'), { ok: false, error: typeError('object', 'is_crt_enabled', 'bool') });
});

test('int fields take only plain integer literals that fit int64', () => {
  for (const literal of [
    '1.5',
    '3.0',
    '3e0',
    '1E2',
    '1e400',
    '-0.0',
    '9223372036854775808',
    '-9223372036854775809',
    '123456789012345678901234567890',
  ]) {
    assert.deepEqual(decode(`{"badge":${literal}}`), { ok: false, error: typeError(`number ${literal}`, 'badge', 'int') });
  }
  assert.deepEqual(decode('{"badge":-1,"cont_ava":0}'), { ok: true, value: notification({ badge: -1, cont_ava: 0 }) });
  const negativeZero = decode('{"badge":-0}');
  assert.ok(negativeZero.ok && Object.is(negativeZero.value.badge, 0));
  assert.deepEqual(
    decode('{"badge":9223372036854775807}'),
    // The double JSON.parse reads for Go's largest int64, written as the same literal on purpose.
    // eslint-disable-next-line no-loss-of-precision
    { ok: true, value: notification({ badge: 9223372036854775807 }) },
  );
  assert.deepEqual(decode('{"badge":-9223372036854775808}'), { ok: true, value: notification({ badge: -9223372036854775808 }) });
});

test('the first type error in document order is reported, even for a value a later key replaces', () => {
  assert.deepEqual(decode('{"badge":"x","server_id":1}'), { ok: false, error: typeError('string', 'badge', 'int') });
  assert.deepEqual(decode('{"server_id":1,"badge":"x"}'), { ok: false, error: typeError('number', 'server_id', 'string') });
  assert.deepEqual(decode('{"badge":"x","badge":2}'), { ok: false, error: typeError('string', 'badge', 'int') });
  assert.deepEqual(decode('{"sound":1,"badge":1.5}'), { ok: false, error: typeError('number', 'sound', 'string') });
  assert.deepEqual(decode('{"badge":1.5,"sound":1}'), { ok: false, error: typeError('number 1.5', 'badge', 'int') });
  // Syntax errors come before type errors, wherever they are.
  assert.deepEqual(decode('{"badge":"x","a":tru}'), { ok: false, error: "invalid character '}' in literal true (expecting 'e')" });
});

test('a top-level value that is not an object is an error, except null', () => {
  const into = 'into Go value of type model.PushNotification';
  assert.deepEqual(decode('[{"device_id":"a"}]'), { ok: false, error: `json: cannot unmarshal array ${into}` });
  assert.deepEqual(decode('"device_id"'), { ok: false, error: `json: cannot unmarshal string ${into}` });
  assert.deepEqual(decode('12'), { ok: false, error: `json: cannot unmarshal number ${into}` });
  assert.deepEqual(decode('false'), { ok: false, error: `json: cannot unmarshal bool ${into}` });
  assert.deepEqual(decode(' null '), { ok: true, value: emptyPushNotification() });
});

test('strings decode like Go: invalid UTF-8 and lone surrogates become U+FFFD', () => {
  const body = Buffer.concat([
    Buffer.from('{"message":"a'),
    Buffer.from([0xe2, 0x82]),
    Buffer.from('b'),
    Buffer.from([0xff]),
    Buffer.from('\\ud800c\\ud83d\\ude00\\u00e9\\n"}'),
  ]);
  assert.deepEqual(decodePushNotification(body), { ok: true, value: notification({ message: 'a\uFFFD\uFFFDb\uFFFD\uFFFDc😀é\n' }) });
  assert.deepEqual(
    decodePushNotification(Buffer.concat([Buffer.from('{"message":"'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}')])),
    { ok: true, value: notification({ message: '\uFFFD\uFFFD\uFFFD' }) },
  );
});

test('ack bodies decode into PushNotificationAck', () => {
  assert.deepEqual(
    decodeAck(
      '{"id":"ack","received_at":1718000000123,"platform":"android","type":"message","post_id":"p",' + '"is_id_loaded":true,"extra":1}',
    ),
    { ok: true, value: { id: 'ack', received_at: 1718000000123, platform: 'android', type: 'message', post_id: 'p', is_id_loaded: true } },
  );
  assert.deepEqual(decodeAck('{"ID":"a","Received_At":null}'), { ok: true, value: { ...emptyPushAck(), id: 'a' } });
  assert.deepEqual(decodeAck('{"received_at":1.5}'), {
    ok: false,
    error: 'json: cannot unmarshal number 1.5 into Go struct field PushNotificationAck.received_at of type int64',
  });
  assert.deepEqual(decodeAck('{"id":7}'), {
    ok: false,
    error: 'json: cannot unmarshal number into Go struct field PushNotificationAck.id of type string',
  });
  assert.deepEqual(decodeAck('{"is_id_loaded":"yes"}'), {
    ok: false,
    error: 'json: cannot unmarshal string into Go struct field PushNotificationAck.is_id_loaded of type bool',
  });
  assert.deepEqual(decodeAck('[]'), { ok: false, error: 'json: cannot unmarshal array into Go value of type model.PushNotificationAck' });
  assert.deepEqual(decodeAck('{"id":'), { ok: false, error: 'unexpected EOF' });
  assert.deepEqual(decodeAck('null'), { ok: true, value: emptyPushAck() });
});

test('__proto__ and other prototype keys are harmless', () => {
  const result = decode(
    '{"__proto__":{"polluted":true,"device_id":"evil"},"constructor":{"prototype":{"x":1}},' +
      '"device_id":"d","toString":"s","__PROTO__":1}',
  );
  assert.deepEqual(result, { ok: true, value: notification({ device_id: 'd' }) });
  assert.ok(result.ok);
  assert.equal(Object.getPrototypeOf(result.value), Object.prototype);
  assert.equal((result.value as unknown as Record<string, unknown>).polluted, undefined);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  assert.deepEqual(decodeAck('{"__proto__":null,"id":"a"}'), { ok: true, value: { ...emptyPushAck(), id: 'a' } });
});

test('never throws, whatever the bytes', () => {
  // Deterministic xorshift so a failure can be replayed.
  let seed = 0x2545f491;
  const random = (limit: number): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % limit;
  };
  const alphabet = Buffer.from('{}[]",:\\ -+.0123456789eEtrufalsn\t\n\r/xbdu_');
  const valid = Buffer.from('{"device_id":"d","badge":-12,"is_id_loaded":true,"x":[1.5e3,null,{"y":"\\u00e9"}]}');
  const goError =
    /^(EOF|unexpected EOF|invalid character '(.|\\.+)' .+|json: cannot unmarshal .+ into Go (value of type model\.PushNotification|struct field PushNotification\.[a-z_]+ of type (string|int|bool)))$/su;
  let decoded = 0;
  for (let round = 0; round < 20000; round++) {
    const style = round % 3;
    const body = Buffer.alloc(random(style === 2 ? valid.length + 8 : 48));
    if (style === 2) valid.copy(body, 0, 0, Math.min(body.length, valid.length));
    for (let i = 0; i < body.length; i++) {
      if (style === 0) body[i] = random(256);
      else if (style === 1 || random(64) === 0) body[i] = alphabet[random(alphabet.length)];
    }
    const result = decodePushNotification(body);
    if (result.ok) {
      decoded++;
      assert.deepEqual(Object.keys(result.value), Object.keys(emptyPushNotification()), body.toString('hex'));
    } else {
      assert.match(result.error, goError, body.toString('hex'));
    }
  }
  assert.ok(decoded > 100, `only ${decoded} bodies decoded`);
});
