import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from '../../db/database.js';
import type { ActClaim } from './subject-token.js';

type Db = Kysely<Database> | Transaction<Database>;

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
export async function insertExchangeRecord(db: Db, record: ExchangeRecord): Promise<void> {
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
export async function listExchangesBySubject(db: Db, subject: string, limit = 100) {
  return db
    .selectFrom('token_exchange')
    .selectAll()
    .where('subject', '=', subject)
    .orderBy('id', 'desc')
    .limit(limit)
    .execute();
}
