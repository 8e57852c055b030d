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
 * SQL boolean (never null): whether a JWT access token is revoked — its own `jti` or the `jti` of
 * any token it was exchanged from (RFC 8693, recorded in `token_exchange`) was revoked (RFC 7009),
 * or it (or the root of its exchange chain) was issued at or before its subject's cut-off. A token
 * without a known issue time counts as issued before the cut-off. Compose it into a statement
 * that must act on the verdict atomically (e.g. recording a token exchange only for a live
 * subject token); the text is the same for every token, so the statement can be prepared.
 */
export function revokedCondition(token: TokenIdentity): RawBuilder<boolean> {
  const jti = token.jti !== undefined && storable(token.jti) ? token.jti : null;
  const sub = token.sub !== undefined && storable(token.sub) ? token.sub : null;
  const iat = typeof token.iat === 'number' && Number.isFinite(token.iat) ? token.iat : null;
  return sql<boolean>`(
    with recursive chain (parent, root_issued_at, depth) as (
      select subject_token_jti, root_issued_at, 0 from token_exchange where jti = ${jti}
      union all
      select t.subject_token_jti, t.root_issued_at, c.depth + 1
      from token_exchange t join chain c on t.jti = c.parent
      where c.depth < ${MAX_CHAIN}::int
    )
    select
      exists (select 1 from oidc_model m where m.model = ${REVOKED_ACCESS_TOKEN_MODEL} and m.id = ${jti})
      or exists (select 1 from chain c join oidc_model m on m.model = ${REVOKED_ACCESS_TOKEN_MODEL} and m.id = c.parent)
      or exists (
        select 1 from subject_revocation r
        where r.subject = ${sub}
          and coalesce(
            least(${iat}::float8, (select extract(epoch from min(root_issued_at))::float8 from chain)) <= floor(extract(epoch from r.revoked_before)),
            true
          )
      )
  )`;
}

/** Whether a JWT access token is revoked ({@link revokedCondition}). One prepared statement. */
export async function isTokenRevoked(db: DbExecutor, token: TokenIdentity): Promise<boolean> {
  const { rows } = await sql<{ revoked: boolean }>`${prepared('token-revocation.is-revoked')} select ${revokedCondition(token)} as revoked`.execute(db);
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
