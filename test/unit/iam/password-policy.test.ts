import { describe, expect, it } from 'vitest';
import { IamError } from '../../../src/iam/iam-errors.js';
import { assertPasswordAcceptable } from '../../../src/iam/password-policy.js';

describe('password policy', () => {
  it('accepts long passphrases of any characters', () => {
    expect(() => assertPasswordAcceptable('correct horse battery', 'bob')).not.toThrow();
    expect(() => assertPasswordAcceptable('pässwörd-ñ-日本語', 'bob')).not.toThrow();
  });

  it.each([
    ['', 'empty'],
    ['short', 'at least 10'],
    ['aaaaaaaaaaaa', 'single character'],
    ['LongUsername', 'equals the username'],
    ['x'.repeat(257) + 'y', 'at most 256'],
    ['with\u0000nul-char', 'NUL'],
  ])('refuses %j (%s) with weak_password', (password, reason) => {
    try {
      assertPasswordAcceptable(password, 'longusername');
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(IamError);
      expect((error as IamError).code).toBe('weak_password');
      expect((error as IamError).message).toContain(reason);
    }
  });
});
