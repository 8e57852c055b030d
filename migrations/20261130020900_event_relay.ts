import { sql, type Kysely } from 'kysely';

/**
 * Relay state for the event outbox (issue 9).
 *
 * - `event_outbox.subject_version`: 1, 2, 3, ... per subject, taken from `event_subject_version`
 *   under that row's lock, so it follows commit order per subject even where transaction ids
 *   (the relay's global order) do not; the relay never publishes a subject's version n+1 before n.
 * - `event_relay_state.last_sequence_id`: the last broker sequence id handed out. Kept apart from
 *   the outbox so pruning published rows can never make sequence ids go back (the broker would
 *   drop every later event as a duplicate).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('event_subject_version')
    .addColumn('subject', 'text', (col) => col.primaryKey())
    .addColumn('version', 'bigint', (col) => col.notNull())
    .execute();
  await db.schema
    .alterTable('event_outbox')
    .addColumn('subject_version', 'bigint', (col) => col.notNull().defaultTo(0))
    .execute();
  await db.schema
    .createIndex('event_outbox_subject_unpublished_idx')
    .on('event_outbox')
    .columns(['subject', 'subject_version'])
    .where(sql.ref('published_at'), 'is', null)
    .execute();
  await db.schema
    .createTable('event_relay_state')
    .addColumn('id', 'smallint', (col) => col.primaryKey().check(sql`id = 1`))
    .addColumn('last_sequence_id', 'bigint', (col) => col.notNull())
    .execute();
  await sql`insert into event_relay_state (id, last_sequence_id) values (1, 0)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('event_relay_state').execute();
  await db.schema.dropIndex('event_outbox_subject_unpublished_idx').execute();
  await db.schema.alterTable('event_outbox').dropColumn('subject_version').execute();
  await db.schema.dropTable('event_subject_version').execute();
}
