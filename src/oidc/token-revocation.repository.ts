import { sql } from 'kysely';
import type { DbExecutor } from '../db/database.js';
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
 * Whether a JWT access token is revoked: its own `jti` or the `jti` of any token it was exchanged
 * from (RFC 8693, recorded in `token_exchange`) was revoked (RFC 7009), or it (or the root of its
 * exchange chain) was issued at or before its subject's cut-off. One query.
 */
export async function isTokenRevoked(db: DbExecutor, token: TokenIdentity): Promise<boolean> {
  const jti = token.jti !== undefined && storable(token.jti) ? token.jti : null;
  const sub = token.sub !== undefined && storable(token.sub) ? token.sub : null;
  const { rows } = await sql<{ jti_revoked: boolean; root_iat: number | null; cutoff: number | null }>`
    with recursive chain (jti, parent, root_issued_at, depth) as (
      select jti, subject_token_jti, root_issued_at, 0 from token_exchange where jti = ${jti}
      union all
      select t.jti, t.subject_token_jti, t.root_issued_at, c.depth + 1
      from token_exchange t join chain c on t.jti = c.parent
      where c.depth < ${MAX_CHAIN}
    )
    select
      exists (
        select 1 from oidc_model m
        where m.model = ${REVOKED_ACCESS_TOKEN_MODEL}
          and (m.id = ${jti} or m.id in (select parent from chain where parent is not null))
      ) as jti_revoked,
      (select extract(epoch from min(root_issued_at))::float8 from chain) as root_iat,
      (select floor(extract(epoch from revoked_before))::float8 from subject_revocation where subject = ${sub}) as cutoff
  `.execute(db);
  const row = rows[0]!;
  if (row.jti_revoked) return true;
  if (row.cutoff === null) return false;
  const issued = [token.iat, row.root_iat].filter((value): value is number => typeof value === 'number');
  // A token without a known issue time is treated as issued before the cut-off.
  return issued.length === 0 || Math.min(...issued) <= row.cutoff;
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
