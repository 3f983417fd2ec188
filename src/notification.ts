/**
 * What a chat server sends and what it gets back: the Mattermost server model
 * (`model.PushNotification`, `model.PushNotificationAck`) with Go's zero values filled in.
 */

export interface PushNotification {
  ack_id: string;
  platform: string;
  server_id: string;
  device_id: string;
  post_id: string;
  category: string;
  sound: string;
  message: string;
  /** -1 means "do not touch the badge"; an absent badge is 0. */
  badge: number;
  cont_ava: number;
  team_id: string;
  channel_id: string;
  root_id: string;
  channel_name: string;
  type: string;
  sub_type: string;
  /** "voip" selects Apple's PushKit path; anything else is standard. */
  transport: string;
  sender_id: string;
  sender_name: string;
  override_username: string;
  override_icon_url: string;
  from_webhook: string;
  version: string;
  is_crt_enabled: boolean;
  is_id_loaded: boolean;
  signature: string;
}

export interface PushAck {
  id: string;
  received_at: number;
  platform: string;
  type: string;
  post_id: string;
  is_id_loaded: boolean;
}

/** The answer a chat server acts on. Only string values: servers decode it into map[string]string. */
export type PushResponse = { status: 'OK' } | { status: 'REMOVE' } | { status: 'FAIL'; error: string };

export function emptyPushNotification(): PushNotification {
  return {
    ack_id: '',
    platform: '',
    server_id: '',
    device_id: '',
    post_id: '',
    category: '',
    sound: '',
    message: '',
    badge: 0,
    cont_ava: 0,
    team_id: '',
    channel_id: '',
    root_id: '',
    channel_name: '',
    type: '',
    sub_type: '',
    transport: '',
    sender_id: '',
    sender_name: '',
    override_username: '',
    override_icon_url: '',
    from_webhook: '',
    version: '',
    is_crt_enabled: false,
    is_id_loaded: false,
    signature: '',
  };
}

export function emptyPushAck(): PushAck {
  return { id: '', received_at: 0, platform: '', type: '', post_id: '', is_id_loaded: false };
}
