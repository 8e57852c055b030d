import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../../src/db/database.js';
import { createLoginThrottle } from '../../../src/iam/login-throttle.repository.js';
import { createMigratedDatabase } from '../../helpers/database.js';

let db: Kysely<Database>;
let close: (() => Promise<void>) | undefined;

beforeAll(async () => {
  ({ db, close } = await createMigratedDatabase());
});
afterAll(() => close?.());

const options = { maxFailuresPerAccount: 3, maxFailuresPerAddress: 5, windowSeconds: 60, lockSeconds: 30, delayMs: 100 };

describe('login throttle (PostgreSQL)', () => {
  it('counts per account case-insensitively, grows the delay, then locks', async () => {
    const throttle = createLoginThrottle(db, options);
    const a = await throttle.recordFailure('Mallory', '10.0.0.1');
    const b = await throttle.recordFailure('mallory', '10.0.0.2');
    expect([a.delayMs, b.delayMs]).toEqual([100, 200]);
    expect(await throttle.check('MALLORY', '10.0.0.3')).toEqual({ locked: false });
    const c = await throttle.recordFailure('mallory', '10.0.0.3');
    expect(c.locked).toEqual({ locked: true, retryAfterSeconds: 30 });
    const state = await throttle.check('mallory', '10.0.0.9');
    expect(state.locked).toBe(true);
    // Held in the database: a second instance (another throttle over the same table) sees it.
    expect((await createLoginThrottle(db, options).check('mallory', undefined)).locked).toBe(true);
    const rows = await db.selectFrom('login_throttle').select('key').execute();
    expect(rows.every((row) => !row.key.toLowerCase().includes('mallory'))).toBe(true);
  });

  it('locks a client address that fails across many accounts; a success clears only the account', async () => {
    const throttle = createLoginThrottle(db, options);
    for (let i = 0; i < 4; i++) await throttle.recordFailure(`user${i}`, '::ffff:192.0.2.7');
    expect(await throttle.check('someone-else', '192.0.2.7')).toEqual({ locked: false });
    const fifth = await throttle.recordFailure('user4', '192.0.2.7');
    expect(fifth.locked.locked).toBe(true);
    expect((await throttle.check('someone-else', '192.0.2.7')).locked).toBe(true);
    expect(await throttle.check('someone-else', '192.0.2.8')).toEqual({ locked: false });

    await throttle.recordFailure('walter', '198.51.100.1');
    await throttle.recordSuccess('walter');
    expect((await throttle.recordFailure('walter', '198.51.100.1')).failures).toBe(1);
  });
});
