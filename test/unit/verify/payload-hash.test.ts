import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { eventPayloadHash, isPayloadHash } from '../../../src/verify/index.js';

const sha256b64url = (text: string) => createHash('sha256').update(Buffer.from(text, 'utf8')).digest('base64url');

describe('eventPayloadHash', () => {
  it('hashes the RFC 8785 §3.2.4 example to its published canonical form', () => {
    const input = String.raw`{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],"string":"\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/","literals":[null,true,false]}`;
    const canonical = String.raw`{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`;
    expect(eventPayloadHash(JSON.parse(input))).toBe(sha256b64url(canonical));
  });

  it('sorts keys by UTF-16 code units (RFC 8785 §3.2.3 example)', () => {
    const input = {
      '\u20ac': 'Euro Sign',
      '\r': 'Carriage Return',
      '\ufb33': 'Hebrew Letter Dalet With Dagesh',
      '1': 'One',
      '\ud83d\ude00': 'Emoji: Grinning Face',
      '\u0080': 'Control',
      '\u00f6': 'Latin Small Letter O With Diaeresis',
    };
    const canonical =
      '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis",' +
      '"\u20ac":"Euro Sign","\ud83d\ude00":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}';
    expect(eventPayloadHash(input)).toBe(sha256b64url(canonical));
  });

  it('hashes primitives and treats -0 as 0', () => {
    expect(eventPayloadHash(null)).toBe(sha256b64url('null'));
    expect(eventPayloadHash('a')).toBe(sha256b64url('"a"'));
    expect(eventPayloadHash(-0)).toBe(eventPayloadHash(0));
    expect(eventPayloadHash([])).toBe(sha256b64url('[]'));
  });

  it('keeps a "__proto__" own key from JSON.parse as data', () => {
    const parsed: unknown = JSON.parse('{"__proto__":{"admin":true},"a":1}');
    expect(eventPayloadHash(parsed)).toBe(sha256b64url('{"__proto__":{"admin":true},"a":1}'));
  });

  it('throws TypeError for values JCS cannot represent', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    const invalid: unknown[] = [
      undefined,
      () => 1,
      Symbol('s'),
      10n,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      { a: undefined },
      { a: () => 1 },
      [1, undefined],
      [1, , 3],
      { n: Number.NEGATIVE_INFINITY },
      cyclic,
      new Date(0),
      new Map([['a', 1]]),
      { s: 'lone \ud800 surrogate' },
      { ['\udc00']: 1 },
    ];
    for (const value of invalid) expect(() => eventPayloadHash(value), String(typeof value)).toThrow(TypeError);
  });

  it('accepts shared (non-cyclic) references', () => {
    const shared = { x: 1 };
    expect(eventPayloadHash({ a: shared, b: shared })).toBe(sha256b64url('{"a":{"x":1},"b":{"x":1}}'));
  });

  it('accepts null-prototype objects', () => {
    const bare = Object.assign(Object.create(null) as Record<string, unknown>, { b: 1, a: 2 });
    expect(eventPayloadHash(bare)).toBe(sha256b64url('{"a":2,"b":1}'));
  });
});

describe('isPayloadHash', () => {
  it('accepts canonical 43-character base64url SHA-256 digests', () => {
    for (const value of [eventPayloadHash({}), eventPayloadHash([1, 2]), 'A'.repeat(43), `${'_'.repeat(42)}w`]) {
      expect(isPayloadHash(value)).toBe(true);
    }
  });

  it('rejects everything else', () => {
    const hash = eventPayloadHash({});
    for (const value of [
      undefined,
      null,
      42,
      '',
      hash.slice(1),
      `${hash}A`,
      `${hash}=`,
      `${hash.slice(0, 42)}+`,
      `${hash.slice(0, 42)}B`, // non-zero padding bits: not the canonical encoding of 32 bytes
      createHash('sha256').update('x').digest('base64'),
      createHash('sha256').update('x').digest('hex'),
    ]) {
      expect(isPayloadHash(value), String(value)).toBe(false);
    }
  });
});

/** Rebuilds a JSON value with every object's keys in reverse insertion order. */
function reverseKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reverseKeys);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).reverse().map(([name, member]) => [name, reverseKeys(member)]));
  }
  return value;
}

type Path = (string | number)[];

function leafPaths(value: unknown, path: Path = []): Path[] {
  if (Array.isArray(value)) return value.flatMap((member, index) => leafPaths(member, [...path, index]));
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).flatMap(([name, member]) => leafPaths(member, [...path, name]));
  }
  return [path];
}

function changedLeaf(leaf: unknown): unknown {
  switch (typeof leaf) {
    case 'string':
      return `${leaf}!`;
    case 'number':
      return leaf === 1 ? 2 : 1;
    case 'boolean':
      return !leaf;
    default:
      return 0; // null
  }
}

/** A deep copy of `value` with the leaf at `path` replaced by a different value. */
function withChangedLeaf(value: unknown, path: Path): unknown {
  if (path.length === 0) return changedLeaf(value);
  const [head, ...rest] = path;
  if (Array.isArray(value)) return value.map((member, index) => (index === head ? withChangedLeaf(member, rest) : member));
  return Object.fromEntries(
    Object.entries(value as object).map(([name, member]) => [name, name === head ? withChangedLeaf(member, rest) : member]),
  );
}

describe('eventPayloadHash properties', () => {
  const jsonObject = fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 4 }), { maxKeys: 8 });

  it('is invariant under key reordering', () => {
    fc.assert(
      fc.property(jsonObject, (object) => {
        expect(eventPayloadHash(reverseKeys(object))).toBe(eventPayloadHash(object));
        expect(eventPayloadHash(JSON.parse(JSON.stringify(object)))).toBe(eventPayloadHash(object));
      }),
      { numRuns: 300 },
    );
  });

  it('changes when any leaf value changes', () => {
    fc.assert(
      fc.property(
        jsonObject.filter((object) => leafPaths(object).length > 0),
        fc.nat(),
        (object, pick) => {
          const paths = leafPaths(object);
          const path = paths[pick % paths.length]!;
          expect(eventPayloadHash(withChangedLeaf(object, path))).not.toBe(eventPayloadHash(object));
        },
      ),
      { numRuns: 300 },
    );
  });
});
