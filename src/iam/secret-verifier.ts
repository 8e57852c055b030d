import { hash as digest, randomBytes } from 'node:crypto';
import { createArgon2Threads, DEFAULT_ARGON2_COST, type Argon2Threads } from './argon2-threads.js';
import { createConcurrencyLimit } from './concurrency-limit.js';

export interface SecretVerifierOptions {
  /** Where argon2 runs (shared with the password hasher in the server); default: own threads. */
  threads?: Argon2Threads;
  /** argon2 verifications running at once (each holds a thread and ~19 MiB). */
  maxConcurrent?: number;
  /** Verifications allowed to wait; beyond that a request fails at once instead of queueing. */
  maxQueued?: number;
  /** How long a successful verification is remembered. */
  cacheTtlMs?: number;
  maxCacheEntries?: number;
  /** Called once per argon2 verification attempt (for metrics). */
  onVerification?: (outcome: 'match' | 'mismatch' | 'overloaded') => void;
}

/** The verifier's queue is full: the caller should answer "try again shortly", not "wrong secret". */
export class SecretVerifierBusy extends Error {
  constructor() {
    super('too many client secret verifications at this moment');
    this.name = 'SecretVerifierBusy';
  }
}

/**
 * argon2id verification that cannot be turned into a denial of service: at most
 * `maxConcurrent` run at once (on argon2 threads, off the event loop), at
 * most `maxQueued` wait, and a correct secret is remembered briefly under a SHA-256 fingerprint
 * with a per-process key, so a legitimate client pays for argon2 once per `cacheTtlMs`, not per token
 * (and concurrent requests with the same secret share one verification).
 * `verifyUnknown` spends the same work, through the same bounds, on a secret presented for a
 * client that has none, so an unknown client answers in the time a wrong secret takes. When the
 * queue is full both throw {@link SecretVerifierBusy} (overload must not look like a wrong secret).
 */
export function createSecretVerifier(options: SecretVerifierOptions = {}) {
  const maxConcurrent = options.maxConcurrent ?? 2;
  const maxQueued = options.maxQueued ?? 32;
  const ttl = options.cacheTtlMs ?? 5 * 60_000;
  const maxEntries = options.maxCacheEntries ?? 10_000;
  const cacheKey = randomBytes(32).toString('base64url');
  const verified = new Map<string, number>();
  const inFlight = new Map<string, Promise<boolean>>();
  const limit = createConcurrencyLimit(maxConcurrent, maxQueued);
  const threads = options.threads ?? createArgon2Threads();
  // A hash of a random value, with the parameters of real ones: nothing ever matches it.
  const nothing = threads.hash(randomBytes(32).toString('base64url'), DEFAULT_ARGON2_COST);
  nothing.catch(() => {});

  async function bounded(hash: string, secret: string): Promise<boolean> {
    const ok = await limit.run(() => threads.verify(hash, secret));
    options.onVerification?.(ok === undefined ? 'overloaded' : ok ? 'match' : 'mismatch');
    if (ok === undefined) throw new SecretVerifierBusy();
    return ok;
  }

  // SHA-256 under a fixed-length per-process key (one call, ~0.4 µs against ~1.5–5 µs for an
  // HMAC object): a lookup key only, never shown, so length extension gives nothing.
  const fingerprint = (hash: string, secret: string) => digest('sha256', `${cacheKey}\0${hash}\0${secret}`, 'base64url');

  return {
    /** Verifies `secret` against an argon2id `hash`; false when wrong; throws {@link SecretVerifierBusy} when overloaded. */
    async verify(hash: string, secret: string): Promise<boolean> {
      const key = fingerprint(hash, secret);
      const until = verified.get(key);
      if (until !== undefined && until > Date.now()) return true;
      // Requests presenting the same secret at the same moment (a client's connections opening
      // together) wait for one verification instead of each taking an argon2 slot.
      let running = inFlight.get(key);
      if (!running) {
        running = bounded(hash, secret).finally(() => inFlight.delete(key));
        inFlight.set(key, running);
      }
      const ok = await running;
      if (ok) {
        verified.delete(key);
        verified.set(key, Date.now() + ttl);
        if (verified.size > maxEntries) verified.delete(verified.keys().next().value!);
      }
      return ok;
    },
    /** Spends one verification on `secret` against a hash nothing matches; false, or throws {@link SecretVerifierBusy}. */
    async verifyUnknown(secret: string): Promise<false> {
      await bounded(await nothing, secret);
      return false;
    },
  };
}

export type SecretVerifier = ReturnType<typeof createSecretVerifier>;
