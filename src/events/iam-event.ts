/**
 * IAM events as Custos records them in the outbox (issue 9). The relay turns each into a
 * Security Event Token (RFC 8417) carrying one OpenID CAEP 1.0 event.
 */

/** Who caused the change (CAEP `initiating_entity`). */
export type InitiatingEntity = 'admin' | 'user' | 'policy' | 'system';

interface EventBase {
  /**
   * The user the event is about (RFC 9493 subject; the Pulsar message key). For a client's event
   * (`clientId` set), the client id: the `sub` of its client-credentials tokens (RFC 9068 §2.2).
   */
  userId: string;
  /** Set when the event is about a client (issue 20); the SET carries it as `client_id`. */
  clientId?: string;
  initiatingEntity: InitiatingEntity;
  /** Free text for administrators (CAEP `reason_admin`); never secrets. */
  reasonAdmin?: string;
  /** Who did it, as in the audit log (`client:admin-cli`, `cli`, ...). */
  actor?: string;
}

/**
 * CAEP `session-revoked`. Without `sid`: all of the user's sessions (and what hangs off them) are
 * gone, and every token of the user issued up to the event. With `sid`: one session (one client's
 * authorization, one grant) is gone, and every token carrying that `sid`.
 */
export interface SessionRevokedEvent extends EventBase {
  type: 'session-revoked';
  /** Ids of the revoked sessions (may be empty: "all, whatever they were"). */
  sessionIds: string[];
  /** The one session revoked (the `sid` its tokens carry); the SET's subject is then `complex` (RFC 9493 §3.2). */
  sid?: string;
}

/** CAEP `token-claims-change` with `claims.roles`: the user's new role list. */
export interface RolesChangedEvent extends EventBase {
  type: 'roles-changed';
  roles: string[];
}

/** CAEP `credential-change`. */
export interface CredentialChangedEvent extends EventBase {
  type: 'credential-changed';
  /** CAEP credential types: `app` is a TOTP authenticator app, `fido2-*` a passkey; `client_secret` is Custos' own value (a client's secret; CAEP has none for it). */
  credentialType: 'password' | 'x509' | 'app' | 'fido2-platform' | 'fido2-roaming' | 'client_secret';
  changeType: 'create' | 'update' | 'revoke' | 'delete';
}

/**
 * Custos events (no CAEP equivalent): the account was disabled or enabled. Disabling also
 * revoked every session and token of the user in the same transaction (`sessionIds`), so a
 * consumer treats `account-disabled` as a `session-revoked` too.
 */
export interface AccountStatusEvent extends EventBase {
  type: 'account-disabled' | 'account-enabled';
  /** For `account-disabled`: ids of the sessions revoked with it. */
  sessionIds?: string[];
}

/** Custos event (no CAEP equivalent): an administrator created the account. */
export interface AccountCreatedEvent extends EventBase {
  type: 'account-created';
  roles: string[];
}

/**
 * Custos events about a client (issue 20, no CAEP equivalent): registered, changed, disabled,
 * enabled, deleted. Disabling or deleting also cut off every token issued to it, in the same transaction.
 */
export interface ClientLifecycleEvent extends EventBase {
  type: 'client-created' | 'client-updated' | 'client-disabled' | 'client-enabled' | 'client-deleted';
  clientId: string;
}

export type IamEvent = SessionRevokedEvent | RolesChangedEvent | CredentialChangedEvent | AccountStatusEvent | AccountCreatedEvent | ClientLifecycleEvent;
export type IamEventType = IamEvent['type'];

export const IAM_EVENT_TYPES: readonly IamEventType[] = [
  'session-revoked',
  'roles-changed',
  'credential-changed',
  'account-disabled',
  'account-enabled',
  'account-created',
  'client-created',
  'client-updated',
  'client-disabled',
  'client-enabled',
  'client-deleted',
];
