import { describe, expect, it } from 'vitest';
import { createPasswordHasher } from '../../../src/iam/password-hasher.js';

const cheap = { memoryCost: 1024, timeCost: 1, parallelism: 1 };

describe('password hasher', () => {
  it('hashes with argon2id at the configured cost and verifies', async () => {
    const hasher = createPasswordHasher({ cost: cheap });
    const hash = await hasher.hash('correct horse battery staple');
    expect(hash).toMatch(/^\$argon2id\$v=19\$m=1024,t=1,p=1\$/);
    expect(await hasher.verify(hash, 'correct horse battery staple')).toBe('ok');
    expect(await hasher.verify(hash, 'wrong')).toBe('wrong');
  });

  it('an unknown user (null hash) or a foreign hash format is wrong, after a dummy verification', async () => {
    const hasher = createPasswordHasher({ cost: cheap });
    expect(await hasher.verify(null, 'custos-dummy-password')).toBe('wrong');
    expect(await hasher.verify('$2b$10$notargon', 'x')).toBe('wrong');
  });

  it('answers busy instead of queueing without bound', async () => {
    const hasher = createPasswordHasher({ cost: { memoryCost: 8192, timeCost: 3, parallelism: 1 }, maxConcurrent: 1, maxQueued: 1 });
    const hash = await hasher.hash('pw');
    const results = await Promise.all(Array.from({ length: 5 }, () => hasher.verify(hash, 'pw')));
    expect(results.filter((r) => r === 'busy').length).toBeGreaterThanOrEqual(3);
    expect(results.filter((r) => r === 'ok').length).toBeGreaterThanOrEqual(1);
  });
});
