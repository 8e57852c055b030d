import type { Kysely } from 'kysely';
import type { Database } from '../db/database.js';
import { AppError } from '../http/app-error.js';
import { FieldError } from '../http/admin-errors.js';
import type { AdminRequest } from '../http/admin-router.js';
import { DEFAULT_WRITERS, mutate, type MutationWriters } from './admin-mutation.js';
import { IamError } from './iam-errors.js';
import { decodeCursor, toPage, type Page } from './pagination.js';
import type { PasswordHasher } from './password-hasher.js';
import { assertPasswordAcceptable } from './password-policy.js';
import { assignRole, roleExists, rolesOfUser, unassignRole } from './role.repository.js';
import type { SessionService } from './session.service.js';
import { findUserById, insertUser, listUsers, updateDisabled, updatePasswordHash, type User } from './user.repository.js';

/** A user as the admin API shows it. */
export interface UserView {
  id: string;
  username: string;
  email: string | null;
  disabled: boolean;
  roles: string[];
  has_password: boolean;
  created_at: string;
  updated_at: string;
  password_changed_at: string | null;
}

export function toUserView(user: User): UserView {
  return {
    id: user.id,
    username: user.username,
    email: user.email,
    disabled: user.disabled,
    roles: user.roles,
    has_password: user.passwordChangedAt !== null,
    created_at: user.createdAt.toISOString(),
    updated_at: user.updatedAt.toISOString(),
    password_changed_at: user.passwordChangedAt?.toISOString() ?? null,
  };
}

export interface UserServiceDeps {
  db: Kysely<Database>;
  hasher: PasswordHasher;
  sessions: SessionService;
  writers?: MutationWriters;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Checks the password policy (`weak_password` names the field), then hashes with argon2id off the
 * transaction (it takes tens of milliseconds); a full queue is 503.
 */
async function hashPassword(hasher: PasswordHasher, password: string, username: string): Promise<string> {
  try {
    assertPasswordAcceptable(password, username);
  } catch (error) {
    if (error instanceof IamError) throw new FieldError('weak_password', error.message, [{ in: 'body', field: 'password', message: error.message }], { cause: error });
    throw error;
  }
  try {
    return await hasher.hash(password);
  } catch (error) {
    if ((error as Error).message === 'busy') {
      throw new AppError('temporarily_unavailable', 'too many password operations in progress; retry shortly', { status: 503, expose: true, cause: error });
    }
    throw error;
  }
}

async function requireUser(db: Parameters<typeof findUserById>[0], id: string): Promise<User> {
  const user = await findUserById(db, id);
  if (!user) throw new IamError('user_not_found', 'no such user');
  return user;
}

/** Users: create, read, disable (revoking their sessions), enable, set password, roles. */
export function createUserService(deps: UserServiceDeps) {
  const writers = deps.writers ?? DEFAULT_WRITERS;
  const { db } = deps;

  return {
    async get(id: string): Promise<UserView> {
      return toUserView(await requireUser(db, id));
    },

    async list(page: { limit: number; cursor?: string }): Promise<Page<UserView>> {
      const after = decodeCursor(page.cursor, (key) => UUID.test(key));
      return toPage(await listUsers(db, { limit: page.limit + 1, after }), page.limit, (user) => user.id, toUserView);
    },

    async create(request: AdminRequest, input: { username: string; email?: string | null; password?: string; roles?: string[] }): Promise<UserView> {
      const roles = [...new Set(input.roles ?? [])].sort();
      const passwordHash = input.password === undefined ? null : await hashPassword(deps.hasher, input.password, input.username);
      try {
        return await mutate(db, writers, request, async (trx) => {
          const unknown = [];
          for (const [index, role] of (input.roles ?? []).entries()) {
            if (!(await roleExists(trx, role))) unknown.push({ in: 'body' as const, field: `roles.${index}`, message: `no role "${role}"` });
          }
          if (unknown.length > 0) throw new FieldError('role_not_found', 'unknown roles', unknown);
          const created = await insertUser(trx, { username: input.username, email: input.email ?? null, passwordHash });
          for (const role of roles) await assignRole(trx, created.id, role);
          const user = roles.length > 0 ? await requireUser(trx, created.id) : created;
          return {
            result: toUserView(user),
            action: 'user.create',
            target: `user:${user.id}`,
            details: { username: user.username, roles, password_set: passwordHash !== null },
            event: { type: 'account-created', userId: user.id, roles, initiatingEntity: 'admin', actor: request.caller.actor },
          };
        });
      } catch (error) {
        if (error instanceof IamError && error.code === 'username_taken') {
          throw new FieldError('username_taken', error.message, [{ in: 'body', field: 'username', message: 'already taken' }], { status: 409, cause: error });
        }
        throw error;
      }
    },

    /** Disables the user and revokes everything they hold, in the same transaction. */
    async disable(request: AdminRequest, id: string, reason?: string): Promise<UserView> {
      const { user, notify } = await mutate(db, writers, request, async (trx) => {
        await requireUser(trx, id);
        const changed = await updateDisabled(trx, id, true);
        const revoked = await deps.sessions.revokeInTransaction(trx, id);
        return {
          result: { user: await requireUser(trx, id), notify: revoked.notify },
          action: 'user.disable',
          target: `user:${id}`,
          details: { changed, ...revoked.counts, ...(reason ? { reason } : {}) },
          event: { type: 'account-disabled', userId: id, sessionIds: revoked.sessionIds, initiatingEntity: 'admin', actor: request.caller.actor, ...(reason ? { reasonAdmin: reason } : {}) },
        };
      });
      await notify();
      return toUserView(user);
    },

    async enable(request: AdminRequest, id: string, reason?: string): Promise<UserView> {
      return mutate(db, writers, request, async (trx) => {
        await requireUser(trx, id);
        const changed = await updateDisabled(trx, id, false);
        return {
          result: toUserView(await requireUser(trx, id)),
          action: 'user.enable',
          target: `user:${id}`,
          details: { changed, ...(reason ? { reason } : {}) },
          event: { type: 'account-enabled', userId: id, initiatingEntity: 'admin', actor: request.caller.actor, ...(reason ? { reasonAdmin: reason } : {}) },
        };
      });
    },

    async setPassword(request: AdminRequest, id: string, password: string): Promise<void> {
      const user = await requireUser(db, id);
      const hash = await hashPassword(deps.hasher, password, user.username);
      await mutate(db, writers, request, async (trx) => {
        const before = await requireUser(trx, id);
        await updatePasswordHash(trx, id, hash);
        const changeType = before.passwordChangedAt === null ? 'create' : 'update';
        return {
          result: undefined,
          action: 'user.password.set',
          target: `user:${id}`,
          details: { change: changeType },
          event: { type: 'credential-changed', userId: id, credentialType: 'password', changeType, initiatingEntity: 'admin', actor: request.caller.actor },
        };
      });
    },

    async assignRole(request: AdminRequest, id: string, role: string): Promise<UserView> {
      return mutate(db, writers, request, async (trx) => {
        await requireUser(trx, id);
        const changed = await assignRole(trx, id, role);
        const roles = await rolesOfUser(trx, id);
        return {
          result: toUserView(await requireUser(trx, id)),
          action: 'user.role.assign',
          target: `user:${id}`,
          details: { role, changed },
          event: { type: 'roles-changed', userId: id, roles, initiatingEntity: 'admin', actor: request.caller.actor },
        };
      });
    },

    async unassignRole(request: AdminRequest, id: string, role: string): Promise<UserView> {
      return mutate(db, writers, request, async (trx) => {
        await requireUser(trx, id);
        const changed = await unassignRole(trx, id, role);
        const roles = await rolesOfUser(trx, id);
        return {
          result: toUserView(await requireUser(trx, id)),
          action: 'user.role.unassign',
          target: `user:${id}`,
          details: { role, changed },
          event: { type: 'roles-changed', userId: id, roles, initiatingEntity: 'admin', actor: request.caller.actor },
        };
      });
    },
  };
}

export type UserService = ReturnType<typeof createUserService>;
