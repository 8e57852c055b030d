import { sql, type Kysely } from 'kysely';

/**
 * Per-session revocation of tokens that are not stored: every JWT access token (and resume token
 * exchanged from one) carrying a revoked `sid` is refused. A `sid` names one client's
 * authorization within one browser session (OpenID Connect Core `sid`), so it stands for one grant;
 * rows are kept until every token that can carry the `sid` has expired.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('session_revocation')
    .addColumn('sid', 'text', (col) => col.primaryKey())
    .addColumn('subject', 'text')
    .addColumn('client_id', 'text')
    .addColumn('reason', 'text', (col) => col.notNull())
    .addColumn('revoked_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema.createIndex('session_revocation_revoked_idx').on('session_revocation').column('revoked_at').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('session_revocation').execute();
}
