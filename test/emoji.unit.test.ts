import { test } from 'node:test';
import assert from 'node:assert/strict';
import { emojize } from '../src/payload/emoji';
import codemap from '../src/payload/emoji-codemap.json';

const SMILE = '\u{1F604}';
const RI = (pair: string) => [...pair].map((ch) => String.fromCodePoint(0x1f1e6 + ch.charCodeAt(0) - 0x61)).join('');

test('the examples of docs/protocol.md, Emoji conversion', () => {
  assert.equal(emojize('hi :smile:'), `hi ${SMILE} `);
  assert.equal(emojize('10:30 ok'), '10:30 ok');
  assert.equal(emojize('::smile:'), `:${SMILE} `);
  assert.equal(emojize(':nope:smile:'), ':nope:smile:');
  assert.equal(emojize('https://h:8443/x'), 'https://h:8443/x');
});

test('table hits get exactly one padding space, including at the end of text', () => {
  assert.equal(emojize(':+1:'), '\u{1F44D} ');
  assert.equal(emojize(':heart:'), '\u2764\uFE0F ');
  assert.equal(emojize(':smile: and :smile:'), `${SMILE}  and ${SMILE} `);
  assert.equal(emojize(':smile::smile:'), `${SMILE} ${SMILE} `);
  assert.equal(emojize('a:smile:b'), `a${SMILE} b`);
});

test('flag fallback: regional indicators without padding, only for :flag-xx: missing from the table', () => {
  // flag-us is not a kyokomi v2.2.4 key (its table has flag_us, us), so the regexp path runs.
  assert.equal(emojize(':flag-us:'), RI('us'));
  assert.equal(emojize('go :flag-us:!'), `go ${RI('us')}!`);
  assert.equal(emojize(':flag-zz:'), RI('zz'));
  // flag-ca and flag_us are table keys, so they are padded like any other hit.
  assert.equal(emojize(':flag-ca:'), `${RI('ca')} `);
  assert.equal(emojize(':flag_us:'), `${RI('us')} `);
  assert.equal(emojize(':flag-US:'), ':flag-US:');
  assert.equal(emojize(':flag-usa:'), ':flag-usa:');
  assert.equal(emojize(':flag-u:'), ':flag-u:');
  assert.equal(emojize(':flag-u1:'), ':flag-u1:');
});

test('unknown codes and unterminated codes are left unchanged', () => {
  assert.equal(emojize(':definitely_not_an_emoji:'), ':definitely_not_an_emoji:');
  assert.equal(emojize('hello :smi'), 'hello :smi');
  assert.equal(emojize('trailing:'), 'trailing:');
  assert.equal(emojize(':'), ':');
  assert.equal(emojize('::'), '::');
  assert.equal(emojize(':::'), ':::');
  assert.equal(emojize(':::smile:'), `::${SMILE} `);
  assert.equal(emojize('a::b'), 'a::b');
  // The unmatched code's closing colon is consumed, so the following "smile:" stays text.
  assert.equal(emojize(':xx:smile: :smile:'), `:xx:smile: ${SMILE} `);
});

test('whitespace inside a code ends it unchanged (Go unicode.IsSpace, not JS \\s)', () => {
  assert.equal(emojize(':smi le:'), ':smi le:');
  assert.equal(emojize(':smile\n:smile:'), `:smile\n${SMILE} `);
  assert.equal(emojize(':smile\t:'), ':smile\t:');
  assert.equal(emojize(':\u00a0:smile:'), `:\u00a0${SMILE} `);
  assert.equal(emojize(':\u3000:smile:'), `:\u3000${SMILE} `);
  // U+0085 is a Go space (JS \s disagrees), so it ends the first code and :smile: converts.
  assert.equal(emojize(':\u0085:smile:'), `:\u0085${SMILE} `);
  // U+FEFF and U+200B are not Go spaces, so ":\uFEFF:" is one (unknown) code and eats the colon.
  assert.equal(emojize(':\uFEFF:smile:'), ':\uFEFF:smile:');
  assert.equal(emojize(':\u200B:smile:'), ':\u200B:smile:');
});

test('empty string and text without colons are returned as is', () => {
  assert.equal(emojize(''), '');
  assert.equal(emojize('no codes here 😀'), 'no codes here 😀');
});

test('unicode text around codes is preserved', () => {
  assert.equal(emojize('héllo :smile: wörld 日本'), `héllo ${SMILE}  wörld 日本`);
  assert.equal(emojize('😀:smile:😀'), `😀${SMILE} 😀`);
  assert.equal(emojize(':😀:'), ':😀:');
  assert.equal(emojize('日本:smile:'), `日本${SMILE} `);
});

test('kyokomi-specific names that other emoji libraries lack or map differently', () => {
  assert.equal(emojize(':thumbsup:'), '\u{1F44D} ');
  assert.equal(emojize(':thumbsup_tone3:'), '\u{1F44D}\u{1F3FD} ');
  assert.equal(emojize(':grinning_face_with_big_eyes:'), '\u{1F603} ');
  assert.equal(emojize(':Japanese_secret_button:'), '\u3299 ');
  assert.equal(emojize(':eight_o\u2019clock:'), '\u{1F557} ');
  assert.equal(emojize(':flag_C\u00f4te_d\u2019Ivoire:'), `${RI('ci')} `);
  assert.equal(emojize(':man-boy:'), '\u{1F468}\u200D\u{1F466} ');
  assert.equal(emojize(':skin-tone-2:'), '\u{1F3FB} ');
  assert.equal(emojize(':keycap_#:'), '#\uFE0F\u20E3 ');
  // kyokomi's value for :m: is U+24DC (circled small m), not U+24C2; reproduced as shipped.
  assert.equal(emojize(':m:'), '\u24DC\uFE0F ');
  // Case matters: only :smile: exists.
  assert.equal(emojize(':Smile:'), ':Smile:');
});

test('the table is v2.2.4 emojiCodeMap, and every entry converts to its value plus padding', () => {
  const entries = Object.entries(codemap as Record<string, string>);
  assert.equal(entries.length, 4670);
  for (const [code, value] of entries) {
    assert.equal(emojize(code), `${value} `, code);
  }
});
