/**
 * The Security Event Token event types the SSF receiver knows (OpenID CAEP 1.0 §3, OpenID RISC 1.0
 * §2, SSF 1.0 §8.1.4/§8.1.5), and what Custos does on each. An event type outside this catalogue is
 * acknowledged (202), counted and otherwise ignored.
 */

const CAEP = 'https://schemas.openid.net/secevent/caep/event-type/';
const RISC = 'https://schemas.openid.net/secevent/risc/event-type/';
const SSF = 'https://schemas.openid.net/secevent/ssf/event-type/';

/**
 * What an event makes Custos do to the user its subject names:
 * - `revoke-sessions`: every session, grant and token of the user (the admin `DELETE /sessions` path);
 * - `disable`: disable the account, which also revokes everything (the admin `disable` path);
 * - `enable`: enable the account;
 * - `record`: nothing changes in Custos; an audit record says the signal arrived.
 */
export type ReceiverAction = 'revoke-sessions' | 'disable' | 'enable' | 'record';

/** Event types a transmitter may be configured to send (`accepted_events`). */
export const RECEIVER_EVENT_TYPES = {
  'session-revoked': `${CAEP}session-revoked`,
  'credential-change': `${CAEP}credential-change`,
  'token-claims-change': `${CAEP}token-claims-change`,
  'assurance-level-change': `${CAEP}assurance-level-change`,
  'device-compliance-change': `${CAEP}device-compliance-change`,
  'credential-compromise': `${RISC}credential-compromise`,
  'account-disabled': `${RISC}account-disabled`,
  'account-enabled': `${RISC}account-enabled`,
  'account-purged': `${RISC}account-purged`,
} as const;

export type ReceiverEventName = keyof typeof RECEIVER_EVENT_TYPES;

/** SSF stream-management events (verification, stream updated): acknowledged, recorded, never acted on; always allowed. */
export const SSF_CONTROL_EVENT_TYPES: readonly string[] = [`${SSF}verification`, `${SSF}stream-updated`];

const BY_URI = new Map<string, ReceiverEventName>(Object.entries(RECEIVER_EVENT_TYPES).map(([name, uri]) => [uri, name as ReceiverEventName]));

/** The catalogue name of an event type URI, if Custos knows it. */
export function eventNameOf(uri: string): ReceiverEventName | undefined {
  return BY_URI.get(uri);
}

/**
 * The action for one event:
 * - CAEP `session-revoked`, RISC `credential-compromise` → revoke the user's sessions;
 * - CAEP `credential-change` with `change_type` `revoke` or `delete` → revoke the user's sessions
 *   (a credential the user may have signed in with is gone); `create`/`update` → record;
 * - CAEP `device-compliance-change` with `current_status` `not-compliant` → revoke the user's
 *   sessions (a device that went from secure to at-risk); `compliant` → record;
 * - RISC `account-disabled` → disable; `account-enabled` → enable; `account-purged` → disable
 *   (Custos never deletes a user on another system's word: the account's audit trail stays, and an
 *   administrator decides about deletion);
 * - CAEP `token-claims-change`, `assurance-level-change` → record: Custos issues its own claims and
 *   `acr`, it does not take them from another system; the audit record lets an administrator act.
 */
export function actionOf(name: ReceiverEventName, payload: Record<string, unknown>): ReceiverAction {
  switch (name) {
    case 'session-revoked':
    case 'credential-compromise':
      return 'revoke-sessions';
    case 'credential-change':
      return payload['change_type'] === 'revoke' || payload['change_type'] === 'delete' ? 'revoke-sessions' : 'record';
    case 'device-compliance-change':
      return payload['current_status'] === 'not-compliant' ? 'revoke-sessions' : 'record';
    case 'account-disabled':
    case 'account-purged':
      return 'disable';
    case 'account-enabled':
      return 'enable';
    case 'token-claims-change':
    case 'assurance-level-change':
      return 'record';
  }
}
