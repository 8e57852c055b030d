import { errors, jwtVerify, type JWTPayload } from 'jose';
import { VerifyError } from './errors.js';
import { assertCanonicalEs256Signature } from './es256-signature.js';
import { createKeyResolver, toVerifyError, type KeySourceOptions } from './jwt-core.js';

/** The event type URIs Custos publishes (OpenID CAEP 1.0, plus Custos' account status events). */
export const CAEP_SESSION_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked';
export const CAEP_TOKEN_CLAIMS_CHANGE = 'https://schemas.openid.net/secevent/caep/event-type/token-claims-change';
export const CAEP_CREDENTIAL_CHANGE = 'https://schemas.openid.net/secevent/caep/event-type/credential-change';
export const CUSTOS_ACCOUNT_DISABLED = 'urn:custos:secevent:event-type:account-disabled';
export const CUSTOS_ACCOUNT_ENABLED = 'urn:custos:secevent:event-type:account-enabled';
export const CUSTOS_CLIENT_DISABLED = 'urn:custos:secevent:event-type:client-disabled';
export const CUSTOS_CLIENT_ENABLED = 'urn:custos:secevent:event-type:client-enabled';
export const CUSTOS_CLIENT_DELETED = 'urn:custos:secevent:event-type:client-deleted';

const KINDS: Record<string, SecurityEvent['kind']> = {
  [CAEP_SESSION_REVOKED]: 'session-revoked',
  [CAEP_TOKEN_CLAIMS_CHANGE]: 'token-claims-change',
  [CAEP_CREDENTIAL_CHANGE]: 'credential-change',
  [CUSTOS_ACCOUNT_DISABLED]: 'account-disabled',
  [CUSTOS_ACCOUNT_ENABLED]: 'account-enabled',
  [CUSTOS_CLIENT_DISABLED]: 'client-disabled',
  [CUSTOS_CLIENT_ENABLED]: 'client-enabled',
  [CUSTOS_CLIENT_DELETED]: 'client-deleted',
};

/** A verified Security Event Token (RFC 8417) with its one event, flattened for consumers. */
export interface SecurityEvent {
  /** SET id (`jti`): deduplicate on it. */
  id: string;
  issuer: string;
  issuedAt: number;
  /** The IAM transaction the event came from (`txn`). */
  transaction?: string;
  /**
   * The user (`sub` of the RFC 9493 `iss_sub` subject, or of a `complex` subject's `user`); for an
   * event about a client, the client id (the `sub` of its client-credentials tokens).
   */
  subject: string;
  /** Set when the event is about a client (the event's `client_id` member). */
  clientId?: string;
  /** The session, for a `complex` subject with a session. */
  sessionId?: string;
  /** The event type URI. */
  type: string;
  /** Short name of a known type; `unknown` for types this library does not know. */
  kind:
    | 'session-revoked'
    | 'token-claims-change'
    | 'credential-change'
    | 'account-disabled'
    | 'account-enabled'
    | 'client-disabled'
    | 'client-enabled'
    | 'client-deleted'
    | 'unknown';
  /** When the change happened (CAEP `event_timestamp`, seconds); consumers order by it. */
  eventTimestamp: number;
  /** The event's own members (`claims`, `credential_type`, `reason_admin`, ...). */
  event: Record<string, unknown>;
  claims: JWTPayload;
}

/** Options of {@link createSecurityEventVerifier}. */
export interface SecurityEventVerifierOptions extends KeySourceOptions {
  /** The Custos issuer. */
  issuer: string;
  /** This consumer's identifier; the SET's `aud` must contain it (EVENTS_AUDIENCE on the server). */
  audience: string | readonly string[];
  /** Leeway for `iat`, in seconds. Default 5. */
  clockToleranceSec?: number;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function issSub(value: unknown, issuer: string): string | undefined {
  if (!isObject(value) || value['format'] !== 'iss_sub' || value['iss'] !== issuer) return undefined;
  return typeof value['sub'] === 'string' && value['sub'] !== '' ? value['sub'] : undefined;
}

function invalid(message: string, cause?: unknown): VerifyError {
  return new VerifyError('invalid_security_event', message, cause === undefined ? {} : { cause });
}

/** Verifier returned by {@link createSecurityEventVerifier}. */
export interface SecurityEventVerifier {
  /** Verifies a SET and returns its event, or throws a {@link VerifyError}. */
  verify(set: string): Promise<SecurityEvent>;
}

/**
 * Creates a verifier for Custos Security Event Tokens (RFC 8417 §2-§4): ES256 only (low-S
 * signatures only, {@link assertCanonicalEs256Signature}), header
 * `typ` `secevent+jwt`, signature against the issuer's JWKS, `iss`, `aud` containing the consumer,
 * `iat` not in the future, `jti`; no `sub` and no `exp` (RFC 8417 §2.2 keeps SETs apart from
 * access and ID tokens); `sub_id` an RFC 9493 `iss_sub` or `complex` subject of this issuer;
 * `events` holding exactly one event with a numeric `event_timestamp` (OpenID CAEP 1.0 §2).
 */
export function createSecurityEventVerifier(options: SecurityEventVerifierOptions): SecurityEventVerifier {
  const getKey = createKeyResolver(options);
  const audience = typeof options.audience === 'string' ? options.audience : [...options.audience];
  const clockTolerance = options.clockToleranceSec ?? 5;
  return {
    async verify(set) {
      if (typeof set !== 'string' || set === '') throw invalid('a SET must be a non-empty string');
      let claims: JWTPayload;
      try {
        ({ payload: claims } = await jwtVerify(set, getKey, {
          algorithms: ['ES256'],
          typ: 'secevent+jwt',
          issuer: options.issuer,
          audience,
          clockTolerance,
          requiredClaims: ['iss', 'iat', 'jti', 'aud'],
        }));
        // jose accepts either ECDSA form; only the low-S one is the issuer's SET.
        assertCanonicalEs256Signature(set);
      } catch (error) {
        const mapped = toVerifyError(error);
        if (mapped.code === 'invalid_token' && !(error instanceof errors.JWKSNoMatchingKey)) throw invalid(mapped.message, error);
        throw mapped;
      }
      if ((claims.iat as number) > Math.floor(Date.now() / 1000) + clockTolerance) throw invalid('"iat" is in the future');
      if (claims.sub !== undefined || claims.exp !== undefined) throw invalid('a SET carries neither "sub" nor "exp" (RFC 8417 §2.2)');
      if (typeof claims.jti !== 'string' || claims.jti === '') throw invalid('"jti" must be a non-empty string');
      const subId = claims['sub_id'];
      let subject = issSub(subId, options.issuer);
      let sessionId: string | undefined;
      if (!subject && isObject(subId) && subId['format'] === 'complex') {
        subject = issSub(subId['user'], options.issuer);
        const session = subId['session'];
        if (isObject(session) && typeof session['id'] === 'string') sessionId = session['id'];
      }
      if (!subject) throw invalid('"sub_id" must be an iss_sub or complex subject identifier of the issuer (RFC 9493)');
      const events = claims['events'];
      if (!isObject(events)) throw invalid('"events" must be an object');
      const types = Object.keys(events);
      if (types.length !== 1) throw invalid('"events" must hold exactly one event');
      const type = types[0]!;
      const event = events[type];
      if (!isObject(event) || typeof event['event_timestamp'] !== 'number' || !Number.isFinite(event['event_timestamp'])) {
        throw invalid('the event needs a numeric "event_timestamp"');
      }
      return {
        id: claims.jti,
        issuer: claims.iss!,
        issuedAt: claims.iat as number,
        transaction: typeof claims['txn'] === 'string' ? claims['txn'] : undefined,
        subject,
        sessionId,
        clientId: typeof event['client_id'] === 'string' && event['client_id'] !== '' ? event['client_id'] : undefined,
        type,
        kind: KINDS[type] ?? 'unknown',
        eventTimestamp: event['event_timestamp'],
        event,
        claims,
      };
    },
  };
}

/**
 * One-shot {@link createSecurityEventVerifier} + `verify`. With `jwksUri` each call fetches the
 * JWKS: a long-running consumer should create one verifier and reuse it.
 */
export async function verifySecurityEvent(set: string, options: SecurityEventVerifierOptions): Promise<SecurityEvent> {
  return createSecurityEventVerifier(options).verify(set);
}
