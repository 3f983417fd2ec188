/**
 * Byte budgets for what Apple and Google accept, measured as sent: after emoji conversion and JSON encoding,
 * exactly the bytes the transports put on the wire. Apple refuses an APNs body over 4096 bytes (5120 for a
 * VoIP push); Google refuses a message whose data map is over 4096 bytes. Google counts the data map's keys
 * and values; the budget here is the JSON text of the data object (`{"key":"value",…}`), which is never less,
 * so a message that fits this budget fits Google's count too.
 *
 * A payload that fits is sent as built. One that does not is shortened, free text only, in this order:
 * sender name and override username to FREE_TEXT_CAP_BYTES each; then the message; then the override
 * username, the sender name and the channel name, as far as needed. Ids, the signature, the icon URL and the
 * other fields lose their meaning when cut: if the payload still does not fit with every free-text field
 * empty, building fails with PayloadTooLargeError naming the largest of them.
 */
import type { PushNotification } from '../notification';
import { emojize } from './emoji';

export const APNS_PAYLOAD_LIMIT_BYTES = 4096;
export const APNS_VOIP_PAYLOAD_LIMIT_BYTES = 5120;
export const FCM_DATA_LIMIT_BYTES = 4096;
/** Sender name and override username keep this many bytes (as sent) before the message is cut at all. */
export const FREE_TEXT_CAP_BYTES = 256;
/** docs/protocol.md, The send_push request: an empty `signature` is sent as this, on both services. */
export const NO_SIGNATURE = 'NO_SIGNATURE';

/**
 * JSON bytes of any payload shape apart from the notification's own strings: keys, quotes, commas, booleans,
 * the badge (at most 20 digits), `NO_SIGNATURE`, `Someone`. The largest shape (APNs standard, every key set)
 * is about 440 bytes; the tests check both bounds below against the measured size.
 */
const SKELETON_BYTES = 512;
/** The most JSON bytes one UTF-16 unit can take: a control character or a lone surrogate becomes `\uXXXX`. */
const WORST_BYTES_PER_UNIT = 6;
/** The most for any other unit: 3 bytes of UTF-8, or a two-character escape (`\"`, `\\`, `\n`). */
const PLAIN_BYTES_PER_UNIT = 3;

export class PayloadTooLargeError extends Error {
  constructor(
    /** The largest field that cannot be shortened (`signature`, `override_icon_url`, …). */
    readonly field: string,
    readonly fieldBytes: number,
    /** Bytes as sent with every free-text field emptied. */
    readonly bytes: number,
    readonly limit: number,
    what: string,
    serverId: string,
  ) {
    super(
      `Did not send message because the ${what} would be ${bytes} bytes with message and names emptied, over its limit of ${limit}; ` +
        `the largest field that cannot be shortened is ${field} (${fieldBytes} bytes as sent) serverId=${serverId}`,
    );
    this.name = 'PayloadTooLargeError';
  }
}

/** How one builder's output is built and measured. `text` is the message exactly as it is sent. */
export interface FitSpec<Built, Context> {
  limit: number;
  /** Names what is limited, for the error: `APNs payload`, `FCM data`. */
  what: string;
  build(n: PushNotification, text: string, context: Context): Built;
  /** The part of the built request the limit applies to (the APNs payload, the FCM data), serialized as sent. */
  limitedPart(built: Built): object;
}

/**
 * The built payload, shortened to the provider's limit when needed. The hot path: a notification whose size is
 * bounded well within the limit (fitsWithoutMeasuring) is built once and never serialized here.
 */
export function fitPayload<Built, Context>(n: PushNotification, text: string, context: Context, spec: FitSpec<Built, Context>): Built {
  const built = spec.build(n, text, context);
  if (fitsWithoutMeasuring(n, text, spec.limit)) return built;
  const size = jsonBytes(spec.limitedPart(built));
  if (size <= spec.limit) return built;
  return shorten(n, text, context, spec, built, size);
}

/** The message as both builders send it: raw for an ID-loaded push, emoji-converted for a message or session, else not sent. */
export function messageAsSent(n: PushNotification): string {
  if (n.is_id_loaded) return n.message;
  return n.type === 'message' || n.type === 'session' ? emojize(n.message) : '';
}

/**
 * Whether any builder's output is surely within `limit` without serializing it, by two bounds on its size:
 * every string unit at its worst escaping (6 bytes), which costs nothing; else, when no string holds a
 * character escaped as `\uXXXX` (a control character other than \b \t \n \f \r, or a lone surrogate), every
 * unit at 3 bytes. A real notification (an ES256 signature of some 400 characters, a handful of ids, a short
 * message) fails the first and passes the second, for one regular-expression scan per field.
 */
export function fitsWithoutMeasuring(n: PushNotification, text: string, limit: number): boolean {
  const units = stringUnits(n, text);
  if (SKELETON_BYTES + WORST_BYTES_PER_UNIT * units <= limit) return true;
  return SKELETON_BYTES + PLAIN_BYTES_PER_UNIT * units <= limit && !hasWideEscape(n, text);
}

/** The first bound: every string counted at its worst escaping. */
export function upperBoundBytes(n: PushNotification, text: string): number {
  return SKELETON_BYTES + WORST_BYTES_PER_UNIT * stringUnits(n, text);
}

/** UTF-16 units of every string any builder may send; channel and thread ids and the channel name count twice. */
function stringUnits(n: PushNotification, text: string): number {
  return (
    n.ack_id.length +
    n.server_id.length +
    n.post_id.length +
    n.category.length +
    n.team_id.length +
    2 * (n.channel_id.length + n.root_id.length + n.channel_name.length) +
    n.type.length +
    n.sub_type.length +
    n.sender_id.length +
    n.sender_name.length +
    n.override_username.length +
    n.override_icon_url.length +
    n.from_webhook.length +
    n.version.length +
    n.signature.length +
    text.length
  );
}

/** With the `u` flag a surrogate range matches only lone surrogates: a pair is one code point, 4 bytes for 2 units. */
// Control characters on purpose: JSON writes each of these as a six-byte \u00XX escape.
// eslint-disable-next-line no-control-regex
const WIDE_ESCAPE = /[\u0000-\u0007\u000b\u000e-\u001f\ud800-\udfff]/u;

function hasWideEscape(n: PushNotification, text: string): boolean {
  return (
    WIDE_ESCAPE.test(text) ||
    WIDE_ESCAPE.test(n.signature) ||
    WIDE_ESCAPE.test(n.ack_id) ||
    WIDE_ESCAPE.test(n.server_id) ||
    WIDE_ESCAPE.test(n.post_id) ||
    WIDE_ESCAPE.test(n.category) ||
    WIDE_ESCAPE.test(n.team_id) ||
    WIDE_ESCAPE.test(n.channel_id) ||
    WIDE_ESCAPE.test(n.root_id) ||
    WIDE_ESCAPE.test(n.channel_name) ||
    WIDE_ESCAPE.test(n.type) ||
    WIDE_ESCAPE.test(n.sub_type) ||
    WIDE_ESCAPE.test(n.sender_id) ||
    WIDE_ESCAPE.test(n.sender_name) ||
    WIDE_ESCAPE.test(n.override_username) ||
    WIDE_ESCAPE.test(n.override_icon_url) ||
    WIDE_ESCAPE.test(n.from_webhook) ||
    WIDE_ESCAPE.test(n.version)
  );
}

function jsonBytes(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value), 'utf8');
}

type FreeField = 'message' | 'override_username' | 'sender_name' | 'channel_name';
/** What is given up first when even the capped names leave no room: the message, then the names. */
const SHORTEN_ORDER: readonly FreeField[] = ['message', 'override_username', 'sender_name', 'channel_name'];

function shorten<Built, Context>(
  n: PushNotification,
  originalText: string,
  context: Context,
  spec: FitSpec<Built, Context>,
  whole: Built,
  measured: number,
): Built {
  let text = originalText;
  let fields = n;
  let built = whole;
  let size = measured;

  const sender = cutToJsonBytes(n.sender_name, FREE_TEXT_CAP_BYTES);
  const username = cutToJsonBytes(n.override_username, FREE_TEXT_CAP_BYTES);
  if (sender !== n.sender_name || username !== n.override_username) {
    fields = { ...n, sender_name: sender, override_username: username };
    built = spec.build(fields, text, context);
    size = jsonBytes(spec.limitedPart(built));
    if (size <= spec.limit) return built;
  }

  // Each field's JSON bytes are additive: cutting `excess` bytes from a field that is sent at least once
  // brings the payload down by at least `excess`. A field not sent in this shape changes nothing: next one.
  for (const field of SHORTEN_ORDER) {
    const value = field === 'message' ? text : fields[field];
    const bytes = jsonStringBytes(value);
    if (bytes === 0) continue;
    const cut = cutToJsonBytes(value, Math.max(0, bytes - (size - spec.limit)));
    if (field === 'message') text = cut;
    else fields = { ...fields, [field]: cut };
    built = spec.build(fields, text, context);
    size = jsonBytes(spec.limitedPart(built));
    if (size <= spec.limit) return built;
  }
  const [field, fieldBytes] = largestString(spec.limitedPart(built));
  throw new PayloadTooLargeError(field, fieldBytes, size, spec.limit, spec.what, n.server_id);
}

/** Payload keys that are not the notification's field names. */
const FIELD_OF_KEY: Readonly<Record<string, string>> = { thread_id: 'root_id' };
/** `aps.thread-id` repeats the channel id or the root id, both also sent under their own names. */
const REPEATED_KEY = 'thread-id';

/** The longest string of a payload (root and `aps`) or data map, named by its notification field. */
function largestString(limited: object): [string, number] {
  let best: [string, number] = ['payload', 0];
  const visit = (object: Record<string, unknown>): void => {
    for (const [key, value] of Object.entries(object)) {
      if (key === REPEATED_KEY) continue;
      if (typeof value === 'string') {
        const bytes = jsonStringBytes(value);
        if (bytes > best[1]) best = [FIELD_OF_KEY[key] ?? key, bytes];
      } else if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
        visit(value as Record<string, unknown>);
      }
    }
  };
  visit(limited as Record<string, unknown>);
  return best;
}

/** JSON bytes of one UTF-16 unit that is not part of a surrogate pair, as JSON.stringify escapes it. */
function unitBytes(c: number): number {
  if (c < 0x20) return c === 0x08 || c === 0x09 || c === 0x0a || c === 0x0c || c === 0x0d ? 2 : 6;
  if (c < 0x80) return c === 0x22 || c === 0x5c ? 2 : 1;
  if (c < 0x800) return 2;
  if (c >= 0xd800 && c <= 0xdfff) return 6; // a lone surrogate: JSON.stringify writes \udXXX
  return 3;
}

function isHighSurrogate(c: number): boolean {
  return c >= 0xd800 && c <= 0xdbff;
}

function isLowSurrogate(c: number): boolean {
  return c >= 0xdc00 && c <= 0xdfff;
}

/** Bytes of `text` inside a JSON string as JSON.stringify writes it, quotes not counted. */
export function jsonStringBytes(text: string): number {
  let bytes = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (isHighSurrogate(c) && i + 1 < n && isLowSurrogate(text.charCodeAt(i + 1))) {
      bytes += 4;
      i++;
    } else {
      bytes += unitBytes(c);
    }
  }
  return bytes;
}

const GRAPHEMES = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

/**
 * The longest prefix of `text` whose JSON bytes (quotes not counted) are at most `maxBytes`. The cut falls
 * between user-perceived characters (an emoji with its modifiers, a letter with its combining marks, a flag)
 * when that leaves anything; otherwise between code points. It never splits a surrogate pair, and since it
 * cuts the text before encoding, never an escape.
 */
export function cutToJsonBytes(text: string, maxBytes: number): string {
  const n = text.length;
  let used = 0;
  let end = 0;
  while (end < n) {
    const c = text.charCodeAt(end);
    const paired = isHighSurrogate(c) && end + 1 < n && isLowSurrogate(text.charCodeAt(end + 1));
    const bytes = paired ? 4 : unitBytes(c);
    if (used + bytes > maxBytes) break;
    used += bytes;
    end += paired ? 2 : 1;
  }
  if (end === n) return text;
  // The grapheme that `end` falls in starts at or before it; cutting at its start keeps it whole.
  const start = GRAPHEMES.segment(text).containing(end)?.index ?? end;
  return text.slice(0, start > 0 ? start : end);
}
