import type { DbExecutor } from '../db/database.js';
import { IamError, PG_CHECK_VIOLATION, PG_FOREIGN_KEY_VIOLATION, PG_UNIQUE_VIOLATION, pgCode } from './iam-errors.js';

export interface Role {
  name: string;
  description: string | null;
  createdAt: Date;
}

/** Role names: lower case, start with a letter, up to 64 of `a-z0-9:_.-` (as the table's check). */
export const ROLE_NAME = /^[a-z][a-z0-9:_.-]{0,63}$/;

/** Creates a role; `role_exists` when it does, `invalid_role` for a malformed name. */
export async function insertRole(db: DbExecutor, name: string, description?: string | null): Promise<Role> {
  if (!ROLE_NAME.test(name)) throw new IamError('invalid_role', `role names match ${ROLE_NAME.source}`);
  try {
    const row = await db.insertInto('iam_role').values({ name, description: description ?? null }).returningAll().executeTakeFirstOrThrow();
    return { name: row.name, description: row.description, createdAt: new Date(row.created_at) };
  } catch (error) {
    if (pgCode(error) === PG_UNIQUE_VIOLATION) throw new IamError('role_exists', `role "${name}" exists`, { cause: error });
    if (pgCode(error) === PG_CHECK_VIOLATION) throw new IamError('invalid_role', `role names match ${ROLE_NAME.source}`, { cause: error });
    throw error;
  }
}

/** Roles ordered by name, `limit` after the `after` name (keyset pagination). */
export async function listRoles(db: DbExecutor, page: { limit: number; after?: string }): Promise<Role[]> {
  let query = db.selectFrom('iam_role').selectAll().orderBy('name').limit(page.limit);
  if (page.after) query = query.where('name', '>', page.after);
  return (await query.execute()).map((row) => ({ name: row.name, description: row.description, createdAt: new Date(row.created_at) }));
}

export async function roleExists(db: DbExecutor, name: string): Promise<boolean> {
  if (!ROLE_NAME.test(name)) return false;
  return (await db.selectFrom('iam_role').select('name').where('name', '=', name).executeTakeFirst()) !== undefined;
}

/** Assigns a role; returns false when the user already had it. */
export async function assignRole(db: DbExecutor, userId: string, role: string): Promise<boolean> {
  if (!(await roleExists(db, role))) throw new IamError('role_not_found', `no role "${role}"`);
  try {
    const result = await db
      .insertInto('iam_user_role')
      .values({ user_id: userId, role })
      .onConflict((oc) => oc.columns(['user_id', 'role']).doNothing())
      .executeTakeFirst();
    return (result.numInsertedOrUpdatedRows ?? 0n) > 0n;
  } catch (error) {
    if (pgCode(error) === PG_FOREIGN_KEY_VIOLATION) throw new IamError('user_not_found', 'no such user', { cause: error });
    throw error;
  }
}

/** Removes a role assignment; returns false when the user did not have it. */
export async function unassignRole(db: DbExecutor, userId: string, role: string): Promise<boolean> {
  if (!(await roleExists(db, role))) throw new IamError('role_not_found', `no role "${role}"`);
  const result = await db.deleteFrom('iam_user_role').where('user_id', '=', userId).where('role', '=', role).executeTakeFirst();
  return result.numDeletedRows > 0n;
}

/** The user's role names, sorted. */
export async function rolesOfUser(db: DbExecutor, userId: string): Promise<string[]> {
  const rows = await db.selectFrom('iam_user_role').select('role').where('user_id', '=', userId).orderBy('role').execute();
  return rows.map((row) => row.role);
}
