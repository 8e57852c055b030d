import { createHash } from 'node:crypto';
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
  /** The session the token was issued under (`sid`), carried into resume tokens. */
  sid?: string;
  act?: ActClaim;
  eventPayloadHash?: string;
  /** DPoP key thumbprint (`cnf.jkt`, RFC 9449 §6.1) when the token is DPoP-bound. */
  jkt?: string;
  /** The user's sign-in behind the token (`acr`, `amr`, `auth_time`), carried into resume tokens. */
  authentication?: AuthenticationClaims;
}

/** `acr`, `amr` and `auth_time` of a token, each only when well-formed. */
export interface AuthenticationClaims {
  acr?: string;
  amr?: string[];
  auth_time?: number;
}

function authenticationOf(claims: Record<string, unknown>): AuthenticationClaims {
  return {
    ...(typeof claims.acr === 'string' ? { acr: claims.acr } : {}),
    ...(Array.isArray(claims.amr) && claims.amr.every((value) => typeof value === 'string') ? { amr: claims.amr as string[] } : {}),
    ...(typeof claims.auth_time === 'number' ? { auth_time: claims.auth_time } : {}),
  };
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

/** `cnf.jkt` of a token's confirmation claim (RFC 9449 §6.1); any other `cnf.jkt` shape is malformed. */
function dpopThumbprint(cnf: unknown): string | undefined {
  if (typeof cnf !== 'object' || cnf === null) return undefined;
  const { jkt } = cnf as { jkt?: unknown };
  if (jkt === undefined) return undefined;
  if (typeof jkt !== 'string' || jkt === '') invalid('subject_token has a malformed cnf claim');
  return jkt;
}

/** The claims of a verified JWT that decide, at each use, whether it is still within its validity period. */
interface VerifiedJwt {
  /** The key resolver that verified it: the key set of the moment. */
  keys: JWTVerifyGetKey;
  subject: SubjectToken;
  /** Not valid before (the later of `nbf` and `iat`) and from `exp` on, seconds since the epoch. */
  notBefore: number;
  expiresAt: number;
}

async function verifySubjectJwt(value: string, keys: JWTVerifyGetKey, issuer: string): Promise<VerifiedJwt> {
  try {
    // ES256 on node:crypto (custos/verify's JWT layer); the grant checks the audience itself.
    const payload = await verifyJwt(value, keys, { issuer, audience: undefined, clockToleranceSec: 0, requiredClaims: ['sub', 'client_id'] });
    const subject: SubjectToken = {
      sub: String(payload.sub),
      clientId: String(payload.client_id),
      aud: toArray(payload.aud),
      scopes: typeof payload.scope === 'string' ? payload.scope.split(' ').filter(Boolean) : [],
      exp: payload.exp!,
      iat: payload.iat,
      jti: payload.jti,
      sid: typeof payload.sid === 'string' ? payload.sid : undefined,
      act: toAct(payload.act),
      eventPayloadHash: typeof payload.event_payload_hash === 'string' ? payload.event_payload_hash : undefined,
      jkt: dpopThumbprint(payload.cnf),
      authentication: authenticationOf(payload),
    };
    return { keys, subject, notBefore: Math.max(payload.nbf ?? 0, payload.iat!), expiresAt: payload.exp! };
  } catch (error) {
    if (error instanceof VerifyError && error.code === 'token_expired') invalid('subject_token is expired');
    if (error instanceof VerifyError) invalid('subject_token is invalid or was not issued by this server');
    throw error;
  }
}

export interface SubjectTokenValidatorDeps {
  issuer: string;
  /** This server's current public keys; a new resolver (rotation, reload) means new keys. */
  verificationKeys: () => JWTVerifyGetKey;
  /** Finds an opaque access token (the provider's `AccessToken.find`). */
  findAccessToken: (value: string) => Promise<InstanceType<Provider['AccessToken']> | undefined>;
  /** Verified JWTs remembered (least recently used go first); 1024 by default. */
  maxRemembered?: number;
}

/**
 * Validates subject tokens issued by this server (RFC 8693 §2.1): an ES256 RFC 9068 JWT verified
 * against this server's own keys, or an opaque access token found through the provider's models.
 * Any failure is `invalid_request` (RFC 8693 §2.2.2). Revocation is not checked here (the grant
 * checks it in the database on every exchange).
 *
 * A service exchanges the same user token for each event it publishes, so a verified JWT is
 * remembered by the SHA-256 of its exact text, with the key resolver that verified it. It is
 * reused only while that resolver is still the current one (a key rotation or reload verifies it
 * again, so a token of a dropped key is refused) and while the token is within its validity
 * period (outside it, it is verified again and refused as before); any other text — another
 * token, a changed signature — is verified in full.
 */
export function createSubjectTokenValidator(deps: SubjectTokenValidatorDeps): (value: string) => Promise<SubjectToken> {
  const max = deps.maxRemembered ?? 1024;
  const verified = new Map<string, VerifiedJwt>();

  return async function validateSubjectToken(value) {
    if (value.length > 16_384) invalid('subject_token is too large');
    if (value.split('.').length === 3) {
      const keys = deps.verificationKeys();
      const digest = createHash('sha256').update(value).digest('base64url');
      const now = Math.floor(Date.now() / 1000);
      let entry = verified.get(digest);
      if (entry !== undefined) verified.delete(digest);
      if (entry === undefined || entry.keys !== keys || now < entry.notBefore || now >= entry.expiresAt) {
        entry = await verifySubjectJwt(value, keys, deps.issuer);
        if (verified.size >= max) verified.delete(verified.keys().next().value!);
      }
      verified.set(digest, entry);
      return entry.subject;
    }
    const token = await deps.findAccessToken(value);
    if (!token || token.isExpired) invalid('subject_token is invalid, expired or revoked');
    const extra = (token.extra ?? {}) as { act?: unknown; event_payload_hash?: unknown; acr?: unknown; amr?: unknown; auth_time?: unknown };
    return {
      sub: token.accountId ?? invalid('subject_token does not identify a user'),
      clientId: token.clientId!,
      aud: toArray(token.aud ?? token.resourceServer?.audience),
      scopes: token.scope ? token.scope.split(' ') : [],
      exp: token.exp!,
      iat: token.iat,
      jti: token.jti,
      sid: typeof token.sid === 'string' ? token.sid : undefined,
      act: toAct(extra.act),
      eventPayloadHash: typeof extra.event_payload_hash === 'string' ? extra.event_payload_hash : undefined,
      jkt: typeof token.jkt === 'string' ? token.jkt : undefined,
      authentication: authenticationOf(extra),
    };
  };
}
