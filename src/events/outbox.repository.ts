import { randomUUID } from 'node:crypto';
import { sql, type Transaction } from 'kysely';
import type { Database } from '../db/database.js';
import type { IamEvent } from './iam-event.js';

/** The channel the relay LISTENs on; NOTIFY inside a transaction is delivered at commit. */
export const OUTBOX_CHANNEL = 'custos_outbox';

/**
 * Records `event` in the outbox inside the caller's transaction: the IAM change, its audit
 * record and its event commit together or not at all. Returns the event id (the SET's `jti`).
 */
export async function recordEvent(trx: Transaction<Database>, event: IamEvent): Promise<string> {
  const eventId = randomUUID();
  await trx
    .insertInto('event_outbox')
    .values({ event_id: eventId, type: event.type, subject: event.userId, payload: JSON.stringify(event) })
    .execute();
  await sql`select pg_notify(${OUTBOX_CHANNEL}, '')`.execute(trx);
  return eventId;
}
