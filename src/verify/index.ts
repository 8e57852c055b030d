/**
 * `custos/verify`: verification library for resource servers and event
 * consumers of a Custos authorization server.
 *
 * - {@link createAccessTokenVerifier}: RFC 9068 JWT access tokens, certificate-bound per RFC 8705
 *   or DPoP-bound per RFC 9449 (the proof checked by {@link createDpopProofChecker}).
 * - {@link createEventTokenVerifier} / {@link verifyEventToken}: RFC 8693 exchanged event tokens
 *   bound to an event payload by `event_payload_hash`.
 * - {@link eventPayloadHash}: RFC 8785 (JCS) + SHA-256 payload hash, for publishers and consumers.
 * - {@link verifySecurityEvent} / {@link createSecurityEventVerifier}: Custos IAM events (RFC 8417 SETs, CAEP).
 * - {@link ACR_VALUES}: the `acr` values Custos issues, weakest first; the access token verifier's `acr` /
 *   `maxAge` options refuse weaker or older sign-ins with the RFC 9470 step-up challenge.
 * - {@link createRevocationState}: consumer-side state fed by those events; the token verifiers take it
 *   as `revocations` and refuse tokens of subjects revoked after the token was issued.
 */
export {
  createAccessTokenVerifier,
  type AccessTokenClaims,
  type AccessTokenVerifier,
  type AccessTokenVerifierOptions,
  type VerifyAccessTokenOptions,
} from './access-token-verifier.js';
export { ACR_MFA, ACR_PHR, ACR_PWD, ACR_VALUES, acrSatisfies, type Acr } from './acr.js';
export { certificateThumbprint, type ClientCertificateInput } from './certificate-thumbprint.js';
export {
  createDpopProofChecker,
  createMemoryDpopReplayStore,
  DPOP_PROOF_ALGORITHMS,
  jwkThumbprint,
  type CheckedDpopProof,
  type DpopNonceOptions,
  type DpopProofAlgorithm,
  type DpopProofChecker,
  type DpopReplayStore,
  type DpopRequest,
  type DpopVerifierOptions,
} from './dpop-proof.js';
export { isResumeScope, RESUME_SCOPE_PREFIX, type ActorClaim, type ConfirmationClaim } from './claims.js';
export { VERIFY_ERROR_CODES, VerifyError, type VerifyErrorCode, type VerifyErrorOptions } from './errors.js';
export {
  createEventTokenVerifier,
  verifyEventToken,
  type EventTokenClaims,
  type EventTokenVerifier,
  type EventTokenVerifierOptions,
  type VerifyEventTokenOptions,
} from './event-token-verifier.js';
export type { KeySourceOptions } from './jwt-core.js';
export { eventPayloadHash, isPayloadHash } from './payload-hash.js';
export {
  CAEP_CREDENTIAL_CHANGE,
  CAEP_SESSION_REVOKED,
  CAEP_TOKEN_CLAIMS_CHANGE,
  CUSTOS_ACCOUNT_DISABLED,
  CUSTOS_ACCOUNT_ENABLED,
  CUSTOS_CLIENT_DELETED,
  CUSTOS_CLIENT_DISABLED,
  CUSTOS_CLIENT_ENABLED,
  createSecurityEventVerifier,
  verifySecurityEvent,
  type SecurityEvent,
  type SecurityEventVerifier,
  type SecurityEventVerifierOptions,
} from './security-event.js';
export {
  createRevocationState,
  type ApplyResult,
  type ClientState,
  type RevocationState,
  type RevocationStateOptions,
  type SubjectState,
} from './revocation-state.js';
