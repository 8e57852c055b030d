import type { Kysely, Transaction } from 'kysely';
import type { Database, DbExecutor } from '../db/database.js';
import type { InitiatingEntity } from '../events/iam-event.js';
import { recordEvent } from '../events/outbox.repository.js';
import { writeAudit } from './audit.repository.js';
import { IamError } from './iam-errors.js';
import type { PasswordHasher } from './password-hasher.js';
import { assertPasswordAcceptable } from './password-policy.js';
import { revokeStoredTokens } from './session.service.js';
import { assignRole, insertRole, rolesOfUser, unassignRole, type Role } from './role.repository.js';
import { findUserById, findUserByUsername, insertUser, updateDisabled, updatePasswordHash, type User } from './user.repository.js';

/** Who asks for a change, as the audit log records it. */
export interface Actor {
  /** `cli`, `client:<client_id>`, `user:<id>`, `system`. */
  actor: string;
  initiatingEntity: InitiatingEntity;
  clientAddress?: string | null;
  requestId?: string | null;
}

/** A user named by id or by username. */
export type UserRef = { id: string } | { username: string };

export interface NewUserInput {
  username: string;
  email?: string | null;
  /** Checked against the password policy; omitted: the account cannot log in with a password yet. */
  password?: string;
  roles?: string[];
}

/**
 * User and role management: each change, its audit record and its IAM event (outbox) commit in
 * one transaction. Passwords are hashed before the transaction opens (argon2 is slow; a
 * transaction must not wait for it).
 */
export function createUsersService(deps: { db: Kysely<Database>; hasher: PasswordHasher }) {
  const { db, hasher } = deps;

  async function resolve(trx: DbExecutor, ref: UserRef): Promise<User> {
    const user = 'id' in ref ? await findUserById(trx, ref.id) : await findUserByUsername(trx, ref.username);
    if (!user) throw new IamError('user_not_found', 'id' in ref ? 'no such user' : `no user "${ref.username}"`);
    return user;
  }

  function audit(trx: Transaction<Database>, by: Actor, action: string, target: string, details: Record<string, unknown> = {}) {
    return writeAudit(trx, { actor: by.actor, action, target, outcome: 'success', clientAddress: by.clientAddress, requestId: by.requestId, details });
  }

  async function hashNew(password: string, username: string): Promise<string> {
    assertPasswordAcceptable(password, username);
    return hasher.hash(password);
  }

  return {
    async createUser(input: NewUserInput, by: Actor): Promise<User> {
      const passwordHash = input.password === undefined ? null : await hashNew(input.password, input.username);
      return db.transaction().execute(async (trx) => {
        const user = await insertUser(trx, { username: input.username, email: input.email ?? null, passwordHash });
        for (const role of input.roles ?? []) await assignRole(trx, user.id, role);
        await audit(trx, by, 'user.create', `user:${user.id}`, { username: user.username, roles: input.roles ?? [] });
        if ((input.roles ?? []).length > 0) {
          await recordEvent(trx, { type: 'roles-changed', userId: user.id, roles: await rolesOfUser(trx, user.id), initiatingEntity: by.initiatingEntity, actor: by.actor });
        }
        return (await findUserById(trx, user.id))!;
      });
    },

    async setPassword(ref: UserRef, password: string, by: Actor): Promise<void> {
      const user = await resolve(db, ref);
      const passwordHash = await hashNew(password, user.username);
      await db.transaction().execute(async (trx) => {
        await updatePasswordHash(trx, user.id, passwordHash);
        await audit(trx, by, 'user.password.set', `user:${user.id}`);
        await recordEvent(trx, { type: 'credential-changed', userId: user.id, credentialType: 'password', changeType: 'update', initiatingEntity: by.initiatingEntity, actor: by.actor });
      });
    },

    /**
     * Returns whether the flag changed (disabling a disabled user is not an error). Disabling also
     * revokes the user's sessions, grants and tokens in the same transaction (as the admin API
     * does; back-channel logout is sent only by the admin API, which has the running provider).
     */
    async setDisabled(ref: UserRef, disabled: boolean, by: Actor): Promise<boolean> {
      return db.transaction().execute(async (trx) => {
        const user = await resolve(trx, ref);
        const changed = await updateDisabled(trx, user.id, disabled);
        const revoked = disabled ? await revokeStoredTokens(trx, user.id) : undefined;
        await audit(trx, by, disabled ? 'user.disable' : 'user.enable', `user:${user.id}`, {
          changed,
          ...(revoked ? { sessions_revoked: revoked.sessionIds.length, grants_revoked: revoked.destroyed.grantIds.length } : {}),
        });
        if (changed) {
          await recordEvent(trx, {
            type: disabled ? 'account-disabled' : 'account-enabled',
            userId: user.id,
            initiatingEntity: by.initiatingEntity,
            actor: by.actor,
            ...(revoked ? { sessionIds: revoked.sessionIds } : {}),
          });
        }
        return changed;
      });
    },

    /** Adds (`assign: true`) or removes a role; returns whether the assignment changed. */
    async changeRole(ref: UserRef, role: string, assign: boolean, by: Actor): Promise<boolean> {
      return db.transaction().execute(async (trx) => {
        const user = await resolve(trx, ref);
        const changed = assign ? await assignRole(trx, user.id, role) : await unassignRole(trx, user.id, role);
        await audit(trx, by, assign ? 'user.role.add' : 'user.role.remove', `user:${user.id}`, { role, changed });
        if (changed) {
          await recordEvent(trx, { type: 'roles-changed', userId: user.id, roles: await rolesOfUser(trx, user.id), initiatingEntity: by.initiatingEntity, actor: by.actor });
        }
        return changed;
      });
    },

    async createRole(name: string, description: string | null, by: Actor): Promise<Role> {
      return db.transaction().execute(async (trx) => {
        const role = await insertRole(trx, name, description);
        await audit(trx, by, 'role.create', `role:${name}`);
        return role;
      });
    },
  };
}

export type UsersService = ReturnType<typeof createUsersService>;
