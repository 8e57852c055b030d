import type { Kysely } from 'kysely';
import type { Database } from '../db/database.js';
import { FieldError } from '../http/admin-errors.js';
import type { AdminRequest } from '../http/admin-router.js';
import { DEFAULT_WRITERS, mutate, type MutationWriters } from './admin-mutation.js';
import { IamError } from './iam-errors.js';
import { decodeCursor, toPage, type Page } from './pagination.js';
import { insertRole, listRoles, ROLE_NAME, type Role } from './role.repository.js';

export interface RoleView {
  name: string;
  description: string | null;
  created_at: string;
}

const toRoleView = (role: Role): RoleView => ({ name: role.name, description: role.description, created_at: role.createdAt.toISOString() });

/** Roles: create and list. */
export function createRoleService(deps: { db: Kysely<Database>; writers?: MutationWriters }) {
  const writers = deps.writers ?? DEFAULT_WRITERS;
  return {
    async list(page: { limit: number; cursor?: string }): Promise<Page<RoleView>> {
      const after = decodeCursor(page.cursor, (key) => ROLE_NAME.test(key));
      return toPage(await listRoles(deps.db, { limit: page.limit + 1, after }), page.limit, (role) => role.name, toRoleView);
    },

    async create(request: AdminRequest, input: { name: string; description?: string | null }): Promise<RoleView> {
      try {
        return await mutate(deps.db, writers, request, async (trx) => {
          const role = await insertRole(trx, input.name, input.description ?? null);
          return {
            result: toRoleView(role),
            action: 'role.create',
            target: `role:${role.name}`,
            // A new role is assigned to nobody yet: no user's state changed, so no IAM event.
          };
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

export type RoleService = ReturnType<typeof createRoleService>;
