import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../db/database.js';
import type { IamEvent, InitiatingEntity } from '../events/iam-event.js';
import { recordEvent } from '../events/outbox.repository.js';
import type { AdminRequest } from '../http/admin-router.js';
import { writeAudit, type AuditRecord } from './audit.repository.js';

/** Who asks for a change, as its audit record and its event name them. */
export interface Actor {
  /** `cli`, `client:<client_id>`, `system`, … */
  actor: string;
  initiatingEntity: InitiatingEntity;
  clientAddress?: string | null;
  requestId?: string | null;
}

/** The actor of an admin API request. */
export function adminActor(request: AdminRequest): Actor {
  return { actor: request.caller.actor, initiatingEntity: 'admin', clientAddress: request.clientAddress, requestId: request.requestId };
}

/**
 * The two writes every IAM mutation adds to its IAM change. Passed in (defaults: the real
 * repositories) so a test can make one fail after the IAM write and see the whole roll back.
 */
export interface MutationWriters {
  writeAudit: (trx: Transaction<Database>, record: AuditRecord) => Promise<void>;
  recordEvent: (trx: Transaction<Database>, event: IamEvent) => Promise<string>;
}

export const DEFAULT_WRITERS: MutationWriters = { writeAudit, recordEvent };

/** What a mutation's IAM change reports, for its audit record and its event. */
export interface MutationOutcome<T> {
  result: T;
  action: string;
  target: string;
  details?: Record<string, unknown>;
  /** The IAM event about the user; none for changes no user's state depends on (a new role). */
  event?: IamEvent;
}

/**
 * Runs one IAM mutation (admin API or CLI) in ONE database transaction: the IAM change
 * (`change`), its audit record and its outbox event commit together or not at all.
 */
export async function mutate<T>(
  db: Kysely<Database>,
  writers: MutationWriters,
  by: Actor,
  change: (trx: Transaction<Database>) => Promise<MutationOutcome<T>>,
): Promise<T> {
  return db.transaction().execute(async (trx) => {
    const outcome = await change(trx);
    await auditChange(writers, trx, by, outcome);
    if (outcome.event) await writers.recordEvent(trx, outcome.event);
    return outcome.result;
  });
}

/** The audit record of a successful change `by` made, written in the change's transaction. */
export function auditChange(
  writers: MutationWriters,
  trx: Transaction<Database>,
  by: Actor,
  change: { action: string; target: string; details?: Record<string, unknown> },
): Promise<void> {
  return writers.writeAudit(trx, {
    actor: by.actor,
    action: change.action,
    target: change.target,
    outcome: 'success',
    clientAddress: by.clientAddress,
    requestId: by.requestId,
    details: change.details,
  });
}
