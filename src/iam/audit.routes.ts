import { defineRoute, type AdminRoute } from '../http/admin-router.js';
import { auditEntrySchema, auditQuery, pageOf } from './admin.schemas.js';
import type { createAuditService } from './audit.service.js';

/** `GET /admin/audit`: the audit log, newest first. */
export function auditRoutes(audit: ReturnType<typeof createAuditService>): AdminRoute[] {
  return [
    defineRoute({
      method: 'get',
      path: '/admin/audit',
      operationId: 'listAudit',
      summary: 'Audit records, newest first, filtered by actor, target, action and time range [since, until)',
      query: auditQuery,
      status: 200,
      response: pageOf(auditEntrySchema, 'AuditPage'),
      errors: { 400: ['invalid_request', 'invalid_cursor'] },
      handle: ({ query }) => audit.list(query),
    }),
  ];
}
