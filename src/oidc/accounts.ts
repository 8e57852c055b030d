import type { Kysely } from 'kysely';
import type { Account, KoaContextWithOIDC } from 'oidc-provider';
import type { Database } from '../db/database.js';
import { findUserById } from '../iam/user.repository.js';

/**
 * Claims per scope (OpenID Connect Core §5.4). `roles` comes with `openid`, so every ID token
 * and userinfo response carries the user's roles; `email` needs the `email` scope and
 * `preferred_username` the `profile` scope.
 */
export const SCOPE_CLAIMS = {
  openid: ['sub', 'roles'],
  email: ['email'],
  profile: ['preferred_username'],
} as const;

/**
 * oidc-provider `findAccount`: the user is read from the database each time (authorization,
 * token and refresh, userinfo), so a disabled or deleted user gets no more tokens: the provider
 * answers `invalid_grant` at refresh and asks for a new login at authorization.
 */
export function createFindAccount(db: Kysely<Database>) {
  return async function findAccount(_ctx: KoaContextWithOIDC, sub: string): Promise<Account | undefined> {
    const user = await findUserById(db, sub);
    if (!user || user.disabled) return undefined;
    return {
      accountId: user.id,
      async claims() {
        return {
          sub: user.id,
          roles: user.roles,
          preferred_username: user.username,
          ...(user.email ? { email: user.email } : {}),
        };
      },
    };
  };
}
