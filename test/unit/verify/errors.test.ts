import { describe, expect, it } from 'vitest';
import { VERIFY_ERROR_CODES, VerifyError } from '../../../src/verify/index.js';

describe('VerifyError', () => {
  it('maps codes to HTTP status and RFC 6750 error values', () => {
    for (const code of VERIFY_ERROR_CODES) {
      const error = new VerifyError(code);
      expect(error).toBeInstanceOf(Error);
      expect(error.name).toBe('VerifyError');
      expect(error.status).toBe(code === 'insufficient_scope' ? 403 : 401);
      expect(error.oauthError).toBe(code === 'insufficient_scope' ? 'insufficient_scope' : 'invalid_token');
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

  it('builds an insufficient_scope challenge with realm and scope, stripping unsafe characters', () => {
    const error = new VerifyError('insufficient_scope', undefined, { requiredScopes: ['orders', 'a"b\\c'] });
    expect(error.wwwAuthenticate('api "x"')).toBe(
      'Bearer realm="api x", error="insufficient_scope", error_description="The access token does not have the required scope", scope="orders abc"',
    );
  });
});
