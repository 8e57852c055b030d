import { sql } from 'kysely';
import type { DbExecutor } from '../db/database.js';
import { withoutNul } from '../db/storable.js';

export type AuditOutcome = 'success' | 'failure' | 'denied';

/** One audit record: who did what to whom, with which outcome, from where. */
export interface AuditRecord {
  /** `user:<id>`, `client:<client_id>`, `cli`, `system` or `anonymous`. */
  actor: string;
  /** Dotted action name, e.g. `login.success`, `login.failure`, `user.create`, `sessions.revoke`. */
  action: string;
  target?: string | null;
  outcome: AuditOutcome;
  clientAddress?: string | null;
  requestId?: string | null;
  /** Extra facts (never secrets, passwords, tokens or codes). */
  details?: Record<string, unknown>;
}

export interface AuditEntry extends Required<Omit<AuditRecord, 'details'>> {
  id: string;
  at: Date;
  details: Record<string, unknown>;
}

export interface AuditFilter {
  actor?: string;
  target?: string;
  action?: string;
  since?: Date;
  until?: Date;
}

/** Appends an audit record; pass the caller's transaction so it commits with the change it records. */
export async function writeAudit(db: DbExecutor, record: AuditRecord): Promise<void> {
  await db
    .insertInto('audit_log')
    .values({
      actor: withoutNul(record.actor)!,
      action: record.action,
      target: withoutNul(record.target),
      outcome: record.outcome,
      client_address: withoutNul(record.clientAddress),
      request_id: withoutNul(record.requestId),
      // jsonb cannot hold U+0000 (escaped or not); client-supplied strings may contain it.
      details: JSON.stringify(record.details ?? {}, (_key, value: unknown) => (typeof value === 'string' ? withoutNul(value) : value)),
    })
    .execute();
}

/** Audit records, newest first, `limit` before the `before` id (keyset pagination). */
export async function listAudit(db: DbExecutor, filter: AuditFilter, page: { limit: number; before?: string }): Promise<AuditEntry[]> {
  let query = db.selectFrom('audit_log').selectAll().orderBy('id', 'desc').limit(page.limit);
  if (filter.actor) query = query.where('actor', '=', filter.actor);
  if (filter.target) query = query.where('target', '=', filter.target);
  if (filter.action) query = query.where('action', '=', filter.action);
  if (filter.since) query = query.where('at', '>=', filter.since);
  if (filter.until) query = query.where('at', '<', filter.until);
  if (page.before) query = query.where('id', '<', page.before);
  const rows = await query.execute();
  return rows.map((row) => ({
    id: String(row.id),
    at: new Date(row.at),
    actor: row.actor,
    action: row.action,
    target: row.target,
    outcome: row.outcome,
    clientAddress: row.client_address,
    requestId: row.request_id,
    details: row.details,
  }));
}

/** Deletes audit records older than `retentionDays` (at most `limit` per call); returns how many were removed. */
export async function purgeAuditBefore(db: DbExecutor, retentionDays: number, limit = 5000): Promise<number> {
  const result = await db
    .deleteFrom('audit_log')
    .where('id', 'in', (eb) =>
      eb
        .selectFrom('audit_log')
        .select('id')
        .where('at', '<', sql<Date>`now() - make_interval(days => ${retentionDays})`)
        .limit(limit),
    )
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}
