import { sql, type Kysely } from 'kysely';

/**
 * Clients as data (issue 20): a client's RFC 7591 metadata, its status and who manages it
 * (`config`: the seed file; `api`: the admin API), its secrets (argon2id hashes; several during a
 * rotation, the old one with an `expires_at`) and its certificate bindings (several during a
 * rotation, each retirable). `client_revocation` is a per-client cut-off: every token issued to the
 * client at or before it is refused (a disabled or deleted client).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('client')
    .addColumn('client_id', 'text', (col) => col.primaryKey())
    .addColumn('metadata', 'jsonb', (col) => col.notNull())
    .addColumn('status', 'text', (col) => col.notNull().defaultTo('active').check(sql`status in ('active', 'disabled')`))
    .addColumn('managed_by', 'text', (col) => col.notNull().check(sql`managed_by in ('config', 'api')`))
    .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createTable('client_secret')
    .addColumn('id', 'bigint', (col) => col.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('client_id', 'text', (col) => col.notNull().references('client.client_id').onDelete('cascade'))
    .addColumn('hash', 'text', (col) => col.notNull())
    .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addColumn('expires_at', 'timestamptz')
    .execute();
  await db.schema.createIndex('client_secret_client_idx').on('client_secret').column('client_id').execute();
  await db.schema
    .createTable('client_certificate')
    .addColumn('id', 'bigint', (col) => col.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('client_id', 'text', (col) => col.notNull().references('client.client_id').onDelete('cascade'))
    .addColumn('binding', 'jsonb', (col) => col.notNull())
    .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addColumn('retired_at', 'timestamptz')
    .execute();
  await db.schema.createIndex('client_certificate_client_idx').on('client_certificate').column('client_id').execute();
  await db.schema
    .createTable('client_revocation')
    .addColumn('client_id', 'text', (col) => col.primaryKey())
    .addColumn('revoked_before', 'timestamptz', (col) => col.notNull())
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('client_revocation').execute();
  await db.schema.dropTable('client_certificate').execute();
  await db.schema.dropTable('client_secret').execute();
  await db.schema.dropTable('client').execute();
}
