import type { Env } from '../config/env.js';
import { createArgon2Threads, DEFAULT_ARGON2_COST, type Argon2Cost, type Argon2Threads } from './argon2-threads.js';
import { createConcurrencyLimit } from './concurrency-limit.js';

export { DEFAULT_ARGON2_COST, type Argon2Cost } from './argon2-threads.js';

/** The argon2id cost configured by `ARGON2_MEMORY_KIB`, `ARGON2_TIME_COST`, `ARGON2_PARALLELISM`. */
export function argon2CostOf(env: Pick<Env, 'ARGON2_MEMORY_KIB' | 'ARGON2_TIME_COST' | 'ARGON2_PARALLELISM'>): Argon2Cost {
  return { memoryCost: env.ARGON2_MEMORY_KIB, timeCost: env.ARGON2_TIME_COST, parallelism: env.ARGON2_PARALLELISM };
}

export interface PasswordHasherOptions {
  cost?: Argon2Cost;
  /** Where argon2 runs (shared with the client-secret verifier in the server); default: own threads. */
  threads?: Argon2Threads;
  /** argon2 computations at once (each holds a thread and `memoryCost` KiB). */
  maxConcurrent?: number;
  /** Computations allowed to wait; beyond that a verification fails at once (`busy`). */
  maxQueued?: number;
}

export type PasswordCheck = 'ok' | 'wrong' | 'busy';

/** argon2id password hashing and verification, bounded so a flood of logins cannot starve token requests. */
export interface PasswordHasher {
  readonly cost: Argon2Cost;
  /** Hashes a new password; throws `Error('busy')` when the queue is full. */
  hash(password: string): Promise<string>;
  /**
   * Verifies `password` against `hash` in constant time. With `hash` null (unknown user, or no
   * password set) it verifies against a dummy hash of the same cost, so the answer takes as long
   * as for a real account, and answers `wrong`.
   */
  verify(hash: string | null, password: string): Promise<PasswordCheck>;
}

/** Builds the hasher; the dummy hash is computed once, at the configured cost. */
export function createPasswordHasher(options: PasswordHasherOptions = {}): PasswordHasher {
  const cost = options.cost ?? DEFAULT_ARGON2_COST;
  const threads = options.threads ?? createArgon2Threads();
  const limit = createConcurrencyLimit(options.maxConcurrent ?? 2, options.maxQueued ?? 64);
  let dummy: Promise<string> | undefined;
  const dummyHash = () =>
    (dummy ??= threads.hash('custos-dummy-password', cost).catch((error: unknown) => {
      dummy = undefined; // a failed thread must not leave every unknown user failing
      throw error;
    }));

  return {
    cost,
    async hash(password) {
      const hashed = await limit.run(() => threads.hash(password, cost));
      if (hashed === undefined) throw new Error('busy');
      return hashed;
    },
    async verify(hash, password) {
      const target = hash?.startsWith('$argon2id$') ? hash : await dummyHash();
      const ok = await limit.run(() => threads.verify(target, password));
      if (ok === undefined) return 'busy';
      return ok && target === hash ? 'ok' : 'wrong';
    },
  };
}
