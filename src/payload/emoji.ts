/**
 * Emoji shortcode conversion for push `message` text (docs/protocol.md, Emoji conversion).
 *
 * Behaves as kyokomi/emoji v2.2.4's `Sprint` on a single string, which is what the original applies to the
 * message: one padding space after each table hit, `:flag-xx:` unpadded, unknown codes kept.
 * The table in emoji-codemap.json is that version's `emojiCodeMap` (4670 entries), copied
 * entry for entry; do not regenerate it from another emoji library, names and values differ.
 */
import codemap from './emoji-codemap.json';

const CODES: ReadonlyMap<string, string> = new Map(Object.entries(codemap as Record<string, string>));

/** kyokomi's `ReplacePadding`: appended after every table hit, never after a flag fallback. */
const PADDING = ' ';

const COLON = 0x3a;
const REGIONAL_INDICATOR_A = 0x1f1e6;

/**
 * Go's unicode.IsSpace, which ends a code without converting it. Deliberately not JS `\s`:
 * Go counts U+0085 and does not count U+FEFF. Every member is in the BMP, so testing UTF-16
 * units is the same as testing runes.
 */
function isGoSpace(c: number): boolean {
  if (c <= 0xff) {
    return (c >= 0x09 && c <= 0x0d) || c === 0x20 || c === 0x85 || c === 0xa0;
  }
  return c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000;
}

function isLowerAscii(c: number): boolean {
  return c >= 0x61 && c <= 0x7a;
}

/**
 * Go's emojize(): `code` is a complete `:name:` with no inner colon or whitespace, so the
 * unanchored `:flag-([a-z]{2}):` regexp can only match when the whole code is `:flag-xx:`.
 */
function convertCode(code: string): string {
  const hit = CODES.get(code);
  if (hit !== undefined) return hit + PADDING;
  if (code.length === 9 && code.startsWith(':flag-') && isLowerAscii(code.charCodeAt(6)) && isLowerAscii(code.charCodeAt(7))) {
    return (
      String.fromCodePoint(REGIONAL_INDICATOR_A + code.charCodeAt(6) - 0x61) +
      String.fromCodePoint(REGIONAL_INDICATOR_A + code.charCodeAt(7) - 0x61)
    );
  }
  return code;
}

/** Replace `:shortcode:` sequences the way the Go proxy's kyokomi/emoji v2.2.4 does. */
export function emojize(text: string): string {
  let colon = text.indexOf(':');
  if (colon < 0) return text;

  const n = text.length;
  let out = text.slice(0, colon);
  let i = colon;
  while (i < n) {
    // text[i] is ':'; collect a candidate code starting here.
    let start = i;
    let j = i + 1;
    for (;;) {
      if (j >= n) {
        // Unterminated: Go returns what it collected unchanged.
        out += text.slice(start);
        return out;
      }
      const c = text.charCodeAt(j);
      if (c === COLON && j === start + 1) {
        // "::" - the first colon is literal and the second one opens the code instead.
        out += ':';
        start = j;
        j++;
        continue;
      }
      j++;
      if (isGoSpace(c)) {
        out += text.slice(start, j);
        break;
      }
      if (c === COLON) {
        // The closing colon is consumed even when nothing matches, so it never opens the next code.
        out += convertCode(text.slice(start, j));
        break;
      }
    }
    colon = text.indexOf(':', j);
    if (colon < 0) {
      out += text.slice(j);
      return out;
    }
    out += text.slice(j, colon);
    i = colon;
  }
  return out;
}
