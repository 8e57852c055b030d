import { sql, type Kysely } from 'kysely';

/**
 * OpenID Shared Signals Framework 1.0 transmitter streams (issue 17).
 *
 * - `ssf_stream`: one event stream of a receiver (an OAuth client), SSF 1.0 §8.1.1. Its position in
 *   the event outbox is `(after_txid, after_id)`: every outbox row up to it in (txid, id) order was
 *   either turned into a pending SET of the stream or left out by its filters.
 * - `ssf_stream_subject`: subjects added with the add-subject endpoint (SSF 1.0 §8.1.3.2), with the
 *   user they resolve to (null when none does).
 * - `ssf_pending_set`: SETs signed for a stream and not yet acknowledged (RFC 8936 §2.4).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('ssf_stream')
    .addColumn('stream_id', 'uuid', (col) => col.primaryKey())
    .addColumn('client_id', 'text', (col) => col.notNull())
    .addColumn('aud', 'text', (col) => col.notNull())
    .addColumn('events_requested', 'jsonb', (col) => col.notNull())
    .addColumn('delivery_method', 'text', (col) => col.notNull())
    .addColumn('description', 'text')
    .addColumn('default_subjects', 'text', (col) => col.notNull())
    .addColumn('status', 'text', (col) => col.notNull().defaultTo('enabled'))
    .addColumn('status_reason', 'text')
    .addColumn('after_txid', sql`xid8`, (col) => col.notNull())
    .addColumn('after_id', 'bigint', (col) => col.notNull())
    .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema.createIndex('ssf_stream_client_idx').on('ssf_stream').column('client_id').execute();
  await db.schema
    .createTable('ssf_stream_subject')
    .addColumn('stream_id', 'uuid', (col) => col.notNull().references('ssf_stream.stream_id').onDelete('cascade'))
    .addColumn('subject_key', 'text', (col) => col.notNull())
    .addColumn('subject', 'jsonb', (col) => col.notNull())
    .addColumn('user_id', 'text')
    .addPrimaryKeyConstraint('ssf_stream_subject_pk', ['stream_id', 'subject_key'])
    .execute();
  await db.schema
    .createTable('ssf_pending_set')
    .addColumn('stream_id', 'uuid', (col) => col.notNull().references('ssf_stream.stream_id').onDelete('cascade'))
    .addColumn('jti', 'text', (col) => col.notNull())
    .addColumn('seq', 'bigint', (col) => col.generatedAlwaysAsIdentity())
    .addColumn('set', 'text', (col) => col.notNull())
    .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('ssf_pending_set_pk', ['stream_id', 'jti'])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('ssf_pending_set').execute();
  await db.schema.dropTable('ssf_stream_subject').execute();
  await db.schema.dropTable('ssf_stream').execute();
}
