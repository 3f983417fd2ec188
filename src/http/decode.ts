/**
 * Request bodies decoded the way the original's Go JSON decoder does (docs/protocol.md, The send_push request):
 * only the first JSON value counts, keys match struct tags case-insensitively, `null` keeps the field,
 * a wrong JSON type is an error, and every error reads as Go's text so the FAIL body stays the same.
 *
 * A hand-written scanner checks the syntax of the first value with Go's error texts and records where the
 * top-level members are; only members naming a field are then decoded (nested values are never parsed,
 * so depth and size cannot hurt), folded onto the struct's tags and type-checked with ajv.
 */
import { isUtf8 } from 'node:buffer';
import Ajv, { type ValidateFunction } from 'ajv';
import { emptyPushAck, emptyPushNotification, type PushAck, type PushNotification } from '../notification';

export type Decoded<T> = { ok: true; value: T } | { ok: false; error: string };

export function decodePushNotification(body: Buffer): Decoded<PushNotification> {
  return decodeStruct(body, PUSH_NOTIFICATION);
}

export function decodePushAck(body: Buffer): Decoded<PushAck> {
  return decodeStruct(body, PUSH_NOTIFICATION_ACK);
}

const MAX_NESTING_DEPTH = 10000; // Go's encoding/json limit, with the same error
const STRING_ESCAPED = 1;
const STRING_NON_ASCII = 2;
const STRING_UNICODE_ESCAPE = 4;

/** The bytes the decoder looks at (a const enum: tsc writes the numbers in place). */
// prettier-ignore
const enum Char {
  TAB = 0x09, LF = 0x0a, CR = 0x0d, SPACE = 0x20, QUOTE = 0x22, PLUS = 0x2b, COMMA = 0x2c, MINUS = 0x2d, DOT = 0x2e,
  SLASH = 0x2f, DIGIT_0 = 0x30, DIGIT_9 = 0x39, COLON = 0x3a, E = 0x45, LBRACKET = 0x5b, BACKSLASH = 0x5c,
  RBRACKET = 0x5d, a = 0x61, b = 0x62, e = 0x65, f = 0x66, n = 0x6e, r = 0x72, t = 0x74, u = 0x75, z = 0x7a,
  LBRACE = 0x7b, RBRACE = 0x7d,
}

type GoType = 'string' | 'int' | 'int64' | 'bool';

/** Go's names for JSON kinds, as they appear in UnmarshalTypeError texts. */
type JsonKind = 'string' | 'number' | 'bool' | 'null' | 'object' | 'array';

interface FieldSpec {
  readonly tag: string;
  readonly goType: GoType;
  readonly index: number;
}

interface StructSpec<T> {
  /** Type name in "into Go value of type …" (the original decodes into the server's `model` package). */
  readonly qualifiedName: string;
  /** Struct name in "into Go struct field <name>.<tag> …". */
  readonly structName: string;
  readonly fields: readonly FieldSpec[];
  readonly fieldsByTag: ReadonlyMap<string, FieldSpec>;
  readonly fieldsByFoldedTag: ReadonlyMap<string, FieldSpec>;
  readonly validate: ValidateFunction;
  readonly empty: () => T;
}

const ajv = new Ajv({ allErrors: true, allowUnionTypes: true });

const PUSH_NOTIFICATION = defineStruct<PushNotification>('model', 'PushNotification', emptyPushNotification, {
  ack_id: 'string',
  platform: 'string',
  server_id: 'string',
  device_id: 'string',
  post_id: 'string',
  category: 'string',
  sound: 'string',
  message: 'string',
  badge: 'int',
  cont_ava: 'int',
  team_id: 'string',
  channel_id: 'string',
  root_id: 'string',
  channel_name: 'string',
  type: 'string',
  sub_type: 'string',
  transport: 'string',
  sender_id: 'string',
  sender_name: 'string',
  override_username: 'string',
  override_icon_url: 'string',
  from_webhook: 'string',
  version: 'string',
  is_crt_enabled: 'bool',
  is_id_loaded: 'bool',
  signature: 'string',
});

const PUSH_NOTIFICATION_ACK = defineStruct<PushAck>('model', 'PushNotificationAck', emptyPushAck, {
  id: 'string',
  received_at: 'int64',
  platform: 'string',
  type: 'string',
  post_id: 'string',
  is_id_loaded: 'bool',
});

function defineStruct<T extends object>(
  goPackage: string,
  structName: string,
  empty: () => T,
  goTypes: { readonly [K in keyof T & string]: GoType },
): StructSpec<T> {
  const fields = (Object.keys(goTypes) as (keyof T & string)[]).map((tag, index): FieldSpec => ({ tag, goType: goTypes[tag], index }));
  // foldWellTyped marks the fields it has seen in the bits of one int32.
  if (fields.length > 31) throw new Error(`${structName} has more than 31 fields`);
  const properties: Record<string, { type: [string, 'null'] }> = {};
  for (const field of fields) {
    const jsonType = field.goType === 'bool' ? 'boolean' : field.goType === 'string' ? 'string' : 'integer';
    properties[field.tag] = { type: [jsonType, 'null'] };
  }
  return {
    qualifiedName: `${goPackage}.${structName}`,
    structName,
    fields,
    fieldsByTag: new Map(fields.map((field) => [field.tag, field])),
    fieldsByFoldedTag: new Map(fields.map((field) => [foldKey(field.tag), field])),
    validate: ajv.compile({ type: 'object', properties }),
    empty,
  };
}

function decodeStruct<T extends object>(body: Buffer, spec: StructSpec<T>): Decoded<T> {
  try {
    const scanned = new FirstValueScanner(body).scan();
    if (!scanned.ok) return scanned;
    if (scanned.kind === 'null') return { ok: true, value: spec.empty() };
    if (scanned.kind !== 'object') {
      return { ok: false, error: `json: cannot unmarshal ${scanned.kind} into Go value of type ${spec.qualifiedName}` };
    }
    // One copy of the body, byte for char: ASCII keys and values are slices of it, not a native call each.
    const latin1 = body.toString('latin1');
    return foldWellTyped(body, latin1, scanned.members, spec) ?? foldMembers(body, latin1, scanned.members, spec);
  } catch (err) {
    // Not reachable by design (the property test checks it); a request must never take the server down.
    return { ok: false, error: `json: ${err instanceof Error ? err.message : String(err)}` };
  }
}

/** One member of the top-level object that names a field, with its value decoded. */
interface Occurrence {
  readonly field: FieldSpec;
  /** Position among the object's members: Go reports the first type error in document order. */
  readonly order: number;
  readonly kind: JsonKind;
  /** Source text of a number; Go's int fields accept only plain integer literals. */
  readonly literal: string;
  readonly value: unknown;
}

/**
 * The common case in one pass, straight into the struct: each field named at most once, with a value of its
 * type. Anything else (a repeated field, a value ajv refuses, a number Go's ints do not take) returns
 * undefined, and foldMembers works out which error Go reports.
 */
function foldWellTyped<T extends object>(
  body: Buffer,
  latin1: string,
  members: readonly Member[],
  spec: StructSpec<T>,
): Decoded<T> | undefined {
  const value = spec.empty() as Record<string, unknown>;
  let seen = 0;
  for (let order = 0; order < members.length; order++) {
    const member = members[order];
    const key = decodeString(body, latin1, member.keyStart, member.keyEnd, member.keyFlags);
    const field = spec.fieldsByTag.get(key) ?? spec.fieldsByFoldedTag.get(foldKey(key));
    if (field === undefined) continue;
    const c = body[member.valueStart];
    if (c === Char.n) continue;
    const bit = 1 << field.index;
    if ((seen & bit) !== 0) return undefined;
    seen |= bit;
    if (c === Char.QUOTE) {
      value[field.tag] = decodeString(body, latin1, member.valueStart, member.valueEnd, member.valueFlags);
    } else if (c === Char.t || c === Char.f) {
      value[field.tag] = c === Char.t;
    } else if (c === Char.MINUS || (c >= Char.DIGIT_0 && c <= Char.DIGIT_9)) {
      const literal = latin1.slice(member.valueStart, member.valueEnd);
      if (field.goType !== 'string' && field.goType !== 'bool' && !isGoInt64Literal(literal)) return undefined;
      value[field.tag] = Number(literal) || 0; // `-0` is Go's 0
    } else {
      return undefined; // an object or array: no field takes one
    }
  }
  return spec.validate(value) ? { ok: true, value: value as T } : undefined;
}

/** Every member decoded and type-checked as Go does, to find the first error in document order. */
function foldMembers<T extends object>(body: Buffer, latin1: string, members: readonly Member[], spec: StructSpec<T>): Decoded<T> {
  const winners: (Occurrence | undefined)[] = new Array(spec.fields.length);
  let shadowed: Occurrence[] | undefined;
  let firstError: { order: number; text: string } | undefined;
  const noteError = (occurrence: Occurrence): void => {
    if (firstError === undefined || occurrence.order < firstError.order) {
      firstError = { order: occurrence.order, text: typeErrorText(spec, occurrence) };
    }
  };

  for (let order = 0; order < members.length; order++) {
    const member = members[order];
    const key = decodeString(body, latin1, member.keyStart, member.keyEnd, member.keyFlags);
    const field = spec.fieldsByTag.get(key) ?? spec.fieldsByFoldedTag.get(foldKey(key));
    if (field === undefined) continue;
    const kind = kindOfValueAt(body[member.valueStart]);
    if (kind === 'null') continue;
    const occurrence = decodeOccurrence(body, latin1, member, field, kind, order);
    if (occurrence.kind === 'number' && field.goType !== 'string' && field.goType !== 'bool' && !isGoInt64Literal(occurrence.literal)) {
      noteError(occurrence);
    }
    const earlier = winners[field.index];
    // A value that a later key replaces is still decoded, and type-checked, by Go.
    if (earlier !== undefined) (shadowed ??= []).push(earlier);
    winners[field.index] = occurrence;
  }

  // The struct itself is what ajv checks: its defaults are always valid, so only decoded values can fail.
  const value = spec.empty();
  for (const occurrence of winners) {
    if (occurrence !== undefined) (value as Record<string, unknown>)[occurrence.field.tag] = occurrence.value;
  }
  if (!spec.validate(value)) {
    for (const error of spec.validate.errors ?? []) {
      const field = spec.fieldsByTag.get(error.instancePath.slice(1));
      const occurrence = field === undefined ? undefined : winners[field.index];
      if (occurrence !== undefined) noteError(occurrence);
    }
  }
  for (const occurrence of shadowed ?? []) {
    const single: Record<string, unknown> = Object.create(null);
    single[occurrence.field.tag] = occurrence.value;
    if (!spec.validate(single)) noteError(occurrence);
  }
  if (firstError !== undefined) return { ok: false, error: firstError.text };
  return { ok: true, value };
}

function decodeOccurrence(body: Buffer, latin1: string, member: Member, field: FieldSpec, kind: JsonKind, order: number): Occurrence {
  let literal = '';
  let value: unknown;
  switch (kind) {
    case 'string':
      value = decodeString(body, latin1, member.valueStart, member.valueEnd, member.valueFlags);
      break;
    case 'number':
      literal = latin1.slice(member.valueStart, member.valueEnd);
      value = Number(literal) || 0; // `-0` is Go's 0
      break;
    case 'bool':
      value = body[member.valueStart] === Char.t;
      break;
    // Only the kind matters: no field takes a container, so the content is never parsed.
    case 'object':
      value = {};
      break;
    case 'array':
      value = [];
      break;
  }
  return { field, order, kind, literal, value };
}

function typeErrorText(spec: StructSpec<unknown>, occurrence: Occurrence): string {
  const { field, kind, literal } = occurrence;
  // Go names the literal only when it tried, and failed, to parse it as an integer.
  const what = kind === 'number' && (field.goType === 'int' || field.goType === 'int64') ? `number ${literal}` : kind;
  return `json: cannot unmarshal ${what} into Go struct field ${spec.structName}.${field.tag} of type ${field.goType}`;
}

/** What strconv.ParseInt(s, 10, 64) accepts of a JSON number: no fraction, no exponent, within int64. */
function isGoInt64Literal(literal: string): boolean {
  const negative = literal.charCodeAt(0) === Char.MINUS;
  const digits = negative ? literal.slice(1) : literal;
  for (let i = 0; i < digits.length; i++) {
    const c = digits.charCodeAt(i);
    if (c < Char.DIGIT_0 || c > Char.DIGIT_9) return false;
  }
  if (digits.length !== 19) return digits.length < 19;
  return digits <= (negative ? '9223372036854775808' : '9223372036854775807');
}

/**
 * Go's key fold (encoding/json foldName) restricted to what can equal an ASCII tag: ASCII letters fold to
 * upper case, and the only non-ASCII runes whose fold set holds an ASCII letter are ſ (s) and K (Kelvin, k).
 * Every other character is kept, so it can match no tag.
 */
function foldKey(key: string): string {
  let folded = '';
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c >= Char.a && c <= Char.z) folded += String.fromCharCode(c - 0x20);
    else if (c === 0x017f) folded += 'S';
    else if (c === 0x212a) folded += 'K';
    else folded += key[i];
  }
  return folded;
}

// ---------------------------------------------------------------------------------------------------------
// Scanner

/** Byte offsets of one member of the top-level object; key and string value spans include the quotes. */
interface Member {
  readonly keyStart: number;
  readonly keyEnd: number;
  readonly keyFlags: number;
  readonly valueStart: number;
  valueEnd: number;
  valueFlags: number;
}

type ScanResult = { ok: true; kind: JsonKind; members: Member[] } | { ok: false; error: string };

function kindOfValueAt(c: number | undefined): JsonKind {
  switch (c) {
    case Char.QUOTE:
      return 'string';
    case Char.LBRACE:
      return 'object';
    case Char.LBRACKET:
      return 'array';
    case Char.t:
    case Char.f:
      return 'bool';
    case Char.n:
      return 'null';
    default:
      return 'number';
  }
}

/**
 * Finds the end of the first JSON value like Go's Decoder.readValue: errors name the first offending byte in
 * Go's words, running out of bytes mid-value is `unexpected EOF`, and whatever follows the value is not read.
 */
class FirstValueScanner {
  private error = '';
  /** Flags of the string scanned last. */
  private stringFlags = 0;
  private kind: JsonKind = 'null';
  private readonly members: Member[] = [];

  constructor(private readonly buf: Buffer) {}

  scan(): ScanResult {
    return this.firstValue() < 0 ? { ok: false, error: this.error } : { ok: true, kind: this.kind, members: this.members };
  }

  /** Returns where the first value ends, or -1 with the error set. */
  private firstValue(): number {
    const buf = this.buf;
    const len = buf.length;
    let i = this.skipSpace(0);
    if (i === len) {
      this.error = 'EOF';
      return -1;
    }
    this.kind = kindOfValueAt(buf[i]);
    const members = this.kind === 'object' ? this.members : undefined;
    const inObject: boolean[] = []; // open containers, innermost last

    for (;;) {
      // A value starts at i.
      if (i >= len) return this.unexpectedEof();
      const c = buf[i];
      if (c === Char.LBRACE) {
        if (inObject.push(true) > MAX_NESTING_DEPTH) return this.invalid(c, 'exceeded max depth');
        i = this.skipSpace(i + 1);
        if (i >= len) return this.unexpectedEof();
        if (buf[i] !== Char.RBRACE) {
          i = this.objectKey(i, inObject.length === 1 ? members : undefined);
          if (i < 0) return i;
          continue;
        }
        inObject.pop();
        i++;
      } else if (c === Char.LBRACKET) {
        if (inObject.push(false) > MAX_NESTING_DEPTH) return this.invalid(c, 'exceeded max depth');
        i = this.skipSpace(i + 1);
        if (i >= len) return this.unexpectedEof();
        if (buf[i] !== Char.RBRACKET) continue;
        inObject.pop();
        i++;
      } else {
        if (c === Char.QUOTE) i = this.string(i);
        else if (c === Char.MINUS || (c >= Char.DIGIT_0 && c <= Char.DIGIT_9)) i = this.number(i);
        else if (c === Char.t) i = this.literal(i, 'true');
        else if (c === Char.f) i = this.literal(i, 'false');
        else if (c === Char.n) i = this.literal(i, 'null');
        else i = this.invalid(c, 'looking for beginning of value');
        if (i < 0) return i;
      }

      // A value ended at i: close containers until one expects another element.
      for (;;) {
        const depth = inObject.length;
        if (depth === 0) return i;
        if (members !== undefined && depth === 1) {
          const member = members[members.length - 1];
          member.valueEnd = i;
          member.valueFlags = this.stringFlags;
        }
        i = this.skipSpace(i);
        if (i >= len) return this.unexpectedEof();
        const d = buf[i];
        if (inObject[depth - 1]) {
          if (d === Char.COMMA) {
            i = this.objectKey(this.skipSpace(i + 1), depth === 1 ? members : undefined);
            if (i < 0) return i;
            break;
          }
          if (d !== Char.RBRACE) return this.invalid(d, 'after object key:value pair');
        } else {
          if (d === Char.COMMA) {
            i = this.skipSpace(i + 1);
            break;
          }
          if (d !== Char.RBRACKET) return this.invalid(d, 'after array element');
        }
        inObject.pop();
        i++;
      }
    }
  }

  /** Reads `"key" :` from i; returns where the value starts (spaces skipped). */
  private objectKey(i: number, members: Member[] | undefined): number {
    const buf = this.buf;
    if (i >= buf.length) return this.unexpectedEof();
    if (buf[i] !== Char.QUOTE) return this.invalid(buf[i], 'looking for beginning of object key string');
    const keyStart = i;
    i = this.string(i);
    if (i < 0) return i;
    const keyEnd = i;
    const keyFlags = this.stringFlags;
    i = this.skipSpace(i);
    if (i >= buf.length) return this.unexpectedEof();
    if (buf[i] !== Char.COLON) return this.invalid(buf[i], 'after object key');
    i = this.skipSpace(i + 1);
    members?.push({ keyStart, keyEnd, keyFlags, valueStart: i, valueEnd: i, valueFlags: 0 });
    return i;
  }

  private string(i: number): number {
    const buf = this.buf;
    const len = buf.length;
    let flags = 0;
    i++;
    while (i < len) {
      const c = buf[i];
      if (c === Char.QUOTE) {
        this.stringFlags = flags;
        return i + 1;
      }
      if (c === Char.BACKSLASH) {
        flags |= STRING_ESCAPED;
        if (++i >= len) break;
        const e = buf[i];
        if (e === Char.u) {
          flags |= STRING_UNICODE_ESCAPE;
          for (let k = 0; k < 4; k++) {
            if (++i >= len) return this.unexpectedEof();
            if (!isHexDigit(buf[i])) return this.invalid(buf[i], 'in \\u hexadecimal character escape');
          }
        } else if (
          e !== Char.QUOTE &&
          e !== Char.BACKSLASH &&
          e !== Char.SLASH &&
          e !== Char.b &&
          e !== Char.f &&
          e !== Char.n &&
          e !== Char.r &&
          e !== Char.t
        ) {
          return this.invalid(e, 'in string escape code');
        }
      } else if (c < Char.SPACE) {
        return this.invalid(c, 'in string literal');
      } else if (c >= 0x80) {
        flags |= STRING_NON_ASCII;
      }
      i++;
    }
    return this.unexpectedEof();
  }

  private number(i: number): number {
    const buf = this.buf;
    const len = buf.length;
    if (buf[i] === Char.MINUS) {
      if (++i >= len) return this.unexpectedEof();
      if (!isDigit(buf[i])) return this.invalid(buf[i], 'in numeric literal');
    }
    if (buf[i++] !== Char.DIGIT_0) while (i < len && isDigit(buf[i])) i++;
    if (i < len && buf[i] === Char.DOT) {
      if (++i >= len) return this.unexpectedEof();
      if (!isDigit(buf[i])) return this.invalid(buf[i], 'after decimal point in numeric literal');
      while (i < len && isDigit(buf[i])) i++;
    }
    if (i < len && (buf[i] === Char.e || buf[i] === Char.E)) {
      if (++i < len && (buf[i] === Char.PLUS || buf[i] === Char.MINUS)) i++;
      if (i >= len) return this.unexpectedEof();
      if (!isDigit(buf[i])) return this.invalid(buf[i], 'in exponent of numeric literal');
      while (i < len && isDigit(buf[i])) i++;
    }
    return i;
  }

  private literal(i: number, word: string): number {
    const buf = this.buf;
    for (let k = 1; k < word.length; k++) {
      if (i + k >= buf.length) return this.unexpectedEof();
      const expected = word.charCodeAt(k);
      if (buf[i + k] !== expected) {
        return this.invalid(buf[i + k], `in literal ${word} (expecting ${quoteByte(expected)})`);
      }
    }
    return i + word.length;
  }

  private skipSpace(i: number): number {
    const buf = this.buf;
    while (i < buf.length) {
      const c = buf[i];
      if (c !== Char.SPACE && c !== Char.LF && c !== Char.CR && c !== Char.TAB) break;
      i++;
    }
    return i;
  }

  private invalid(c: number, context: string): -1 {
    this.error = `invalid character ${quoteByte(c)} ${context}`;
    return -1;
  }

  private unexpectedEof(): -1 {
    this.error = 'unexpected EOF';
    return -1;
  }
}

function isDigit(c: number): boolean {
  return c >= Char.DIGIT_0 && c <= Char.DIGIT_9;
}

function isHexDigit(c: number): boolean {
  return (c >= Char.DIGIT_0 && c <= Char.DIGIT_9) || (c >= 0x41 && c <= 0x46) || (c >= Char.a && c <= Char.f);
}

/** The bytes Go's quoteChar writes as a backslash escape (only error texts use it: a Map is fast enough). */
// prettier-ignore
const QUOTED_BYTES = new Map<number, string>([
  [0x27, "'\\''"], [Char.QUOTE, "'\"'"], [Char.BACKSLASH, "'\\\\'"], [0x07, "'\\a'"], [0x08, "'\\b'"], [0x0c, "'\\f'"],
  [Char.LF, "'\\n'"], [Char.CR, "'\\r'"], [Char.TAB, "'\\t'"], [0x0b, "'\\v'"],
]);

/**
 * Go's quoteChar: the byte taken as a Latin-1 rune, written like strconv.Quote but between single quotes.
 * U+0080–U+00A0 and U+00AD are not printable for Go, so they come out as \u escapes.
 */
function quoteByte(c: number): string {
  const escaped = QUOTED_BYTES.get(c);
  if (escaped !== undefined) return escaped;
  const hex = c.toString(16).padStart(2, '0');
  if (c < Char.SPACE || c === 0x7f) return `'\\x${hex}'`;
  if ((c >= 0x80 && c <= 0xa0) || c === 0xad) return `'\\u00${hex}'`;
  return `'${String.fromCharCode(c)}'`;
}

// ---------------------------------------------------------------------------------------------------------
// Strings

/**
 * Decodes a JSON string spanning [start, end) (quotes included) to what Go's unquote gives; `latin1` is the
 * whole buffer decoded as Latin-1, which is the right text for a span of ASCII bytes.
 */
function decodeString(buf: Buffer, latin1: string, start: number, end: number, flags: number): string {
  if ((flags & STRING_ESCAPED) === 0) {
    return (flags & STRING_NON_ASCII) === 0 ? latin1.slice(start + 1, end - 1) : decodeUtf8LikeGo(buf, start + 1, end - 1);
  }
  const source = (flags & STRING_NON_ASCII) === 0 ? latin1.slice(start, end) : decodeUtf8LikeGo(buf, start, end);
  const text = JSON.parse(source) as string;
  // Go turns an unpaired \uD800–\uDFFF escape into U+FFFD; JavaScript keeps the lone surrogate.
  return (flags & STRING_UNICODE_ESCAPE) === 0 ? text : replaceLoneSurrogates(text);
}

/**
 * UTF-8 as Go reads it: every byte that does not start a valid sequence becomes one U+FFFD. Node's decoder
 * would merge a truncated sequence (e.g. E2 82) into a single U+FFFD.
 */
function decodeUtf8LikeGo(buf: Buffer, start: number, end: number): string {
  if (isUtf8(buf.subarray(start, end))) return buf.toString('utf8', start, end);
  let text = '';
  let runStart = start;
  let i = start;
  while (i < end) {
    const length = utf8SequenceLength(buf, i, end);
    if (length > 0) {
      i += length;
      continue;
    }
    text += buf.toString('utf8', runStart, i) + '\uFFFD';
    runStart = ++i;
  }
  return text + buf.toString('utf8', runStart, end);
}

/** Length of the valid UTF-8 sequence at i (no overlongs, surrogates or code points above U+10FFFF), or 0. */
function utf8SequenceLength(buf: Buffer, i: number, end: number): number {
  const lead = buf[i];
  if (lead < 0x80) return 1;
  let continuationBytes: number;
  let secondMin = 0x80;
  let secondMax = 0xbf;
  if (lead >= 0xc2 && lead <= 0xdf) {
    continuationBytes = 1;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    continuationBytes = 2;
    if (lead === 0xe0) secondMin = 0xa0;
    else if (lead === 0xed) secondMax = 0x9f;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    continuationBytes = 3;
    if (lead === 0xf0) secondMin = 0x90;
    else if (lead === 0xf4) secondMax = 0x8f;
  } else {
    return 0;
  }
  if (i + continuationBytes >= end) return 0;
  const second = buf[i + 1];
  if (second < secondMin || second > secondMax) return 0;
  for (let k = 2; k <= continuationBytes; k++) if ((buf[i + k] & 0xc0) !== 0x80) return 0;
  return continuationBytes + 1;
}

function replaceLoneSurrogates(text: string): string {
  let result = '';
  let runStart = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0xd800 || unit > 0xdfff) continue;
    if (unit <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        i++;
        continue;
      }
    }
    result += text.slice(runStart, i) + '\uFFFD';
    runStart = i + 1;
  }
  return runStart === 0 ? text : result + text.slice(runStart);
}
