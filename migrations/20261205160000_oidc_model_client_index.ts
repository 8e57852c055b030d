import { sql, type Kysely } from 'kysely';

/**
 * Retiring a client (disable, delete, the seed dropping it) finds its grants, tokens and codes in
 * `oidc_model` by `payload->>'clientId'` (src/db/oidc-model.repository.ts `destroyClientModels`):
 * without this index each retirement read the whole table. Partial: only rows that name a client.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`create index oidc_model_client_id_idx on oidc_model ((payload->>'clientId'), model) where (payload->>'clientId') is not null`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('oidc_model_client_id_idx').execute();
}
