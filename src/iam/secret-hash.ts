import { hash } from '@node-rs/argon2';
import { ARGON2ID, DEFAULT_ARGON2_COST } from './argon2-threads.js';

/**
 * Hashes a password or client secret with argon2id (RFC 9106), for one-off use (the CLI, set-up);
 * request paths verify through `createArgon2Threads` (argon2-threads.ts).
 */
export async function hashSecret(secret: string): Promise<string> {
  return hash(secret, { algorithm: ARGON2ID, ...DEFAULT_ARGON2_COST });
}
