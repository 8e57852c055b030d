import { checkCommonClaims, isResumeScope, RESUME_SCOPE_PREFIX, type ActorClaim } from './claims.js';
import { VerifyError } from './errors.js';
import { createKeyResolver, timingSafeEqualAscii, verifyJwt, type KeySourceOptions } from './jwt-core.js';
import { eventPayloadHash, isPayloadHash } from './payload-hash.js';
import type { RevocationState } from './revocation-state.js';

/** Claims of a verified event token (RFC 8693 exchange result, DESIGN.md token exchange profile). */
export interface EventTokenClaims {
  iss: string;
  /** The end user the event was published for. */
  sub: string;
  aud: string | string[];
  exp: number;
  iat: number;
  nbf?: number;
  jti?: string;
  client_id?: string;
  /** Only `resume_*` scopes, parsed from the space-delimited `scope` claim. */
  scope: string[];
  /** base64url SHA-256 of the JCS-canonical event payload (see {@link eventPayloadHash}). */
  event_payload_hash: string;
  /** The publishing API (RFC 8693 §4.1), nested for chained exchanges. */
  act?: ActorClaim;
  [claim: string]: unknown;
}

/** Options of {@link createEventTokenVerifier}. */
export interface EventTokenVerifierOptions extends KeySourceOptions {
  /** Expected `iss` (the Custos issuer URL). */
  issuer: string;
  /** Leeway for `exp`/`nbf`/`iat`, in seconds. Default 5. */
  clockToleranceSec?: number;
  /** Refuse event tokens of subjects revoked/disabled after the token's `iat` (see the access-token verifier). */
  revocations?: Pick<RevocationState, 'check'>;
}

/** Per-event input of {@link EventTokenVerifier.verifyEventToken}. */
export interface VerifyEventTokenOptions {
  /** This consumer's identifier; the token's `aud` must include it. */
  audience: string;
  /** A `resume_*` scope the token must carry, e.g. `resume_orders`. */
  requiredScope?: string;
}

/** Verifier returned by {@link createEventTokenVerifier}. */
export interface EventTokenVerifier {
  /**
   * Verifies an event token and that `payload` is exactly the event it was
   * minted for; returns its claims or throws a {@link VerifyError}.
   */
  verifyEventToken(token: string, payload: unknown, options: VerifyEventTokenOptions): Promise<EventTokenClaims>;
}

/**
 * Creates a verifier for event tokens at an event consumer (seed 001,
 * "Resuming Event-Based Flows").
 *
 * Checks: the JWT (RFC 9068 §4: ES256 only, `typ` `at+jwt`, `iss`, `aud`
 * includes the consumer, `exp`/`nbf`/`iat` with leeway); `sub` present; a
 * non-empty scope made only of `resume_*` scopes that includes
 * `requiredScope` (else `insufficient_scope`); a well-formed
 * `event_payload_hash` (else `invalid_payload_hash`) equal, in constant time,
 * to {@link eventPayloadHash}(payload) (else `payload_mismatch`).
 * A `cnf` claim is not checked: the consumer has no TLS session with the publisher.
 */
export function createEventTokenVerifier(options: EventTokenVerifierOptions): EventTokenVerifier {
  const getKey = createKeyResolver(options);
  const clockToleranceSec = options.clockToleranceSec ?? 5;

  return {
    async verifyEventToken(token, payload, { audience, requiredScope }) {
      if (typeof audience !== 'string' || audience === '') {
        throw new TypeError('custos/verify: "audience" must be a non-empty string');
      }
      if (requiredScope !== undefined && !isResumeScope(requiredScope)) {
        throw new TypeError(`custos/verify: "requiredScope" must be a ${RESUME_SCOPE_PREFIX}* scope`);
      }
      const claims = await verifyJwt(token, getKey, { issuer: options.issuer, audience, clockToleranceSec });
      const { scope } = checkCommonClaims(claims);
      if (typeof claims.sub !== 'string') throw new VerifyError('invalid_token', 'event token has no "sub" claim');
      options.revocations?.check(
        claims.sub,
        claims.iat as number,
        typeof claims['sid'] === 'string' ? claims['sid'] : undefined,
        typeof claims['client_id'] === 'string' ? claims['client_id'] : undefined,
      );
      if (scope.length === 0 || !scope.every(isResumeScope)) {
        throw new VerifyError('insufficient_scope', 'event tokens must carry only resume_* scopes', {
          requiredScopes: requiredScope === undefined ? [] : [requiredScope],
        });
      }
      if (requiredScope !== undefined && !scope.includes(requiredScope)) {
        throw new VerifyError('insufficient_scope', `missing scope: ${requiredScope}`, { requiredScopes: [requiredScope] });
      }
      const claimed = claims['event_payload_hash'];
      if (!isPayloadHash(claimed)) {
        throw new VerifyError('invalid_payload_hash', '"event_payload_hash" claim is missing or malformed');
      }
      let actual: string;
      try {
        actual = eventPayloadHash(payload);
      } catch (cause) {
        throw new VerifyError('payload_mismatch', 'the event payload is not JSON data', { cause });
      }
      if (!timingSafeEqualAscii(actual, claimed)) {
        throw new VerifyError('payload_mismatch', 'the event payload does not hash to "event_payload_hash"');
      }
      return { ...claims, scope } as EventTokenClaims;
    },
  };
}

/**
 * One-shot {@link createEventTokenVerifier} + `verifyEventToken`. Each call
 * builds a new key resolver, so with `jwksUri` every call fetches the JWKS:
 * long-running consumers should create one verifier and reuse it.
 */
export async function verifyEventToken(
  token: string,
  payload: unknown,
  options: EventTokenVerifierOptions & VerifyEventTokenOptions,
): Promise<EventTokenClaims> {
  const { audience, requiredScope, ...verifierOptions } = options;
  return createEventTokenVerifier(verifierOptions).verifyEventToken(token, payload, { audience, requiredScope });
}
