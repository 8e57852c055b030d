import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';

/** 32 bytes as unpadded base64url: 42 free characters, the last one carries 2 zero bits. */
const PAYLOAD_HASH_PATTERN = /^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/;

/**
 * The `event_payload_hash` of an event payload: base64url (no padding) of the
 * SHA-256 of the UTF-8 bytes of the payload's RFC 8785 (JCS) canonical JSON.
 *
 * Only the JSON data model is accepted (null, booleans, finite numbers,
 * well-formed strings, arrays and plain objects). Anything JCS cannot
 * represent, or that `JSON.stringify` would silently drop or rewrite
 * (`undefined`, functions, symbols, bigints, NaN/Infinity, sparse arrays,
 * lone surrogates, cycles, class instances such as `Date` or `Map`), throws a
 * `TypeError`, so that publisher and consumer can never disagree silently.
 *
 * @see RFC 8785 §3.2 (canonical JSON), RFC 8693 token exchange profile in DESIGN.md
 */
export function eventPayloadHash(payload: unknown): string {
  assertJsonValue(payload, '$', new Set());
  let canonical: string | undefined;
  try {
    canonical = canonicalize(payload);
  } catch (cause) {
    throw new TypeError(`event payload cannot be canonicalized: ${(cause as Error).message}`, { cause });
  }
  if (canonical === undefined) throw new TypeError('event payload cannot be canonicalized');
  return createHash('sha256').update(canonical, 'utf8').digest('base64url');
}

/**
 * Whether `value` is a well-formed `event_payload_hash`: the unpadded
 * base64url encoding (RFC 4648 §5) of a 32-byte SHA-256 digest, in canonical form.
 */
export function isPayloadHash(value: unknown): value is string {
  return typeof value === 'string' && PAYLOAD_HASH_PATTERN.test(value);
}

function assertJsonValue(value: unknown, path: string, ancestors: Set<object>): void {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return; // lone surrogates are rejected by canonicalize (RFC 8785 §3.2.2.2)
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`event payload: non-finite number at ${path}`);
      return;
    case 'object':
      break;
    default:
      throw new TypeError(`event payload: ${typeof value} at ${path} is not JSON`);
  }
  if (value === null) return;
  if (ancestors.has(value)) throw new TypeError(`event payload: circular reference at ${path}`);
  ancestors.add(value);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      if (!Object.hasOwn(value, i)) throw new TypeError(`event payload: sparse array at ${path}[${i}]`);
      assertJsonValue(value[i], `${path}[${i}]`, ancestors);
    }
  } else {
    const proto: unknown = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) {
      throw new TypeError(`event payload: non-plain object at ${path}`);
    }
    for (const [key, member] of Object.entries(value)) {
      assertJsonValue(member, `${path}.${key}`, ancestors);
    }
  }
  ancestors.delete(value);
}
