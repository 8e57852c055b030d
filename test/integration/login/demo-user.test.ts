import { afterAll, describe, expect, it } from 'vitest';
import { createPasswordHasher } from '../../../src/iam/password-hasher.js';
import { countUsers, findLoginCandidate } from '../../../src/iam/user.repository.js';
import { startTestApp, type TestApp } from '../../helpers/app.js';

const apps: TestApp[] = [];
afterAll(async () => {
  for (const app of apps) await app.stop();
});

describe('the demo user', () => {
  it('development with the demo config: alice is created once, with a random password and orders-reader', async () => {
    const app = await startTestApp({ env: { NODE_ENV: 'development' } });
    apps.push(app);
    const demo = app.custos.demoUser!;
    expect(demo.username).toBe('alice');
    expect(demo.password.length).toBeGreaterThanOrEqual(16);
    const alice = await findLoginCandidate(app.custos.db, 'alice');
    expect(alice?.roles).toEqual(['orders-reader']);
    expect(await createPasswordHasher().verify(alice!.passwordHash, demo.password)).toBe('ok');
    // The client file applied at start is audited too (actor `config`, src/clients/config-seed.ts).
    const audit = await app.custos.db.selectFrom('audit_log').select(['actor', 'action']).where('actor', '!=', 'config').orderBy('id').execute();
    expect(audit).toEqual([
      { actor: 'system', action: 'role.create' },
      { actor: 'system', action: 'user.create' },
    ]);

    await app.restart();
    expect(app.custos.demoUser).toBeUndefined();
    expect(await countUsers(app.custos.db)).toBe(1);
  });

  it('is never created outside development (tests, production)', async () => {
    const app = await startTestApp();
    apps.push(app);
    expect(app.custos.demoUser).toBeUndefined();
    expect(await countUsers(app.custos.db)).toBe(0);
  });
});
