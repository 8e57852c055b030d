/**
 * Stable error codes raised by the `custos/verify` library.
 *
 * Codes are part of the public contract: resource servers may switch on them,
 * log them and map them to responses. Never rename one; add new ones instead.
 */
export const VERIFY_ERROR_CODES = [
  'invalid_token',
  'token_expired',
  'token_not_yet_valid',
  'wrong_issuer',
  'wrong_audience',
  'unknown_key',
  'certificate_required',
  'binding_mismatch',
  'binding_missing',
  'resume_only_token',
  'insufficient_scope',
  'payload_mismatch',
  'invalid_payload_hash',
  'invalid_security_event',
  'subject_revoked',
  'subject_disabled',
  'claims_changed',
  'session_revoked',
  'dpop_proof_required',
  'invalid_dpop_proof',
  'dpop_binding_mismatch',
  'dpop_replay',
  'use_dpop_nonce',
  'insufficient_user_authentication',
  'client_disabled',
  'client_revoked',
] as const;

/** Codes of DPoP proof failures (RFC 9449 §7.1): answered with a `DPoP` challenge. */
const DPOP_CODES: ReadonlySet<VerifyErrorCode> = new Set(['dpop_proof_required', 'invalid_dpop_proof', 'dpop_binding_mismatch', 'dpop_replay', 'use_dpop_nonce']);

/** One of {@link VERIFY_ERROR_CODES}. */
export type VerifyErrorCode = (typeof VERIFY_ERROR_CODES)[number];

/**
 * Fixed, client-safe descriptions (RFC 6750 §3 `error_description` charset:
 * printable ASCII without `"` and `\`). Internal detail goes to `message`/`cause`.
 */
const DESCRIPTIONS: Readonly<Record<VerifyErrorCode, string>> = {
  invalid_token: 'The access token is malformed or its signature is invalid',
  token_expired: 'The access token expired',
  token_not_yet_valid: 'The access token is not yet valid',
  wrong_issuer: 'The access token was issued by an untrusted issuer',
  wrong_audience: 'The access token is not intended for this resource',
  unknown_key: 'The access token was signed with an unknown key',
  certificate_required: 'The access token is certificate-bound; present the client certificate over mutual TLS',
  binding_mismatch: 'The access token is bound to a different client certificate',
  binding_missing: 'The access token is not bound to a client certificate',
  resume_only_token: 'Event tokens cannot be used to call this resource',
  insufficient_scope: 'The access token does not have the required scope',
  payload_mismatch: 'The event payload does not match the event token',
  invalid_payload_hash: 'The event token does not carry a valid event payload hash',
  invalid_security_event: 'The security event token is malformed or its signature is invalid',
  subject_revoked: 'The sessions of the token subject were revoked after the token was issued',
  subject_disabled: 'The account of the token subject is disabled',
  claims_changed: 'The roles of the token subject changed after the token was issued',
  session_revoked: 'The session the token was issued under was revoked',
  dpop_proof_required: 'The access token is DPoP-bound; send it with the DPoP scheme and a DPoP proof',
  invalid_dpop_proof: 'The DPoP proof is invalid',
  dpop_binding_mismatch: 'The DPoP proof was not made with the key the access token is bound to',
  dpop_replay: 'The DPoP proof was already used',
  use_dpop_nonce: 'The DPoP proof must carry the nonce sent in the DPoP-Nonce header',
  insufficient_user_authentication: 'A stronger or more recent user authentication is required',
  client_disabled: 'The client the access token was issued to is disabled',
  client_revoked: 'The client the access token was issued to was disabled after the token was issued',
};

/** Options for {@link VerifyError}. */
export interface VerifyErrorOptions {
  /** The underlying error (e.g. a jose error); never shown to clients. */
  cause?: unknown;
  /** For `insufficient_scope`: the scopes the resource requires (RFC 6750 §3 `scope`). */
  requiredScopes?: readonly string[];
  /** For DPoP failures: the proof algorithms the resource accepts (RFC 9449 §7.1 `algs`). */
  dpopAlgorithms?: readonly string[];
  /** For `use_dpop_nonce`: the nonce to send in the `DPoP-Nonce` response header (RFC 9449 §9). */
  dpopNonce?: string;
  /** For `insufficient_user_authentication`: the `acr` values that would do, preferred first (RFC 9470 §3). */
  acrValues?: readonly string[];
  /** For `insufficient_user_authentication`: the largest accepted age of the authentication, seconds (RFC 9470 §3). */
  maxAge?: number;
}

/**
 * Error thrown by every verifier in `custos/verify`.
 *
 * `message` carries internal detail for logs; {@link VerifyError.description}
 * and {@link VerifyError.wwwAuthenticate} are safe to send to clients
 * (RFC 6750 §3, RFC 8705 §3).
 */
export class VerifyError extends Error {
  override readonly name = 'VerifyError';
  readonly code: VerifyErrorCode;
  readonly requiredScopes: readonly string[] | undefined;
  readonly dpopAlgorithms: readonly string[] | undefined;
  /** For `use_dpop_nonce`: send it as the `DPoP-Nonce` response header (RFC 9449 §9). */
  readonly dpopNonce: string | undefined;
  /** For `insufficient_user_authentication` (RFC 9470): the `acr` values that would do. */
  readonly acrValues: readonly string[] | undefined;
  /** For `insufficient_user_authentication` (RFC 9470): the largest accepted authentication age, seconds. */
  readonly maxAge: number | undefined;

  constructor(code: VerifyErrorCode, message?: string, options: VerifyErrorOptions = {}) {
    super(message ?? DESCRIPTIONS[code], options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.requiredScopes = options.requiredScopes;
    this.dpopAlgorithms = options.dpopAlgorithms;
    this.dpopNonce = options.dpopNonce;
    this.acrValues = options.acrValues;
    this.maxAge = options.maxAge;
  }

  /** `DPoP` for DPoP proof failures (RFC 9449 §7.1), else `Bearer` (RFC 6750 §3). */
  get scheme(): 'Bearer' | 'DPoP' {
    return DPOP_CODES.has(this.code) ? 'DPoP' : 'Bearer';
  }

  /** HTTP status for a resource server response: 403 for `insufficient_scope`, else 401 (RFC 6750 §3.1). */
  get status(): 401 | 403 {
    return this.code === 'insufficient_scope' ? 403 : 401;
  }

  /**
   * The challenge's `error` value: RFC 6750 §3.1 `insufficient_scope` or `invalid_token`, or for
   * DPoP (RFC 9449 §7.1, §12.2) `invalid_dpop_proof` (a bad, replayed or foreign-key proof) or
   * `use_dpop_nonce`; a DPoP-bound token presented without a proof is `invalid_token`.
   */
  get oauthError(): 'invalid_token' | 'insufficient_scope' | 'invalid_dpop_proof' | 'use_dpop_nonce' | 'insufficient_user_authentication' {
    switch (this.code) {
      case 'insufficient_scope':
      case 'use_dpop_nonce':
      case 'insufficient_user_authentication':
        return this.code;
      case 'invalid_dpop_proof':
      case 'dpop_binding_mismatch':
      case 'dpop_replay':
        return 'invalid_dpop_proof';
      default:
        return 'invalid_token';
    }
  }

  /** Client-safe description for this code (no internal detail). */
  get description(): string {
    return DESCRIPTIONS[this.code];
  }

  /**
   * A `WWW-Authenticate` challenge for this error: scheme `Bearer` (RFC 6750 §3, as used by
   * RFC 8705 §3 for certificate-bound tokens), or `DPoP` with `algs` for DPoP failures
   * (RFC 9449 §7.1). With `use_dpop_nonce`, also send {@link VerifyError.dpopNonce} as `DPoP-Nonce`.
   */
  wwwAuthenticate(realm?: string): string {
    const params: string[] = [];
    if (realm !== undefined) params.push(`realm="${quoteSafe(realm)}"`);
    params.push(`error="${this.oauthError}"`, `error_description="${this.description}"`);
    if (this.code === 'insufficient_scope' && this.requiredScopes?.length) {
      params.push(`scope="${quoteSafe(this.requiredScopes.join(' '))}"`);
    }
    // RFC 9470 §3: what the client must ask the authorization server for (acr_values, max_age).
    if (this.code === 'insufficient_user_authentication') {
      if (this.acrValues?.length) params.push(`acr_values="${quoteSafe(this.acrValues.join(' '))}"`);
      if (this.maxAge !== undefined) params.push(`max_age=${Math.max(0, Math.floor(this.maxAge))}`);
    }
    if (this.scheme === 'DPoP' && this.dpopAlgorithms?.length) {
      params.push(`algs="${quoteSafe(this.dpopAlgorithms.join(' '))}"`);
    }
    return `${this.scheme} ${params.join(', ')}`;
  }
}

/** Drops characters not allowed inside an RFC 6750 quoted auth-param value. */
function quoteSafe(value: string): string {
  return value.replace(/[^\x20\x21\x23-\x5B\x5D-\x7E]/g, '');
}
