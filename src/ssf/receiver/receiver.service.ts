import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../../db/database.js';
import { DEFAULT_WRITERS, type MutationWriters } from '../../iam/admin-mutation.js';
import { revokeWithoutLogout, type SessionService } from '../../iam/session.service.js';
import { findUserById, findUserByUsername, updateDisabled } from '../../iam/user.repository.js';
import { actionOf, type ReceiverAction } from './event-catalog.js';
import { findUserIdsByEmail, recordReceivedSet } from './received-set.repository.js';
import type { ReceivedSubject, VerifiedSet } from './set-verifier.js';

/**
 * What became of a verified SET:
 * - `applied`: Custos changed the user (sessions revoked, account disabled or enabled);
 * - `recorded`: the event is audited, nothing changes in Custos (see `actionOf`);
 * - `unknown_subject`: no Custos user (or more than one) matches the subject: nothing changes;
 * - `ignored`: an event type Custos does not know, or an SSF control event;
 * - `replayed`: this `jti` of this issuer was received before: nothing changes.
 */
export type ReceiveOutcome = 'applied' | 'recorded' | 'unknown_subject' | 'ignored' | 'replayed';

export interface ReceiverServiceDeps {
  db: Kysely<Database>;
  /** Custos's issuer: an `iss_sub` subject names a Custos user when its `iss` is this. */
  issuer: string;
  /** The running server's session service (back-channel logout after the commit); without it, no back-channel logout. */
  sessions?: Pick<SessionService, 'revokeInTransaction'>;
  writers?: MutationWriters;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Acting on verified SETs. Each SET is ONE transaction: its (`iss`, `jti`) is recorded first (a
 * replay — also a concurrent one — finds the row and changes nothing), then the user is resolved,
 * changed through the same repositories and revocation as the admin API (`revokeSubjectInTransaction`
 * via the session service, `updateDisabled`), and the audit record and Custos's own outbound event
 * (`session-revoked`, `account-disabled`, `account-enabled`; to Pulsar and SSF streams) are written.
 */
export function createReceiverService(deps: ReceiverServiceDeps) {
  const writers = deps.writers ?? DEFAULT_WRITERS;
  const revoke = deps.sessions ? deps.sessions.revokeInTransaction : revokeWithoutLogout;

  /** The one Custos user a subject names, by the formats the transmitter is trusted for; `complex` by its `user` member. */
  async function resolveUser(trx: Transaction<Database>, subject: ReceivedSubject, transmitter: VerifiedSet['transmitter']): Promise<string | undefined> {
    const formats: readonly string[] = transmitter.subject_formats;
    const simple = subject.format === 'complex' ? subject['user'] : subject;
    if (typeof simple !== 'object' || simple === null) return undefined;
    const member = simple as Record<string, unknown>;
    const format = member['format'];
    if (typeof format !== 'string' || !formats.includes(format)) return undefined;
    let id: unknown;
    if (format === 'iss_sub' && transmitter.username_issuer !== undefined && member['iss'] === transmitter.username_issuer && member['iss'] !== deps.issuer) {
      return typeof member['sub'] === 'string' ? (await findUserByUsername(trx, member['sub']))?.id : undefined;
    }
    if (format === 'iss_sub') id = member['iss'] === deps.issuer ? member['sub'] : undefined;
    else if (format === 'opaque') id = member['id'];
    else if (format === 'email' && typeof member['email'] === 'string') {
      const ids = await findUserIdsByEmail(trx, member['email']);
      id = ids.length === 1 ? ids[0] : undefined;
    }
    if (typeof id !== 'string' || !UUID.test(id)) return undefined;
    return (await findUserById(trx, id))?.id;
  }

  return {
    /** Applies one verified SET (see {@link ReceiveOutcome}); back-channel logout goes out after the commit. */
    async receive(set: VerifiedSet, request: { clientAddress?: string | null; requestId?: string | null }): Promise<{ outcome: ReceiveOutcome; action?: ReceiverAction }> {
      const actor = `ssf:${set.transmitter.id}`;
      const ssf = { transmitter: set.transmitter.id, jti: set.jti, event_type: set.eventType };
      const audit = (trx: Transaction<Database>, action: string, target: string | null, details: Record<string, unknown> = {}) =>
        writers.writeAudit(trx, { actor, action, target, outcome: 'success', clientAddress: request.clientAddress ?? null, requestId: request.requestId ?? null, details: { ssf, ...details } });
      const result = await deps.db.transaction().execute(async (trx) => {
        if (!(await recordReceivedSet(trx, { issuer: set.issuer, jti: set.jti, transmitter: set.transmitter.id, eventType: set.eventType }))) {
          return { outcome: 'replayed' as const };
        }
        if (!('known' in set.kind)) return { outcome: 'ignored' as const };
        const userId = set.subject ? await resolveUser(trx, set.subject, set.transmitter) : undefined;
        if (!userId) {
          await audit(trx, 'ssf.event.unmatched', null);
          return { outcome: 'unknown_subject' as const };
        }
        const action = actionOf(set.kind.known, set.payload);
        const target = `user:${userId}`;
        const event = { userId, initiatingEntity: 'policy' as const, actor, reasonAdmin: `SSF ${set.kind.known} from ${set.transmitter.id}` };
        switch (action) {
          case 'record':
            await audit(trx, 'ssf.event.recorded', target);
            return { outcome: 'recorded' as const, action };
          case 'revoke-sessions': {
            const revoked = await revoke(trx, userId);
            await audit(trx, 'sessions.revoke', target, revoked.counts);
            await writers.recordEvent(trx, { type: 'session-revoked', sessionIds: revoked.sessionIds, ...event });
            return { outcome: 'applied' as const, action, notify: revoked.notify };
          }
          case 'disable': {
            const changed = await updateDisabled(trx, userId, true);
            const revoked = await revoke(trx, userId);
            await audit(trx, 'user.disable', target, { changed, ...revoked.counts });
            await writers.recordEvent(trx, { type: 'account-disabled', sessionIds: revoked.sessionIds, ...event });
            return { outcome: 'applied' as const, action, notify: revoked.notify };
          }
          case 'enable': {
            const changed = await updateDisabled(trx, userId, false);
            await audit(trx, 'user.enable', target, { changed });
            await writers.recordEvent(trx, { type: 'account-enabled', ...event });
            return { outcome: 'applied' as const, action };
          }
        }
      });
      if ('notify' in result && result.notify) await result.notify();
      return { outcome: result.outcome, ...('action' in result ? { action: result.action } : {}) };
    },
  };
}

export type ReceiverService = ReturnType<typeof createReceiverService>;
