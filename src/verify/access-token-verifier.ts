import { X509Certificate } from 'node:crypto';
import { certificateThumbprint, type ClientCertificateInput } from './certificate-thumbprint.js';
import { checkCommonClaims, isResumeScope, type ActorClaim, type ConfirmationClaim } from './claims.js';
import { createDpopProofChecker, type DpopProofChecker, type DpopRequest, type DpopVerifierOptions } from './dpop-proof.js';
import { ACR_VALUES, acrRank, acrSatisfies, type Acr } from './acr.js';
import { VerifyError } from './errors.js';
import type { RevocationState } from './revocation-state.js';
import { createKeyResolver, timingSafeEqualAscii, verifyJwt, type KeySourceOptions } from './jwt-core.js';

/** Claims of a verified access token (RFC 9068 §2.2), `scope` parsed into a list. */
export interface AccessTokenClaims {
  iss: string;
  sub?: string;
  aud: string | string[];
  exp: number;
  iat: number;
  nbf?: number;
  jti?: string;
  client_id: string;
  /** The `scope` claim split on spaces (RFC 6749 §3.3); `[]` when absent. */
  scope: string[];
  cnf?: ConfirmationClaim;
  act?: ActorClaim;
  [claim: string]: unknown;
}

/** Options of {@link createAccessTokenVerifier}. */
export interface AccessTokenVerifierOptions extends KeySourceOptions {
  /** Expected `iss` (the Custos issuer URL), RFC 9068 §4 step 3. */
  issuer: string;
  /** This resource server's identifier(s); the token's `aud` must contain one (RFC 9068 §4 step 4). */
  audience: string | readonly string[];
  /**
   * Require a sender-constrained token: an RFC 8705 certificate binding (`cnf.x5t#S256`) or an
   * RFC 9449 DPoP binding (`cnf.jkt`). Default `true`.
   */
  requireBinding?: boolean;
  /** How DPoP proofs of DPoP-bound tokens are checked (algorithms, `iat` window, replay store, nonces). */
  dpop?: DpopVerifierOptions;
  /** Leeway for `exp`/`nbf`/`iat`, in seconds. Default 5. */
  clockToleranceSec?: number;
  /** Scopes every accepted token must carry (else `insufficient_scope`, RFC 6750 §3.1). */
  requiredScopes?: readonly string[];
  /**
   * Continuous authorization: the consumer-side state fed by Custos SETs. A token whose subject was
   * revoked, disabled or had its roles changed after the token's `iat` is refused
   * (`subject_revoked`, `subject_disabled`, `claims_changed`).
   */
  revocations?: Pick<RevocationState, 'check'>;
  /** Every accepted token must come from a sign-in at least this strong (`acr`, see {@link ACR_VALUES}). */
  acr?: Acr;
  /** Every accepted token must come from a sign-in at most this many seconds ago (`auth_time`). */
  maxAge?: number;
}

/** Per-request input of {@link AccessTokenVerifier.verify}. */
export interface VerifyAccessTokenOptions {
  /** The client certificate of the mutual-TLS connection the token arrived on (RFC 8705 §3). */
  clientCertificate?: ClientCertificateInput;
  /**
   * The request's DPoP proof, method and URL (RFC 9449 §7.1), checked when the token is DPoP-bound
   * (`cnf.jkt`); a DPoP-bound token without it is refused (`dpop_proof_required`).
   */
  dpop?: DpopRequest;
  /**
   * This call needs a sign-in at least this strong (RFC 9470): else `insufficient_user_authentication`,
   * whose `wwwAuthenticate()` is the step-up challenge with `acr_values`. Overrides the verifier's `acr`.
   */
  acr?: Acr;
  /** This call needs a sign-in at most this many seconds old (RFC 9470 `max_age`). Overrides the verifier's `maxAge`. */
  maxAge?: number;
}

/** Verifier returned by {@link createAccessTokenVerifier}. */
export interface AccessTokenVerifier {
  /** Verifies `token` and returns its claims, or throws a {@link VerifyError}. */
  verify(token: string, options?: VerifyAccessTokenOptions): Promise<AccessTokenClaims>;
}

const X5T_S256_PATTERN = /^[A-Za-z0-9_-]{43}$/;
const JKT_PATTERN = /^[A-Za-z0-9_-]{43}$/;

/**
 * Creates a verifier for Custos access tokens at a resource server.
 *
 * Checks, in order: the JWT (RFC 9068 §4: ES256 only, `typ` `at+jwt`, `iss`,
 * `aud`, `exp`/`nbf`/`iat` with leeway, signature against the issuer's JWKS);
 * claim types; that it is not an event token (no `event_payload_hash`, and a
 * non-empty scope made only of `resume_*` scopes is refused with
 * `resume_only_token`); the binding, whichever kind the token has: a certificate binding
 * (RFC 8705 §3: `cnf.x5t#S256` equals the SHA-256 thumbprint of the presented certificate,
 * compared in constant time) or a DPoP binding (RFC 9449 §7.1: `cnf.jkt`, checked against the
 * request's DPoP proof, see {@link createDpopProofChecker}); revocations; finally `requiredScopes`.
 */
export function createAccessTokenVerifier(options: AccessTokenVerifierOptions): AccessTokenVerifier {
  const getKey = createKeyResolver(options);
  const audience = typeof options.audience === 'string' ? options.audience : [...options.audience];
  if (audience.length === 0) throw new TypeError('custos/verify: "audience" must not be empty');
  const requireBinding = options.requireBinding ?? true;
  const clockToleranceSec = options.clockToleranceSec ?? 5;
  const requiredScopes = [...(options.requiredScopes ?? [])];
  const jwtOptions = { issuer: options.issuer, audience, clockToleranceSec };
  const checkDpopProof = createDpopProofChecker(options.dpop);
  // A connection's X509Certificate object comes back with every request on it: hash its DER once.
  const thumbprints = new WeakMap<X509Certificate, string>();
  const thumbprintOf = (certificate: ClientCertificateInput): string => {
    if (!(certificate instanceof X509Certificate)) return certificateThumbprint(certificate);
    let thumbprint = thumbprints.get(certificate);
    if (thumbprint === undefined) {
      thumbprint = certificateThumbprint(certificate);
      thumbprints.set(certificate, thumbprint);
    }
    return thumbprint;
  };

  return {
    async verify(token, verifyOptions = {}) {
      const payload = await verifyJwt(token, getKey, jwtOptions);
      const { scope } = checkCommonClaims(payload);
      if (typeof payload['client_id'] !== 'string') {
        throw new VerifyError('invalid_token', '"client_id" claim is required (RFC 9068 §2.2)');
      }
      if (payload['event_payload_hash'] !== undefined) {
        throw new VerifyError('resume_only_token', 'event tokens (with "event_payload_hash") are not access tokens');
      }
      if (scope.length > 0 && scope.every(isResumeScope)) {
        throw new VerifyError('resume_only_token', `token carries only resume scopes: ${scope.join(' ')}`);
      }
      await checkBinding(token, payload['cnf'], verifyOptions, requireBinding, thumbprintOf, checkDpopProof);
      options.revocations?.check(
        payload.sub,
        payload.iat as number,
        typeof payload['sid'] === 'string' ? payload['sid'] : undefined,
        typeof payload['client_id'] === 'string' ? payload['client_id'] : undefined,
      );
      const missing = requiredScopes.filter((required) => !scope.includes(required));
      if (missing.length > 0) {
        throw new VerifyError('insufficient_scope', `missing scope(s): ${missing.join(' ')}`, { requiredScopes });
      }
      checkUserAuthentication(payload, verifyOptions.acr ?? options.acr, verifyOptions.maxAge ?? options.maxAge, clockToleranceSec);
      return { ...payload, scope } as AccessTokenClaims;
    },
  };
}

/**
 * The token's binding: RFC 8705 §3 (`cnf.x5t#S256` must be the presented certificate's
 * thumbprint) or RFC 9449 §7.1 (`cnf.jkt` must be the thumbprint of the key of a valid DPoP
 * proof for this request and this token). A token with both, or with neither known method, is refused.
 */
async function checkBinding(
  token: string,
  cnf: unknown,
  request: VerifyAccessTokenOptions,
  requireBinding: boolean,
  thumbprintOf: (certificate: ClientCertificateInput) => string,
  checkDpopProof: DpopProofChecker,
): Promise<void> {
  if (cnf === undefined) {
    if (requireBinding) throw new VerifyError('binding_missing', 'token has no "cnf" claim');
    return;
  }
  if (typeof cnf !== 'object' || cnf === null || Array.isArray(cnf)) {
    throw new VerifyError('invalid_token', '"cnf" claim must be an object');
  }
  const expected = (cnf as ConfirmationClaim)['x5t#S256'];
  const jkt = (cnf as { jkt?: unknown }).jkt;
  if (expected !== undefined && jkt !== undefined) {
    throw new VerifyError('invalid_token', '"cnf" claim has both "x5t#S256" and "jkt"');
  }
  if (jkt !== undefined) {
    if (typeof jkt !== 'string' || !JKT_PATTERN.test(jkt)) throw new VerifyError('invalid_token', '"cnf.jkt" must be a base64url SHA-256 thumbprint');
    await checkDpopProof(request.dpop ?? { proof: undefined, method: '', url: '' }, token, jkt);
    return;
  }
  if (expected === undefined) {
    // A token bound by a method we cannot check must not be accepted as a bearer token.
    throw new VerifyError('invalid_token', '"cnf" claim has no "x5t#S256" or "jkt" (unsupported confirmation method)');
  }
  const certificate = request.clientCertificate;
  if (typeof expected !== 'string' || !X5T_S256_PATTERN.test(expected)) {
    throw new VerifyError('invalid_token', '"cnf.x5t#S256" must be a base64url SHA-256 digest');
  }
  if (certificate === undefined) {
    throw new VerifyError('certificate_required', 'token is certificate-bound but no client certificate was presented');
  }
  let actual: string;
  try {
    actual = thumbprintOf(certificate);
  } catch (cause) {
    throw new VerifyError('certificate_required', 'the presented client certificate could not be parsed', { cause });
  }
  if (!timingSafeEqualAscii(actual, expected)) {
    throw new VerifyError('binding_mismatch', 'token is bound to a different client certificate');
  }
}

/**
 * RFC 9470 step-up: the token's `acr` must meet `acr` (Custos's order, weakest first:
 * {@link ACR_VALUES}) and its `auth_time` must be at most `maxAge` seconds old. Otherwise
 * `insufficient_user_authentication`, carrying what to ask for: the acceptable `acr` values
 * (the required one first) and/or `max_age`.
 */
function checkUserAuthentication(payload: Record<string, unknown>, acr: Acr | undefined, maxAge: number | undefined, toleranceSec: number): void {
  const weakAcr = acr !== undefined && !acrSatisfies(payload['acr'], acr);
  const authTime = payload['auth_time'];
  const tooOld =
    maxAge !== undefined && (typeof authTime !== 'number' || Math.floor(Date.now() / 1000) - authTime > maxAge + toleranceSec);
  if (!weakAcr && !tooOld) return;
  throw new VerifyError(
    'insufficient_user_authentication',
    weakAcr ? `token acr ${String(payload['acr'])} is below ${acr}` : `token auth_time is older than ${maxAge}s`,
    {
      ...(weakAcr ? { acrValues: ACR_VALUES.filter((value) => acrRank(value) >= acrRank(acr)) } : {}),
      ...(maxAge !== undefined && (tooOld || weakAcr) ? { maxAge } : {}),
    },
  );
}
