import type { Kysely } from 'kysely';
import type { Database } from '../db/database.js';
import type { CredentialChangedEvent } from '../events/iam-event.js';
import { auditChange, DEFAULT_WRITERS, type Actor, type MutationWriters } from '../iam/admin-mutation.js';
import { IamError } from '../iam/iam-errors.js';
import { findUserById } from '../iam/user.repository.js';
import { AppError } from '../http/app-error.js';
import { deleteTotp, describeTotp, findTotp, requireEnrollment } from './factor.repository.js';
import { insertEnrollmentLink } from './enrollment-link.repository.js';
import { enrollmentTokenHash, enrollmentUrl, newEnrollmentToken } from './enrollment-link.js';
import { deletePasskeys, listPasskeySummaries, lockUserFactors, renamePasskey } from './passkey.repository.js';

/** One authenticator of a user, as the admin API lists it. */
export type AuthenticatorView =
  | { id: 'totp'; type: 'totp'; created_at: string; last_used_at: string | null; recovery_codes_left: number }
  | { id: string; type: 'passkey'; name: string; device_type: string; backed_up: boolean; attachment: string | null; created_at: string; last_used_at: string | null };

/** Id of the authenticator app in the admin API; a passkey's id is `passkey-<n>`. */
export const TOTP_ID = 'totp';
const PASSKEY_ID = /^passkey-([1-9][0-9]{0,17})$/;

function credentialType(attachment: string | null): CredentialChangedEvent['credentialType'] {
  return attachment === 'cross-platform' ? 'fido2-roaming' : 'fido2-platform';
}

/** The CAEP credential-change `delete` event of one removed credential of `userId`. */
function credentialDeleted(by: Actor, userId: string, type: CredentialChangedEvent['credentialType']): CredentialChangedEvent {
  return { type: 'credential-changed', userId, credentialType: type, changeType: 'delete', initiatingEntity: by.initiatingEntity, actor: by.actor };
}

/**
 * Administration of users' second factors: list, remove one, reset all. Each removal, its audit
 * record and a CAEP `credential-change` event per removed credential (`app`, `fido2-*`,
 * `delete`) commit in one transaction.
 */
export function createAuthenticatorService(deps: { db: Kysely<Database>; writers?: MutationWriters; issuer?: () => string }) {
  const writers = deps.writers ?? DEFAULT_WRITERS;

  async function requireUser(userId: string): Promise<void> {
    if (!(await findUserById(deps.db, userId))) throw new IamError('user_not_found', 'no such user');
  }

  async function list(userId: string): Promise<{ authenticators: AuthenticatorView[] }> {
    await requireUser(userId);
    const [totp, passkeys] = await Promise.all([describeTotp(deps.db, userId), listPasskeySummaries(deps.db, userId)]);
    const authenticators: AuthenticatorView[] = [];
    if (totp) {
      authenticators.push({
        id: TOTP_ID,
        type: 'totp',
        created_at: totp.createdAt.toISOString(),
        last_used_at: totp.lastUsedAt?.toISOString() ?? null,
        recovery_codes_left: totp.recoveryCodesLeft,
      });
    }
    for (const passkey of passkeys) {
      authenticators.push({
        id: `passkey-${passkey.id}`,
        type: 'passkey',
        name: passkey.name,
        device_type: passkey.deviceType,
        backed_up: passkey.backedUp,
        attachment: passkey.attachment,
        created_at: passkey.createdAt.toISOString(),
        last_used_at: passkey.lastUsedAt?.toISOString() ?? null,
      });
    }
    return { authenticators };
  }

  /** Removes `authenticatorId` (`totp` or `passkey-<n>`), or every authenticator when undefined. */
  async function remove(by: Actor, userId: string, authenticatorId?: string): Promise<{ removed: string[] }> {
    const passkeyId = authenticatorId === undefined ? undefined : PASSKEY_ID.exec(authenticatorId)?.[1];
    if (authenticatorId !== undefined && authenticatorId !== TOTP_ID && passkeyId === undefined) {
      throw new AppError('authenticator_not_found', 'no such authenticator', { status: 404 });
    }
    return deps.db.transaction().execute(async (trx) => {
      if (!(await findUserById(trx, userId))) throw new IamError('user_not_found', 'no such user');
      const removed: string[] = [];
      const events: CredentialChangedEvent[] = [];
      if ((authenticatorId === undefined || authenticatorId === TOTP_ID) && (await deleteTotp(trx, userId))) {
        removed.push(TOTP_ID);
        events.push(credentialDeleted(by, userId, 'app'));
      }
      if (authenticatorId === undefined || passkeyId !== undefined) {
        for (const passkey of await deletePasskeys(trx, userId, passkeyId)) {
          removed.push(`passkey-${passkey.id}`);
          events.push(credentialDeleted(by, userId, credentialType(passkey.attachment)));
        }
      }
      if (authenticatorId !== undefined && removed.length === 0) throw new AppError('authenticator_not_found', 'no such authenticator', { status: 404 });
      await auditChange(writers, trx, by, { action: authenticatorId === undefined ? 'user.authenticators.reset' : 'user.authenticator.remove', target: `user:${userId}`, details: { removed } });
      for (const change of events) await writers.recordEvent(trx, change);
      return { removed };
    });
  }

  /** The user sets up `factor` at the next sign-in (whatever the client asks); audited, no event (no credential changed yet). */
  async function requireAtNextSignIn(by: Actor, userId: string, factor: 'otp' | 'passkey'): Promise<{ factor: 'otp' | 'passkey' }> {
    return deps.db.transaction().execute(async (trx) => {
      if (!(await findUserById(trx, userId))) throw new IamError('user_not_found', 'no such user');
      await requireEnrollment(trx, userId, factor);
      await auditChange(writers, trx, by, { action: 'user.authenticator.require_enrollment', target: `user:${userId}`, details: { factor } });
      return { factor };
    });
  }

  /**
   * The user removes one of their own passkeys (self-service page). The last second factor (the
   * only passkey of a user without an authenticator app) is kept: the user would be left with a
   * password alone, which clients requiring mfa refuse; an administrator can still reset it.
   * The user's row is locked first, so two parallel removals cannot both pass that check.
   */
  async function removeOwnPasskey(by: Actor, userId: string, passkeyId: string): Promise<'removed' | 'not_found' | 'last_factor'> {
    return deps.db.transaction().execute(async (trx) => {
      await lockUserFactors(trx, userId);
      const [passkeys, totp] = await Promise.all([listPasskeySummaries(trx, userId), findTotp(trx, userId)]);
      const passkey = passkeys.find((entry) => entry.id === passkeyId);
      if (!passkey) return 'not_found';
      if (passkeys.length === 1 && !totp) return 'last_factor';
      await deletePasskeys(trx, userId, passkeyId);
      await auditChange(writers, trx, by, { action: 'user.passkey.remove', target: `user:${userId}`, details: { removed: [`passkey-${passkeyId}`], name: passkey.name } });
      await writers.recordEvent(trx, credentialDeleted(by, userId, credentialType(passkey.attachment)));
      return 'removed';
    });
  }

  /** The user renames one of their passkeys; audited (no credential changed, no event). */
  async function renameOwnPasskey(by: Actor, userId: string, passkeyId: string, name: string): Promise<boolean> {
    return deps.db.transaction().execute(async (trx) => {
      if (!(await renamePasskey(trx, userId, passkeyId, name))) return false;
      await auditChange(writers, trx, by, { action: 'user.passkey.rename', target: `user:${userId}`, details: { id: `passkey-${passkeyId}`, name } });
      return true;
    });
  }

  /**
   * A one-time link with which the user creates a passkey without a password: a random token
   * (256 bits) whose SHA-256 alone is stored, good once until `expiresInSeconds` from now; the
   * user's earlier links not yet used stop working. Audited (without the link); the URL is
   * returned once, built from the configured issuer.
   */
  async function issueEnrollmentLink(by: Actor, userId: string, expiresInSeconds: number): Promise<{ url: string; expires_at: string }> {
    if (!deps.issuer) throw new Error('issueEnrollmentLink needs the issuer');
    const token = newEnrollmentToken();
    const expiresAt = new Date(Date.now() + expiresInSeconds * 1000);
    await deps.db.transaction().execute(async (trx) => {
      if (!(await findUserById(trx, userId))) throw new IamError('user_not_found', 'no such user');
      await insertEnrollmentLink(trx, { tokenHash: enrollmentTokenHash(token), userId, createdBy: by.actor, expiresAt });
      await auditChange(writers, trx, by, { action: 'user.enrollment_link.issue', target: `user:${userId}`, details: { factor: 'passkey', expires_at: expiresAt.toISOString() } });
    });
    return { url: enrollmentUrl(deps.issuer(), token), expires_at: expiresAt.toISOString() };
  }

  return { list, remove, requireAtNextSignIn, removeOwnPasskey, renameOwnPasskey, issueEnrollmentLink };
}

export type AuthenticatorService = ReturnType<typeof createAuthenticatorService>;
