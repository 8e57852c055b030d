import { adminActor } from './admin-mutation.js';
import { defineRoute, type AdminRoute } from '../http/admin-router.js';
import { pageOf, pageQuery, revocationSchema, sessionSchema, statusChangeBody, userPath } from './admin.schemas.js';
import type { SessionService } from './session.service.js';

/** `/admin/users/{id}/sessions`: list a user's sessions; revoke everything the user holds. */
export function sessionRoutes(sessions: SessionService): AdminRoute[] {
  return [
    defineRoute({
      method: 'get',
      path: '/admin/users/{id}/sessions',
      operationId: 'listUserSessions',
      summary: "List a user's live sessions",
      params: userPath,
      query: pageQuery,
      status: 200,
      response: pageOf(sessionSchema, 'SessionPage'),
      errors: { 400: ['invalid_request', 'invalid_cursor'], 404: ['user_not_found'] },
      handle: ({ params, query }) => sessions.list(params.id, query),
    }),
    defineRoute({
      method: 'delete',
      path: '/admin/users/{id}/sessions',
      operationId: 'revokeUserSessions',
      summary:
        'Revoke everything the user holds: sessions, grants, refresh tokens, opaque access tokens; JWT access tokens and resume tokens exchanged from them introspect inactive; back-channel logout to every client of the sessions',
      params: userPath,
      body: statusChangeBody,
      bodyOptional: true,
      status: 200,
      response: revocationSchema,
      errors: { 400: ['invalid_request', 'invalid_json'], 404: ['user_not_found'], 413: ['body_too_large'], 415: ['unsupported_media_type'] },
      handle: ({ params, body, request }) => sessions.revokeAll(adminActor(request), params.id, body.reason),
    }),
  ];
}
