import { sql } from 'kysely';
import type { DbExecutor } from '../../db/database.js';
import { storable } from '../../db/storable.js';

/**
 * Records a verified SET's (`iss`, `jti`) in the caller's transaction; false when it was received
 * before. The primary key decides: of concurrent deliveries of one SET, exactly one inserts (the
 * others wait for its commit, then find the row; if it rolls back, the next one inserts).
 */
export async function recordReceivedSet(db: DbExecutor, set: { issuer: string; jti: string; transmitter: string; eventType: string }): Promise<boolean> {
  const row = await db
    .insertInto('ssf_received_set')
    .values({ issuer: set.issuer, jti: set.jti, transmitter: set.transmitter, event_type: set.eventType })
    .onConflict((oc) => oc.columns(['issuer', 'jti']).doNothing())
    .returning('jti')
    .executeTakeFirst();
  return row !== undefined;
}

/** Deletes received-SET records older than `olderThanSeconds` (beyond every transmitter's `iat` window); returns how many. */
export async function pruneReceivedSets(db: DbExecutor, olderThanSeconds: number, limit = 5000): Promise<number> {
  const result = await sql`
    delete from ssf_received_set where ctid in (
      select ctid from ssf_received_set
      where received_at < now() - make_interval(secs => ${olderThanSeconds})
      limit ${limit}
    )`.execute(db);
  return Number(result.numAffectedRows ?? 0n);
}

/**
 * The ids of the users whose e-mail address is `email` (case-insensitively), at most two: a caller
 * acts only on exactly one.
 */
export async function findUserIdsByEmail(db: DbExecutor, email: string): Promise<string[]> {
  if (!storable(email)) return [];
  const rows = await db
    .selectFrom('iam_user')
    .select('id')
    .where(sql<boolean>`lower(email) = lower(${email})`)
    .limit(2)
    .execute();
  return rows.map((row) => row.id);
}
