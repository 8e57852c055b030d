import { sql } from 'kysely';
import type { DbExecutor } from '../../db/database.js';
import { prepared } from '../../db/prepared-statements.js';
import { revokedCondition, storableIdentity } from '../../revocation/token-revocation.repository.js';
import type { ActClaim } from './subject-token.js';

/** One audited token exchange. */
export interface ExchangeRecord {
  jti: string;
  clientId: string;
  subject: string;
  subjectTokenJti?: string;
  /** `iat` of the subject token (seconds); the chain's root issue time is derived from it. */
  subjectIssuedAt?: number;
  /** `sid` of the subject token (the session it was issued under; a revoked one refuses the exchange). */
  subjectSid?: string;
  /** `client_id` of the subject token (a cut-off client's tokens are not exchanged). */
  subjectClientId?: string;
  /** `cnf.jkt` of a DPoP-bound subject token (RFC 9449 §6.1), kept for audit. */
  subjectJkt?: string;
  actor: ActClaim;
  scopes: string[];
  audiences: string[];
  eventPayloadHash: string;
  expiresAt: Date;
}

/**
 * Records resume tokens about to be issued (who, for whom, which event; for audit and for the
 * revocation of exchange chains), each only if its subject token is not revoked, in one prepared
 * statement: per row, the revocation check ({@link revokedCondition}: the subject token's `jti`,
 * its ancestors', its subject's cut-off) and the insert see the same committed state, and all rows
 * commit together. Answers, per record and in order, whether it was recorded (false: the subject
 * token is revoked). A record's `root_issued_at` is its parent's when the subject token was itself
 * exchanged, else the subject token's `iat`.
 */
export async function recordExchangesUnlessRevoked(db: DbExecutor, records: readonly ExchangeRecord[]): Promise<boolean[]> {
  if (records.length === 0) return [];
  const rows = records.map((record) => {
    const parent = storableIdentity({ jti: record.subjectTokenJti, iat: record.subjectIssuedAt, sid: record.subjectSid, client_id: record.subjectClientId });
    return {
      jti: record.jti,
      client_id: record.clientId,
      subject: record.subject,
      subject_token_jti: parent.jti,
      subject_iat: parent.iat,
      subject_sid: parent.sid,
      subject_client_id: parent.clientId,
      subject_jkt: record.subjectJkt ?? null,
      actor_chain: record.actor,
      scopes: record.scopes,
      audiences: record.audiences,
      event_payload_hash: record.eventPayloadHash,
      expires_at: record.expiresAt.toISOString(),
    };
  });
  const subjectToken = {
    jti: sql<string>`new_record.subject_token_jti`,
    sub: sql<string>`new_record.subject`,
    iat: sql<number>`new_record.subject_iat`,
    sid: sql<string>`new_record.subject_sid`,
    clientId: sql<string>`new_record.subject_client_id`,
  };
  const { rows: recorded } = await sql<{ jti: string }>`${prepared('token-exchange.record')}
    insert into token_exchange
      (jti, client_id, subject, subject_token_jti, subject_jkt, actor_chain, scopes, audiences, event_payload_hash, expires_at, root_issued_at)
    select
      new_record.jti, new_record.client_id, new_record.subject, new_record.subject_token_jti, new_record.subject_jkt, new_record.actor_chain,
      new_record.scopes, new_record.audiences, new_record.event_payload_hash, new_record.expires_at,
      coalesce(
        (select parent.root_issued_at from token_exchange parent where parent.jti = new_record.subject_token_jti),
        to_timestamp(new_record.subject_iat)
      )
    from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as new_record (
      jti text, client_id text, subject text, subject_token_jti text, subject_iat float8, subject_sid text, subject_client_id text, subject_jkt text,
      actor_chain jsonb, scopes text[], audiences text[], event_payload_hash text, expires_at timestamptz
    )
    where not ${revokedCondition(subjectToken)}
    returning jti`.execute(db);
  const done = new Set(recorded.map((row) => row.jti));
  return records.map((record) => done.has(record.jti));
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
