import { timingSafeEqual } from 'node:crypto';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  customFetch,
  errors,
  jwtVerify,
  type JSONWebKeySet,
  type JWTPayload,
  type JWTVerifyGetKey,
  type JWTVerifyOptions,
} from 'jose';
import { VerifyError } from './errors.js';

/** Where a verifier gets the issuer's public keys: exactly one of `jwks` or `jwksUri`. */
export interface KeySourceOptions {
  /** A static JWKS (RFC 7517 §5), e.g. read from the issuer's `jwks_uri` at deploy time. */
  jwks?: JSONWebKeySet;
  /**
   * The issuer's `jwks_uri` (RFC 8414 §2). Fetched lazily, cached 10 minutes,
   * and refetched on an unknown `kid` at most once per 30 seconds.
   * Must be `https:` (plain `http:` only for loopback hosts).
   */
  jwksUri?: string;
  /** fetch used for `jwksUri`, e.g. undici's `fetch` with a dispatcher trusting a private CA. */
  fetch?: typeof fetch;
}

/** JWKS cache lifetime and unknown-`kid` refetch rate limit (jose `createRemoteJWKSet`). */
const JWKS_CACHE_MAX_AGE_MS = 10 * 60_000;
const JWKS_COOLDOWN_MS = 30_000;

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * Builds the jose key resolver for a verifier. Failures to obtain the remote
 * JWKS (network, TLS, HTTP status, JSON) surface as `unknown_key` with the
 * original error as `cause`.
 */
export function createKeyResolver(options: KeySourceOptions): JWTVerifyGetKey {
  const { jwks, jwksUri } = options;
  if ((jwks === undefined) === (jwksUri === undefined)) {
    throw new TypeError('custos/verify: pass exactly one of "jwks" or "jwksUri"');
  }
  if (jwks !== undefined) return createLocalJWKSet(jwks);

  const url = new URL(jwksUri as string);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname))) {
    throw new TypeError('custos/verify: "jwksUri" must use https: (http: only for loopback hosts)');
  }
  const remote = createRemoteJWKSet(url, {
    cooldownDuration: JWKS_COOLDOWN_MS,
    cacheMaxAge: JWKS_CACHE_MAX_AGE_MS,
    ...(options.fetch ? { [customFetch]: options.fetch } : {}),
  });
  return async (protectedHeader, token) => {
    try {
      return await remote(protectedHeader, token);
    } catch (err) {
      if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) throw err;
      throw new VerifyError('unknown_key', 'could not obtain the issuer JWKS', { cause: err });
    }
  };
}

/** What both verifiers ask of the JWT layer (RFC 9068 §4 steps 2-9, minus scope/binding). */
export interface JwtCheckOptions {
  issuer: string;
  audience: string | string[];
  clockToleranceSec: number;
}

/**
 * Verifies an RFC 9068 JWT access token: ES256 only, `typ` `at+jwt`
 * (`application/at+jwt` too), `iss`, `aud`, `exp`/`nbf` with leeway, and the
 * presence of `iat` (not in the future). All failures become {@link VerifyError}.
 */
export async function verifyJwt(
  token: unknown,
  getKey: JWTVerifyGetKey,
  { issuer, audience, clockToleranceSec }: JwtCheckOptions,
): Promise<JWTPayload> {
  if (typeof token !== 'string' || token === '') throw new VerifyError('invalid_token', 'token must be a non-empty string');
  const options: JWTVerifyOptions = {
    algorithms: ['ES256'],
    typ: 'at+jwt',
    issuer,
    audience,
    clockTolerance: clockToleranceSec,
    requiredClaims: ['iss', 'aud', 'exp', 'iat'],
  };
  let payload: JWTPayload;
  try {
    payload = (await jwtVerify(token, getKey, options)).payload;
  } catch (err) {
    if (!(err instanceof errors.JWKSMultipleMatchingKeys)) throw toVerifyError(err);
    payload = await verifyWithCandidates(token, err, options);
  }
  const nowSec = Math.floor(Date.now() / 1000);
  if ((payload.iat as number) > nowSec + clockToleranceSec) {
    throw new VerifyError('token_not_yet_valid', '"iat" claim is in the future');
  }
  return payload;
}

/** Tokens without `kid` may match several keys: try each (jose's documented pattern). */
async function verifyWithCandidates(
  token: string,
  multiple: errors.JWKSMultipleMatchingKeys,
  options: JWTVerifyOptions,
): Promise<JWTPayload> {
  let last: unknown = multiple;
  for await (const key of multiple) {
    try {
      return (await jwtVerify(token, key, options)).payload;
    } catch (err) {
      if (!(err instanceof errors.JWSSignatureVerificationFailed)) throw toVerifyError(err);
      last = err;
    }
  }
  throw new VerifyError('invalid_token', 'signature verification failed with every matching key', { cause: last });
}

/** Maps jose's error classes to stable {@link VerifyError} codes. */
export function toVerifyError(err: unknown): VerifyError {
  if (err instanceof VerifyError) return err;
  if (err instanceof errors.JWTExpired) return new VerifyError('token_expired', err.message, { cause: err });
  if (err instanceof errors.JWTClaimValidationFailed && err.reason === 'check_failed') {
    switch (err.claim) {
      case 'iss':
        return new VerifyError('wrong_issuer', err.message, { cause: err });
      case 'aud':
        return new VerifyError('wrong_audience', err.message, { cause: err });
      case 'nbf':
        return new VerifyError('token_not_yet_valid', err.message, { cause: err });
    }
  }
  if (err instanceof errors.JWKSNoMatchingKey) {
    return new VerifyError('unknown_key', 'no key in the issuer JWKS matches the token', { cause: err });
  }
  // JOSEAlgNotAllowed (alg none/HS256/RS256...), JWSInvalid, JWTInvalid,
  // JWSSignatureVerificationFailed, typ/missing-claim failures, and anything unexpected.
  const message = err instanceof Error ? err.message : 'token verification failed';
  return new VerifyError('invalid_token', message, { cause: err });
}

/**
 * Constant-time equality of two ASCII strings (e.g. base64url digests):
 * `crypto.timingSafeEqual` on equal-length buffers; a length difference
 * returns false without comparing contents.
 */
export function timingSafeEqualAscii(a: string, b: string): boolean {
  const left = Buffer.from(a, 'latin1');
  const right = Buffer.from(b, 'latin1');
  return left.length === right.length && timingSafeEqual(left, right);
}
