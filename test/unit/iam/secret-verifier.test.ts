import { describe, expect, it } from 'vitest';
import { hashSecret } from '../../../src/iam/secret-hash.js';
import { createSecretVerifier, SecretVerifierBusy } from '../../../src/iam/secret-verifier.js';

describe('createSecretVerifier', () => {
  it('verifies argon2id hashes and refuses wrong secrets and non-argon2id hashes', async () => {
    const hash = await hashSecret('correct horse battery staple');
    const verifier = createSecretVerifier();
    expect(await verifier.verify(hash, 'correct horse battery staple')).toBe(true);
    expect(await verifier.verify(hash, 'correct horse battery stapl')).toBe(false);
    expect(await verifier.verify('plaintext-secret', 'plaintext-secret')).toBe(false);
    expect(await verifier.verify('$argon2i$v=19$m=16,t=2,p=1$c2FsdHNhbHQ$abc', 'x')).toBe(false);
  });

  it('remembers a correct secret, never a wrong one', async () => {
    const hash = await hashSecret('s3cret-value-for-cache');
    const verifier = createSecretVerifier({ cacheTtlMs: 60_000 });
    expect(await verifier.verify(hash, 's3cret-value-for-cache')).toBe(true);
    // The cached answer needs no argon2 slot: it succeeds even with the pool and queue full.
    const busy = createSecretVerifier({ maxConcurrent: 1, maxQueued: 0, cacheTtlMs: 60_000 });
    expect(await busy.verify(hash, 's3cret-value-for-cache')).toBe(true);
    const pending = Array.from({ length: 3 }, (_, i) => busy.verify(hash, `wrong-${i}`).catch((error: unknown) => error));
    expect(await busy.verify(hash, 's3cret-value-for-cache')).toBe(true);
    const [first, ...rest] = await Promise.all(pending);
    expect(first).toBe(false);
    expect(rest.every((result) => result instanceof SecretVerifierBusy)).toBe(true);
  });

  it('bounds concurrent work: beyond the queue, attempts fail at once', async () => {
    const hash = await hashSecret('another-secret-value');
    const verifier = createSecretVerifier({ maxConcurrent: 1, maxQueued: 1 });
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => verifier.verify(hash, `guess-${i}`).catch((error: unknown) => error)));
    // One runs, one waits, four are refused immediately as overload (not as a wrong secret).
    expect(results.filter((result) => result === false).length).toBe(2);
    expect(results.filter((result) => result instanceof SecretVerifierBusy).length).toBe(4);
    expect(await verifier.verify(hash, 'another-secret-value')).toBe(true);
  });

  it('concurrent requests with the same secret share one verification, right or wrong', async () => {
    const hash = await hashSecret('shared-secret-value');
    const outcomes: string[] = [];
    const verifier = createSecretVerifier({ maxConcurrent: 1, maxQueued: 0, onVerification: (outcome) => outcomes.push(outcome) });
    const right = await Promise.all(Array.from({ length: 8 }, () => verifier.verify(hash, 'shared-secret-value')));
    expect(right).toEqual(Array(8).fill(true));
    expect(outcomes).toEqual(['match']);
    const wrong = await Promise.all(Array.from({ length: 8 }, () => verifier.verify(hash, 'not-the-secret')));
    expect(wrong).toEqual(Array(8).fill(false));
    expect(outcomes).toEqual(['match', 'mismatch']);
    // Once settled, a wrong secret is verified again (never remembered).
    expect(await verifier.verify(hash, 'not-the-secret')).toBe(false);
    expect(outcomes).toEqual(['match', 'mismatch', 'mismatch']);
  });

  it('overload of the unknown-client path throws too, after spending no work', async () => {
    const verifier = createSecretVerifier({ maxConcurrent: 1, maxQueued: 0 });
    const results = await Promise.all(Array.from({ length: 3 }, () => verifier.verifyUnknown('some-secret').catch((error: unknown) => error)));
    expect(results[0]).toBe(false);
    expect(results.slice(1).every((result) => result instanceof SecretVerifierBusy)).toBe(true);
  });
});
