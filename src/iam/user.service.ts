import type { Kysely } from 'kysely';
import type { Database } from '../db/database.js';
import { AppError } from '../http/app-error.js';
import { FieldError } from '../http/admin-errors.js';
import { DEFAULT_WRITERS, mutate, type Actor, type MutationWriters } from './admin-mutation.js';
import { IamError } from './iam-errors.js';
import { decodeCursor, toPage, type Page } from './pagination.js';
import type { PasswordHasher } from './password-hasher.js';
import { assertPasswordAcceptable } from './password-policy.js';
import { assignRole, insertRole, listRoles, roleExists, rolesOfUser, ROLE_NAME, unassignRole, type Role } from './role.repository.js';
import { revokeWithoutLogout, type SessionService } from './session.service.js';
import { findUserById, findUserByUsername, insertUser, listUsers, updateDisabled, updatePasswordHash, type User } from './user.repository.js';
import { prepareUsername, UsernameRefused } from './username.js';

/** A user as the admin API shows it (and the CLI prints it). */
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

export interface RoleView {
  name: string;
  description: string | null;
  created_at: string;
}

const toRoleView = (role: Role): RoleView => ({ name: role.name, description: role.description, created_at: role.createdAt.toISOString() });

/** A user named by id (admin API) or by username (CLI). */
export type UserRef = { id: string } | { username: string };

export interface NewUserInput {
  username: string;
  email?: string | null;
  /** Checked against the password policy; omitted: the account cannot log in with a password yet. */
  password?: string;
  roles?: string[];
}

/** A status or role change: the user after it, and whether anything changed (repeating one is not an error). */
export interface UserChange {
  user: UserView;
  changed: boolean;
}

export interface UserServiceDeps {
  db: Kysely<Database>;
  hasher: PasswordHasher;
  /**
   * The running server's session service: disabling then also sends back-channel logout after
   * the commit. Without it (CLI, seeding) disabling revokes sessions, grants and tokens in the
   * same transaction but sends no back-channel logout (that needs the running provider).
   */
  sessions?: Pick<SessionService, 'revokeInTransaction'>;
  /** Audit and outbox writers (the real repositories unless a test injects a failure). */
  writers?: MutationWriters;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Checks the password policy (`weak_password` names the field), then hashes with argon2id before
 * the transaction opens (it takes tens of milliseconds); a full queue is 503.
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

async function requireUser(db: Parameters<typeof findUserById>[0], ref: UserRef): Promise<User> {
  const user = 'id' in ref ? await findUserById(db, ref.id) : await findUserByUsername(db, ref.username);
  if (!user) throw new IamError('user_not_found', 'id' in ref ? 'no such user' : `no user "${ref.username}"`);
  return user;
}

const reasonOf = (reason?: string) => (reason ? { reason } : {});

const usernameIssue = (message: string) => [{ in: 'body' as const, field: 'username', message }];

/**
 * The display form of a new username per RFC 8265 ({@link prepareUsername}), checked before the
 * password is hashed; a refused name is `invalid_username` (400) naming the field.
 */
function displayUsername(username: string): string {
  try {
    return prepareUsername(username).display;
  } catch (error) {
    if (error instanceof UsernameRefused) throw new FieldError('invalid_username', error.message, usernameIssue(error.message), { cause: error });
    throw error;
  }
}

/**
 * Users and roles, for the admin API and the CLI alike: each change, its audit record and its IAM
 * event (outbox) commit in ONE transaction, or not at all.
 */
export function createUserService(deps: UserServiceDeps) {
  const writers = deps.writers ?? DEFAULT_WRITERS;
  const { db } = deps;
  const revoke = deps.sessions ? deps.sessions.revokeInTransaction : revokeWithoutLogout;

  async function changeRole(ref: UserRef, role: string, assign: boolean, by: Actor): Promise<UserChange> {
    return mutate(db, writers, by, async (trx) => {
      const { id } = await requireUser(trx, ref);
      const changed = assign ? await assignRole(trx, id, role) : await unassignRole(trx, id, role);
      return {
        result: { user: toUserView(await requireUser(trx, { id })), changed },
        action: assign ? 'user.role.assign' : 'user.role.unassign',
        target: `user:${id}`,
        details: { role, changed },
        // A repeat (the role was already there, or already gone) changes no claim of any token:
        // audited with `changed: false`, but no `token-claims-change` event.
        ...(changed ? { event: { type: 'roles-changed' as const, userId: id, roles: await rolesOfUser(trx, id), initiatingEntity: by.initiatingEntity, actor: by.actor } } : {}),
      };
    });
  }

  return {
    async get(id: string): Promise<UserView> {
      return toUserView(await requireUser(db, { id }));
    },

    async list(page: { limit: number; cursor?: string }): Promise<Page<UserView>> {
      const after = decodeCursor(page.cursor, (key) => UUID.test(key));
      return toPage(await listUsers(db, { limit: page.limit + 1, after }), page.limit, (user) => user.id, toUserView);
    },

    /**
     * Creates a user. The username is prepared and compared per RFC 8265 (see `username.ts`):
     * `invalid_username` for a refused name, `username_taken` (409) when it is another user's
     * name in any letter case or width.
     */
    async create(input: NewUserInput, by: Actor): Promise<UserView> {
      const roles = [...new Set(input.roles ?? [])].sort();
      const username = displayUsername(input.username);
      const passwordHash = input.password === undefined ? null : await hashPassword(deps.hasher, input.password, username);
      try {
        return await mutate(db, writers, by, async (trx) => {
          const unknown = [];
          for (const [index, role] of (input.roles ?? []).entries()) {
            if (!(await roleExists(trx, role))) unknown.push({ in: 'body' as const, field: `roles.${index}`, message: `no role "${role}"` });
          }
          if (unknown.length > 0) throw new FieldError('role_not_found', unknown.map((issue) => issue.message).join(', '), unknown);
          const created = await insertUser(trx, { username, email: input.email ?? null, passwordHash });
          for (const role of roles) await assignRole(trx, created.id, role);
          const user = roles.length > 0 ? await requireUser(trx, { id: created.id }) : created;
          return {
            result: toUserView(user),
            action: 'user.create',
            target: `user:${user.id}`,
            details: { username: user.username, roles, password_set: passwordHash !== null },
            event: { type: 'account-created', userId: user.id, roles, initiatingEntity: by.initiatingEntity, actor: by.actor },
          };
        });
      } catch (error) {
        if (error instanceof IamError && error.code === 'username_taken') {
          throw new FieldError('username_taken', error.message, usernameIssue('already taken'), { status: 409, cause: error });
        }
        if (error instanceof IamError && error.code === 'invalid_username') throw new FieldError('invalid_username', error.message, usernameIssue(error.message), { cause: error });
        throw error;
      }
    },

    /**
     * Sets the password and, as after a compromise, revokes everything the user holds (sessions,
     * grants, tokens; back-channel logout after the commit, when wired), in the same transaction:
     * consumers treat the `credential-change` event as a revocation, and so does introspection.
     */
    async setPassword(ref: UserRef, password: string, by: Actor): Promise<void> {
      const user = await requireUser(db, ref);
      const hash = await hashPassword(deps.hasher, password, user.username);
      const notify = await mutate(db, writers, by, async (trx) => {
        const before = await requireUser(trx, { id: user.id });
        await updatePasswordHash(trx, user.id, hash);
        const revoked = await revoke(trx, user.id);
        const changeType = before.passwordChangedAt === null ? 'create' : 'update';
        return {
          result: revoked.notify,
          action: 'user.password.set',
          target: `user:${user.id}`,
          details: { change: changeType, ...revoked.counts },
          event: { type: 'credential-changed', userId: user.id, credentialType: 'password', changeType, initiatingEntity: by.initiatingEntity, actor: by.actor },
        };
      });
      await notify();
    },

    /** Disables the user and revokes everything they hold, in the same transaction (back-channel logout after the commit, when wired). */
    async disable(ref: UserRef, by: Actor, reason?: string): Promise<UserChange> {
      const { change, notify } = await mutate(db, writers, by, async (trx) => {
        const { id } = await requireUser(trx, ref);
        const changed = await updateDisabled(trx, id, true);
        const revoked = await revoke(trx, id);
        return {
          result: { change: { user: toUserView(await requireUser(trx, { id })), changed }, notify: revoked.notify },
          action: 'user.disable',
          target: `user:${id}`,
          details: { changed, ...revoked.counts, ...reasonOf(reason) },
          event: { type: 'account-disabled', userId: id, sessionIds: revoked.sessionIds, initiatingEntity: by.initiatingEntity, actor: by.actor, ...(reason ? { reasonAdmin: reason } : {}) },
        };
      });
      await notify();
      return change;
    },

    async enable(ref: UserRef, by: Actor, reason?: string): Promise<UserChange> {
      return mutate(db, writers, by, async (trx) => {
        const { id } = await requireUser(trx, ref);
        const changed = await updateDisabled(trx, id, false);
        return {
          result: { user: toUserView(await requireUser(trx, { id })), changed },
          action: 'user.enable',
          target: `user:${id}`,
          details: { changed, ...reasonOf(reason) },
          event: { type: 'account-enabled', userId: id, initiatingEntity: by.initiatingEntity, actor: by.actor, ...(reason ? { reasonAdmin: reason } : {}) },
        };
      });
    },

    /** Idempotent: `changed` says whether the user did not have the role; only a change records an event. */
    assignRole: (ref: UserRef, role: string, by: Actor) => changeRole(ref, role, true, by),

    /** Idempotent: `changed` says whether the user had the role; only a change records an event. */
    unassignRole: (ref: UserRef, role: string, by: Actor) => changeRole(ref, role, false, by),

    async listRoles(page: { limit: number; cursor?: string }): Promise<Page<RoleView>> {
      const after = decodeCursor(page.cursor, (key) => ROLE_NAME.test(key));
      return toPage(await listRoles(db, { limit: page.limit + 1, after }), page.limit, (role) => role.name, toRoleView);
    },

    async createRole(input: { name: string; description?: string | null }, by: Actor): Promise<RoleView> {
      try {
        return await mutate(db, writers, by, async (trx) => {
          const role = await insertRole(trx, input.name, input.description ?? null);
          // A new role is assigned to nobody yet: no user's state changed, so no IAM event.
          return { result: toRoleView(role), action: 'role.create', target: `role:${role.name}` };
        });
      } catch (error) {
        if (error instanceof IamError && error.code === 'role_exists') {
          throw new FieldError('role_exists', error.message, [{ in: 'body', field: 'name', message: 'already exists' }], { status: 409, cause: error });
        }
        throw error;
      }
    },
  };
}

export type UserService = ReturnType<typeof createUserService>;
