import { IamError } from './iam-errors.js';

/** Shortest accepted password (NIST SP 800-63B §3.1.1.2 asks for at least 8; we ask for 10). */
export const MIN_PASSWORD_LENGTH = 10;
/** Longest accepted password, in characters: argon2 input stays bounded. */
export const MAX_PASSWORD_LENGTH = 256;

/**
 * Checks a new password: 10 to 256 characters (Unicode code points), not only one repeated
 * character, and not the username (in any letter case). Throws `weak_password` with the reason.
 * No composition rules (NIST SP 800-63B: length beats character classes).
 */
export function assertPasswordAcceptable(password: string, username: string): void {
  const length = [...password].length;
  if (length === 0) throw new IamError('weak_password', 'the password is empty');
  if (length < MIN_PASSWORD_LENGTH) throw new IamError('weak_password', `the password needs at least ${MIN_PASSWORD_LENGTH} characters`);
  if (length > MAX_PASSWORD_LENGTH) throw new IamError('weak_password', `the password may have at most ${MAX_PASSWORD_LENGTH} characters`);
  if (password.includes('\u0000')) throw new IamError('weak_password', 'the password contains a NUL character');
  if (new Set(password).size === 1) throw new IamError('weak_password', 'the password repeats a single character');
  if (password.toLowerCase() === username.toLowerCase()) throw new IamError('weak_password', 'the password equals the username');
}
