import type { Kysely } from 'kysely';

/**
 * Token exchange records keep the DPoP key thumbprint (`cnf.jkt`, RFC 9449 §6.1) of a DPoP-bound
 * subject token, for audit: which key the user's client held when its token was exchanged (issue
 * 19). Null for unbound subject tokens and for rows before this migration.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('token_exchange').addColumn('subject_jkt', 'text').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('token_exchange').dropColumn('subject_jkt').execute();
}
