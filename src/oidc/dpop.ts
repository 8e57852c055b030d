import { createHmac } from 'node:crypto';

/** Proof algorithms accepted in DPoP proofs (RFC 9449 §5.1 `dpop_signing_alg_values_supported`). */
export const DPOP_SIGNING_ALGS = ['ES256', 'EdDSA'] as const;

/**
 * oidc-provider `features.dPoP` (RFC 9449): a token request with a valid `DPoP` proof gets
 * DPoP-bound tokens (`cnf.jkt`, `token_type: DPoP`); a client registered with
 * `dpop_bound_access_tokens: true` must send one. Proof `jti`s are single-use (oidc-provider's
 * replay detection, made atomic in src/oidc/internals.ts and stored through the adapter so every
 * instance sees them).
 *
 * Server nonces (RFC 9449 §8): the secret that mints and checks them is derived from the first
 * cookie key (HMAC-SHA-256, a 32-byte key of its own), so it is as configured as the cookie keys
 * are — production refuses to start without them, and every instance sharing the cookie keys
 * accepts the others' nonces. Nonces are offered (`DPoP-Nonce`); with `requireNonce`
 * (DPOP_REQUIRE_NONCE) every proof must carry one, else a proof without one is accepted while its
 * `iat` is recent and a stale one is answered `use_dpop_nonce`.
 */
export function dpopFeature(cookieKeys: readonly string[], requireNonce = false) {
  const first = cookieKeys[0];
  if (first === undefined) throw new TypeError('DPoP nonces need a configured cookie key');
  return {
    enabled: true,
    nonceSecret: createHmac('sha256', first).update('custos dpop nonce v1').digest(),
    requireNonce: () => requireNonce,
  };
}
