import { createHash, randomBytes } from 'node:crypto';

/** The page an enrollment link opens; the token goes in the query string (the access log has paths only). */
export const ENROLL_PATH = '/enroll';

/** Default and bounds of a link's lifetime (seconds). */
export const ENROLLMENT_LINK_DEFAULT_SECONDS = 24 * 3600;
export const ENROLLMENT_LINK_MAX_SECONDS = 7 * 24 * 3600;

/** A link's token: 256 random bits, base64url (43 characters). */
export function newEnrollmentToken(): string {
  return randomBytes(32).toString('base64url');
}

/** Tokens are random (not passwords): SHA-256 is the stored, looked-up form. */
export function enrollmentTokenHash(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

export const ENROLLMENT_TOKEN = /^[A-Za-z0-9_-]{43}$/;

export function enrollmentUrl(issuer: string, token: string): string {
  const url = new URL(`${issuer.replace(/\/$/, '')}${ENROLL_PATH}`);
  url.searchParams.set('token', token);
  return url.href;
}
