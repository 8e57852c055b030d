import { sql } from 'kysely';
import type { DbExecutor } from '../../db/database.js';
import { prepared } from '../../db/prepared-statements.js';
import { revokedCondition } from '../../oidc/token-revocation.repository.js';
import type { ActClaim } from './subject-token.js';

/** One audited token exchange. */
export interface ExchangeRecord {
  jti: string;
  clientId: string;
  subject: string;
  subjectTokenJti?: string;
  /** `iat` of the subject token (seconds); the chain's root issue time is derived from it. */
  subjectIssuedAt?: number;
  actor: ActClaim;
  scopes: string[];
  audiences: string[];
  eventPayloadHash: string;
  expiresAt: Date;
}

/**
 * Records a resume token about to be issued (who, for whom, which event; for audit and for the
 * revocation of exchange chains) unless its subject token is revoked, in one prepared statement
 * (one round trip): the revocation check ({@link revokedCondition}: the subject token's `jti`, its
 * ancestors', its subject's cut-off) and the insert see the same committed state. Returns false,
 * recording nothing, when the subject token is revoked. Its `root_issued_at` is its parent's when
 * the subject token was itself exchanged, else the subject token's `iat`.
 */
export async function recordExchangeUnlessRevoked(db: DbExecutor, record: ExchangeRecord): Promise<boolean> {
  const subjectToken = { jti: record.subjectTokenJti, sub: record.subject, iat: record.subjectIssuedAt };
  const { rows } = await sql<{ jti: string }>`${prepared('token-exchange.record')}
    insert into token_exchange
      (jti, client_id, subject, subject_token_jti, actor_chain, scopes, audiences, event_payload_hash, expires_at, root_issued_at)
    select
      ${record.jti}::text, ${record.clientId}::text, ${record.subject}::text, ${record.subjectTokenJti ?? null}::text,
      ${JSON.stringify(record.actor)}::jsonb, ${record.scopes}::text[], ${record.audiences}::text[],
      ${record.eventPayloadHash}::text, ${record.expiresAt}::timestamptz,
      coalesce(
        (select p.root_issued_at from token_exchange p where p.jti = ${record.subjectTokenJti ?? null}::text),
        to_timestamp(${record.subjectIssuedAt ?? null}::float8)
      )
    where not ${revokedCondition(subjectToken)}
    returning jti`.execute(db);
  return rows.length === 1;
}

/** Exchanges recorded for a subject, newest first. */
export async function listExchangesBySubject(db: DbExecutor, subject: string, limit = 100) {
  return db
    .selectFrom('token_exchange')
    .selectAll()
    .where('subject', '=', subject)
    .orderBy('id', 'desc')
    .limit(limit)
    .execute();
}

/**
 * Deletes exchange records that expired more than `marginSeconds` ago and that no remaining record
 * descends from (the revocation chain walk of a live descendant still needs its ancestors), at
 * most `limit` per call; returns how many were removed. Ancestors go in later rounds, once their
 * descendants are gone.
 */
export async function purgeExpiredExchanges(db: DbExecutor, options: { marginSeconds: number; limit?: number }): Promise<number> {
  const result = await db
    .deleteFrom('token_exchange')
    .where('id', 'in', (eb) =>
      eb
        .selectFrom('token_exchange as t')
        .select('t.id')
        .where('t.expires_at', '<', sql<Date>`now() - make_interval(secs => ${options.marginSeconds})`)
        .where(({ not, exists, selectFrom }) =>
          not(exists(selectFrom('token_exchange as c').select('c.id').whereRef('c.subject_token_jti', '=', 't.jti'))),
        )
        .limit(options.limit ?? 5000),
    )
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}
