import { sql } from 'kysely';
import type { DbExecutor } from '../db/database.js';

/** A user's confirmed TOTP authenticator. */
export interface StoredTotp {
  secret: string;
  /** Last accepted RFC 6238 time step. */
  lastStep: number;
}

export async function findTotp(db: DbExecutor, userId: string): Promise<StoredTotp | undefined> {
  const row = await db.selectFrom('signin_totp').select(['secret', 'last_step']).where('user_id', '=', userId).executeTakeFirst();
  return row && { secret: row.secret, lastStep: Number(row.last_step) };
}

/** Stores a confirmed authenticator; false when the user already has one (a parallel enrollment won). */
export async function insertTotp(db: DbExecutor, userId: string, secret: string, step: number): Promise<boolean> {
  const row = await db
    .insertInto('signin_totp')
    .values({ user_id: userId, secret, last_step: step })
    .onConflict((oc) => oc.column('user_id').doNothing())
    .returning('user_id')
    .executeTakeFirst();
  return row !== undefined;
}

/**
 * Accepts time step `step` once: moves the last accepted step forward only if it is newer (one
 * conditional UPDATE), so of any number of requests with the same code exactly one gets true.
 */
export async function useTotpStep(db: DbExecutor, userId: string, step: number): Promise<boolean> {
  const row = await db
    .updateTable('signin_totp')
    .set({ last_step: step, last_used_at: sql<Date>`now()` })
    .where('user_id', '=', userId)
    .where('last_step', '<', String(step))
    .returning('user_id')
    .executeTakeFirst();
  return row !== undefined;
}

/** Replaces the user's recovery codes (hashes). */
export async function replaceRecoveryCodes(db: DbExecutor, userId: string, codes: ReadonlyArray<{ lookup: string; hash: string }>): Promise<void> {
  await db.deleteFrom('signin_recovery_code').where('user_id', '=', userId).execute();
  if (codes.length === 0) return;
  await db
    .insertInto('signin_recovery_code')
    .values(codes.map((code) => ({ user_id: userId, lookup: code.lookup, code_hash: code.hash })))
    .execute();
}

/** The hash of an unused recovery code with this lookup prefix. */
export async function findRecoveryCode(db: DbExecutor, userId: string, lookup: string): Promise<string | undefined> {
  const row = await db
    .selectFrom('signin_recovery_code')
    .select('code_hash')
    .where('user_id', '=', userId)
    .where('lookup', '=', lookup)
    .where('used_at', 'is', null)
    .executeTakeFirst();
  return row?.code_hash;
}

/** Marks a recovery code used; true for exactly one of any number of parallel uses. */
export async function useRecoveryCode(db: DbExecutor, userId: string, lookup: string): Promise<boolean> {
  const row = await db
    .updateTable('signin_recovery_code')
    .set({ used_at: sql<Date>`now()` })
    .where('user_id', '=', userId)
    .where('lookup', '=', lookup)
    .where('used_at', 'is', null)
    .returning('lookup')
    .executeTakeFirst();
  return row !== undefined;
}

/** When the user's authenticator app was set up and last used, and how many recovery codes are unused. */
export async function describeTotp(db: DbExecutor, userId: string): Promise<{ createdAt: Date; lastUsedAt: Date | null; recoveryCodesLeft: number } | undefined> {
  const row = await db.selectFrom('signin_totp').select(['created_at', 'last_used_at']).where('user_id', '=', userId).executeTakeFirst();
  if (!row) return undefined;
  const left = await db
    .selectFrom('signin_recovery_code')
    .select((eb) => eb.fn.countAll<string>().as('count'))
    .where('user_id', '=', userId)
    .where('used_at', 'is', null)
    .executeTakeFirstOrThrow();
  return { createdAt: row.created_at, lastUsedAt: row.last_used_at, recoveryCodesLeft: Number(left.count) };
}

/** Removes the user's authenticator app and its recovery codes; false when there was none. */
export async function deleteTotp(db: DbExecutor, userId: string): Promise<boolean> {
  await db.deleteFrom('signin_recovery_code').where('user_id', '=', userId).execute();
  const row = await db.deleteFrom('signin_totp').where('user_id', '=', userId).returning('user_id').executeTakeFirst();
  return row !== undefined;
}

/** The factor an administrator requires at the user's next sign-in, if any. */
export async function findRequiredEnrollment(db: DbExecutor, userId: string): Promise<'otp' | 'passkey' | undefined> {
  const row = await db.selectFrom('signin_enrollment_required').select('factor').where('user_id', '=', userId).executeTakeFirst();
  return row?.factor;
}

export async function requireEnrollment(db: DbExecutor, userId: string, factor: 'otp' | 'passkey'): Promise<void> {
  await db
    .insertInto('signin_enrollment_required')
    .values({ user_id: userId, factor })
    .onConflict((oc) => oc.column('user_id').doUpdateSet({ factor }))
    .execute();
}

/** Drops the requirement once met (`factors`: what the finished sign-in meets). */
export async function clearRequiredEnrollment(db: DbExecutor, userId: string, factors: ReadonlyArray<'otp' | 'passkey'>): Promise<void> {
  if (factors.length === 0) return;
  await db.deleteFrom('signin_enrollment_required').where('user_id', '=', userId).where('factor', 'in', [...factors]).execute();
}
