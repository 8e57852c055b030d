import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../../src/db/database.js';
import { addressKey, createLoginThrottle, purgeExpiredThrottle } from '../../../src/iam/login-throttle.repository.js';
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
    expect(await throttle.check('MALLORY', '10.0.0.3')).toEqual({ locked: false, accountCounted: true });
    const c = await throttle.recordFailure('mallory', '10.0.0.3');
    expect(c.locked).toMatchObject({ locked: true, retryAfterSeconds: 30 });
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

  it('a success clears the count its check saw, and writes nothing when that check saw none', async () => {
    const throttle = createLoginThrottle(db, options);
    await throttle.recordFailure('sally', '198.51.100.9');
    const seen = await throttle.check('Sally', '198.51.100.9');
    expect(seen).toEqual({ locked: false, accountCounted: true });
    await throttle.recordSuccess('sally', seen);
    const clean = await throttle.check('sally', '198.51.100.9');
    expect(clean).toEqual({ locked: false });
    // A failure counted after that check (a concurrent attempt) is not cleared by this success.
    await throttle.recordFailure('sally', '198.51.100.9');
    await throttle.recordSuccess('sally', clean);
    expect((await throttle.recordFailure('sally', '198.51.100.9')).failures).toBe(2);
    // Without a check's state, a success always clears.
    await throttle.recordSuccess('sally');
    expect((await throttle.recordFailure('sally', '198.51.100.9')).failures).toBe(1);
  });

  it('counts an IPv6 client by its /64, so rotating addresses inside it gains nothing', async () => {
    expect(addressKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:0DB8:0001:0002:ffff:1:2:3')).toBe('2001:db8:1:2::/64');
    expect(addressKey('::1')).toBe('0:0:0:0::/64');
    expect(addressKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(addressKey('::ffff:192.0.2.1')).toBe('192.0.2.1');
    expect(addressKey('192.0.2.1')).toBe('192.0.2.1');

    const throttle = createLoginThrottle(db, options);
    for (let i = 0; i < 5; i++) await throttle.recordFailure(`v6user${i}`, `2001:db8:77:1::${(i + 1).toString(16)}`);
    expect((await throttle.check('fresh', '2001:db8:77:1:ffff:ffff:ffff:ffff')).locked).toBe(true);
    expect((await throttle.check('fresh', '2001:db8:77:2::1')).locked).toBe(false);
    const keys = (await db.selectFrom('login_throttle').select('key').execute()).map((row) => row.key);
    expect(keys.filter((key) => key.startsWith('address:2001:db8:77:'))).toEqual(['address:2001:db8:77:1::/64']);
  });

  it('notices a lock once per locked key and lock period', async () => {
    const throttle = createLoginThrottle(db, options);
    for (let i = 0; i < 3; i++) await throttle.recordFailure('lockedonce', '203.0.113.50');
    const state = await throttle.check('lockedonce', '203.0.113.51');
    expect(state.locked).toBe(true);
    expect(await throttle.firstLockedAttempt(state)).toBe(true);
    expect(await throttle.firstLockedAttempt(await throttle.check('LockedOnce', '203.0.113.52'))).toBe(false);
    expect(await createLoginThrottle(db, options).firstLockedAttempt(state)).toBe(false);
    expect(await throttle.firstLockedAttempt({ locked: false })).toBe(false);
  });

  it('the purge deletes expired counters and locks, and keeps live ones', async () => {
    const throttle = createLoginThrottle(db, { ...options, windowSeconds: 1, lockSeconds: 1 });
    await throttle.recordFailure('short-lived', '198.51.100.200');
    const live = createLoginThrottle(db, options);
    await live.recordFailure('long-lived', undefined);
    const before = await db.selectFrom('login_throttle').select('key').execute();
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const removed = await purgeExpiredThrottle(db);
    expect(removed).toBeGreaterThanOrEqual(2);
    const after = (await db.selectFrom('login_throttle').select(['key', 'expire']).execute());
    expect(after.length).toBe(before.length - removed);
    expect(after.every((row) => row.expire === null || Number(row.expire) >= Date.now() - 1000)).toBe(true);
    expect((await live.check('long-lived', undefined)).locked).toBe(false);
    expect((await live.recordFailure('long-lived', undefined)).failures).toBe(2);
  });
});
