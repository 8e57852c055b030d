import { sql, type Kysely } from 'kysely';

/**
 * Second factors of the sign-in (issue 18, src/signin/): one confirmed TOTP authenticator per
 * user, with the last accepted time step (a code is accepted once: a conditional UPDATE moves
 * it forward), and one-time recovery codes stored as argon2id hashes, found by a short lookup
 * prefix and used once (`used_at` set by a conditional UPDATE).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('signin_totp')
    .addColumn('user_id', 'uuid', (col) => col.primaryKey().references('iam_user.id').onDelete('cascade'))
    .addColumn('secret', 'text', (col) => col.notNull())
    .addColumn('last_step', 'bigint', (col) => col.notNull())
    .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addColumn('last_used_at', 'timestamptz')
    .execute();
  await sql`comment on column signin_totp.secret is 'RFC 6238 shared secret (base32): never logged, never returned after enrollment'`.execute(db);
  await db.schema
    .createTable('signin_recovery_code')
    .addColumn('user_id', 'uuid', (col) => col.notNull().references('iam_user.id').onDelete('cascade'))
    .addColumn('lookup', 'varchar(8)', (col) => col.notNull())
    .addColumn('code_hash', 'text', (col) => col.notNull())
    .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addColumn('used_at', 'timestamptz')
    .addPrimaryKeyConstraint('signin_recovery_code_pk', ['user_id', 'lookup'])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('signin_recovery_code').execute();
  await db.schema.dropTable('signin_totp').execute();
}
