import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Database } from '../db/database.js';
import { roleExists } from './role.repository.js';
import { countUsers } from './user.repository.js';
import type { UserService } from './user.service.js';

export const DEMO_USERNAME = 'alice';
export const DEMO_ROLE = 'orders-reader';

/**
 * Development only (the caller checks): when no user exists, creates `alice` with a random
 * password and the role `orders-reader`, and returns the credentials for the start banner.
 * Returns undefined when users exist already.
 */
export async function ensureDemoUser(db: Kysely<Database>, users: UserService): Promise<{ username: string; password: string } | undefined> {
  if ((await countUsers(db)) > 0) return undefined;
  const by = { actor: 'system', initiatingEntity: 'system' as const };
  if (!(await roleExists(db, DEMO_ROLE))) await users.createRole({ name: DEMO_ROLE, description: 'Demo: may read orders' }, by);
  const password = randomBytes(12).toString('base64url');
  await users.create({ username: DEMO_USERNAME, email: 'alice@example.test', password, roles: [DEMO_ROLE] }, by);
  return { username: DEMO_USERNAME, password };
}
