import { sql, type Kysely } from 'kysely';

/**
 * SSF push delivery (RFC 8935) and verification pacing (issue 17, second step).
 *
 * On `ssf_stream`:
 * - `endpoint_url`, `authorization_header`: the receiver's push endpoint and the Authorization
 *   header value it asked the transmitter to send (SSF 1.0 §8.1.1, delivery method urn:ietf:rfc:8935).
 * - `push_failures`, `next_attempt_at`, `last_error`: consecutive failed pushes, when the next
 *   attempt is due (capped exponential backoff), and the last failure (no SET, no header).
 * - `last_verification_at`: the last receiver-requested verification (SSF 1.0 §8.1.4.2
 *   `min_verification_interval`).
 *
 * On `ssf_pending_set`: `occurred_at`, when the event's outbox row was written (delivery latency).
 * On `event_outbox`: an index on (txid, id) for the streams' reads after their positions.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('ssf_stream')
    .addColumn('endpoint_url', 'text')
    .addColumn('authorization_header', 'text')
    .addColumn('push_failures', 'integer', (col) => col.notNull().defaultTo(0))
    .addColumn('next_attempt_at', 'timestamptz')
    .addColumn('last_error', 'text')
    .addColumn('last_verification_at', 'timestamptz')
    .execute();
  await db.schema.alterTable('ssf_pending_set').addColumn('occurred_at', 'timestamptz').execute();
  // SSF streams read the outbox after their position, published rows included (the relay's index
  // covers only unpublished ones): without this every materialization would scan the whole outbox.
  await db.schema.createIndex('event_outbox_position_idx').on('event_outbox').columns(['txid', 'id']).execute();
  await sql`create index ssf_stream_push_idx on ssf_stream (next_attempt_at) where delivery_method = 'urn:ietf:rfc:8935'`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index if exists ssf_stream_push_idx`.execute(db);
  await db.schema.dropIndex('event_outbox_position_idx').execute();
  await db.schema.alterTable('ssf_pending_set').dropColumn('occurred_at').execute();
  await db.schema
    .alterTable('ssf_stream')
    .dropColumn('endpoint_url')
    .dropColumn('authorization_header')
    .dropColumn('push_failures')
    .dropColumn('next_attempt_at')
    .dropColumn('last_error')
    .dropColumn('last_verification_at')
    .execute();
}
