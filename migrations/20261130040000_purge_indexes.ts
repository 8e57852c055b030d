import type { Kysely } from 'kysely';

/**
 * Indexes for the periodic purge: expired token-exchange rows (leaf first: a row still referenced
 * by a child's `subject_token_jti` stays) and expired login-throttle counters.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.createIndex('token_exchange_expires_idx').on('token_exchange').column('expires_at').execute();
  await db.schema.createIndex('token_exchange_parent_idx').on('token_exchange').column('subject_token_jti').execute();
  await db.schema.createIndex('subject_revocation_revoked_idx').on('subject_revocation').column('revoked_before').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('subject_revocation_revoked_idx').execute();
  await db.schema.dropIndex('token_exchange_parent_idx').execute();
  await db.schema.dropIndex('token_exchange_expires_idx').execute();
}
