import { sql } from 'kysely';
import type { DbExecutor } from '../db/database.js';
import type { IamEvent } from '../events/iam-event.js';

/** A stored SSF stream (SSF 1.0 §8.1.1), as the service reads it. */
export interface StoredStream {
  streamId: string;
  clientId: string;
  aud: string;
  eventsRequested: string[];
  deliveryMethod: string;
  description: string | null;
  defaultSubjects: 'ALL' | 'NONE';
  status: 'enabled' | 'paused' | 'disabled';
  statusReason: string | null;
}

/** What creating a stream stores (a new stream is enabled). */
export type NewStream = Omit<StoredStream, 'status' | 'statusReason'>;

interface StreamRow {
  stream_id: string;
  client_id: string;
  aud: string;
  events_requested: string[] | string;
  delivery_method: string;
  description: string | null;
  default_subjects: string;
  status: string;
  status_reason: string | null;
}

const STREAM_COLUMNS = ['stream_id', 'client_id', 'aud', 'events_requested', 'delivery_method', 'description', 'default_subjects', 'status', 'status_reason'] as const;

function toStream(row: StreamRow): StoredStream {
  return {
    streamId: row.stream_id,
    clientId: row.client_id,
    aud: row.aud,
    eventsRequested: typeof row.events_requested === 'string' ? (JSON.parse(row.events_requested) as string[]) : row.events_requested,
    deliveryMethod: row.delivery_method,
    description: row.description,
    defaultSubjects: row.default_subjects === 'ALL' ? 'ALL' : 'NONE',
    status: row.status as StoredStream['status'],
    statusReason: row.status_reason,
  };
}

/**
 * Stores a new stream positioned in the event outbox just before the oldest transaction still
 * running: it receives what commits from now on (and possibly a few events that committed just
 * before, never fewer).
 */
export async function insertStream(db: DbExecutor, stream: NewStream): Promise<StoredStream> {
  const row = await db
    .insertInto('ssf_stream')
    .values({
      stream_id: stream.streamId,
      client_id: stream.clientId,
      aud: stream.aud,
      events_requested: JSON.stringify(stream.eventsRequested),
      delivery_method: stream.deliveryMethod,
      description: stream.description,
      default_subjects: stream.defaultSubjects,
      after_txid: sql<string>`((pg_snapshot_xmin(pg_current_snapshot())::text::bigint - 1)::text)::xid8`,
      after_id: '0',
    })
    .returning(STREAM_COLUMNS)
    .executeTakeFirstOrThrow();
  return toStream(row as StreamRow);
}

/** The client's stream `streamId`, optionally locked for the caller's transaction. */
export async function findStream(db: DbExecutor, clientId: string, streamId: string, options: { lock?: boolean } = {}): Promise<StoredStream | undefined> {
  let query = db.selectFrom('ssf_stream').select(STREAM_COLUMNS).where('stream_id', '=', streamId).where('client_id', '=', clientId);
  if (options.lock) query = query.forUpdate();
  const row = await query.executeTakeFirst();
  return row ? toStream(row as StreamRow) : undefined;
}

/** Every stream of the client, oldest first. */
export async function listStreams(db: DbExecutor, clientId: string): Promise<StoredStream[]> {
  const rows = await db.selectFrom('ssf_stream').select(STREAM_COLUMNS).where('client_id', '=', clientId).orderBy('created_at').orderBy('stream_id').execute();
  return rows.map((row) => toStream(row as StreamRow));
}

/** Updates the receiver-supplied properties of a stream. */
export async function updateStream(
  db: DbExecutor,
  streamId: string,
  changes: { eventsRequested?: string[]; description?: string | null; defaultSubjects?: 'ALL' | 'NONE' },
): Promise<void> {
  await db
    .updateTable('ssf_stream')
    .set({
      ...(changes.eventsRequested !== undefined ? { events_requested: JSON.stringify(changes.eventsRequested) } : {}),
      ...(changes.description !== undefined ? { description: changes.description } : {}),
      ...(changes.defaultSubjects !== undefined ? { default_subjects: changes.defaultSubjects } : {}),
      updated_at: sql`now()`,
    })
    .where('stream_id', '=', streamId)
    .execute();
}

/** Sets a stream's status (SSF 1.0 §8.1.2.2). */
export async function updateStreamStatus(db: DbExecutor, streamId: string, status: StoredStream['status'], reason: string | null): Promise<void> {
  await db.updateTable('ssf_stream').set({ status, status_reason: reason, updated_at: sql`now()` }).where('stream_id', '=', streamId).execute();
}

/** Deletes a stream with its subjects and pending SETs. */
export async function deleteStream(db: DbExecutor, streamId: string): Promise<void> {
  await db.deleteFrom('ssf_stream').where('stream_id', '=', streamId).execute();
}

/** Adds (or replaces) a subject of a stream. */
export async function upsertSubject(db: DbExecutor, streamId: string, subjectKey: string, subject: Record<string, unknown>, userId: string | null): Promise<void> {
  await db
    .insertInto('ssf_stream_subject')
    .values({ stream_id: streamId, subject_key: subjectKey, subject: JSON.stringify(subject), user_id: userId })
    .onConflict((oc) => oc.columns(['stream_id', 'subject_key']).doUpdateSet({ subject: JSON.stringify(subject), user_id: userId }))
    .execute();
}

/** Removes a subject of a stream; whether it was there. */
export async function deleteSubject(db: DbExecutor, streamId: string, subjectKey: string): Promise<boolean> {
  const result = await db.deleteFrom('ssf_stream_subject').where('stream_id', '=', streamId).where('subject_key', '=', subjectKey).executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

/** The users a stream's added subjects resolve to. */
export async function subjectUsers(db: DbExecutor, streamId: string): Promise<Set<string>> {
  const rows = await db.selectFrom('ssf_stream_subject').select('user_id').where('stream_id', '=', streamId).where('user_id', 'is not', null).execute();
  return new Set(rows.map((row) => row.user_id!));
}

/** The id of the user whose e-mail address is `email` (case-insensitively), for subject resolution. */
export async function findUserIdByEmail(db: DbExecutor, email: string): Promise<string | undefined> {
  const row = await db
    .selectFrom('iam_user')
    .select(sql<string>`id::text`.as('id'))
    .where(sql<boolean>`lower(email) = lower(${email})`)
    .executeTakeFirst();
  return row?.id;
}

/** An outbox row as a stream takes it. */
export interface StreamOutboxRow {
  id: string;
  eventId: string;
  subject: string;
  payload: IamEvent;
  occurredAt: Date;
  txid: string;
  /** 1, 2, 3, ... per subject in commit order. */
  subjectVersion: number;
}

/**
 * The next outbox rows after the stream's position, in (txid, id) order, that are safe to take:
 * the same rule as the relay's {@link assignSequenceIds} — the writing transaction is older than
 * every running one (`txid < pg_snapshot_xmin(pg_current_snapshot())`), so no row can still
 * commit before the position once it moved past. Within a subject, (txid, id) order may differ
 * from commit order (`subject_version`): the caller puts a subject's rows back in version order.
 */
export async function takeOutboxRows(db: DbExecutor, streamId: string, limit: number): Promise<StreamOutboxRow[]> {
  const result = await sql<{ id: string; event_id: string; subject: string; payload: IamEvent | string; occurred_at: Date; txid: string; subject_version: string }>`
    select o.id::text as id, o.event_id, o.subject, o.payload, o.occurred_at, o.txid::text as txid, o.subject_version::text as subject_version
      from event_outbox o
      join ssf_stream s on s.stream_id = ${streamId}
     where (o.txid, o.id) > (s.after_txid, s.after_id)
       and o.txid < pg_snapshot_xmin(pg_current_snapshot())
     order by o.txid, o.id
     limit ${limit}`.execute(db);
  return result.rows.map((row) => ({
    id: row.id,
    eventId: row.event_id,
    subject: row.subject,
    payload: typeof row.payload === 'string' ? (JSON.parse(row.payload) as IamEvent) : row.payload,
    occurredAt: row.occurred_at,
    txid: row.txid,
    subjectVersion: Number(row.subject_version),
  }));
}

/** Moves the stream's outbox position to the row (txid, id). */
export async function advancePosition(db: DbExecutor, streamId: string, txid: string, id: string): Promise<void> {
  await db
    .updateTable('ssf_stream')
    .set({ after_txid: sql<string>`${txid}::xid8`, after_id: id })
    .where('stream_id', '=', streamId)
    .execute();
}

/** Keeps a signed SET for the stream until acknowledged (a SET already kept stays as it was). */
export async function insertPendingSet(db: DbExecutor, streamId: string, jti: string, set: string): Promise<void> {
  await db.insertInto('ssf_pending_set').values({ stream_id: streamId, jti, set }).onConflict((oc) => oc.columns(['stream_id', 'jti']).doNothing()).execute();
}

/** Up to `limit` pending SETs of the stream, oldest first, and whether more wait. */
export async function listPendingSets(db: DbExecutor, streamId: string, limit: number): Promise<{ sets: Array<{ jti: string; set: string }>; more: boolean }> {
  const rows = await db.selectFrom('ssf_pending_set').select(['jti', 'set']).where('stream_id', '=', streamId).orderBy('seq').limit(limit + 1).execute();
  return { sets: rows.slice(0, limit), more: rows.length > limit };
}

/** Removes acknowledged (or error-reported) SETs of the stream. */
export async function deletePendingSets(db: DbExecutor, streamId: string, jtis: readonly string[]): Promise<void> {
  if (jtis.length === 0) return;
  await db.deleteFrom('ssf_pending_set').where('stream_id', '=', streamId).where('jti', 'in', jtis).execute();
}
