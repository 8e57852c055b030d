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
] as const;

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
};

/** Options for {@link VerifyError}. */
export interface VerifyErrorOptions {
  /** The underlying error (e.g. a jose error); never shown to clients. */
  cause?: unknown;
  /** For `insufficient_scope`: the scopes the resource requires (RFC 6750 §3 `scope`). */
  requiredScopes?: readonly string[];
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

  constructor(code: VerifyErrorCode, message?: string, options: VerifyErrorOptions = {}) {
    super(message ?? DESCRIPTIONS[code], options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.requiredScopes = options.requiredScopes;
  }

  /** HTTP status for a resource server response: 403 for `insufficient_scope`, else 401 (RFC 6750 §3.1). */
  get status(): 401 | 403 {
    return this.code === 'insufficient_scope' ? 403 : 401;
  }

  /** RFC 6750 §3.1 `error` value: `insufficient_scope` or `invalid_token`. */
  get oauthError(): 'invalid_token' | 'insufficient_scope' {
    return this.code === 'insufficient_scope' ? 'insufficient_scope' : 'invalid_token';
  }

  /** Client-safe description for this code (no internal detail). */
  get description(): string {
    return DESCRIPTIONS[this.code];
  }

  /**
   * A `WWW-Authenticate` challenge for this error (RFC 6750 §3, scheme `Bearer`
   * as used by RFC 8705 §3 for certificate-bound tokens).
   */
  wwwAuthenticate(realm?: string): string {
    const params: string[] = [];
    if (realm !== undefined) params.push(`realm="${quoteSafe(realm)}"`);
    params.push(`error="${this.oauthError}"`, `error_description="${this.description}"`);
    if (this.code === 'insufficient_scope' && this.requiredScopes?.length) {
      params.push(`scope="${quoteSafe(this.requiredScopes.join(' '))}"`);
    }
    return `Bearer ${params.join(', ')}`;
  }
}

/** Drops characters not allowed inside an RFC 6750 quoted auth-param value. */
function quoteSafe(value: string): string {
  return value.replace(/[^\x20\x21\x23-\x5B\x5D-\x7E]/g, '');
}
