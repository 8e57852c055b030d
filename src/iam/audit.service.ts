import type { Kysely } from 'kysely';
import type { Database } from '../db/database.js';
import { FieldError } from '../http/admin-errors.js';
import { listAudit, type AuditEntry, type AuditFilter } from './audit.repository.js';
import { decodeCursor, toPage, type Page } from './pagination.js';

export interface AuditEntryView {
  id: string;
  at: string;
  actor: string;
  action: string;
  target: string | null;
  outcome: AuditEntry['outcome'];
  client_address: string | null;
  request_id: string | null;
  details: Record<string, unknown>;
}

const toView = (entry: AuditEntry): AuditEntryView => ({
  id: entry.id,
  at: entry.at.toISOString(),
  actor: entry.actor,
  action: entry.action,
  target: entry.target,
  outcome: entry.outcome,
  client_address: entry.clientAddress,
  request_id: entry.requestId,
  details: entry.details,
});

/** The audit log, newest first, filtered by actor, target, action and time range. */
export function createAuditService(deps: { db: Kysely<Database> }) {
  return {
    async list(query: { actor?: string; target?: string; action?: string; since?: string; until?: string; limit: number; cursor?: string }): Promise<Page<AuditEntryView>> {
      const before = decodeCursor(query.cursor, (key) => /^[1-9][0-9]{0,17}$/.test(key));
      const filter: AuditFilter = {
        actor: query.actor,
        target: query.target,
        action: query.action,
        since: query.since ? new Date(query.since) : undefined,
        until: query.until ? new Date(query.until) : undefined,
      };
      if (filter.since && filter.until && filter.since > filter.until) {
        throw new FieldError('invalid_request', 'since is after until', [{ in: 'query', field: 'since', message: 'must not be after until' }]);
      }
      return toPage(await listAudit(deps.db, filter, { limit: query.limit + 1, before }), query.limit, (entry) => entry.id, toView);
    },
  };
}
