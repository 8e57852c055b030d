import { FieldError } from '../http/admin-errors.js';

/** One page of a keyset-paginated list. */
export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

/** Opaque cursor for a keyset position (base64url of the last key of the page). */
export function encodeCursor(key: string): string {
  return Buffer.from(key, 'utf8').toString('base64url');
}

/** Decodes a cursor and checks the key's shape; a malformed one is 400 `invalid_cursor`. */
export function decodeCursor(cursor: string | undefined, valid: (key: string) => boolean): string | undefined {
  if (cursor === undefined) return undefined;
  const key = /^[A-Za-z0-9_-]+$/.test(cursor) ? Buffer.from(cursor, 'base64url').toString('utf8') : '';
  if (!key || !valid(key)) throw new FieldError('invalid_cursor', 'cursor is not one this API returned', [{ in: 'query', field: 'cursor', message: 'invalid cursor' }]);
  return key;
}

/** Builds a page from `limit + 1` fetched rows. */
export function toPage<R, T>(rows: R[], limit: number, key: (row: R) => string, map: (row: R) => T): Page<T> {
  const more = rows.length > limit;
  const items = more ? rows.slice(0, limit) : rows;
  return { items: items.map(map), next_cursor: more ? encodeCursor(key(items[items.length - 1]!)) : null };
}
