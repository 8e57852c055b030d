import { hash } from '@node-rs/argon2';
import { ARGON2ID } from './argon2-threads.js';

/** argon2id parameters (OWASP password storage baseline: 19 MiB, t=2, p=1). */
export const SECRET_HASH_COST = { memoryCost: 19_456, timeCost: 2, parallelism: 1 };

/**
 * Hashes a password or client secret with argon2id (RFC 9106), for one-off use (the CLI, set-up);
 * request paths verify through `createArgon2Threads` (argon2-threads.ts).
 */
export async function hashSecret(secret: string): Promise<string> {
  return hash(secret, { algorithm: ARGON2ID, ...SECRET_HASH_COST });
}
