import { sql, type RawBuilder } from 'kysely';
import type { DbExecutor } from '../db/database.js';
import { prepared } from '../db/prepared-statements.js';
import { storable } from '../db/storable.js';

/** oidc_model rows under this model name hold the `jti`s of revoked JWT access tokens. */
export const REVOKED_ACCESS_TOKEN_MODEL = 'RevokedAccessToken';

/** What revocation needs to know about a JWT access token (RFC 9068 claims). */
export interface TokenIdentity {
  jti?: string;
  sub?: string;
  /** `iat`, seconds since the epoch. */
  iat?: number;
  /** The session (one client's authorization, one grant) the token was issued under, if any. */
  sid?: string;
  /** The client the token was issued to (RFC 9068 `client_id`). */
  client_id?: string;
}

/** Longest token-exchange chain followed; chains are a handful of hops in practice. */
const MAX_CHAIN = 32;

/**
 * Revokes every token of `subject` issued up to this moment (per-subject cut-off): JWT access
 * tokens and resume tokens descending from them introspect inactive and cannot be exchanged.
 * The cut-off is `clock_timestamp()`, not the transaction start, so tokens minted while a long
 * revoking transaction runs do not survive it. Tokens issued in the same second as the cut-off
 * count as revoked (JWT `iat` has one-second resolution). Returns the cut-off (database time).
 */
export async function revokeSubjectTokens(db: DbExecutor, subject: string): Promise<Date> {
  const row = await db
    .insertInto('subject_revocation')
    .values({ subject, revoked_before: sql<Date>`clock_timestamp()` })
    .onConflict((oc) => oc.column('subject').doUpdateSet({ revoked_before: sql<Date>`greatest(subject_revocation.revoked_before, excluded.revoked_before)` }))
    .returning('revoked_before')
    .executeTakeFirstOrThrow();
  return new Date(row.revoked_before);
}

/**
 * Cuts off every token issued to `clientId` up to this moment (a disabled or deleted client):
 * its JWT access tokens, and resume tokens it obtained or that were exchanged from them, are
 * refused. `clock_timestamp()` and same-second semantics as {@link revokeSubjectTokens}.
 */
export async function revokeClientTokens(db: DbExecutor, clientId: string): Promise<Date> {
  const row = await db
    .insertInto('client_revocation')
    .values({ client_id: clientId, revoked_before: sql<Date>`clock_timestamp()` })
    .onConflict((oc) => oc.column('client_id').doUpdateSet({ revoked_before: sql<Date>`greatest(client_revocation.revoked_before, excluded.revoked_before)` }))
    .returning('revoked_before')
    .executeTakeFirstOrThrow();
  return new Date(row.revoked_before);
}

/** One session (`sid`) to revoke, with what is known of it. */
export interface SessionRevocation {
  sid: string;
  subject?: string;
  clientId?: string;
  reason: string;
}

/**
 * Revokes sessions: every JWT access token and resume token carrying one of these `sid`s is
 * refused from now on. Returns the `sid`s this call revoked (not those revoked before), so a
 * revocation raced by another one is announced once.
 */
export async function revokeSessionIds(db: DbExecutor, sessions: readonly SessionRevocation[]): Promise<string[]> {
  const rows = sessions.filter((session) => storable(session.sid));
  if (rows.length === 0) return [];
  const inserted = await db
    .insertInto('session_revocation')
    .values(rows.map((row) => ({ sid: row.sid, subject: row.subject ?? null, client_id: row.clientId ?? null, reason: row.reason })))
    .onConflict((oc) => oc.column('sid').doNothing())
    .returning('sid')
    .execute();
  return inserted.map((row) => row.sid);
}

/** A token's identity as SQL expressions: parameters, or columns of the rows a statement handles. */
export interface TokenIdentityExpressions {
  jti: RawBuilder<string | null>;
  sub: RawBuilder<string | null>;
  iat: RawBuilder<number | null>;
  sid: RawBuilder<string | null>;
  /** The token's `client_id`; a statement that does not know it passes null (no client cut-off then). */
  clientId: RawBuilder<string | null>;
}

/**
 * SQL boolean (never null): whether a JWT access token is revoked — its own `jti` or the `jti` of
 * any token it was exchanged from (RFC 8693, recorded in `token_exchange`) was revoked (RFC 7009),
 * or it (or the root of its exchange chain) was issued at or before its subject's cut-off, or it
 * carries a revoked session (`sid`: logout, refresh-token reuse, code replay, RFC 7009 revocation of
 * the grant's refresh token; resume tokens carry the `sid` of the token they were exchanged from),
 * or it was issued to a client at or before the client's cut-off, or a token of its exchange chain was.
 * A token without a known issue time counts as issued before the cut-off. Compose it into a statement
 * that must act on the verdict atomically (e.g. recording token exchanges only for live subject
 * tokens); its text does not depend on the token, so the statement can be prepared.
 */
export function revokedCondition(token: TokenIdentityExpressions): RawBuilder<boolean> {
  // Aliases are prefixed so they never shadow the caller's (the expressions may name its columns).
  return sql<boolean>`(
    with recursive revocation_chain (parent, root_issued_at, depth) as (
      select revocation_t.subject_token_jti, revocation_t.root_issued_at, 0
      from token_exchange revocation_t where revocation_t.jti = ${token.jti}
      union all
      select revocation_t.subject_token_jti, revocation_t.root_issued_at, revocation_c.depth + 1
      from token_exchange revocation_t join revocation_chain revocation_c on revocation_t.jti = revocation_c.parent
      where revocation_c.depth < ${sql.lit(MAX_CHAIN)}
    )
    select
      exists (
        select 1 from oidc_model revocation_m
        where revocation_m.model = ${sql.lit(REVOKED_ACCESS_TOKEN_MODEL)} and revocation_m.id = ${token.jti}
      )
      or exists (
        select 1 from revocation_chain revocation_c
        join oidc_model revocation_m on revocation_m.model = ${sql.lit(REVOKED_ACCESS_TOKEN_MODEL)} and revocation_m.id = revocation_c.parent
      )
      or exists (
        select 1 from session_revocation revocation_g where revocation_g.sid = ${token.sid}
      )
      or exists (
        select 1 from client_revocation revocation_k
        where revocation_k.client_id = ${token.clientId}
          and coalesce(${token.iat} <= floor(extract(epoch from revocation_k.revoked_before)), true)
      )
      or exists (
        select 1 from revocation_chain revocation_c
        join token_exchange revocation_p on revocation_p.jti = revocation_c.parent
        join client_revocation revocation_k on revocation_k.client_id = revocation_p.client_id
        where revocation_p.created_at <= revocation_k.revoked_before
      )
      or exists (
        select 1 from subject_revocation revocation_s
        where revocation_s.subject = ${token.sub}
          and coalesce(
            least(${token.iat}, (select extract(epoch from min(revocation_r.root_issued_at))::float8 from revocation_chain revocation_r))
              <= floor(extract(epoch from revocation_s.revoked_before)),
            true
          )
      )
  )`;
}

/** The identity of a token as it may be stored and compared: no U+0000, finite `iat`, else null. */
export function storableIdentity(token: TokenIdentity): { jti: string | null; sub: string | null; iat: number | null; sid: string | null; clientId: string | null } {
  return {
    clientId: typeof token.client_id === 'string' && storable(token.client_id) ? token.client_id : null,
    sid: typeof token.sid === 'string' && storable(token.sid) ? token.sid : null,
    jti: token.jti !== undefined && storable(token.jti) ? token.jti : null,
    sub: token.sub !== undefined && storable(token.sub) ? token.sub : null,
    iat: typeof token.iat === 'number' && Number.isFinite(token.iat) ? token.iat : null,
  };
}

/** Whether a JWT access token is revoked ({@link revokedCondition}). One prepared statement. */
export async function isTokenRevoked(db: DbExecutor, token: TokenIdentity): Promise<boolean> {
  const { jti, sub, iat, sid, clientId } = storableIdentity(token);
  const condition = revokedCondition({ jti: sql`${jti}::text`, sub: sql`${sub}::text`, iat: sql`${iat}::float8`, sid: sql`${sid}::text`, clientId: sql`${clientId}::text` });
  const { rows } = await sql<{ revoked: boolean }>`${prepared('token-revocation.is-revoked')} select ${condition} as revoked`.execute(db);
  return rows[0]!.revoked;
}

/**
 * When the last token exchanged from `jti` (directly or down a chain, RFC 8693) expires, in
 * seconds since the epoch; null when nothing was exchanged from it. A revocation of `jti` must be
 * remembered until then, or its longer-lived descendants (resume tokens) would come back to life
 * when the revoked parent's own lifetime ends.
 */
export async function descendantsExpireAt(db: DbExecutor, jti: string): Promise<number | null> {
  if (!storable(jti)) return null;
  const { rows } = await sql<{ exp: number | null }>`
    with recursive tree (jti, expires_at, depth) as (
      select jti, expires_at, 1 from token_exchange where subject_token_jti = ${jti}
      union all
      select t.jti, t.expires_at, d.depth + 1
      from token_exchange t join tree d on t.subject_token_jti = d.jti
      where d.depth < ${MAX_CHAIN}
    )
    select extract(epoch from max(expires_at))::float8 as exp from tree
  `.execute(db);
  return rows[0]?.exp ?? null;
}

/**
 * Deletes expired revocation marks of JWT access tokens, but never one that a recorded token
 * exchange still descends from: the mark's lifetime was set from the descendants known when the
 * token was revoked, and an exchange committing while the revocation was being written is not
 * among them. Exchange records stay while any descendant does (see `purgeExpiredExchanges`), so
 * a mark goes once its exchange records are gone. Returns how many were removed.
 */
export async function purgeRevokedTokenMarks(db: DbExecutor, limit = 5000): Promise<number> {
  const result = await db
    .deleteFrom('oidc_model')
    .where('model', '=', REVOKED_ACCESS_TOKEN_MODEL)
    .where('id', 'in', (eb) =>
      eb
        .selectFrom('oidc_model as m')
        .select('m.id')
        .where('m.model', '=', REVOKED_ACCESS_TOKEN_MODEL)
        .where('m.expires_at', '<', sql<Date>`now()`)
        .where(({ not, exists, selectFrom }) => not(exists(selectFrom('token_exchange as c').select('c.id').whereRef('c.subject_token_jti', '=', 'm.id'))))
        .limit(limit),
    )
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}

/**
 * Deletes cut-offs older than `olderThanSeconds` (the longest lifetime any token can have: by then
 * every token issued before the cut-off has expired); returns how many were removed.
 */
export async function purgeSubjectRevocations(db: DbExecutor, olderThanSeconds: number): Promise<number> {
  const result = await db
    .deleteFrom('subject_revocation')
    .where('revoked_before', '<', sql<Date>`now() - make_interval(secs => ${olderThanSeconds})`)
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}

/**
 * Deletes session revocations older than `olderThanSeconds` (the longest lifetime any token can
 * have: by then every token carrying the `sid` has expired); returns how many were removed.
 */
export async function purgeSessionRevocations(db: DbExecutor, olderThanSeconds: number): Promise<number> {
  const result = await db
    .deleteFrom('session_revocation')
    .where('revoked_at', '<', sql<Date>`now() - make_interval(secs => ${olderThanSeconds})`)
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}

/** Deletes client cut-offs older than `olderThanSeconds` (the longest token lifetime); returns how many were removed. */
export async function purgeClientRevocations(db: DbExecutor, olderThanSeconds: number): Promise<number> {
  const result = await db
    .deleteFrom('client_revocation')
    .where('revoked_before', '<', sql<Date>`now() - make_interval(secs => ${olderThanSeconds})`)
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}
