import argon2 from 'argon2';
import type { Env } from '../config/env.js';
import { createConcurrencyLimit } from './concurrency-limit.js';

/** argon2id cost (RFC 9106; defaults are OWASP's baseline: 19 MiB, t=2, p=1). */
export interface Argon2Cost {
  /** KiB. */
  memoryCost: number;
  timeCost: number;
  parallelism: number;
}

export const DEFAULT_ARGON2_COST: Argon2Cost = { memoryCost: 19_456, timeCost: 2, parallelism: 1 };

/** The argon2id cost configured by `ARGON2_MEMORY_KIB`, `ARGON2_TIME_COST`, `ARGON2_PARALLELISM`. */
export function argon2CostOf(env: Pick<Env, 'ARGON2_MEMORY_KIB' | 'ARGON2_TIME_COST' | 'ARGON2_PARALLELISM'>): Argon2Cost {
  return { memoryCost: env.ARGON2_MEMORY_KIB, timeCost: env.ARGON2_TIME_COST, parallelism: env.ARGON2_PARALLELISM };
}

export interface PasswordHasherOptions {
  cost?: Argon2Cost;
  /** argon2 computations at once (each holds a libuv thread and `memoryCost` KiB). */
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
  const limit = createConcurrencyLimit(options.maxConcurrent ?? 2, options.maxQueued ?? 64);
  const argonOptions = { type: argon2.argon2id, ...cost } as const;
  let dummy: Promise<string> | undefined;
  const dummyHash = () => (dummy ??= argon2.hash('custos-dummy-password', argonOptions));

  return {
    cost,
    async hash(password) {
      const hashed = await limit.run(() => argon2.hash(password, argonOptions));
      if (hashed === undefined) throw new Error('busy');
      return hashed;
    },
    async verify(hash, password) {
      const target = hash?.startsWith('$argon2id$') ? hash : await dummyHash();
      const ok = await limit.run(async () => {
        try {
          return await argon2.verify(target, password);
        } catch {
          return false;
        }
      });
      if (ok === undefined) return 'busy';
      return ok && target === hash ? 'ok' : 'wrong';
    },
  };
}
