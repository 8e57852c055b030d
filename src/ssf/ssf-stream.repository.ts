import { sql } from 'kysely';
import type { DbExecutor } from '../db/database.js';
import type { IamEvent } from '../events/iam-event.js';
import { OUTBOX_CHANNEL, outboxHorizon } from '../events/outbox.repository.js';

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
  /** Push delivery (RFC 8935): the receiver's endpoint; null for poll streams. */
  endpointUrl: string | null;
}

/** What creating a stream stores (a new stream is enabled); `authorizationHeader` is write-only. */
export type NewStream = Omit<StoredStream, 'status' | 'statusReason'> & { authorizationHeader: string | null };

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
  endpoint_url: string | null;
}

const STREAM_COLUMNS = [
  'stream_id',
  'client_id',
  'aud',
  'events_requested',
  'delivery_method',
  'description',
  'default_subjects',
  'status',
  'status_reason',
  'endpoint_url',
] as const;

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
    endpointUrl: row.endpoint_url,
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
      endpoint_url: stream.endpointUrl,
      authorization_header: stream.authorizationHeader,
      after_txid: sql<string>`((${outboxHorizon}::text::bigint - 1)::text)::xid8`,
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

/** Stream `streamId` whoever owns it (the deliverer's view), optionally locked (`skipLocked`: undefined when another transaction holds it). */
export async function findStreamById(db: DbExecutor, streamId: string, options: { lock?: boolean; skipLocked?: boolean } = {}): Promise<StoredStream | undefined> {
  let query = db.selectFrom('ssf_stream').select(STREAM_COLUMNS).where('stream_id', '=', streamId);
  if (options.lock) query = options.skipLocked ? query.forUpdate().skipLocked() : query.forUpdate();
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
  changes: {
    eventsRequested?: string[];
    description?: string | null;
    defaultSubjects?: 'ALL' | 'NONE';
    delivery?: { method: string; endpointUrl: string | null; authorizationHeader: string | null };
  },
): Promise<void> {
  await db
    .updateTable('ssf_stream')
    .set({
      ...(changes.eventsRequested !== undefined ? { events_requested: JSON.stringify(changes.eventsRequested) } : {}),
      ...(changes.description !== undefined ? { description: changes.description } : {}),
      ...(changes.defaultSubjects !== undefined ? { default_subjects: changes.defaultSubjects } : {}),
      ...(changes.delivery
        ? {
            delivery_method: changes.delivery.method,
            endpoint_url: changes.delivery.endpointUrl,
            authorization_header: changes.delivery.authorizationHeader,
            push_failures: 0,
            next_attempt_at: null,
            last_error: null,
          }
        : {}),
      updated_at: sql`now()`,
    })
    .where('stream_id', '=', streamId)
    .execute();
}

/** Sets a stream's status (SSF 1.0 §8.1.2.2); enabling it clears its push failures (the next push is due at once). */
export async function updateStreamStatus(db: DbExecutor, streamId: string, status: StoredStream['status'], reason: string | null): Promise<void> {
  await db
    .updateTable('ssf_stream')
    .set({
      status,
      status_reason: reason,
      updated_at: sql`now()`,
      status_changed_at: sql<Date>`case when status = ${status} then status_changed_at else now() end`,
      ...(status === 'enabled' ? { push_failures: 0, next_attempt_at: null, last_error: null } : {}),
    })
    .where('stream_id', '=', streamId)
    .execute();
}

/**
 * The transmitter changes the status of a stream whose status is still `from` (a receiver's change
 * in between wins); whether it did. Disabling drops what the stream held (SSF 1.0 §8.1.2: a
 * disabled stream holds no events).
 */
export async function changeStatusIf(db: DbExecutor, streamId: string, from: StoredStream['status'], to: StoredStream['status'], reason: string): Promise<boolean> {
  const result = await db
    .updateTable('ssf_stream')
    .set({ status: to, status_reason: reason, updated_at: sql`now()`, status_changed_at: sql`now()` })
    .where('stream_id', '=', streamId)
    .where('status', '=', from)
    .executeTakeFirst();
  const changed = Number(result.numUpdatedRows) > 0;
  if (changed && to === 'disabled') await db.deleteFrom('ssf_pending_set').where('stream_id', '=', streamId).execute();
  return changed;
}

/**
 * Claims a receiver-requested verification (SSF 1.0 §8.1.4.2) in one conditional UPDATE: two
 * requests at once cannot both pass `min_verification_interval`. Returns `claimed`, or the seconds
 * to wait, or `missing` when the client has no such stream.
 */
export async function claimVerification(
  db: DbExecutor,
  clientId: string,
  streamId: string,
  minIntervalSeconds: number,
): Promise<{ claimed: true } | { claimed: false; retryAfterSeconds: number } | { claimed: false; missing: true }> {
  const claimed = await db
    .updateTable('ssf_stream')
    .set({ last_verification_at: sql`now()` })
    .where('stream_id', '=', streamId)
    .where('client_id', '=', clientId)
    .where((eb) =>
      eb.or([
        eb('last_verification_at', 'is', null),
        eb('last_verification_at', '<=', sql<Date>`now() - make_interval(secs => ${minIntervalSeconds})`),
      ]),
    )
    .executeTakeFirst();
  if (Number(claimed.numUpdatedRows) > 0) return { claimed: true };
  const row = await db
    .selectFrom('ssf_stream')
    .select(sql<string>`ceil(extract(epoch from last_verification_at + make_interval(secs => ${minIntervalSeconds}) - now()))`.as('wait'))
    .where('stream_id', '=', streamId)
    .where('client_id', '=', clientId)
    .executeTakeFirst();
  if (!row) return { claimed: false, missing: true };
  return { claimed: false, retryAfterSeconds: Math.max(1, Number(row.wait)) };
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
 * every running one of this database (`txid <` {@link outboxHorizon}), so no row can still
 * commit before the position once it moved past. Within a subject, (txid, id) order may differ
 * from commit order (`subject_version`): the caller puts a subject's rows back in version order.
 */
export async function takeOutboxRows(db: DbExecutor, streamId: string, limit: number): Promise<StreamOutboxRow[]> {
  const result = await sql<{ id: string; event_id: string; subject: string; payload: IamEvent | string; occurred_at: Date; txid: string; subject_version: string }>`
    select o.id::text as id, o.event_id, o.subject, o.payload, o.occurred_at, o.txid::text as txid, o.subject_version::text as subject_version
      from event_outbox o
      join ssf_stream s on s.stream_id = ${streamId}
     where (o.txid, o.id) > (s.after_txid, s.after_id)
       and o.txid < ${outboxHorizon}
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
export async function insertPendingSet(db: DbExecutor, streamId: string, jti: string, set: string, occurredAt?: Date): Promise<void> {
  await db
    .insertInto('ssf_pending_set')
    .values({ stream_id: streamId, jti, set, ...(occurredAt ? { occurred_at: occurredAt } : {}) }).onConflict((oc) => oc.columns(['stream_id', 'jti']).doNothing()).execute();
}

/** Up to `limit` pending SETs of the stream, oldest first, and whether more wait. */
export async function listPendingSets(
  db: DbExecutor,
  streamId: string,
  limit: number,
): Promise<{ sets: Array<{ jti: string; set: string; occurredAt: Date | null }>; more: boolean }> {
  const rows = await db.selectFrom('ssf_pending_set').select(['jti', 'set', 'occurred_at as occurredAt']).where('stream_id', '=', streamId).orderBy('seq').limit(limit + 1).execute();
  return { sets: rows.slice(0, limit), more: rows.length > limit };
}

/** Removes acknowledged (or error-reported) SETs of the stream. */
export async function deletePendingSets(db: DbExecutor, streamId: string, jtis: readonly string[]): Promise<void> {
  if (jtis.length === 0) return;
  await db.deleteFrom('ssf_pending_set').where('stream_id', '=', streamId).where('jti', 'in', jtis).execute();
}

/** A push stream due for delivery, with what the deliverer needs (the Authorization header included: never log it). */
export interface PushTarget {
  streamId: string;
  aud: string;
  endpointUrl: string;
  authorizationHeader: string | null;
  pushFailures: number;
}

/** The push target of stream `streamId` whatever its status (undefined for a poll stream or none). */
export async function findPushTarget(db: DbExecutor, streamId: string): Promise<PushTarget | undefined> {
  const row = await db
    .selectFrom('ssf_stream')
    .select(['stream_id', 'aud', 'endpoint_url', 'authorization_header', 'push_failures'])
    .where('stream_id', '=', streamId)
    .where('endpoint_url', 'is not', null)
    .executeTakeFirst();
  return row
    ? { streamId: row.stream_id, aud: row.aud, endpointUrl: row.endpoint_url!, authorizationHeader: row.authorization_header, pushFailures: row.push_failures }
    : undefined;
}

/** Enabled push streams whose next attempt is due (no failure waiting out its backoff). */
export async function duePushStreams(db: DbExecutor, pushMethod: string): Promise<PushTarget[]> {
  const rows = await db
    .selectFrom('ssf_stream')
    .select(['stream_id', 'aud', 'endpoint_url', 'authorization_header', 'push_failures'])
    .where('delivery_method', '=', pushMethod)
    .where('status', '=', 'enabled')
    .where('endpoint_url', 'is not', null)
    .where((eb) => eb.or([eb('next_attempt_at', 'is', null), eb('next_attempt_at', '<=', sql<Date>`now()`)]))
    .orderBy('stream_id')
    .execute();
  return rows.map((row) => ({
    streamId: row.stream_id,
    aud: row.aud,
    endpointUrl: row.endpoint_url!,
    authorizationHeader: row.authorization_header,
    pushFailures: row.push_failures,
  }));
}

/** Milliseconds until the earliest backed-off push stream is due (undefined when none waits). */
export async function nextPushDueInMs(db: DbExecutor, pushMethod: string): Promise<number | undefined> {
  const row = await db
    .selectFrom('ssf_stream')
    .select(sql<string | null>`extract(epoch from min(next_attempt_at) - now()) * 1000`.as('ms'))
    .where('delivery_method', '=', pushMethod)
    .where('status', '=', 'enabled')
    .where('next_attempt_at', 'is not', null)
    .executeTakeFirstOrThrow();
  return row.ms === null ? undefined : Math.max(0, Number(row.ms));
}

/** A push succeeded: the stream's failure count starts again. */
export async function clearPushFailures(db: DbExecutor, streamId: string): Promise<void> {
  await db
    .updateTable('ssf_stream')
    .set({ push_failures: 0, next_attempt_at: null, last_error: null })
    .where('stream_id', '=', streamId)
    .where('push_failures', '>', 0)
    .execute();
}

/** A push failed: counts it, sets when to try again; returns the consecutive failures. */
export async function recordPushFailure(db: DbExecutor, streamId: string, error: string, retryInMs: number): Promise<number> {
  const row = await db
    .updateTable('ssf_stream')
    .set({
      push_failures: sql<number>`push_failures + 1`,
      next_attempt_at: sql<Date>`now() + make_interval(secs => ${retryInMs / 1000})`,
      last_error: error,
    })
    .where('stream_id', '=', streamId)
    .returning('push_failures')
    .executeTakeFirst();
  return row?.push_failures ?? 0;
}

/** The notification that wakes the SSF push deliverer (the outbox's channel: one LISTEN serves both). */
export async function notifyDeliverer(db: DbExecutor): Promise<void> {
  await sql`select pg_notify(${OUTBOX_CHANNEL}, '')`.execute(db);
}

/** Per-stream figures for metrics and the paused-backlog bound. */
export interface StreamBacklog {
  streamId: string;
  status: StoredStream['status'];
  deliveryMethod: string;
  /** Signed SETs not yet delivered or acknowledged. */
  pending: number;
  /** Outbox rows after the stream's position (before its filters: an upper bound). */
  untaken: number;
  /** Age in seconds of the oldest of either (0 when none). */
  oldestAgeSeconds: number;
}

/** Backlog of every stream that is not disabled. */
export async function streamBacklogs(db: DbExecutor): Promise<StreamBacklog[]> {
  const result = await sql<{ stream_id: string; status: string; delivery_method: string; pending: string; untaken: string; age: string | null }>`
    select s.stream_id, s.status, s.delivery_method, p.pending, o.untaken,
           extract(epoch from now() - least(p.oldest, o.oldest)) as age
      from ssf_stream s
      cross join lateral (select count(*) as pending, min(created_at) as oldest from ssf_pending_set where stream_id = s.stream_id) p
      cross join lateral (select count(*) as untaken, min(occurred_at) as oldest from event_outbox e where (e.txid, e.id) > (s.after_txid, s.after_id)) o
     where s.status <> 'disabled'`.execute(db);
  return result.rows.map((row) => ({
    streamId: row.stream_id,
    status: row.status as StoredStream['status'],
    deliveryMethod: row.delivery_method,
    pending: Number(row.pending),
    untaken: Number(row.untaken),
    oldestAgeSeconds: row.age === null ? 0 : Math.max(0, Number(row.age)),
  }));
}

/**
 * SSF 1.0 §8.1.1 `inactivity_timeout`: the receiver was active on its stream (a management call
 * naming it, or a poll). Written at most every 10 s per stream (one UPDATE that changes nothing
 * otherwise), a precision far below any sensible timeout.
 */
export async function touchActivity(db: DbExecutor, clientId: string, streamId: string): Promise<void> {
  await db
    .updateTable('ssf_stream')
    .set({ last_activity_at: sql`now()` })
    .where('stream_id', '=', streamId)
    .where('client_id', '=', clientId)
    .where('last_activity_at', '<', sql<Date>`now() - interval '10 seconds'`)
    .execute();
}

/** Streams in `status` whose `column` is older than `seconds` (inactive enabled streams, long-paused ones). */
export async function streamsOlderThan(
  db: DbExecutor,
  status: StoredStream['status'],
  column: 'last_activity_at' | 'status_changed_at',
  seconds: number,
): Promise<string[]> {
  const rows = await db
    .selectFrom('ssf_stream')
    .select('stream_id')
    .where('status', '=', status)
    .where(column, '<', sql<Date>`now() - make_interval(secs => ${seconds})`)
    .orderBy('stream_id')
    .limit(1000)
    .execute();
  return rows.map((row) => row.stream_id);
}
