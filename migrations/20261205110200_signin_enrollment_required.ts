import { sql, type Kysely } from 'kysely';

/**
 * Users an administrator asked to set up a second factor (`otp`) or a passkey (`passkey`) at
 * their next sign-in (issue 18); the row goes once a sign-in meets it.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('signin_enrollment_required')
    .addColumn('user_id', 'uuid', (col) => col.primaryKey().references('iam_user.id').onDelete('cascade'))
    .addColumn('factor', 'text', (col) => col.notNull().check(sql`factor in ('otp', 'passkey')`))
    .addColumn('requested_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('signin_enrollment_required').execute();
}
