import type { Transaction } from 'kysely';
import type { Database } from '../db/database.js';
import type { CredentialChangedEvent } from '../events/iam-event.js';
import { recordEvent } from '../events/outbox.repository.js';
import { writeAudit } from '../iam/audit.repository.js';
import { insertPasskey } from './passkey.repository.js';
import type { RegisteredPasskey } from './passkeys.js';

/** CAEP credential type of a passkey: `fido2-roaming` for a security key, `fido2-platform` otherwise. */
export function passkeyCredentialType(attachment: string | null): CredentialChangedEvent['credentialType'] {
  return attachment === 'cross-platform' ? 'fido2-roaming' : 'fido2-platform';
}

/** A passkey's name as typed: trimmed, at most 64 characters, `Passkey` when empty. */
export function passkeyName(value: string | null): string {
  return (value ?? '').trim().slice(0, 64) || 'Passkey';
}

export interface PasskeyEnrollment {
  userId: string;
  registered: RegisteredPasskey;
  name: string;
  /** Who enrolled it: the user (`user:<id>`, initiating entity `user`). */
  actor: string;
  clientAddress: string | null | undefined;
  requestId: string | null | undefined;
  /** Extra audit details (the client of the sign-in, the enrollment link). */
  details?: Record<string, unknown>;
}

/**
 * Stores a verified new passkey with its audit record (`user.passkey.enroll`) and a CAEP
 * credential-change event (`fido2-*`, `create`) on the caller's transaction; false (nothing
 * written) when the credential is already registered.
 */
export async function storeNewPasskey(trx: Transaction<Database>, enrollment: PasskeyEnrollment): Promise<boolean> {
  const { userId, registered, name } = enrollment;
  if (!(await insertPasskey(trx, { ...registered, userId, name }))) return false;
  const credentialType = passkeyCredentialType(registered.attachment);
  await writeAudit(trx, {
    actor: enrollment.actor,
    action: 'user.passkey.enroll',
    target: `user:${userId}`,
    outcome: 'success',
    clientAddress: enrollment.clientAddress ?? null,
    requestId: enrollment.requestId ?? null,
    details: { name, credential_type: credentialType, backed_up: registered.backedUp, ...enrollment.details },
  });
  await recordEvent(trx, { type: 'credential-changed', userId, credentialType, changeType: 'create', initiatingEntity: 'user', actor: enrollment.actor });
  return true;
}
