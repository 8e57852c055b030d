import { describe, expect, it } from 'vitest';
import { VERIFY_ERROR_CODES, VerifyError } from '../../../src/verify/index.js';

describe('VerifyError', () => {
  it('maps codes to HTTP status and RFC 6750 error values', () => {
    for (const code of VERIFY_ERROR_CODES) {
      const error = new VerifyError(code);
      expect(error).toBeInstanceOf(Error);
      expect(error.name).toBe('VerifyError');
      expect(error.status).toBe(code === 'insufficient_scope' ? 403 : 401);
      const dpopProofErrors = ['invalid_dpop_proof', 'dpop_binding_mismatch', 'dpop_replay'];
      const expected = ['insufficient_scope', 'use_dpop_nonce', 'insufficient_user_authentication'].includes(code)
        ? code
        : dpopProofErrors.includes(code)
          ? 'invalid_dpop_proof'
          : 'invalid_token';
      expect(error.oauthError).toBe(expected);
      expect(error.scheme).toBe(code.includes('dpop') ? 'DPoP' : 'Bearer');
      expect(error.message).toBe(error.description);
    }
  });

  it('has client-safe descriptions (RFC 6750 §3 error_description charset)', () => {
    for (const code of VERIFY_ERROR_CODES) {
      expect(new VerifyError(code).description).toMatch(/^[\x20\x21\x23-\x5B\x5D-\x7E]+$/);
    }
  });

  it('keeps internal detail in message and cause, out of the challenge', () => {
    const cause = new Error('kid abc not found at https://internal/jwks');
    const error = new VerifyError('unknown_key', 'internal detail', { cause });
    expect(error.message).toBe('internal detail');
    expect(error.cause).toBe(cause);
    expect(error.wwwAuthenticate()).toBe(
      'Bearer error="invalid_token", error_description="The access token was signed with an unknown key"',
    );
  });

  it('builds RFC 9470 step-up challenges with acr_values and max_age', () => {
    const error = new VerifyError('insufficient_user_authentication', 'internal', { acrValues: ['urn:custos:acr:phr'], maxAge: 300 });
    expect(error.status).toBe(401);
    expect(error.wwwAuthenticate('orders')).toBe(
      'Bearer realm="orders", error="insufficient_user_authentication", error_description="A stronger or more recent user authentication is required", acr_values="urn:custos:acr:phr", max_age=300',
    );
  });

  it('builds RFC 9449 §7.1 DPoP challenges with algs', () => {
    expect(new VerifyError('dpop_proof_required', undefined, { dpopAlgorithms: ['ES256'] }).wwwAuthenticate()).toBe(
      'DPoP error="invalid_token", error_description="The access token is DPoP-bound; send it with the DPoP scheme and a DPoP proof", algs="ES256"',
    );
    const nonce = new VerifyError('use_dpop_nonce', undefined, { dpopAlgorithms: ['ES256', 'EdDSA'], dpopNonce: 'n-1' });
    expect(nonce.wwwAuthenticate('api')).toBe(
      'DPoP realm="api", error="use_dpop_nonce", error_description="The DPoP proof must carry the nonce sent in the DPoP-Nonce header", algs="ES256 EdDSA"',
    );
    expect(nonce.dpopNonce).toBe('n-1');
    expect(new VerifyError('dpop_replay').wwwAuthenticate()).toMatch(/^DPoP error="invalid_dpop_proof"/);
  });

  it('builds an insufficient_scope challenge with realm and scope, stripping unsafe characters', () => {
    const error = new VerifyError('insufficient_scope', undefined, { requiredScopes: ['orders', 'a"b\\c'] });
    expect(error.wwwAuthenticate('api "x"')).toBe(
      'Bearer realm="api x", error="insufficient_scope", error_description="The access token does not have the required scope", scope="orders abc"',
    );
  });
});
