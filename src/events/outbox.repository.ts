import { randomUUID } from 'node:crypto';
import { sql, type Transaction } from 'kysely';
import type { Database, DbExecutor } from '../db/database.js';
import type { IamEvent } from './iam-event.js';

/** The channel the relay LISTENs on; NOTIFY inside a transaction is delivered at commit. */
export const OUTBOX_CHANNEL = 'custos_outbox';

/**
 * Records `event` in the outbox inside the caller's transaction: the IAM change, its audit
 * record and its event commit together or not at all. Returns the event id (the SET's `jti`).
 *
 * The per-subject counter row is locked until the caller commits, so two transactions writing
 * events for the same user are serialized from here on, and their `subject_version`s follow
 * their commit order.
 */
export async function recordEvent(trx: Transaction<Database>, event: IamEvent): Promise<string> {
  const eventId = randomUUID();
  const { version } = await trx
    .insertInto('event_subject_version')
    .values({ subject: event.userId, version: '1' })
    .onConflict((oc) => oc.column('subject').doUpdateSet({ version: sql`event_subject_version.version + 1` }))
    .returning('version')
    .executeTakeFirstOrThrow();
  await trx
    .insertInto('event_outbox')
    .values({ event_id: eventId, type: event.type, subject: event.userId, payload: JSON.stringify(event), subject_version: version })
    .execute();
  await sql`select pg_notify(${OUTBOX_CHANNEL}, '')`.execute(trx);
  return eventId;
}

/** An outbox row the relay publishes (sequence id assigned). */
export interface OutboxRow {
  id: string;
  eventId: string;
  type: string;
  subject: string;
  payload: IamEvent;
  occurredAt: Date;
  sequenceId: number;
  /** The writing PostgreSQL transaction (the SET's `txn`: events of one IAM change share it). */
  txid: string;
}

interface RawRow {
  id: string;
  event_id: string;
  type: string;
  subject: string;
  payload: IamEvent | string;
  occurred_at: Date;
  sequence_id: string | null;
  txid: string;
}

function toRow(raw: RawRow): OutboxRow {
  return {
    id: raw.id,
    eventId: raw.event_id,
    type: raw.type,
    subject: raw.subject,
    payload: typeof raw.payload === 'string' ? (JSON.parse(raw.payload) as IamEvent) : raw.payload,
    occurredAt: raw.occurred_at,
    sequenceId: Number(raw.sequence_id),
    txid: String(raw.txid),
  };
}

/**
 * Rows that already hold a sequence id but were not marked published (a relay stopped between
 * assigning and marking): they go out again first, with the same ids, in sequence order.
 */
export async function findUnacknowledged(db: DbExecutor, limit: number): Promise<OutboxRow[]> {
  const rows = await db
    .selectFrom('event_outbox')
    .select(['id', 'event_id', 'type', 'subject', 'payload', 'occurred_at', 'sequence_id', 'txid'])
    .where('published_at', 'is', null)
    .where('sequence_id', 'is not', null)
    .orderBy('sequence_id')
    .limit(limit)
    .execute();
  return rows.map((row) => toRow(row as unknown as RawRow));
}

/**
 * The outbox horizon, as an SQL scalar: every transaction *of this database* with an id below it
 * has ended before the statement's snapshot, so its rows are visible (or it rolled back) and no
 * row can still appear below it. It is the lowest of the snapshot's `xmax` and of the snapshot's
 * running transactions, leaving out those known to run in another database of the same cluster
 * (their `ExclusiveLock` on their own transaction id is held by a backend of another database;
 * they cannot write this outbox). Plain `pg_snapshot_xmin` would let any long write transaction
 * anywhere in the cluster (another application's database, an idle-in-transaction session) hold
 * every event back for as long as it runs. A transaction whose database is unknown (it ended
 * after the snapshot, a prepared transaction) still holds the horizon, so the rule only ever
 * errs on the side of waiting a round. `pg_locks` is read only when the snapshot has running
 * transactions.
 */
export const outboxHorizon = sql<string>`(
  select least(
           pg_snapshot_xmax(s.snap),
           (select min(x)
              from pg_snapshot_xip(s.snap) x
             where x::xid not in (
                   select l.transactionid
                     from pg_locks l
                     join pg_stat_activity a on a.pid = l.pid
                    where l.locktype = 'transactionid'
                      and l.mode = 'ExclusiveLock'
                      and l.granted
                      and a.datid <> (select oid from pg_database where datname = current_database()))))
    from (select pg_current_snapshot() as snap) s)`;

/**
 * The oldest open transaction of this database that holds a transaction id (so it holds the
 * {@link outboxHorizon} back), for the relay's "events held back" warning; never its query text.
 */
export async function oldestWriteTransaction(db: DbExecutor): Promise<{ pid: number; applicationName: string; ageSeconds: number } | undefined> {
  const result = await sql<{ pid: number; application_name: string; age: string }>`
    select pid, application_name, extract(epoch from now() - xact_start)::text as age
      from pg_stat_activity
     where datname = current_database()
       and backend_xid is not null
       and pid <> pg_backend_pid()
     order by xact_start
     limit 1`.execute(db);
  const row = result.rows[0];
  return row ? { pid: row.pid, applicationName: row.application_name, ageSeconds: Math.round(Number(row.age)) } : undefined;
}

/**
 * Gives the next publishable rows consecutive sequence ids (persisted before anything is sent)
 * and returns them in that order. Publishable:
 * - its transaction id is below the {@link outboxHorizon}, so every transaction that could still
 *   add a row earlier in (txid, id) order has ended: a row that commits late is never skipped;
 * - among the unpublished rows of its subject up to its own `subject_version`, (txid, id) order
 *   is version order (no lower version comes after a higher one), so those rows are all
 *   publishable and numbered before it: one subject's events leave in commit order. (Checking
 *   only the row itself is not enough: with v2, v1, v3 in (txid, id) order, v2 waits behind v1
 *   while v3 would go out before it.) A subject's prefix is in order when each of its rows comes
 *   after the one of the previous version, so one pass over the unpublished rows in version order
 *   (window functions over the partial index on (subject, subject_version)) decides it for every row.
 */
export async function assignSequenceIds(db: DbExecutor, limit: number): Promise<OutboxRow[]> {
  const result = await sql<RawRow>`
    with unpublished as (
      select u.id, u.txid, u.sequence_id,
             -- Whether some pair of this subject's unpublished rows up to this one is out of (txid, id) order.
             bool_or(u.out_of_order) over (partition by u.subject order by u.subject_version rows between unbounded preceding and current row) as waits
        from (select id, txid, subject, subject_version, sequence_id,
                     (txid, id) < (lag(txid) over by_version, lag(id) over by_version) as out_of_order
                from event_outbox
               where published_at is null
              window by_version as (partition by subject order by subject_version)) u
    ),
    candidate as (
      select id
        from unpublished
       where sequence_id is null
         and txid < ${outboxHorizon}
         and waits is not true
       order by txid, id
       limit ${limit}
    ),
    numbered as (
      select c.id, s.last_sequence_id + row_number() over (order by o.txid, o.id) as sequence_id
        from candidate c
        join event_outbox o on o.id = c.id
       cross join (select last_sequence_id from event_relay_state where id = 1 for update) s
    ),
    state as (
      update event_relay_state
         set last_sequence_id = last_sequence_id + (select count(*) from numbered)
       where id = 1 and exists (select 1 from numbered)
    )
    update event_outbox o
       set sequence_id = n.sequence_id
      from numbered n
     where o.id = n.id
    returning o.id, o.event_id, o.type, o.subject, o.payload, o.occurred_at, o.sequence_id, o.txid::text as txid`.execute(db);
  return result.rows.map(toRow).sort((a, b) => a.sequenceId - b.sequenceId);
}

/** Marks rows published after the broker acknowledged them. */
export async function markPublished(db: DbExecutor, ids: readonly string[]): Promise<void> {
  if (ids.length === 0) return;
  await db.updateTable('event_outbox').set({ published_at: sql`now()` }).where('id', 'in', ids).execute();
}

/**
 * Deletes rows published longer than `retentionMs` ago; returns how many. A row an SSF stream
 * (src/ssf/) that is not disabled has not taken yet — after the stream's outbox position — stays:
 * SSF streams read this same outbox, and a paused stream must find its events when resumed. (A
 * disabled stream drops events, so it holds nothing back.)
 */
export async function prunePublished(db: DbExecutor, retentionMs: number): Promise<number> {
  const result = await db
    .deleteFrom('event_outbox')
    .where('published_at', '<', sql<Date>`now() - make_interval(secs => ${retentionMs / 1000})`)
    .where(
      sql<boolean>`not exists (select 1 from ssf_stream s where s.status <> 'disabled' and (event_outbox.txid, event_outbox.id) > (s.after_txid, s.after_id))`,
    )
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}

/** Backlog figures for metrics: unpublished rows and the age of the oldest, in seconds. */
export async function outboxBacklog(db: DbExecutor): Promise<{ count: number; oldestAgeSeconds: number }> {
  const row = await db
    .selectFrom('event_outbox')
    .select([
      sql<string>`count(*)`.as('count'),
      sql<string | null>`extract(epoch from now() - min(occurred_at))`.as('age'),
    ])
    .where('published_at', 'is', null)
    .executeTakeFirstOrThrow();
  return { count: Number(row.count), oldestAgeSeconds: row.age === null ? 0 : Math.max(0, Number(row.age)) };
}
