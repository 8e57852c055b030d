import { sql } from 'kysely';
import type { DbExecutor } from '../db/database.js';

/** A stored passkey (WebAuthn credential). */
export interface StoredPasskey {
  userId: string;
  credentialId: string;
  publicKey: Uint8Array;
  counter: number;
  transports: string[];
  backedUp: boolean;
  name: string;
}

const COLUMNS = ['user_id', 'credential_id', 'public_key', 'counter', 'transports', 'backed_up', 'name'] as const;

function toPasskey(row: { user_id: string; credential_id: string; public_key: Buffer; counter: string; transports: string[]; backed_up: boolean; name: string }): StoredPasskey {
  return {
    userId: row.user_id,
    credentialId: row.credential_id,
    publicKey: new Uint8Array(row.public_key),
    counter: Number(row.counter),
    transports: row.transports,
    backedUp: row.backed_up,
    name: row.name,
  };
}

export async function findPasskey(db: DbExecutor, credentialId: string): Promise<StoredPasskey | undefined> {
  const row = await db.selectFrom('signin_passkey').select(COLUMNS).where('credential_id', '=', credentialId).executeTakeFirst();
  return row && toPasskey(row);
}

export async function listPasskeys(db: DbExecutor, userId: string): Promise<StoredPasskey[]> {
  const rows = await db.selectFrom('signin_passkey').select(COLUMNS).where('user_id', '=', userId).orderBy('id').execute();
  return rows.map(toPasskey);
}

/** Stores a new passkey; false when its credential id is already registered. */
export async function insertPasskey(
  db: DbExecutor,
  passkey: StoredPasskey & { deviceType: string; attachment: string | null },
): Promise<boolean> {
  const row = await db
    .insertInto('signin_passkey')
    .values({
      user_id: passkey.userId,
      credential_id: passkey.credentialId,
      public_key: Buffer.from(passkey.publicKey),
      counter: passkey.counter,
      transports: passkey.transports,
      device_type: passkey.deviceType,
      backed_up: passkey.backedUp,
      attachment: passkey.attachment,
      name: passkey.name,
    })
    .onConflict((oc) => oc.column('credential_id').doNothing())
    .returning('id')
    .executeTakeFirst();
  return row !== undefined;
}

/**
 * Records a use: the new sign counter (only forward, or both zero: authenticators that do not
 * count) and the backup flag, in one conditional UPDATE; false when a parallel use moved the
 * counter past this one (a cloned authenticator, or the same assertion twice).
 */
export async function recordPasskeyUse(db: DbExecutor, credentialId: string, previous: number, counter: number, backedUp: boolean): Promise<boolean> {
  const row = await db
    .updateTable('signin_passkey')
    .set({ counter, backed_up: backedUp, last_used_at: sql<Date>`now()` })
    .where('credential_id', '=', credentialId)
    .where((eb) => (counter === 0 ? eb('counter', '=', '0') : eb.and([eb('counter', '=', String(previous)), eb('counter', '<', String(counter))])))
    .returning('id')
    .executeTakeFirst();
  return row !== undefined;
}

/** A passkey as administrators see it (no key material). */
export interface PasskeyListing {
  id: string;
  name: string;
  deviceType: string;
  backedUp: boolean;
  attachment: string | null;
  createdAt: Date;
  lastUsedAt: Date | null;
}

export async function listPasskeySummaries(db: DbExecutor, userId: string): Promise<PasskeyListing[]> {
  const rows = await db
    .selectFrom('signin_passkey')
    .select(['id', 'name', 'device_type', 'backed_up', 'attachment', 'created_at', 'last_used_at'])
    .where('user_id', '=', userId)
    .orderBy('id')
    .execute();
  return rows.map((row) => ({
    id: String(row.id),
    name: row.name,
    deviceType: row.device_type,
    backedUp: row.backed_up,
    attachment: row.attachment,
    createdAt: row.created_at,
    lastUsedAt: row.last_used_at,
  }));
}

/** Removes the user's passkeys (one by id, or all); returns what was removed. */
export async function deletePasskeys(db: DbExecutor, userId: string, id?: string): Promise<Array<{ id: string; attachment: string | null }>> {
  let query = db.deleteFrom('signin_passkey').where('user_id', '=', userId);
  if (id !== undefined) query = query.where('id', '=', id);
  const rows = await query.returning(['id', 'attachment']).execute();
  return rows.map((row) => ({ id: String(row.id), attachment: row.attachment }));
}

/** Renames one of the user's passkeys; false when the user has no such passkey. */
export async function renamePasskey(db: DbExecutor, userId: string, id: string, name: string): Promise<boolean> {
  const row = await db.updateTable('signin_passkey').set({ name }).where('user_id', '=', userId).where('id', '=', id).returning('id').executeTakeFirst();
  return row !== undefined;
}

/**
 * Locks the user's row for the rest of the transaction, so two removals of the user's factors
 * cannot both see the other's factor still there.
 */
export async function lockUserFactors(db: DbExecutor, userId: string): Promise<void> {
  await db.selectFrom('iam_user').select('id').where('id', '=', userId).forUpdate().executeTakeFirst();
}
