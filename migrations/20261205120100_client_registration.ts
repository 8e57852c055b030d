import { sql, type Kysely } from 'kysely';

/**
 * Dynamic client registration (RFC 7591, RFC 7592): initial access tokens an administrator issues
 * (stored as SHA-256 hashes; expiring; a count of uses left, taken atomically) and the
 * registration access token of each dynamically registered client (hash only).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('client_initial_access_token')
    .addColumn('id', 'bigint', (col) => col.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('token_hash', 'text', (col) => col.notNull().unique())
    .addColumn('uses_left', 'integer', (col) => col.notNull().check(sql`uses_left >= 0`))
    .addColumn('expires_at', 'timestamptz', (col) => col.notNull())
    .addColumn('created_by', 'text', (col) => col.notNull())
    .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createTable('client_registration_token')
    .addColumn('client_id', 'text', (col) => col.primaryKey().references('client.client_id').onDelete('cascade'))
    .addColumn('token_hash', 'text', (col) => col.notNull().unique())
    .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('client_registration_token').execute();
  await db.schema.dropTable('client_initial_access_token').execute();
}
