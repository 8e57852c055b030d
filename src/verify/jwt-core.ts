import { KeyObject, createPublicKey, timingSafeEqual, verify as verifySignature, type JsonWebKey, type webcrypto } from 'node:crypto';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  customFetch,
  errors,
  type JSONWebKeySet,
  type CompactJWSHeaderParameters,
  type JWTPayload,
  type JWTVerifyGetKey,
} from 'jose';
import { VerifyError } from './errors.js';
import { isCanonicalEs256Signature } from './es256-signature.js';

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
  if (jwks !== undefined) {
    // A static set answers the same for the same kid: resolve each kid once (failures are not kept).
    const local = createLocalJWKSet(jwks);
    const byKid = new Map<string, ReturnType<JWTVerifyGetKey>>();
    return (protectedHeader, token) => {
      const { kid, alg } = protectedHeader;
      if (typeof kid !== 'string' || alg !== 'ES256') return local(protectedHeader, token);
      let key = byKid.get(kid);
      if (key === undefined) {
        key = local(protectedHeader, token);
        byKid.set(kid, key);
        key.catch(() => byKid.delete(kid));
      }
      return key;
    };
  }

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
  /** Accepted audiences; `undefined` leaves the `aud` check to the caller (`aud` is still required). */
  audience: string | string[] | undefined;
  clockToleranceSec: number;
  /** Claims required besides `iss`, `aud`, `exp` and `iat`. */
  requiredClaims?: readonly string[];
}

/** The signing key of a token as `node:crypto` needs it, converted once per resolved key. */
const keyObjects = new WeakMap<object, KeyObject>();
/** WebCrypto's CryptoKey class (what jose's key resolvers return), a global in Node 22. */
const CryptoKeyClass = (globalThis as unknown as { CryptoKey: abstract new () => webcrypto.CryptoKey }).CryptoKey;

function es256KeyObject(key: unknown): KeyObject {
  if (typeof key !== 'object' || key === null || key instanceof Uint8Array) {
    throw new errors.JOSENotSupported('only ES256 public keys are accepted');
  }
  let keyObject = keyObjects.get(key);
  if (keyObject === undefined) {
    if (key instanceof KeyObject) keyObject = key;
    else if (key instanceof CryptoKeyClass) keyObject = KeyObject.from(key);
    else keyObject = createPublicKey({ key: key as JsonWebKey, format: 'jwk' });
    if (keyObject.asymmetricKeyType !== 'ec' || keyObject.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
      throw new errors.JOSENotSupported('only ES256 (P-256) keys are accepted');
    }
    keyObjects.set(key, keyObject);
  }
  return keyObject;
}

const BASE64URL = /^[A-Za-z0-9_-]+$/;

function decodeJson(segment: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    if (!BASE64URL.test(segment)) throw new TypeError('not base64url');
    value = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
  } catch {
    throw new errors.JWSInvalid(`${what} is not base64url-encoded JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new errors.JWTInvalid(`${what} must be a JSON object`);
  return value as Record<string, unknown>;
}

/** RFC 9068 §2.1 media type comparison: `at+jwt` equals `application/at+jwt`, case-insensitively. */
function normalizeTyp(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const lower = value.toLowerCase();
  return lower.startsWith('application/') ? lower.slice('application/'.length) : lower;
}

/**
 * RFC 7515 compact JWS with ES256 only, verified synchronously with `node:crypto` (keys resolved by
 * the jose key resolver, converted once per key), the signature in its canonical low-S form
 * only ({@link isCanonicalEs256Signature}): returns the JWT claims set unchecked.
 */
async function verifyCompactEs256(token: string, getKey: JWTVerifyGetKey, typ: string): Promise<JWTPayload> {
  const parts = token.split('.');
  if (parts.length !== 3) throw new errors.JWSInvalid('Compact JWS must have three parts');
  const [protectedPart, payloadPart, signaturePart] = parts as [string, string, string];
  const header = decodeJson(protectedPart, 'JWS Protected Header');
  if (header.alg !== 'ES256') throw new errors.JOSEAlgNotAllowed('"alg" (Algorithm) Header Parameter value not allowed');
  // No JWS extension is understood, so none may be critical (RFC 7515 §4.1.11).
  if (header.crit !== undefined) throw new errors.JWSInvalid('"crit" (Critical) Header Parameter is not supported');
  if (header.kid !== undefined && typeof header.kid !== 'string') throw new errors.JWSInvalid('"kid" must be a string');
  if (normalizeTyp(header.typ) !== typ) throw new errors.JWTClaimValidationFailed('unexpected "typ" JWT header value', {}, 'typ', 'check_failed');
  if (!BASE64URL.test(signaturePart)) throw new errors.JWSInvalid('JWS Signature is not base64url');
  const signature = Buffer.from(signaturePart, 'base64url');
  // One accepted spelling per token: 64 bytes, low S (ECDSA's (R, n − S) twin is refused). Checked
  // after the key look-up, so an unknown `kid` is still reported (and refetched) as such.
  const canonical = isCanonicalEs256Signature(signature);
  const data = Buffer.from(`${protectedPart}.${payloadPart}`, 'ascii');
  const check = (key: unknown) => canonical && verifySignature('sha256', data, { key: es256KeyObject(key), dsaEncoding: 'ieee-p1363' }, signature);
  const input = { protected: protectedPart, payload: payloadPart, signature: signaturePart };
  let verified: boolean;
  try {
    verified = check(await getKey(header as CompactJWSHeaderParameters, input));
  } catch (err) {
    if (!(err instanceof errors.JWKSMultipleMatchingKeys)) throw err;
    // Tokens without `kid` may match several keys: try each (jose's documented pattern).
    verified = false;
    for await (const candidate of err) {
      if (check(candidate)) {
        verified = true;
        break;
      }
    }
  }
  if (!verified) throw new errors.JWSSignatureVerificationFailed();
  return decodeJson(payloadPart, 'JWT Claims Set') as JWTPayload;
}

const REQUIRED_CLAIMS = ['iss', 'aud', 'exp', 'iat'] as const;

/** RFC 7519 §4.1 checks of the claims set: presence, types, `iss`, `aud`, `exp`/`nbf` with leeway. */
function checkClaims(payload: JWTPayload, { issuer, audience, clockToleranceSec, requiredClaims = [] }: JwtCheckOptions): void {
  for (const claim of [...REQUIRED_CLAIMS, ...requiredClaims]) {
    if (payload[claim] === undefined) throw new errors.JWTClaimValidationFailed(`missing required "${claim}" claim`, payload, claim, 'missing');
  }
  for (const claim of ['iat', 'exp', 'nbf'] as const) {
    if (payload[claim] !== undefined && typeof payload[claim] !== 'number') {
      throw new errors.JWTClaimValidationFailed(`"${claim}" claim must be a number`, payload, claim, 'invalid');
    }
  }
  if (payload.iss !== issuer) throw new errors.JWTClaimValidationFailed('unexpected "iss" claim value', payload, 'iss', 'check_failed');
  if (audience !== undefined) {
    const expected = typeof audience === 'string' ? [audience] : audience;
    const actual = typeof payload.aud === 'string' ? [payload.aud] : Array.isArray(payload.aud) ? payload.aud : [];
    if (!actual.some((value) => expected.includes(value))) {
      throw new errors.JWTClaimValidationFailed('unexpected "aud" claim value', payload, 'aud', 'check_failed');
    }
  }
  const now = Math.floor(Date.now() / 1000);
  if (payload.nbf !== undefined && payload.nbf > now + clockToleranceSec) {
    throw new errors.JWTClaimValidationFailed('"nbf" claim timestamp check failed', payload, 'nbf', 'check_failed');
  }
  if ((payload.exp as number) <= now - clockToleranceSec) {
    throw new errors.JWTExpired('"exp" claim timestamp check failed', payload, 'exp', 'check_failed');
  }
}

/**
 * Verifies an RFC 9068 JWT access token (§4): ES256 only (signature checked synchronously with
 * `node:crypto`, the issuer's keys imported once), `typ` `at+jwt` (`application/at+jwt` too),
 * `iss`, `aud`, `exp`/`nbf` with leeway, and the presence of `iat` (not in the future). All
 * failures become {@link VerifyError}.
 */
export async function verifyJwt(token: unknown, getKey: JWTVerifyGetKey, options: JwtCheckOptions): Promise<JWTPayload> {
  if (typeof token !== 'string' || token === '') throw new VerifyError('invalid_token', 'token must be a non-empty string');
  let payload: JWTPayload;
  try {
    payload = await verifyCompactEs256(token, getKey, 'at+jwt');
    checkClaims(payload, options);
  } catch (err) {
    throw toVerifyError(err);
  }
  const nowSec = Math.floor(Date.now() / 1000);
  if ((payload.iat as number) > nowSec + options.clockToleranceSec) {
    throw new VerifyError('token_not_yet_valid', '"iat" claim is in the future');
  }
  return payload;
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
