import argon2 from 'argon2';

/** argon2id parameters (OWASP password storage baseline: 19 MiB, t=2, p=1). */
const OPTIONS = { type: argon2.argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

/** Hashes a password or client secret with argon2id (RFC 9106). */
export async function hashSecret(secret: string): Promise<string> {
  return argon2.hash(secret, OPTIONS);
}

/**
 * Verifies `secret` against an argon2id hash in constant time; false for any malformed hash
 * or non-argon2id algorithm instead of throwing.
 */
export async function verifySecret(hash: string, secret: string): Promise<boolean> {
  if (!hash.startsWith('$argon2id$')) return false;
  try {
    return await argon2.verify(hash, secret);
  } catch {
    return false;
  }
}
