import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import type { Database } from './database.js';
import { PreparingClient } from './prepared-statements.js';

/** Opens a kysely instance over a `pg` pool for the given connection string. */
export function createDb(connectionString: string, options: { max?: number } = {}): Kysely<Database> {
  // A database that accepts TCP but never answers fails a connection after 10 s instead of hanging.
  // Statements marked with prepared() are parsed and planned once per connection.
  const pool = new pg.Pool({ connectionString, max: options.max ?? 20, application_name: 'custos', connectionTimeoutMillis: 10_000, Client: PreparingClient });
  // An idle client that errors (server restart) must not crash the process; the pool replaces it.
  pool.on('error', () => {});
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
}

/** Readiness probe: true when a round trip to PostgreSQL succeeds. */
export async function pingDb(db: Kysely<Database>): Promise<boolean> {
  try {
    await sql`select 1`.execute(db);
    return true;
  } catch {
    return false;
  }
}
