import { sql, type Kysely } from 'kysely';

/**
 * Revocation state for tokens that are not stored (RFC 9068 JWT access tokens and resume tokens):
 * a per-subject cut-off (every token of the subject issued at or before it is revoked), the issue
 * time of the root of each token-exchange chain (so a resume token is judged by the user token it
 * descends from), and an index to find a user's sessions and grants in `oidc_model`.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('subject_revocation')
    .addColumn('subject', 'text', (col) => col.primaryKey())
    .addColumn('revoked_before', 'timestamptz', (col) => col.notNull())
    .execute();
  await db.schema.alterTable('token_exchange').addColumn('root_issued_at', 'timestamptz').execute();
  await sql`create index oidc_model_account_idx on oidc_model (model, (payload->>'accountId')) where model in ('Session', 'Grant')`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index oidc_model_account_idx`.execute(db);
  await db.schema.alterTable('token_exchange').dropColumn('root_issued_at').execute();
  await db.schema.dropTable('subject_revocation').execute();
}
