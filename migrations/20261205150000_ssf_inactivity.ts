import { sql, type Kysely } from 'kysely';

/**
 * SSF `inactivity_timeout` (SSF 1.0 §8.1.1) and the bound on how long a stream stays paused
 * (issue 17).
 *
 * On `ssf_stream`:
 * - `last_activity_at`: the receiver's last eligible activity (a management call naming the
 *   stream; for poll streams also a poll), which restarts the inactivity timeout.
 * - `status_changed_at`: when the status last changed (a stream paused longer than
 *   SSF_PAUSED_MAX_SECONDS is disabled).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('ssf_stream')
    .addColumn('last_activity_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addColumn('status_changed_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('ssf_stream').dropColumn('last_activity_at').dropColumn('status_changed_at').execute();
}
