import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import type { DbExecutor } from '../db/database.js';

/** The stored form of an initial or registration access token: SHA-256, base64url (the token is 256 random bits). */
export function tokenHash(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

export async function insertInitialAccessToken(db: DbExecutor, token: { hash: string; uses: number; expiresAt: Date; createdBy: string }): Promise<string> {
  const row = await db
    .insertInto('client_initial_access_token')
    .values({ token_hash: token.hash, uses_left: token.uses, expires_at: token.expiresAt, created_by: token.createdBy })
    .returning('id')
    .executeTakeFirstOrThrow();
  return String(row.id);
}

/** An initial access token as administrators see it (never the token or its hash). */
export interface InitialAccessTokenRow {
  id: string;
  usesLeft: number;
  expiresAt: Date;
  createdBy: string;
  createdAt: Date;
}

/** Initial access tokens by id, after `after` (keyset paging): `limit` of them. */
export async function listInitialAccessTokens(db: DbExecutor, page: { limit: number; after?: string }): Promise<InitialAccessTokenRow[]> {
  let query = db.selectFrom('client_initial_access_token').select(['id', 'uses_left', 'expires_at', 'created_by', 'created_at']).orderBy('id').limit(page.limit);
  if (page.after !== undefined) query = query.where('id', '>', page.after);
  const rows = await query.execute();
  return rows.map((row) => ({ id: String(row.id), usesLeft: row.uses_left, expiresAt: new Date(row.expires_at), createdBy: row.created_by, createdAt: new Date(row.created_at) }));
}

/** Deletes an initial access token (no registration can use it after the commit); undefined when there is none of that id. */
export async function deleteInitialAccessToken(db: DbExecutor, id: string): Promise<InitialAccessTokenRow | undefined> {
  const row = await db.deleteFrom('client_initial_access_token').where('id', '=', id).returning(['id', 'uses_left', 'expires_at', 'created_by', 'created_at']).executeTakeFirst();
  return row && { id: String(row.id), usesLeft: row.uses_left, expiresAt: new Date(row.expires_at), createdBy: row.created_by, createdAt: new Date(row.created_at) };
}

/**
 * Takes one use of an initial access token, atomically (one conditional UPDATE: of concurrent
 * registrations only as many as there are uses left succeed); false when it is unknown, used up
 * or expired.
 */
export async function takeInitialAccessToken(db: DbExecutor, hash: string): Promise<boolean> {
  const row = await db
    .updateTable('client_initial_access_token')
    .set({ uses_left: sql<number>`uses_left - 1` })
    .where('token_hash', '=', hash)
    .where('uses_left', '>', 0)
    .where('expires_at', '>', sql<Date>`now()`)
    .returning('id')
    .executeTakeFirst();
  return row !== undefined;
}

export async function insertRegistrationToken(db: DbExecutor, clientId: string, hash: string): Promise<void> {
  await db.insertInto('client_registration_token').values({ client_id: clientId, token_hash: hash }).execute();
}

/** The client a registration access token manages, or undefined. */
export async function clientOfRegistrationToken(db: DbExecutor, hash: string): Promise<string | undefined> {
  const row = await db.selectFrom('client_registration_token').select('client_id').where('token_hash', '=', hash).executeTakeFirst();
  return row?.client_id;
}

/** Deletes initial access tokens that expired (or were used up) more than a day ago. */
export async function purgeInitialAccessTokens(db: DbExecutor): Promise<number> {
  const result = await db
    .deleteFrom('client_initial_access_token')
    .where((eb) => eb.or([eb('expires_at', '<', sql<Date>`now() - interval '1 day'`), eb('uses_left', '=', 0)]))
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}
