import type { Kysely, Transaction } from 'kysely';
import type { Logger } from 'pino';
import type { Database } from '../db/database.js';
import { destroyAccountModels, destroyClientModels, destroyGrantModels, type ModelPayload } from '../db/oidc-model.repository.js';
import type { InitiatingEntity } from '../events/iam-event.js';
import { DEFAULT_WRITERS, type MutationWriters } from '../iam/admin-mutation.js';
import { revokeClientTokens, revokeSessionIds, revokeSubjectTokens } from './token-revocation.repository.js';

/** The paths that end a grant, as events and audit records name them. */
export type RevocationReason = 'logout' | 'refresh_token_reuse' | 'code_replay' | 'token_revocation' | 'grant_revoked';

/** One grant to end, with what the request that ends it already knows. */
export interface GrantRevocationRequest {
  grantId: string;
  reason: RevocationReason;
  initiatingEntity: InitiatingEntity;
  /** Who ended it, as the audit log names actors (`user:<id>`, `client:<client_id>`). */
  actor: string;
  /** The grant's session (`sid`), when the request knows it (the tokens and codes removed carry it too). */
  sid?: string;
  /** The grant's user, when the request knows it. */
  subject?: string;
  clientId?: string;
  clientAddress?: string | null;
  requestId?: string | null;
}

/** What ending a grant reached. */
export interface GrantRevoked {
  /** Grant, token and code rows removed. */
  rows: number;
  /** Sessions newly revoked by this call (empty when a concurrent call did it first). */
  sids: string[];
  subject?: string;
}

/** What revoking everything of a user reached, inside the caller's transaction. */
export interface SubjectRevoked {
  sessions: ModelPayload[];
  grantIds: string[];
  tokens: number;
  /** The user's cut-off: every token of the user issued up to it is refused. */
  cutOff: Date;
}

/**
 * The database part of revoking everything a user holds, in the caller's transaction (the admin
 * and CLI paths, disabling an account): every session and grant with their tokens and codes, and
 * the user's cut-off (every JWT access token of the user issued up to it, and every resume token
 * descending from one, is refused). The caller writes the audit record and the event with its own
 * change, and sends back-channel logout for `sessions` after the commit.
 */
export async function revokeSubjectInTransaction(trx: Transaction<Database>, userId: string): Promise<SubjectRevoked> {
  const destroyed = await destroyAccountModels(trx, userId);
  const cutOff = await revokeSubjectTokens(trx, userId);
  return { sessions: destroyed.sessions, grantIds: destroyed.grantIds, tokens: destroyed.tokens, cutOff };
}

/** What retiring a client reached, inside the caller's transaction. */
export interface ClientRevoked {
  /** Grant, token and code rows of the client removed. */
  rows: number;
  /** The client's cut-off: every token issued to it up to then is refused. */
  cutOff: Date;
}

/**
 * The database part of retiring a client (disabled or deleted), in the caller's transaction: every
 * grant of the client with its refresh tokens, opaque access tokens and codes, and the client's
 * cut-off (every JWT access token issued to it up to now, every resume token it obtained, and every
 * resume token exchanged from one of those is refused). The caller writes the audit record and
 * the event with its own change.
 */
export async function revokeClientInTransaction(trx: Transaction<Database>, clientId: string): Promise<ClientRevoked> {
  const destroyed = await destroyClientModels(trx, clientId);
  const cutOff = await revokeClientTokens(trx, clientId);
  return { rows: destroyed.rows, cutOff };
}

export interface RevocationDeps {
  db: Kysely<Database>;
  logger: Logger;
  writers?: MutationWriters;
}

/**
 * The one way anything is revoked. Each call is one transaction that ends what it touches (the
 * grant, or every session and grant of a user, with their refresh tokens, opaque access tokens
 * and codes), cuts off the JWT access tokens already issued from it (by `sid`, or by the user's
 * cut-off) and with them every resume token exchanged from those tokens (they carry the `sid` and
 * descend from the user's tokens), writes the audit record and records the CAEP `session-revoked`
 * event in the outbox, so the relay tells every consumer.
 */
export function createRevocation(deps: RevocationDeps) {
  const writers = deps.writers ?? DEFAULT_WRITERS;
  const log = deps.logger.child({ component: 'revocation' });

  return {
    /**
     * Ends one grant (logout, refresh-token reuse, authorization-code replay, RFC 7009 revocation
     * of its refresh token). Idempotent: a grant already ended writes nothing and announces nothing.
     */
    async revokeGrant(request: GrantRevocationRequest): Promise<GrantRevoked> {
      return deps.db.transaction().execute(async (trx) => {
        const destroyed = await destroyGrantModels(trx, request.grantId);
        const subject = request.subject ?? destroyed.accountId;
        const clientId = request.clientId ?? destroyed.clientId;
        const candidates = [...new Set([...(request.sid ? [request.sid] : []), ...destroyed.sids])];
        const sids = await revokeSessionIds(
          trx,
          candidates.map((sid) => ({ sid, subject, clientId, reason: request.reason })),
        );
        if (candidates.length === 0 && destroyed.rows > 0) {
          log.warn({ reason: request.reason }, 'grant revoked without a session id: its JWT access tokens live out their lifetime');
        }
        if (destroyed.rows === 0 && sids.length === 0) return { rows: 0, sids, subject };
        await writers.writeAudit(trx, {
          actor: request.actor,
          action: 'grant.revoke',
          target: subject ? `user:${subject}` : null,
          outcome: 'success',
          clientAddress: request.clientAddress ?? null,
          requestId: request.requestId ?? null,
          details: { reason: request.reason, client_id: clientId ?? null, sessions: sids, rows: destroyed.rows },
        });
        if (subject) {
          for (const sid of sids) {
            await writers.recordEvent(trx, {
              type: 'session-revoked',
              userId: subject,
              sessionIds: [sid],
              sid,
              initiatingEntity: request.initiatingEntity,
              reasonAdmin: request.reason,
              actor: request.actor,
            });
          }
        }
        return { rows: destroyed.rows, sids, subject };
      });
    },

    revokeSubjectInTransaction,
    revokeClientInTransaction,
  };
}

export type Revocation = ReturnType<typeof createRevocation>;
