/** buildFcmMessage, case by case against docs/protocol.md, FCM message: the whole data map is compared every time. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TokenMessage } from 'firebase-admin/messaging';
import { emptyPushNotification, type PushNotification } from '../src/notification';
import { buildFcmMessage } from '../src/platforms/fcm/payload';

const TOKEN = 'fcm-token:APA91bHun4MxP5egoKMwt2KZFBaFUH-1RYqx';

function push(fields: Partial<PushNotification>): PushNotification {
  return { ...emptyPushNotification(), server_id: 'srv1', device_id: TOKEN, platform: 'android_rn', ...fields };
}

function data(fields: Partial<PushNotification>): Record<string, string> {
  return buildFcmMessage(push(fields)).data;
}

/** Every key a message carries, with what a full server request puts in it. */
const FULL: Partial<PushNotification> = {
  ack_id: 'ack1',
  type: 'message',
  sub_type: '',
  version: 'v2',
  channel_id: 'ch1',
  root_id: '',
  channel_name: 'Town Square',
  team_id: 'team1',
  sender_id: 'u1',
  sender_name: 'alice',
  post_id: 'p1',
  category: 'CAN_REPLY',
  message: 'hello :smile:',
  badge: 3,
  is_crt_enabled: true,
  signature: 'sig',
  override_username: 'bot',
  override_icon_url: 'https://i/x.png',
  from_webhook: 'true',
  sound: 'default',
  cont_ava: 1,
};

/** The keys present on every push, for a push of `type` with otherwise empty fields. */
function always(type: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ack_id: '',
    type,
    sub_type: '',
    version: '',
    channel_id: '',
    is_crt_enabled: 'false',
    server_id: 'srv1',
    category: '',
    signature: 'NO_SIGNATURE',
    badge: '0',
    ...extra,
  };
}

describe('buildFcmMessage: the message around the data', () => {
  it('is {token, data, android: {priority: high}} and nothing else', () => {
    const message = buildFcmMessage(push({ type: 'message', message: 'hi' }));
    assert.deepEqual(Object.keys(message).sort(), ['android', 'data', 'token']);
    assert.equal(message.token, TOKEN);
    assert.deepEqual(message.android, { priority: 'high' });
    const typed: TokenMessage = message;
    assert.ok(typed);
  });

  it('every value is a string', () => {
    for (const type of ['message', 'session', 'clear', 'update_badge', 'test', '']) {
      for (const idLoaded of [false, true]) {
        const values = Object.values(data({ ...FULL, type, is_id_loaded: idLoaded, root_id: 'r1' }));
        assert.ok(
          values.every((v) => typeof v === 'string'),
          `${type} id_loaded=${idLoaded}`,
        );
      }
    }
  });
});

describe('buildFcmMessage: message and session', () => {
  it('message with every field: echoes them all, emoji-converted message', () => {
    assert.deepEqual(data(FULL), {
      ack_id: 'ack1',
      type: 'message',
      sub_type: '',
      version: 'v2',
      channel_id: 'ch1',
      is_crt_enabled: 'true',
      server_id: 'srv1',
      category: 'CAN_REPLY',
      signature: 'sig',
      badge: '3',
      team_id: 'team1',
      sender_id: 'u1',
      sender_name: 'alice',
      message: 'hello 😄 ',
      channel_name: 'Town Square',
      post_id: 'p1',
      override_username: 'bot',
      override_icon_url: 'https://i/x.png',
      from_webhook: 'true',
    });
  });

  it('message with empty fields: the message/session keys are present even when empty', () => {
    assert.deepEqual(
      data({ type: 'message' }),
      always('message', {
        team_id: '',
        sender_id: '',
        sender_name: '',
        message: '',
        channel_name: '',
        post_id: '',
        override_username: '',
        override_icon_url: '',
        from_webhook: '',
      }),
    );
  });

  it('session: same keys as message, emoji converted', () => {
    assert.deepEqual(
      data({ type: 'session', message: 'Session expired :+1:', version: 'v2', badge: 1 }),
      always('session', {
        version: 'v2',
        badge: '1',
        team_id: '',
        sender_id: '',
        sender_name: '',
        message: 'Session expired 👍 ',
        channel_name: '',
        post_id: '',
        override_username: '',
        override_icon_url: '',
        from_webhook: '',
      }),
    );
  });

  it('root_id is sent only when non-empty', () => {
    assert.equal(data({ ...FULL, root_id: 'root1' }).root_id, 'root1');
    assert.equal('root_id' in data({ ...FULL, root_id: '' }), false);
    assert.deepEqual(data({ ...FULL, root_id: 'root1' }), { ...data(FULL), root_id: 'root1' });
  });
});

describe('buildFcmMessage: types without content', () => {
  it('clear: only the common keys (plus root_id), nothing echoed, no conversion', () => {
    assert.deepEqual(data({ ...FULL, type: 'clear', root_id: 'r1', badge: 0 }), {
      ack_id: 'ack1',
      type: 'clear',
      sub_type: '',
      version: 'v2',
      channel_id: 'ch1',
      is_crt_enabled: 'true',
      server_id: 'srv1',
      category: 'CAN_REPLY',
      signature: 'sig',
      badge: '0',
      root_id: 'r1',
    });
  });

  it('update_badge', () => {
    assert.deepEqual(
      data({ type: 'update_badge', badge: 7, version: 'v2', sound: 'none', cont_ava: 1 }),
      always('update_badge', { badge: '7', version: 'v2' }),
    );
  });

  it('test (System Console): badge -1 leaves the badge key out', () => {
    assert.deepEqual(data({ type: 'test', badge: -1, version: '2', message: 'test :smile:' }), {
      ack_id: '',
      type: 'test',
      sub_type: '',
      version: '2',
      channel_id: '',
      is_crt_enabled: 'false',
      server_id: 'srv1',
      category: '',
      signature: 'NO_SIGNATURE',
    });
  });

  it('empty and unknown types: the minimal push', () => {
    assert.deepEqual(data({ type: '' }), always(''));
    assert.deepEqual(data({ type: 'something-new', message: 'x :smile:', sender_name: 'alice' }), always('something-new'));
  });
});

describe('buildFcmMessage: ID-loaded pushes', () => {
  const idLoadedExtras = (message: string): Record<string, string> => ({
    post_id: 'p1',
    message,
    id_loaded: 'true',
    sender_id: 'u1',
    sender_name: 'Someone',
    team_id: 'team1',
  });
  for (const type of ['message', 'session', 'clear', 'update_badge', 'test', '']) {
    it(`${type || '(empty type)'}: raw message, sender_name forced to Someone, no channel_name or overrides`, () => {
      assert.deepEqual(data({ ...FULL, type, is_id_loaded: true, message: 'You have a new message :smile:' }), {
        ack_id: 'ack1',
        type,
        sub_type: '',
        version: 'v2',
        channel_id: 'ch1',
        is_crt_enabled: 'true',
        server_id: 'srv1',
        category: 'CAN_REPLY',
        signature: 'sig',
        badge: '3',
        ...idLoadedExtras('You have a new message :smile:'),
      });
    });
  }

  it('keys present even when empty; sender_name Someone even when the server sent none', () => {
    assert.deepEqual(
      data({ type: 'message', is_id_loaded: true }),
      always('message', { post_id: '', message: '', id_loaded: 'true', sender_id: '', sender_name: 'Someone', team_id: '' }),
    );
  });
});

describe('buildFcmMessage: field rules', () => {
  it('badge: -1 absent, 0 and an absent badge "0", 5 "5"', () => {
    assert.equal('badge' in data({ type: 'message', badge: -1 }), false);
    assert.equal(data({ type: 'message', badge: 0 }).badge, '0');
    assert.equal(data({ type: 'message' }).badge, '0');
    assert.equal(data({ type: 'message', badge: 5 }).badge, '5');
    assert.deepEqual(data({ type: 'clear', badge: 5 }), always('clear', { badge: '5' }));
  });

  it('is_crt_enabled is the string "true" or "false"', () => {
    assert.equal(data({ type: 'clear', is_crt_enabled: true }).is_crt_enabled, 'true');
    assert.equal(data({ type: 'clear', is_crt_enabled: false }).is_crt_enabled, 'false');
  });

  it('signature: echoed, NO_SIGNATURE when empty', () => {
    assert.equal(data({ type: 'clear', signature: 'eyJhbGciOi.sig' }).signature, 'eyJhbGciOi.sig');
    assert.equal(data({ type: 'clear', signature: '' }).signature, 'NO_SIGNATURE');
  });

  it('emoji is converted only in message/session pushes that are not ID-loaded; other fields never', () => {
    const fields = { ...FULL, channel_name: ':smile: room', sender_name: ':smile:', message: ':smile:' };
    assert.equal(data({ ...fields, type: 'message' }).message, '😄 ');
    assert.equal(data({ ...fields, type: 'session' }).message, '😄 ');
    assert.equal(data({ ...fields, type: 'message' }).channel_name, ':smile: room');
    assert.equal(data({ ...fields, type: 'message' }).sender_name, ':smile:');
    assert.equal(data({ ...fields, type: 'message', is_id_loaded: true }).message, ':smile:');
    assert.equal(data({ ...fields, type: 'session', is_id_loaded: true }).message, ':smile:');
  });

  it('transport voip is ignored: the same data push as standard', () => {
    for (const type of ['message', 'clear', 'test']) {
      assert.deepEqual(
        buildFcmMessage(push({ ...FULL, type, transport: 'voip' })),
        buildFcmMessage(push({ ...FULL, type, transport: '' })),
      );
    }
  });

  it('sound and cont_ava are never sent', () => {
    const keys = Object.keys(data({ ...FULL, sound: 'default', cont_ava: 1 }));
    assert.equal(keys.includes('sound'), false);
    assert.equal(keys.includes('cont_ava'), false);
  });

  it('does not modify the notification it is given', () => {
    const n = push(FULL);
    const copy = structuredClone(n);
    buildFcmMessage(n);
    assert.deepEqual(n, copy);
  });
});
