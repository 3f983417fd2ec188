/** buildApnsRequest, case by case against docs/protocol.md, APNs request. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { emptyPushNotification, type PushNotification } from '../src/notification';
import { buildApnsRequest } from '../src/platforms/apns/payload';

const TOKEN = 'ab'.repeat(32);
const TOPIC = 'com.mattermost.react.native';

function push(fields: Partial<PushNotification>): PushNotification {
  return { ...emptyPushNotification(), server_id: 'srv1', device_id: TOKEN, platform: 'apple_rn', ...fields };
}

function build(fields: Partial<PushNotification>, appVersion = 2) {
  return buildApnsRequest(push(fields), { topic: TOPIC, appVersion });
}

const STANDARD_HEADERS = {
  'apns-topic': TOPIC,
  'apns-priority': 10,
  'apns-push-type': 'alert',
  'content-type': 'application/json; charset=utf-8',
};

describe('buildApnsRequest: message', () => {
  it('v2 message with channel name: title/body alert, thread id, every echoed key', () => {
    const request = build({
      type: 'message',
      version: 'v2',
      message: 'hello :smile:',
      channel_name: 'Town Square',
      channel_id: 'ch1',
      team_id: 'team1',
      sender_id: 'u1',
      sender_name: 'alice',
      post_id: 'p1',
      ack_id: 'ack1',
      category: 'CAN_REPLY',
      badge: 3,
      signature: 'sig',
      sub_type: '',
      override_username: 'bot',
      override_icon_url: 'https://i/x.png',
      from_webhook: 'true',
    });
    assert.equal(request.token, TOKEN);
    assert.deepEqual(request.headers, STANDARD_HEADERS);
    assert.equal(request.transport, '');
    assert.deepEqual(request.payload, {
      ack_id: 'ack1',
      aps: {
        alert: { body: 'hello 😄 ', title: 'Town Square' },
        badge: 3,
        category: 'CAN_REPLY',
        'content-available': 1,
        'mutable-content': 1,
        sound: 'default',
        'thread-id': 'ch1',
      },
      channel_id: 'ch1',
      channel_name: 'Town Square',
      from_webhook: 'true',
      is_crt_enabled: false,
      override_icon_url: 'https://i/x.png',
      override_username: 'bot',
      post_id: 'p1',
      sender_id: 'u1',
      sender_name: 'alice',
      server_id: 'srv1',
      signature: 'sig',
      sub_type: '',
      team_id: 'team1',
      type: 'message',
      version: 'v2',
    });
  });

  it('root keys come out sorted, as a Go map marshals', () => {
    const keys = Object.keys(build({ type: 'message', channel_id: 'c', ack_id: 'a', version: 'v2' }).payload);
    assert.deepEqual(keys, [...keys].sort());
  });

  it('root keys come out sorted with every optional key set, for a message, an id-loaded push and VoIP', () => {
    const everything = {
      ack_id: 'a',
      channel_id: 'c',
      channel_name: 'n',
      from_webhook: 'true',
      override_icon_url: 'u',
      override_username: 'o',
      post_id: 'p',
      root_id: 'r',
      sender_id: 's',
      sender_name: 'sn',
      signature: 'sig',
      sub_type: 'st',
      team_id: 't',
      version: 'v2',
    };
    const message = Object.keys(build({ ...everything, type: 'message' }).payload);
    assert.deepEqual(message, [
      'ack_id',
      'aps',
      'channel_id',
      'channel_name',
      'from_webhook',
      'is_crt_enabled',
      'override_icon_url',
      'override_username',
      'post_id',
      'root_id',
      'sender_id',
      'sender_name',
      'server_id',
      'signature',
      'sub_type',
      'team_id',
      'type',
      'version',
    ]);
    const idLoaded = Object.keys(build({ ...everything, type: 'message', is_id_loaded: true }).payload);
    assert.ok(idLoaded.includes('id_loaded') && !idLoaded.includes('channel_name'));
    assert.deepEqual(idLoaded, [...idLoaded].sort());
    const voip = Object.keys(build({ ...everything, type: 'message', transport: 'voip' }).payload);
    assert.deepEqual(voip, [...voip].sort());
  });

  it('without v2 the alert is the plain emoji-converted string', () => {
    const { payload } = build({ type: 'message', message: 'hi :+1:', channel_name: 'Town' });
    assert.equal((payload.aps as Record<string, unknown>).alert, 'hi 👍 ');
    assert.equal(payload.version, '');
    assert.equal(payload.channel_name, 'Town');
  });

  it('v2 without a channel name: plain string alert, no channel_name key', () => {
    const { payload } = build({ type: 'message', version: 'v2', message: 'x' });
    assert.equal((payload.aps as Record<string, unknown>).alert, 'x');
    assert.equal('channel_name' in payload, false);
  });

  it('v2 with channel name and empty message: title only', () => {
    const { payload } = build({ type: 'message', version: 'v2', channel_name: 'Town' });
    assert.deepEqual((payload.aps as Record<string, unknown>).alert, { title: 'Town' });
  });

  it('empty message without v2 still sends an empty string alert', () => {
    const { payload } = build({ type: 'message' });
    assert.equal((payload.aps as Record<string, unknown>).alert, '');
  });

  it('CRT: thread id is the root when collapsed threads are on and a root exists', () => {
    const { payload } = build({ type: 'message', channel_id: 'ch', root_id: 'root', is_crt_enabled: true });
    assert.equal((payload.aps as Record<string, unknown>)['thread-id'], 'root');
    assert.equal(payload.is_crt_enabled, true);
    assert.equal(payload.root_id, 'root');
  });

  it('CRT off: thread id is the channel even with a root', () => {
    const { payload } = build({ type: 'message', channel_id: 'ch', root_id: 'root', is_crt_enabled: false });
    assert.equal((payload.aps as Record<string, unknown>)['thread-id'], 'ch');
  });

  it('no channel id: no thread id and no channel_id key', () => {
    const { payload } = build({ type: 'message', root_id: 'root', is_crt_enabled: true });
    assert.equal('thread-id' in (payload.aps as object), false);
    assert.equal('channel_id' in payload, false);
  });

  it('empty signature becomes NO_SIGNATURE; empty ack id is left out', () => {
    const { payload } = build({ type: 'message' });
    assert.equal(payload.signature, 'NO_SIGNATURE');
    assert.equal('ack_id' in payload, false);
  });

  it('sound and cont_ava from the request are ignored', () => {
    const { payload } = build({ type: 'message', sound: 'none', cont_ava: 0 });
    assert.equal((payload.aps as Record<string, unknown>).sound, 'default');
    assert.equal((payload.aps as Record<string, unknown>)['content-available'], 1);
  });
});

describe('buildApnsRequest: badge (docs/protocol.md, Badge)', () => {
  const badgeOf = (fields: Partial<PushNotification>, appVersion = 2) =>
    (build(fields, appVersion).payload.aps as Record<string, unknown>).badge;

  it('absent badge is sent as 0', () => assert.equal(badgeOf({ type: 'message' }), 0));
  it('-1 leaves the badge out', () => assert.equal('badge' in (build({ type: 'message', badge: -1 }).payload.aps as object), false));
  it('a count is sent as is', () => assert.equal(badgeOf({ type: 'update_badge', badge: 7 }), 7));
  it('clear with 0 on a v2 app sends 1', () => assert.equal(badgeOf({ type: 'clear', badge: 0 }, 2), 1));
  it('clear with 0 on app version 1 sends 0', () => assert.equal(badgeOf({ type: 'clear', badge: 0 }, 1), 0));
  it('clear with 5 sends 5', () => assert.equal(badgeOf({ type: 'clear', badge: 5 }, 2), 5));
  it('clear with -1 leaves it out', () => assert.equal(badgeOf({ type: 'clear', badge: -1 }, 2), undefined));
  it('app version 3 counts as > 1', () => assert.equal(badgeOf({ type: 'clear' }, 3), 1));
});

describe('buildApnsRequest: other types (docs/protocol.md, aps per shape)', () => {
  it('session: like message without content-available', () => {
    const { payload } = build({ type: 'session', message: 'Session expired', version: 'v2', category: 'C' });
    assert.deepEqual(payload.aps, { alert: 'Session expired', badge: 0, category: 'C', 'mutable-content': 1, sound: 'default' });
    assert.equal(payload.version, 'v2');
  });

  it('clear: content-available only, plus badge and thread id', () => {
    const { payload, headers } = build({ type: 'clear', channel_id: 'ch', badge: 2, version: 'v2', message: 'ignored', category: 'X' });
    assert.deepEqual(payload, {
      aps: { badge: 2, 'content-available': 1, 'thread-id': 'ch' },
      channel_id: 'ch',
      is_crt_enabled: false,
      server_id: 'srv1',
      signature: 'NO_SIGNATURE',
      sub_type: '',
      type: 'clear',
    });
    assert.equal(headers['apns-push-type'], 'alert');
  });

  it('test: content-available and badge', () => {
    const { payload } = build({ type: 'test', badge: -1, version: '2', message: 'test' });
    assert.deepEqual(payload, {
      aps: { 'content-available': 1 },
      is_crt_enabled: false,
      server_id: 'srv1',
      signature: 'NO_SIGNATURE',
      sub_type: '',
      type: 'test',
    });
  });

  it('update_badge: badge alone', () => {
    const { payload } = build({ type: 'update_badge', badge: 4 });
    assert.deepEqual(payload.aps, { badge: 4 });
    assert.equal('version' in payload, false);
  });

  it('empty or unknown type: a minimal push', () => {
    assert.deepEqual(build({}).payload, {
      aps: { badge: 0 },
      is_crt_enabled: false,
      server_id: 'srv1',
      signature: 'NO_SIGNATURE',
      sub_type: '',
      type: '',
    });
    assert.deepEqual(build({ type: 'weird', sub_type: 'x' }).payload.aps, { badge: 0 });
    assert.equal(build({ type: 'weird', sub_type: 'x' }).payload.sub_type, 'x');
  });
});

describe('buildApnsRequest: id-loaded (docs/protocol.md, aps per shape)', () => {
  it('raw message body, no emoji, id_loaded true, version kept, no channel_name', () => {
    const { payload } = build({
      type: 'message',
      is_id_loaded: true,
      message: 'You have a new message :smile:',
      channel_name: 'Town',
      version: 'v2',
      category: 'CAN_REPLY',
      post_id: 'p',
      channel_id: 'c',
      sender_id: 'me',
    });
    assert.deepEqual(payload.aps, {
      alert: { body: 'You have a new message :smile:' },
      badge: 0,
      category: 'CAN_REPLY',
      'content-available': 1,
      'mutable-content': 1,
      sound: 'default',
      'thread-id': 'c',
    });
    assert.equal(payload.id_loaded, true);
    assert.equal(payload.version, 'v2');
    assert.equal('channel_name' in payload, false);
    assert.equal(payload.post_id, 'p');
  });

  it('empty message gives an empty alert dictionary; empty version is kept', () => {
    const { payload } = build({ type: 'clear', is_id_loaded: true });
    assert.deepEqual((payload.aps as Record<string, unknown>).alert, {});
    assert.equal(payload.version, '');
    assert.equal((payload.aps as Record<string, unknown>)['content-available'], 1);
  });
});

describe('buildApnsRequest: VoIP (docs/protocol.md, VoIP)', () => {
  it('PushKit headers, content-available only, fixed root keys', () => {
    const request = build({
      type: 'message',
      sub_type: 'calls',
      transport: 'voip',
      channel_id: 'c',
      root_id: 'r',
      post_id: 'p',
      sender_id: 's',
      sender_name: 'bob',
      channel_name: 'Call',
      ack_id: 'a',
      badge: 5,
      message: 'ringing',
      version: 'v2',
      team_id: 't',
      is_crt_enabled: true,
      signature: 'sig',
    });
    assert.deepEqual(request.headers, { ...STANDARD_HEADERS, 'apns-topic': `${TOPIC}.voip`, 'apns-push-type': 'voip' });
    assert.equal(request.transport, 'voip');
    assert.deepEqual(request.payload, {
      ack_id: 'a',
      aps: { 'content-available': 1 },
      channel_id: 'c',
      channel_name: 'Call',
      id_loaded: false,
      post_id: 'p',
      sender_id: 's',
      sender_name: 'bob',
      server_id: 'srv1',
      signature: 'sig',
      sub_type: 'calls',
      thread_id: 'r',
      type: 'message',
    });
  });

  it('empty strings stay for the always-present keys; optional ones go', () => {
    const { payload } = build({ transport: 'voip', is_id_loaded: true });
    assert.deepEqual(payload, {
      aps: { 'content-available': 1 },
      channel_id: '',
      id_loaded: true,
      post_id: '',
      sender_id: '',
      server_id: 'srv1',
      signature: 'NO_SIGNATURE',
      sub_type: '',
      thread_id: '',
      type: '',
    });
  });

  it('any other transport value is standard', () => {
    assert.equal(build({ type: 'message', transport: 'VOIP' }).headers['apns-push-type'], 'alert');
  });
});
