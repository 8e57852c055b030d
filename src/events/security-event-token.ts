import type { JWTPayload } from 'jose';
import { NodeEs256SigningKey } from '../keys/node-signing-key.js';
import { NodeRs256SigningKey, type SetSigningJwk } from '../keys/set-signing-keys.js';
import type { SigningJwk } from '../keys/signing-keys.js';
import type { IamEvent } from './iam-event.js';

/** OpenID CAEP 1.0 event type URIs, and Custos' own for account status (no CAEP equivalent). */
export const SET_EVENT_TYPES = {
  'session-revoked': 'https://schemas.openid.net/secevent/caep/event-type/session-revoked',
  'roles-changed': 'https://schemas.openid.net/secevent/caep/event-type/token-claims-change',
  'credential-changed': 'https://schemas.openid.net/secevent/caep/event-type/credential-change',
  'account-disabled': 'urn:custos:secevent:event-type:account-disabled',
  'account-enabled': 'urn:custos:secevent:event-type:account-enabled',
  'account-created': 'urn:custos:secevent:event-type:account-created',
  'client-created': 'urn:custos:secevent:event-type:client-created',
  'client-updated': 'urn:custos:secevent:event-type:client-updated',
  'client-disabled': 'urn:custos:secevent:event-type:client-disabled',
  'client-enabled': 'urn:custos:secevent:event-type:client-enabled',
  'client-deleted': 'urn:custos:secevent:event-type:client-deleted',
} as const satisfies Record<IamEvent['type'], string>;

/** RFC 9493 subject identifier: the user (`iss_sub`), or user + one session (`complex`). */
export type SubjectIdentifier =
  | { format: 'iss_sub'; iss: string; sub: string }
  | { format: 'complex'; user: { format: 'iss_sub'; iss: string; sub: string }; session: { format: 'opaque'; id: string } };

/** The claims of a Custos Security Event Token (RFC 8417 §2.2; no `sub`, no `exp`). */
export interface SecurityEventClaims extends JWTPayload {
  iss: string;
  iat: number;
  jti: string;
  aud: string | string[];
  txn: string;
  sub_id: SubjectIdentifier;
  events: Record<string, Record<string, unknown>>;
}

/** What the relay hands to {@link buildSecurityEventClaims} for one outbox row. */
export interface SetSource {
  eventId: string;
  txid: string;
  occurredAt: Date;
  event: IamEvent;
}

/**
 * The SET claims of one outbox event (RFC 8417, OpenID CAEP 1.0 §3). `event_timestamp` is when
 * the change committed its row, not when the SET was signed, so consumers compare it to token `iat`.
 */
export function buildSecurityEventClaims(
  source: SetSource,
  options: { issuer: string; audience: string | string[]; now?: () => number },
): SecurityEventClaims {
  const { event } = source;
  const user = { format: 'iss_sub' as const, iss: options.issuer, sub: event.userId };
  const body: Record<string, unknown> = {
    event_timestamp: Math.floor(source.occurredAt.getTime() / 1000),
    initiating_entity: event.initiatingEntity,
  };
  if (event.reasonAdmin) body['reason_admin'] = { en: event.reasonAdmin };
  if (event.clientId) body['client_id'] = event.clientId;
  let subId: SubjectIdentifier = user;
  switch (event.type) {
    case 'session-revoked':
      // One session: a `complex` subject naming it, consumers refuse tokens carrying its `sid`.
      // Otherwise the user: consumers refuse every token of the user issued up to the event.
      if (event.sid) subId = { format: 'complex', user, session: { format: 'opaque', id: event.sid } };
      break;
    case 'roles-changed':
    case 'account-created':
      body['claims'] = { roles: [...event.roles] };
      break;
    case 'credential-changed':
      body['credential_type'] = event.credentialType;
      body['change_type'] = event.changeType;
      break;
    default:
      break;
  }
  return {
    iss: options.issuer,
    iat: Math.floor((options.now?.() ?? Date.now()) / 1000),
    jti: source.eventId,
    aud: options.audience,
    txn: source.txid,
    sub_id: subId,
    events: { [SET_EVENT_TYPES[event.type]]: body },
  };
}

/** Signs SET claims into a compact JWT; injected so a faster signer can replace it. */
export type SetSigner = (claims: SecurityEventClaims) => Promise<string>;

/**
 * A {@link SetSigner} over the server's current ES256 signing key (header `typ: secevent+jwt`,
 * RFC 8417 §2.3), so SETs verify against the served JWKS. It signs with the same
 * `node:crypto` key as the provider's tokens ({@link NodeEs256SigningKey}), built once per
 * signing key (a key reload brings a new one), not per event.
 */
export function createSetSigner(currentKey: () => SigningJwk): SetSigner {
  let signer: { jwk: SigningJwk; key: NodeEs256SigningKey; header: string } | undefined;
  return async (claims) => {
    const jwk = currentKey();
    if (signer?.jwk !== jwk) {
      const header = Buffer.from(JSON.stringify({ alg: 'ES256', typ: 'secevent+jwt', kid: jwk.kid })).toString('base64url');
      signer = { jwk, key: new NodeEs256SigningKey(jwk), header };
    }
    // RFC 7515 §7.1 compact serialization: header.payload.signature, each base64url.
    const input = `${signer.header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
    return `${input}.${Buffer.from(await signer.key.sign(Buffer.from(input))).toString('base64url')}`;
  };
}

/**
 * A {@link SetSigner} over the current RS256 SET key (SSF streams only: CAEP Interoperability
 * Profile 1.0 §2.6 requires RS256 for every event; Pulsar SETs keep {@link createSetSigner}).
 * Built once per key, like the ES256 signer.
 */
export function createRs256SetSigner(currentKey: () => SetSigningJwk): SetSigner {
  let signer: { jwk: SetSigningJwk; key: NodeRs256SigningKey; header: string } | undefined;
  return async (claims) => {
    const jwk = currentKey();
    if (signer?.jwk !== jwk) {
      const header = Buffer.from(JSON.stringify({ alg: 'RS256', typ: 'secevent+jwt', kid: jwk.kid })).toString('base64url');
      signer = { jwk, key: new NodeRs256SigningKey(jwk), header };
    }
    const input = `${signer.header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
    return `${input}.${Buffer.from(signer.key.sign(Buffer.from(input))).toString('base64url')}`;
  };
}
