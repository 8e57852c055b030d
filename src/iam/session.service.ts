import type { Kysely, Transaction } from 'kysely';
import type Provider from 'oidc-provider';
import type { Logger } from 'pino';
import type { Database } from '../db/database.js';
import { listAccountSessions, type ModelPayload } from '../db/oidc-model.repository.js';
import { sendBackchannelLogout } from '../oidc/logout.js';
import { revokeSubjectInTransaction } from '../revocation/revocation.service.js';
import { DEFAULT_WRITERS, mutate, type Actor, type MutationWriters } from './admin-mutation.js';
import { IamError } from './iam-errors.js';
import { decodeCursor, toPage, type Page } from './pagination.js';
import { findUserById } from './user.repository.js';

/** A user's session as the admin API shows it (never the session cookie value). */
export interface SessionView {
  id: string;
  login_at: string | null;
  expires_at: string | null;
  clients: string[];
  amr?: string[];
}

/** What revoking a user's sessions reached. */
export interface Revocation {
  sessions_revoked: number;
  grants_revoked: number;
  tokens_revoked: number;
  jwt_access_tokens_revoked_before: string;
  backchannel_logout: { sent: number; failed: number };
}

/** The revocation's database part, done inside a mutation's transaction; notify after commit. */
export interface RevokedInTransaction {
  sessionIds: string[];
  counts: Omit<Revocation, 'backchannel_logout'>;
  /** Sends back-channel logout for the destroyed sessions; call only after the commit. */
  notify(): Promise<Revocation['backchannel_logout']>;
}

export interface SessionServiceDeps {
  db: Kysely<Database>;
  /** The provider serving now (for clients' back-channel logout URIs and the logout token). */
  provider: () => Provider;
  logger: Logger;
  writers?: MutationWriters;
}

const UID = /^[A-Za-z0-9_-]{1,64}$/;

function authorizationsOf(session: ModelPayload): Array<[string, { sid?: string }]> {
  const authorizations = session.authorizations;
  return authorizations && typeof authorizations === 'object' ? (Object.entries(authorizations) as Array<[string, { sid?: string }]>) : [];
}

/**
 * The database part of revoking a user: deletes their sessions, grants and the tokens and codes
 * of those grants, and sets their cut-off for JWT access tokens (and resume tokens exchanged from
 * them). Inside the caller's transaction; `notify` (back-channel logout) is the caller's, after
 * commit: `send` sends it for the destroyed sessions; without `send` it does nothing.
 */
async function revokeStored(
  trx: Transaction<Database>,
  userId: string,
  send?: (sessions: ModelPayload[]) => Promise<Revocation['backchannel_logout']>,
): Promise<RevokedInTransaction> {
  const destroyed = await revokeSubjectInTransaction(trx, userId);
  const cutOff = destroyed.cutOff;
  return {
    sessionIds: destroyed.sessions.map((session) => String(session.uid ?? '')),
    counts: {
      sessions_revoked: destroyed.sessions.length,
      grants_revoked: destroyed.grantIds.length,
      tokens_revoked: destroyed.tokens,
      jwt_access_tokens_revoked_before: cutOff.toISOString(),
    },
    notify: async () => (send ? send(destroyed.sessions) : { sent: 0, failed: 0 }),
  };
}

/** Revocation without back-channel logout, for callers without the running provider (the CLI). */
export function revokeWithoutLogout(trx: Transaction<Database>, userId: string): Promise<RevokedInTransaction> {
  return revokeStored(trx, userId);
}

/**
 * A user's sessions and their revocation: destroys the user's oidc-provider sessions and grants,
 * deletes the refresh tokens, opaque access tokens and codes of those grants, sets the user's
 * revocation cut-off (so JWT access tokens and resume tokens exchanged from them introspect
 * inactive and cannot be exchanged), then sends back-channel logout to every client of the
 * destroyed sessions.
 */
export function createSessionService(deps: SessionServiceDeps) {
  const writers = deps.writers ?? DEFAULT_WRITERS;
  const log = deps.logger.child({ component: 'revocation' });

  async function backchannelLogout(userId: string, sessions: ModelPayload[]): Promise<Revocation['backchannel_logout']> {
    const provider = deps.provider();
    const outcomes = await Promise.all(sessions.map((session) => sendBackchannelLogout(provider, session)));
    const failed = outcomes.flatMap((outcome) => outcome.failed);
    if (failed.length > 0) log.warn({ userId, clients: failed }, 'back-channel logout failed');
    return { sent: outcomes.reduce((n, o) => n + o.notified.length, 0), failed: failed.length };
  }

  /** Revokes in the caller's transaction; `notify()` after the commit sends back-channel logout. */
  function revokeInTransaction(trx: Transaction<Database>, userId: string): Promise<RevokedInTransaction> {
    return revokeStored(trx, userId, (sessions) => backchannelLogout(userId, sessions));
  }

  return {
    revokeInTransaction,

    async list(userId: string, page: { limit: number; cursor?: string }): Promise<Page<SessionView>> {
      if (!(await findUserById(deps.db, userId))) throw new IamError('user_not_found', 'no such user');
      const after = decodeCursor(page.cursor, (key) => UID.test(key));
      const rows = await listAccountSessions(deps.db, userId, { limit: page.limit + 1, afterUid: after });
      return toPage(
        rows,
        page.limit,
        (row) => String(row.payload.uid),
        ({ payload, expiresAt }) => ({
          id: String(payload.uid),
          login_at: typeof payload.loginTs === 'number' ? new Date(payload.loginTs * 1000).toISOString() : null,
          expires_at: expiresAt?.toISOString() ?? null,
          clients: authorizationsOf(payload).map(([clientId]) => clientId),
          ...(Array.isArray(payload.amr) ? { amr: payload.amr.map(String) } : {}),
        }),
      );
    },

    /** `DELETE /admin/users/{id}/sessions`: revoke everything the user holds. */
    async revokeAll(by: Actor, userId: string, reason?: string): Promise<Revocation> {
      const revoked = await mutate(deps.db, writers, by, async (trx) => {
        if (!(await findUserById(trx, userId))) throw new IamError('user_not_found', 'no such user');
        const inTrx = await revokeInTransaction(trx, userId);
        return {
          result: inTrx,
          action: 'sessions.revoke',
          target: `user:${userId}`,
          details: reason ? { ...inTrx.counts, reason } : inTrx.counts,
          event: {
            type: 'session-revoked',
            userId,
            sessionIds: inTrx.sessionIds,
            initiatingEntity: by.initiatingEntity,
            actor: by.actor,
            ...(reason ? { reasonAdmin: reason } : {}),
          },
        };
      });
      const backchannel = await revoked.notify();
      return { ...revoked.counts, backchannel_logout: backchannel };
    },
  };
}

export type SessionService = ReturnType<typeof createSessionService>;
