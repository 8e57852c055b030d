import { defineRoute, type AdminRoute } from '../http/admin-router.js';
import { createRoleBody, pageOf, pageQuery, roleSchema } from './admin.schemas.js';
import { adminActor } from './admin-mutation.js';
import type { UserService } from './user.service.js';

/** `/admin/roles`: create and list roles. */
export function roleRoutes(roles: UserService): AdminRoute[] {
  return [
    defineRoute({
      method: 'post',
      path: '/admin/roles',
      operationId: 'createRole',
      summary: 'Create a role',
      body: createRoleBody,
      status: 201,
      response: roleSchema,
      errors: { 400: ['invalid_request', 'invalid_json'], 409: ['role_exists'], 413: ['body_too_large'], 415: ['unsupported_media_type'] },
      handle: ({ body, request }) => roles.createRole(body, adminActor(request)),
    }),
    defineRoute({
      method: 'get',
      path: '/admin/roles',
      operationId: 'listRoles',
      summary: 'List roles (ordered by name)',
      query: pageQuery,
      status: 200,
      response: pageOf(roleSchema, 'RolePage'),
      errors: { 400: ['invalid_request', 'invalid_cursor'] },
      handle: ({ query }) => roles.listRoles(query),
    }),
  ];
}
