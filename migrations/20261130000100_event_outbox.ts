import { sql, type Kysely } from 'kysely';

/**
 * Transactional outbox of IAM events (issue 9). `txid` is the writing transaction's id, so a
 * relay can publish only rows whose transaction is older than every running one (no row with an
 * earlier position can still commit); `sequence_id` is assigned by the relay, persisted before
 * sending, and is the broker's deduplication sequence.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('event_outbox')
    .addColumn('id', 'bigint', (col) => col.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('event_id', 'uuid', (col) => col.notNull().unique())
    .addColumn('type', 'text', (col) => col.notNull())
    .addColumn('subject', 'text', (col) => col.notNull())
    .addColumn('payload', 'jsonb', (col) => col.notNull())
    .addColumn('txid', sql`xid8`, (col) => col.notNull().defaultTo(sql`pg_current_xact_id()`))
    .addColumn('occurred_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addColumn('sequence_id', 'bigint', (col) => col.unique())
    .addColumn('published_at', 'timestamptz')
    .execute();
  await db.schema
    .createIndex('event_outbox_unpublished_idx')
    .on('event_outbox')
    .columns(['txid', 'id'])
    .where(sql.ref('published_at'), 'is', null)
    .execute();
  await db.schema
    .createIndex('event_outbox_published_at_idx')
    .on('event_outbox')
    .column('published_at')
    .where(sql.ref('published_at'), 'is not', null)
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('event_outbox').execute();
}
