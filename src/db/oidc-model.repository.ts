import { sql } from 'kysely';
import type { DbExecutor } from './database.js';
import { prepared } from './prepared-statements.js';
import { storable } from './storable.js';

/** A payload PostgreSQL cannot store: a string holding NUL (jsonb rejects `\u0000`, SQLSTATE 22P05). */
export class UnstorableValueError extends Error {
  override readonly name = 'UnstorableValueError';
}

/** A stored oidc-provider model payload. */
export type ModelPayload = Record<string, unknown>;

// The statements of every authorization, login and token request are prepared statements
// (parsed and planned once per connection, see prepared-statements.ts).

/** Inserts or replaces one model instance; `expiresIn` in seconds. */
export async function upsertModel(db: DbExecutor, model: string, id: string, payload: ModelPayload, expiresIn?: number): Promise<void> {
  const grantId = typeof payload.grantId === 'string' ? payload.grantId : null;
  const uid = typeof payload.uid === 'string' ? payload.uid : null;
  const userCode = typeof payload.userCode === 'string' ? payload.userCode : null;
  const expiresAt = expiresIn ? new Date(Date.now() + expiresIn * 1000) : null;
  await sql`${prepared('oidc-model.upsert')} insert into oidc_model (model, id, payload, grant_id, uid, user_code, expires_at)
    values (${model}, ${id}, ${JSON.stringify(payload)}, ${grantId}, ${uid}, ${userCode}, ${expiresAt})
    on conflict (model, id) do update set payload = excluded.payload, grant_id = excluded.grant_id, uid = excluded.uid,
      user_code = excluded.user_code, expires_at = excluded.expires_at, consumed_at = null`
    .execute(db)
    .catch((error: { code?: string }) => {
      if (error.code === '22P05') throw new UnstorableValueError(`${model} holds a NUL character`, { cause: error });
      throw error;
    });
}

/** Finds a live (not expired) model instance by one of its keys. */
export async function findModel(
  db: DbExecutor,
  model: string,
  key: { id: string } | { uid: string } | { user_code: string },
): Promise<ModelPayload | undefined> {
  const [column, value] = Object.entries(key)[0] as ['id' | 'uid' | 'user_code', string];
  if (!storable(value)) return undefined;
  const { rows } = await sql<{ payload: ModelPayload; consumed_at: Date | null }>`${prepared(`oidc-model.find.${column}`)}
    select payload, consumed_at from oidc_model
    where model = ${model} and ${sql.ref(column)} = ${value} and (expires_at is null or expires_at > now())`.execute(db);
  const row = rows[0];
  if (!row) return undefined;
  return row.consumed_at
    ? { ...row.payload, consumed: Math.floor(new Date(row.consumed_at).getTime() / 1000) }
    : row.payload;
}

/** Marks a model instance consumed (authorization codes, refresh tokens after rotation). */
export async function consumeModel(db: DbExecutor, model: string, id: string): Promise<void> {
  if (!storable(id)) return;
  await sql`${prepared('oidc-model.consume')} update oidc_model set consumed_at = now() where model = ${model} and id = ${id}`.execute(db);
}

/** Outcome of {@link consumeOnce}: `grantId` of the row when it exists. */
export type ConsumeOutcome = { state: 'consumed' | 'already-consumed'; grantId: string | null } | { state: 'missing' };

/**
 * Marks a model instance consumed only if nobody has (an authorization code is redeemed once, a
 * refresh token rotates once): of concurrent calls on one row exactly one sees `consumed`, the
 * others wait for its commit and see `already-consumed` (RFC 6749 §4.1.2, RFC 9700 §4.14.2).
 */
export async function consumeOnce(db: DbExecutor, model: string, id: string): Promise<ConsumeOutcome> {
  if (!storable(id)) return { state: 'missing' };
  const { rows } = await sql<{ grant_id: string | null }>`${prepared('oidc-model.consume-once')}
    update oidc_model set consumed_at = now() where model = ${model} and id = ${id} and consumed_at is null returning grant_id`.execute(db);
  if (rows[0]) return { state: 'consumed', grantId: rows[0].grant_id };
  const existing = await db.selectFrom('oidc_model').select('grant_id').where('model', '=', model).where('id', '=', id).executeTakeFirst();
  return existing ? { state: 'already-consumed', grantId: existing.grant_id } : { state: 'missing' };
}

/** One id to record once (see {@link insertModelsOnce}). */
export interface OnceRecord {
  id: string;
  payload: ModelPayload;
  expiresIn: number;
}

/**
 * Records model instances only if no live one has their id (a DPoP proof's or a client
 * assertion's `jti`, seen once), many in one statement (the statement batcher's group commit):
 * true for each id this call recorded. Of concurrent calls with one id exactly one gets true; an
 * id twice in one batch is recorded for its first occurrence only. An expired row with the id
 * (not purged yet) is taken over.
 */
export async function insertModelsOnce(db: DbExecutor, model: string, records: readonly OnceRecord[]): Promise<boolean[]> {
  const first = new Map<string, number>();
  records.forEach((record, index) => {
    if (storable(record.id) && !first.has(record.id)) first.set(record.id, index);
  });
  if (first.size === 0) return records.map(() => false);
  const now = Date.now();
  const rows = [...first.values()].map((index) => {
    const record = records[index]!;
    return { id: record.id, payload: record.payload, expires_at: new Date(now + record.expiresIn * 1000).toISOString() };
  });
  const { rows: inserted } = await sql<{ id: string }>`${prepared('oidc-model.insert-once')} insert into oidc_model (model, id, payload, expires_at)
    select ${model}, new_row.id, new_row.payload, new_row.expires_at
    from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as new_row (id text, payload jsonb, expires_at timestamptz)
    on conflict (model, id) do update set payload = excluded.payload, expires_at = excluded.expires_at, consumed_at = null
      where oidc_model.expires_at is not null and oidc_model.expires_at <= now()
    returning id`.execute(db);
  const recorded = new Set(inserted.map((row) => row.id));
  return records.map((record, index) => first.get(record.id) === index && recorded.has(record.id));
}

/** What {@link destroyGrantModels} removed. */
export interface DestroyedGrant {
  /** Rows removed: the grant and its tokens and codes. */
  rows: number;
  /** `sid`s the removed tokens and codes carried (the grant's sessions). */
  sids: string[];
  accountId?: string;
  clientId?: string;
}

/**
 * Deletes a grant and every token and code issued under it (RFC 7009 §2.1), in the caller's
 * transaction, and tells what they were: the `sid`s they carried, the account and client.
 */
export async function destroyGrantModels(db: DbExecutor, grantId: string): Promise<DestroyedGrant> {
  if (!storable(grantId)) return { rows: 0, sids: [] };
  const { rows } = await sql<{ sid: string | null; account_id: string | null; client_id: string | null }>`${prepared('oidc-model.destroy-grant')}
    delete from oidc_model where grant_id = ${grantId} or (model = 'Grant' and id = ${grantId})
    returning payload->>'sid' as sid, payload->>'accountId' as account_id, payload->>'clientId' as client_id`.execute(db);
  const first = <K extends 'account_id' | 'client_id'>(key: K) => rows.find((row) => row[key])?.[key] ?? undefined;
  return {
    rows: rows.length,
    sids: [...new Set(rows.flatMap((row) => (row.sid ? [row.sid] : [])))],
    accountId: first('account_id'),
    clientId: first('client_id'),
  };
}

export async function destroyModel(db: DbExecutor, model: string, id: string): Promise<void> {
  if (!storable(id)) return;
  await sql`${prepared('oidc-model.destroy')} delete from oidc_model where model = ${model} and id = ${id}`.execute(db);
}

/** Deletes every token and code of a grant (RFC 7009 §2.1 cascading revocation). */
export async function revokeModelsByGrantId(db: DbExecutor, grantId: string): Promise<number> {
  if (!storable(grantId)) return 0;
  const result = await db.deleteFrom('oidc_model').where('grant_id', '=', grantId).executeTakeFirst();
  return Number(result.numDeletedRows);
}

/** Deletes expired rows, except those of the `except` models (purged by their own rules); returns how many were removed. */
export async function purgeExpiredModels(db: DbExecutor, options: { limit?: number; except?: string[] } = {}): Promise<number> {
  const except = options.except ?? [];
  const result = await db
    .deleteFrom('oidc_model')
    .where(({ eb, selectFrom }) =>
      eb(
        sql`(model, id)`,
        'in',
        selectFrom('oidc_model')
          .select(['model', 'id'])
          .where('expires_at', '<', sql<Date>`now()`)
          .$if(except.length > 0, (qb) => qb.where('model', 'not in', except))
          .limit(options.limit ?? 5000),
      ),
    )
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}

const ACCOUNT_ID = sql<string>`payload->>'accountId'`;

/** An account's live sessions (oidc-provider `Session` payloads), ordered by `uid`, `limit` after `afterUid`. */
export async function listAccountSessions(
  db: DbExecutor,
  accountId: string,
  page: { limit: number; afterUid?: string } = { limit: 10_000 },
): Promise<Array<{ payload: ModelPayload; expiresAt: Date | null; createdAt: Date }>> {
  if (!storable(accountId) || (page.afterUid !== undefined && !storable(page.afterUid))) return [];
  let query = db
    .selectFrom('oidc_model')
    .select(['payload', 'expires_at', 'created_at'])
    .where('model', '=', 'Session')
    .where(ACCOUNT_ID, '=', accountId)
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', sql<Date>`now()`)]))
    .orderBy('uid')
    .limit(page.limit);
  if (page.afterUid !== undefined) query = query.where('uid', '>', page.afterUid);
  const rows = await query.execute();
  return rows.map((row) => ({
    payload: row.payload,
    expiresAt: row.expires_at ? new Date(row.expires_at) : null,
    createdAt: new Date(row.created_at as unknown as Date),
  }));
}

/** What {@link destroyAccountModels} removed. */
export interface DestroyedAccountModels {
  /** The destroyed sessions' payloads (for back-channel logout: `authorizations` per client). */
  sessions: ModelPayload[];
  grantIds: string[];
  /** Tokens and codes of those grants (refresh tokens, opaque access tokens, codes, ...). */
  tokens: number;
}

/**
 * Destroys every session and grant of an account and every token and code issued under those
 * grants (RFC 7009 §2.1 cascading revocation), inside the caller's transaction. The rows are
 * locked first, so a concurrent refresh either finishes before or finds nothing.
 */
export async function destroyAccountModels(db: DbExecutor, accountId: string): Promise<DestroyedAccountModels> {
  if (!storable(accountId)) return { sessions: [], grantIds: [], tokens: 0 };
  const owned = await db
    .selectFrom('oidc_model')
    .select(['model', 'id', 'payload'])
    .where('model', 'in', ['Session', 'Grant'])
    .where(ACCOUNT_ID, '=', accountId)
    .forUpdate()
    .execute();
  const sessions = owned.filter((row) => row.model === 'Session');
  const grantIds = new Set(owned.filter((row) => row.model === 'Grant').map((row) => row.id));
  for (const session of sessions) {
    const authorizations = (session.payload.authorizations ?? {}) as Record<string, { grantId?: unknown }>;
    for (const { grantId } of Object.values(authorizations)) if (typeof grantId === 'string') grantIds.add(grantId);
  }
  const ids = [...grantIds];
  let tokens = 0;
  if (ids.length > 0) {
    const removed = await db.deleteFrom('oidc_model').where('grant_id', 'in', ids).executeTakeFirst();
    tokens = Number(removed.numDeletedRows);
    await db.deleteFrom('oidc_model').where('model', '=', 'Grant').where('id', 'in', ids).execute();
  }
  if (sessions.length > 0) {
    await db
      .deleteFrom('oidc_model')
      .where('model', '=', 'Session')
      .where(
        'id',
        'in',
        sessions.map((row) => row.id),
      )
      .execute();
  }
  return { sessions: sessions.map((row) => row.payload), grantIds: ids, tokens };
}

/**
 * Destroys every grant of a client and every token and code issued under them (a retired
 * client's refresh tokens, opaque access tokens, codes), in the caller's transaction. Returns the
 * `sid`s the removed rows carried and how many rows went.
 */
export async function destroyClientModels(db: DbExecutor, clientId: string): Promise<{ rows: number; sids: string[] }> {
  if (!storable(clientId)) return { rows: 0, sids: [] };
  // Three deletes of disjoint rows, each found through an index (grant_id, the primary key,
  // oidc_model_client_id_idx): one WHERE with an OR of the three would read the whole table.
  const { rows } = await sql<{ sid: string | null }>`
    with grants as (
      select id from oidc_model where model = 'Grant' and payload->>'clientId' = ${clientId} for update
    ),
    under_grants as (
      delete from oidc_model where grant_id in (select id from grants) returning payload->>'sid' as sid
    ),
    the_grants as (
      delete from oidc_model where model = 'Grant' and id in (select id from grants) returning payload->>'sid' as sid
    ),
    other_tokens as (
      delete from oidc_model
      where payload->>'clientId' = ${clientId}
        and model in ('AuthorizationCode', 'RefreshToken', 'AccessToken', 'ClientCredentials', 'DeviceCode', 'BackchannelAuthenticationRequest')
        and (grant_id is null or grant_id not in (select id from grants))
      returning payload->>'sid' as sid
    )
    select sid from under_grants union all select sid from the_grants union all select sid from other_tokens`.execute(db);
  return { rows: rows.length, sids: [...new Set(rows.flatMap((row) => (row.sid ? [row.sid] : [])))] };
}
