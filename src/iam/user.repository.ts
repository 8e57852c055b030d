import { sql } from 'kysely';
import type { DbExecutor } from '../db/database.js';
import { storable } from '../db/storable.js';
import { IamError, PG_CHECK_VIOLATION, PG_UNIQUE_VIOLATION, pgCode } from './iam-errors.js';
import { prepareUsername, usernameKey, UsernameRefused } from './username.js';

/** A user as the rest of Custos sees it (never the password hash, except through {@link findLoginCandidate}). */
export interface User {
  id: string;
  username: string;
  email: string | null;
  disabled: boolean;
  roles: string[];
  createdAt: Date;
  updatedAt: Date;
  passwordChangedAt: Date | null;
}

export interface NewUser {
  username: string;
  email?: string | null;
  passwordHash?: string | null;
}

/** PostgreSQL text cannot hold NUL; such input can never name a stored user. */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function baseQuery(db: DbExecutor) {
  return db
    .selectFrom('iam_user as u')
    .select([
      'u.id',
      'u.username',
      'u.email',
      'u.disabled',
      'u.created_at',
      'u.updated_at',
      'u.password_changed_at',
      sql<string[]>`coalesce((select array_agg(r.role order by r.role) from iam_user_role r where r.user_id = u.id), '{}')`.as('roles'),
    ]);
}

type Row = Awaited<ReturnType<ReturnType<typeof baseQuery>['executeTakeFirstOrThrow']>>;

function toUser(row: Row): User {
  return {
    id: row.id,
    username: row.username,
    email: row.email,
    disabled: row.disabled,
    roles: row.roles,
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
    passwordChangedAt: row.password_changed_at ? new Date(row.password_changed_at) : null,
  };
}

/**
 * Creates a user. The name is prepared per RFC 8265 ({@link prepareUsername}): `invalid_username`
 * when it is refused, `username_taken` when another user's name has the same key (in any letter
 * case or width: `ALICE`, `ａｌｉｃｅ` and `alice` are one name).
 */
export async function insertUser(db: DbExecutor, user: NewUser): Promise<User> {
  if (!storable(user.username) || (user.email && !storable(user.email))) throw new IamError('invalid_username', 'username contains a NUL character');
  let prepared;
  try {
    prepared = prepareUsername(user.username);
  } catch (error) {
    if (error instanceof UsernameRefused) throw new IamError('invalid_username', error.message, { cause: error });
    throw error;
  }
  try {
    const { id } = await db
      .insertInto('iam_user')
      .values({
        username: prepared.display,
        username_key: prepared.key,
        email: user.email ?? null,
        password_hash: user.passwordHash ?? null,
        password_changed_at: user.passwordHash ? new Date() : null,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    return (await findUserById(db, id))!;
  } catch (error) {
    if (pgCode(error) === PG_UNIQUE_VIOLATION) throw new IamError('username_taken', `username "${prepared.display}" is taken`, { cause: error });
    if (pgCode(error) === PG_CHECK_VIOLATION) throw new IamError('invalid_username', 'username must have 1 to 128 characters', { cause: error });
    throw error;
  }
}

export async function findUserById(db: DbExecutor, id: string): Promise<User | undefined> {
  if (!UUID.test(id)) return undefined;
  const row = await baseQuery(db).where('u.id', '=', id).executeTakeFirst();
  return row && toUser(row);
}

/** Lookup by username as RFC 8265 compares it: by {@link usernameKey} (any letter case, any width). */
export async function findUserByUsername(db: DbExecutor, username: string): Promise<User | undefined> {
  if (!storable(username)) return undefined;
  const row = await baseQuery(db).where('u.username_key', '=', usernameKey(username)).executeTakeFirst();
  return row && toUser(row);
}

/** Like {@link findUserByUsername}, plus the password hash: only for password verification. */
export async function findLoginCandidate(db: DbExecutor, username: string): Promise<(User & { passwordHash: string | null }) | undefined> {
  if (!storable(username)) return undefined;
  const row = await baseQuery(db)
    .select('u.password_hash')
    .where('u.username_key', '=', usernameKey(username))
    .executeTakeFirst();
  return row && { ...toUser(row), passwordHash: row.password_hash };
}

/** Users ordered by id, `limit` after the `after` id (keyset pagination). */
export async function listUsers(db: DbExecutor, page: { limit: number; after?: string }): Promise<User[]> {
  let query = baseQuery(db).orderBy('u.id').limit(page.limit);
  if (page.after) query = query.where('u.id', '>', page.after);
  return (await query.execute()).map(toUser);
}

export async function countUsers(db: DbExecutor): Promise<number> {
  const { n } = await db.selectFrom('iam_user').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow();
  return Number(n);
}

/** Sets a new argon2id password hash; `user_not_found` for an unknown id. */
export async function updatePasswordHash(db: DbExecutor, id: string, passwordHash: string): Promise<void> {
  const result = UUID.test(id)
    ? await db
        .updateTable('iam_user')
        .set({ password_hash: passwordHash, password_changed_at: new Date(), updated_at: new Date() })
        .where('id', '=', id)
        .executeTakeFirst()
    : undefined;
  if (!result || result.numUpdatedRows === 0n) throw new IamError('user_not_found', 'no such user');
}

/** Disables or enables a user; returns whether the flag changed. */
export async function updateDisabled(db: DbExecutor, id: string, disabled: boolean): Promise<boolean> {
  const user = await findUserById(db, id);
  if (!user) throw new IamError('user_not_found', 'no such user');
  if (user.disabled === disabled) return false;
  await db.updateTable('iam_user').set({ disabled, updated_at: new Date() }).where('id', '=', id).execute();
  return true;
}
