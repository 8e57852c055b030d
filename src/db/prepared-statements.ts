import { sql, type RawBuilder } from 'kysely';
import pg from 'pg';

/** `/* prepared:<name> *\/` at the very start of a statement's text marks it for preparation. */
const MARKER = /^\/\* prepared:([a-z][a-z0-9_.-]*) \*\//;
const NAME = /^[a-z][a-z0-9_.-]*$/;

/**
 * Marks a hot, fixed statement to run as a named prepared statement (PostgreSQL protocol
 * Parse once per connection, then Bind/Execute): the server parses and plans it once per
 * connection instead of on every call. Put it first in a kysely `sql` template:
 * ``sql`${prepared('revocation.check')} select ...` ``.
 *
 * The statement's text must be the same on every call (values only as parameters, no
 * `sql.raw`/`sql.join` of varying length) and must name its result columns (no `select *`: a
 * cached plan cannot change its result type after a migration). One name, one text: pg refuses a
 * name reused with another text. Only works against servers or poolers that keep a session's
 * prepared statements (PostgreSQL; PgBouncer in transaction mode from 1.21 with
 * `max_prepared_statements`).
 */
export function prepared(name: string): RawBuilder<unknown> {
  if (!NAME.test(name)) throw new TypeError(`invalid prepared statement name: ${name}`);
  return sql.raw(`/* prepared:${name} */`);
}

/**
 * A `pg.Client` that runs the statements {@link prepared} marked as named prepared statements;
 * every other query passes through unchanged. The pool creates its clients from it.
 */
export class PreparingClient extends pg.Client {
  override query(...args: unknown[]): never {
    const [text, values] = args;
    if (typeof text === 'string' && args.length <= 2 && (values === undefined || Array.isArray(values))) {
      const name = MARKER.exec(text)?.[1];
      if (name !== undefined) return super.query({ name, text, values } as pg.QueryConfig) as never;
    }
    return (super.query as (...params: unknown[]) => unknown)(...args) as never;
  }
}
