import { sql, type Kysely } from 'kysely';

/**
 * One-time enrollment links an administrator issues (issue 18): only the SHA-256 of the link's
 * token is stored. `taken_at` is set once, by one conditional UPDATE, when a browser starts the
 * enrollment (bound to that browser by `browser_hash`); `completed_at` when the passkey is stored.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('signin_enrollment_link')
    .addColumn('token_hash', 'text', (col) => col.primaryKey())
    .addColumn('user_id', 'uuid', (col) => col.notNull().references('iam_user.id').onDelete('cascade'))
    .addColumn('created_by', 'text', (col) => col.notNull())
    .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addColumn('expires_at', 'timestamptz', (col) => col.notNull())
    .addColumn('taken_at', 'timestamptz')
    .addColumn('browser_hash', 'text')
    .addColumn('completed_at', 'timestamptz')
    .execute();
  await db.schema.createIndex('signin_enrollment_link_user').on('signin_enrollment_link').column('user_id').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('signin_enrollment_link').execute();
}
