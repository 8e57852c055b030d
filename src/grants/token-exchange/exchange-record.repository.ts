import { sql } from 'kysely';
import type { DbExecutor } from '../../db/database.js';
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
 * Records an issued resume token (who, for whom, which event) for audit and revocation: its
 * `root_issued_at` is its parent's when the subject token was itself exchanged, else the subject
 * token's `iat`.
 */
export async function insertExchangeRecord(db: DbExecutor, record: ExchangeRecord): Promise<void> {
  await db
    .insertInto('token_exchange')
    .values({
      jti: record.jti,
      client_id: record.clientId,
      subject: record.subject,
      subject_token_jti: record.subjectTokenJti ?? null,
      actor_chain: JSON.stringify(record.actor),
      scopes: record.scopes,
      audiences: record.audiences,
      event_payload_hash: record.eventPayloadHash,
      expires_at: record.expiresAt,
      root_issued_at: sql<Date>`coalesce(
        (select p.root_issued_at from token_exchange p where p.jti = ${record.subjectTokenJti ?? null}),
        to_timestamp(${record.subjectIssuedAt ?? null}::float8)
      )`,
    })
    .execute();
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
