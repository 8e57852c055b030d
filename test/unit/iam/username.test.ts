import { describe, expect, it } from 'vitest';
import { mapWidth, prepareUsername, usernameKey, UsernameRefused, type UsernameProblem } from '../../../src/iam/username.js';

function refusal(name: string): { problem: UsernameProblem; message: string } | undefined {
  try {
    prepareUsername(name);
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(UsernameRefused);
    return { problem: (error as UsernameRefused).problem, message: (error as UsernameRefused).message };
  }
}

describe('prepareUsername (RFC 8265 UsernameCaseMapped, RFC 8264 IdentifierClass, UTS #39)', () => {
  it.each([
    ['alice', 'alice', 'alice'],
    ['jürgen', 'jürgen', 'jürgen'],
    ['анна', 'анна', 'анна'], // all Cyrillic
    ['user.name_1', 'user.name_1', 'user.name_1'],
    ['山田', '山田', '山田'],
    ['Alice', 'Alice', 'alice'],
    ['ΟΔΟΣ', 'ΟΔΟΣ', 'οδος'.slice(0, 3) + 'ς'], // toLowerCase, final sigma
    ['Straße', 'Straße', 'straße'], // ß is PVALID (RFC 5892 exception), not folded to ss
    ['user@example.com', 'user@example.com', 'user@example.com'], // printable ASCII is PVALID
    ['alice山田', 'alice山田', 'alice山田'], // Latin + Han: highly restrictive allows it
    ['やまだタロウ', 'やまだタロウ', 'やまだタロウ'], // Hiragana + Katakana (Japanese)
    ['김철수', '김철수', '김철수'],
    ['שלום', 'שלום', 'שלום'], // right-to-left, passes the Bidi Rule
    ['l·l', 'l·l', 'l·l'], // MIDDLE DOT between two l (CONTEXTO rule)
  ])('accepts %j: display %j, key %j', (input, display, key) => {
    expect(prepareUsername(input)).toEqual({ display, key });
    expect(usernameKey(input)).toBe(key);
  });

  it('maps full-width to half-width (width mapping rule): ａｌｉｃｅ is alice', () => {
    expect(mapWidth('ａｌｉｃｅ')).toBe('alice');
    expect(prepareUsername('ａｌｉｃｅ')).toEqual({ display: 'alice', key: 'alice' });
    expect(prepareUsername('ＡＬＩＣＥ').key).toBe('alice');
    // Half-width katakana with a half-width voiced mark: mapped, then NFC composes ダ.
    expect(prepareUsername('ﾔﾏﾀﾞ')).toEqual({ display: 'ヤマダ', key: 'ヤマダ' });
  });

  it('maps case (toLowerCase) and normalizes (NFC): ALICE, Alice and a decomposed ü compare equal', () => {
    expect(usernameKey('ALICE')).toBe(usernameKey('alice'));
    expect(usernameKey('Alice')).toBe('alice');
    const decomposed = 'ju\u0308rgen';
    expect(prepareUsername(decomposed)).toEqual({ display: 'jürgen', key: 'jürgen' });
    expect(prepareUsername('JÜRGEN').key).toBe(prepareUsername(decomposed).key);
  });

  it('refuses the look-alike аlice (Cyrillic а + Latin lice) as mixed scripts', () => {
    expect(refusal('\u0430lice')).toMatchObject({ problem: 'mixed_scripts', message: expect.stringMatching(/Cyrillic.*Latin|Latin.*Cyrillic/) });
  });

  it.each([
    ['раураl', 'Cyrillic + Latin'],
    ['alicе', 'Latin + Cyrillic е at the end'],
    ['αlice', 'Greek + Latin'],
    ['аnna', 'Cyrillic а + Latin'],
    ['山田ivan\u0438', 'Han + Latin + Cyrillic'],
  ])('refuses %j (%s) as mixed scripts', (name) => {
    expect(refusal(name)?.problem).toBe('mixed_scripts');
  });

  it('refuses alice followed by U+200B ZERO WIDTH SPACE (invisible)', () => {
    expect(refusal('alice\u200B')).toMatchObject({ problem: 'disallowed_code_point', message: expect.stringContaining('U+200B') });
  });

  it.each([
    ['a\u200Cb', 'ZERO WIDTH NON-JOINER'],
    ['a\u200Db', 'ZERO WIDTH JOINER'],
    ['a\u2060b', 'WORD JOINER'],
    ['a\uFEFFb', 'ZERO WIDTH NO-BREAK SPACE'],
    ['a\u00ADb', 'SOFT HYPHEN'],
    ['a\u034Fb', 'COMBINING GRAPHEME JOINER'],
    ['a\uFE0Fb', 'VARIATION SELECTOR-16'],
    ['a\u202Eb', 'RIGHT-TO-LEFT OVERRIDE'],
    ['a\u0000b', 'NUL'],
    ['a\tb', 'TAB'],
    ['a\u007Fb', 'DELETE'],
    ['a\u0085b', 'NEXT LINE'],
    ['a b', 'SPACE'],
    ['a\u00A0b', 'NO-BREAK SPACE'],
    ['a\u3000b', 'IDEOGRAPHIC SPACE (width-mapped to a space)'],
    ['x😀', 'emoji (a symbol)'],
    ['a™', 'TRADE MARK SIGN (compatibility)'],
    ['ﬁle', 'ligature (compatibility)'],
    ['ⅸ', 'ROMAN NUMERAL (compatibility, Nl)'],
    ['ǅ', 'titlecase digraph (compatibility)'],
    ['a·b', 'MIDDLE DOT outside l·l'],
    ['a\uE000b', 'private use'],
    ['a\u0378b', 'unassigned'],
    ['ab\uDC00', 'lone surrogate'],
  ])('refuses %j (%s)', (name) => {
    expect(refusal(name)?.problem).toBe('disallowed_code_point');
  });

  it('refuses empty and over-long names', () => {
    expect(refusal('')?.problem).toBe('empty');
    expect(refusal('a'.repeat(128))).toBeUndefined();
    expect(refusal('a'.repeat(129))?.problem).toBe('too_long');
  });

  it('applies the Bidi Rule (RFC 5893) to names with right-to-left characters', () => {
    expect(refusal('abcשלום')?.problem).toBe('bidi_rule'); // starts left-to-right
    expect(refusal('1שלום')?.problem).toBe('bidi_rule'); // starts with a digit
    expect(refusal('שלום.')?.problem).toBe('bidi_rule'); // ends with a neutral
    expect(refusal('مرحبا\u0661' + '1')?.problem).toBe('bidi_rule'); // Arabic-Indic and European digits together
    expect(prepareUsername('مرحبا').key).toBe('مرحبا');
    expect(prepareUsername('שלום1').key).toBe('שלום1');
  });

  it('usernameKey never throws, so lookups of refused names simply find nobody', () => {
    expect(usernameKey('\u0430lice')).not.toBe('alice');
    expect(usernameKey('alice\u200B')).not.toBe('alice');
    expect(usernameKey('ａｌｉｃｅ')).toBe('alice');
  });
});
