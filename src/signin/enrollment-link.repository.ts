import { sql } from 'kysely';
import type { DbExecutor } from '../db/database.js';

/** Stores a new link (its token's hash) and drops the user's links not yet taken: the newest one counts. */
export async function insertEnrollmentLink(db: DbExecutor, link: { tokenHash: string; userId: string; createdBy: string; expiresAt: Date }): Promise<void> {
  await db.deleteFrom('signin_enrollment_link').where('user_id', '=', link.userId).where('taken_at', 'is', null).execute();
  await db
    .insertInto('signin_enrollment_link')
    .values({ token_hash: link.tokenHash, user_id: link.userId, created_by: link.createdBy, expires_at: link.expiresAt })
    .execute();
}

/** The user of a link that is neither taken nor expired. */
export async function findOpenEnrollmentLink(db: DbExecutor, tokenHash: string): Promise<{ userId: string } | undefined> {
  const row = await db
    .selectFrom('signin_enrollment_link')
    .select('user_id')
    .where('token_hash', '=', tokenHash)
    .where('taken_at', 'is', null)
    .where('expires_at', '>', sql<Date>`now()`)
    .executeTakeFirst();
  return row && { userId: row.user_id };
}

/**
 * Takes a link for one browser: one conditional UPDATE, so of parallel takes of one link exactly
 * one gets its user; undefined when taken already, expired or unknown.
 */
export async function takeEnrollmentLink(db: DbExecutor, tokenHash: string, browserHash: string): Promise<{ userId: string } | undefined> {
  const row = await db
    .updateTable('signin_enrollment_link')
    .set({ taken_at: sql<Date>`now()`, browser_hash: browserHash })
    .where('token_hash', '=', tokenHash)
    .where('taken_at', 'is', null)
    .where('expires_at', '>', sql<Date>`now()`)
    .returning('user_id')
    .executeTakeFirst();
  return row && { userId: row.user_id };
}

/** A link taken by a browser within `withinSeconds` and not completed: its user and that browser's hash. */
export async function findTakenEnrollmentLink(db: DbExecutor, tokenHash: string, withinSeconds: number): Promise<{ userId: string; browserHash: string } | undefined> {
  const row = await db
    .selectFrom('signin_enrollment_link')
    .select(['user_id', 'browser_hash'])
    .where('token_hash', '=', tokenHash)
    .where('completed_at', 'is', null)
    .where('taken_at', '>', sql<Date>`now() - make_interval(secs => ${withinSeconds})`)
    .executeTakeFirst();
  return row?.browser_hash ? { userId: row.user_id, browserHash: row.browser_hash } : undefined;
}

/** Marks a taken link completed, once (conditional UPDATE); false when a parallel request did. */
export async function completeEnrollmentLink(db: DbExecutor, tokenHash: string): Promise<boolean> {
  const row = await db
    .updateTable('signin_enrollment_link')
    .set({ completed_at: sql<Date>`now()` })
    .where('token_hash', '=', tokenHash)
    .where('completed_at', 'is', null)
    .where('taken_at', 'is not', null)
    .returning('token_hash')
    .executeTakeFirst();
  return row !== undefined;
}
