import { errors } from 'oidc-provider';
import type Provider from 'oidc-provider';
import type { JWTVerifyGetKey } from 'jose';
import { VerifyError } from '../../verify/errors.js';
import { verifyJwt } from '../../verify/jwt-core.js';

/** RFC 8693 §3 token type identifiers accepted as subject tokens. */
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
export const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt';

/** Nested actor claim (RFC 8693 §4.1). */
export interface ActClaim {
  sub: string;
  act?: ActClaim;
}

/** What the grant needs to know about a validated subject token. */
export interface SubjectToken {
  sub: string;
  clientId: string;
  aud: string[];
  scopes: string[];
  exp: number;
  /** Issue time, seconds since the epoch. */
  iat?: number;
  jti?: string;
  act?: ActClaim;
  eventPayloadHash?: string;
}

function invalid(description: string): never {
  throw new errors.InvalidRequest(description);
}

function toArray(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
}

function toAct(value: unknown, depth = 0): ActClaim | undefined {
  if (value === undefined) return undefined;
  const candidate = value as { sub?: unknown; act?: unknown };
  if (depth > 16 || typeof candidate !== 'object' || candidate === null || typeof candidate.sub !== 'string') {
    invalid('subject_token has a malformed act claim');
  }
  const nested = toAct(candidate.act, depth + 1);
  return nested ? { sub: candidate.sub, act: nested } : { sub: candidate.sub };
}

/**
 * Validates a subject token issued by this server (RFC 8693 §2.1): an ES256 RFC 9068 JWT
 * verified against this server's own keys, or an opaque access token found through the
 * provider's models. Any failure is `invalid_request` (RFC 8693 §2.2.2).
 */
export async function validateSubjectToken(
  value: string,
  deps: { provider: Provider; issuer: string; verificationKeys: JWTVerifyGetKey },
): Promise<SubjectToken> {
  if (value.length > 16_384) invalid('subject_token is too large');
  if (value.split('.').length === 3) {
    try {
      // ES256 on node:crypto (custos/verify's JWT layer); the grant checks the audience itself.
      const payload = await verifyJwt(value, deps.verificationKeys, {
        issuer: deps.issuer,
        audience: undefined,
        clockToleranceSec: 0,
        requiredClaims: ['sub', 'client_id'],
      });
      return {
        sub: String(payload.sub),
        clientId: String(payload.client_id),
        aud: toArray(payload.aud),
        scopes: typeof payload.scope === 'string' ? payload.scope.split(' ').filter(Boolean) : [],
        exp: payload.exp!,
        iat: payload.iat,
        jti: payload.jti,
        act: toAct(payload.act),
        eventPayloadHash: typeof payload.event_payload_hash === 'string' ? payload.event_payload_hash : undefined,
      };
    } catch (error) {
      if (error instanceof VerifyError && error.code === 'token_expired') invalid('subject_token is expired');
      if (error instanceof VerifyError) invalid('subject_token is invalid or was not issued by this server');
      throw error;
    }
  }
  const token = await deps.provider.AccessToken.find(value);
  if (!token || token.isExpired) invalid('subject_token is invalid, expired or revoked');
  const extra = (token.extra ?? {}) as { act?: unknown; event_payload_hash?: unknown };
  return {
    sub: token.accountId ?? invalid('subject_token does not identify a user'),
    clientId: token.clientId!,
    aud: toArray(token.aud ?? token.resourceServer?.audience),
    scopes: token.scope ? token.scope.split(' ') : [],
    exp: token.exp!,
    iat: token.iat,
    jti: token.jti,
    act: toAct(extra.act),
    eventPayloadHash: typeof extra.event_payload_hash === 'string' ? extra.event_payload_hash : undefined,
  };
}
