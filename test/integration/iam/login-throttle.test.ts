import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../../src/db/database.js';
import { addressKey, createLoginThrottle, purgeExpiredThrottle, type LoginAttempt, type LoginThrottle } from '../../../src/iam/login-throttle.repository.js';
import { createMigratedDatabase } from '../../helpers/database.js';

let db: Kysely<Database>;
let close: (() => Promise<void>) | undefined;

beforeAll(async () => {
  ({ db, close } = await createMigratedDatabase());
});
afterAll(() => close?.());

const options = { maxFailuresPerAccount: 3, maxFailuresPerAddress: 5, windowSeconds: 60, lockSeconds: 30, delayMs: 100 };

/** A reserved attempt (it must not be refused). */
async function attempt(throttle: LoginThrottle, username: string, address: string | undefined): Promise<LoginAttempt> {
  const reserved = await throttle.reserve(username, address);
  if (reserved.locked) throw new Error(`refused: ${JSON.stringify(reserved)}`);
  return reserved;
}

/** A reserved attempt that failed. */
async function failure(throttle: LoginThrottle, username: string, address: string | undefined) {
  return throttle.recordFailure(await attempt(throttle, username, address));
}

describe('login throttle (PostgreSQL)', () => {
  it('counts per account case-insensitively, grows the delay, then locks', async () => {
    const throttle = createLoginThrottle(db, options);
    const a = await failure(throttle, 'Mallory', '10.0.0.1');
    const b = await failure(throttle, 'mallory', '10.0.0.2');
    expect([a.delayMs, b.delayMs]).toEqual([100, 200]);
    expect(await throttle.check('MALLORY', '10.0.0.3')).toEqual({ locked: false });
    const c = await failure(throttle, 'mallory', '10.0.0.3');
    expect(c.locked).toMatchObject({ locked: true, retryAfterSeconds: 30 });
    const state = await throttle.check('mallory', '10.0.0.9');
    expect(state.locked).toBe(true);
    // Refused from now on, whatever the password: nothing more is reserved.
    expect(await throttle.reserve('MALLORY', '10.0.0.9')).toMatchObject({ locked: true, key: expect.stringMatching(/^account:/) });
    // Held in the database: a second instance (another throttle over the same table) sees it.
    expect((await createLoginThrottle(db, options).check('mallory', undefined)).locked).toBe(true);
    expect((await createLoginThrottle(db, options).reserve('mallory', undefined)).locked).toBe(true);
    const rows = await db.selectFrom('login_throttle').select('key').execute();
    expect(rows.every((row) => !row.key.toLowerCase().includes('mallory'))).toBe(true);
  });

  it('reserves at most the maximum under concurrency, across throttle instances, and locks the rest out', async () => {
    const throttles = [createLoginThrottle(db, options), createLoginThrottle(db, options)];
    for (const round of [1, 2, 3]) {
      const reserved = await Promise.all(Array.from({ length: 34 }, (_, i) => throttles[i % 2]!.reserve(`burst-${round}`, `198.51.100.${70 + round}`)));
      const granted = reserved.filter((r): r is LoginAttempt => !r.locked);
      expect(granted).toHaveLength(options.maxFailuresPerAccount);
      expect(granted.map((r) => r.accountAttempts).sort()).toEqual([1, 2, 3]);
      const outcomes = granted.map((r) => throttles[0]!.recordFailure(r));
      expect(outcomes.filter((o) => o.locked.locked)).toHaveLength(1);
      expect(reserved.filter((r) => r.locked).every((r) => r.locked && r.retryAfterSeconds > 0)).toBe(true);
      expect((await throttles[1]!.reserve(`burst-${round}`, '198.51.100.80')).locked).toBe(true);
    }
  });

  it('an address at its maximum under concurrency refuses the rest, and leaves no count on their accounts', async () => {
    const throttle = createLoginThrottle(db, { ...options, maxFailuresPerAccount: 10 });
    const usernames = Array.from({ length: 34 }, (_, i) => `spray-${i}`);
    const reserved = await Promise.all(usernames.map((username) => throttle.reserve(username, '192.0.2.99')));
    expect(reserved.filter((r) => !r.locked)).toHaveLength(options.maxFailuresPerAddress);
    expect(reserved.filter((r) => r.locked).every((r) => r.locked && r.key === 'address:192.0.2.99')).toBe(true);
    // Without an address: an account whose attempt was refused counts nothing from it.
    const next = await Promise.all(usernames.map((username) => attempt(throttle, username, undefined)));
    expect(next.map((r) => r.accountAttempts)).toEqual(reserved.map((r) => (r.locked ? 1 : 2)));
  });

  it('locks a client address that fails across many accounts; a success clears only the account', async () => {
    const throttle = createLoginThrottle(db, options);
    for (let i = 0; i < 4; i++) await failure(throttle, `user${i}`, '::ffff:192.0.2.7');
    expect(await throttle.check('someone-else', '192.0.2.7')).toEqual({ locked: false });
    const fifth = await failure(throttle, 'user4', '192.0.2.7');
    expect(fifth.locked.locked).toBe(true);
    expect((await throttle.check('someone-else', '192.0.2.7')).locked).toBe(true);
    expect(await throttle.reserve('someone-else', '192.0.2.7')).toMatchObject({ locked: true, key: 'address:192.0.2.7' });
    expect(await throttle.check('someone-else', '192.0.2.8')).toEqual({ locked: false });
    // A refused attempt counted nothing against the account.
    expect((await failure(throttle, 'someone-else', '192.0.2.8')).failures).toBe(1);

    await failure(throttle, 'walter', '198.51.100.1');
    await throttle.recordSuccess(await attempt(throttle, 'walter', '198.51.100.1'));
    expect((await failure(throttle, 'walter', '198.51.100.1')).failures).toBe(1);
  });

  it('a success clears the account and gives the address its reservation back; an overload releases both', async () => {
    const throttle = createLoginThrottle(db, options);
    const points = async (key: string) => (await db.selectFrom('login_throttle').select('points').where('key', '=', key).executeTakeFirst())?.points;
    await failure(throttle, 'sally', '198.51.100.9');
    await failure(throttle, 'sally', '198.51.100.9');
    expect(await points('address:198.51.100.9')).toBe(2);
    const success = await attempt(throttle, 'Sally', '198.51.100.9');
    expect(success.accountAttempts).toBe(3);
    await throttle.recordSuccess(success);
    expect(await throttle.check('sally', '198.51.100.9')).toEqual({ locked: false });
    expect(await points('address:198.51.100.9')).toBe(2);
    expect((await failure(throttle, 'sally', '198.51.100.9')).failures).toBe(1);

    // Not checked after all (argon2 overloaded): both counts are given back.
    const unchecked = await attempt(throttle, 'sally', '198.51.100.9');
    expect(unchecked.accountAttempts).toBe(2);
    await throttle.release(unchecked);
    expect((await failure(throttle, 'sally', '198.51.100.9')).failures).toBe(2);
    expect(await points('address:198.51.100.9')).toBe(4);
  });

  it('counts an IPv6 client by its /64, so rotating addresses inside it gains nothing', async () => {
    expect(addressKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:0DB8:0001:0002:ffff:1:2:3')).toBe('2001:db8:1:2::/64');
    expect(addressKey('::1')).toBe('0:0:0:0::/64');
    expect(addressKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(addressKey('::ffff:192.0.2.1')).toBe('192.0.2.1');
    expect(addressKey('192.0.2.1')).toBe('192.0.2.1');

    const throttle = createLoginThrottle(db, options);
    for (let i = 0; i < 5; i++) await failure(throttle, `v6user${i}`, `2001:db8:77:1::${(i + 1).toString(16)}`);
    expect((await throttle.check('fresh', '2001:db8:77:1:ffff:ffff:ffff:ffff')).locked).toBe(true);
    expect((await throttle.check('fresh', '2001:db8:77:2::1')).locked).toBe(false);
    const keys = (await db.selectFrom('login_throttle').select('key').execute()).map((row) => row.key);
    expect(keys.filter((key) => key.startsWith('address:2001:db8:77:'))).toEqual(['address:2001:db8:77:1::/64']);
  });

  it('notices a lock once per locked key and lock period', async () => {
    const throttle = createLoginThrottle(db, options);
    for (let i = 0; i < 3; i++) await failure(throttle, 'lockedonce', '203.0.113.50');
    const state = await throttle.check('lockedonce', '203.0.113.51');
    expect(state.locked).toBe(true);
    expect(await throttle.firstLockedAttempt(state)).toBe(true);
    expect(await throttle.firstLockedAttempt(await throttle.check('LockedOnce', '203.0.113.52'))).toBe(false);
    expect(await createLoginThrottle(db, options).firstLockedAttempt(state)).toBe(false);
    expect(await throttle.firstLockedAttempt({ locked: false })).toBe(false);
  });

  it('the purge deletes expired counters and locks, and keeps live ones', async () => {
    const throttle = createLoginThrottle(db, { ...options, windowSeconds: 1, lockSeconds: 1 });
    await failure(throttle, 'short-lived', '198.51.100.200');
    const live = createLoginThrottle(db, options);
    await failure(live, 'long-lived', undefined);
    const before = await db.selectFrom('login_throttle').select('key').execute();
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const removed = await purgeExpiredThrottle(db);
    expect(removed).toBeGreaterThanOrEqual(2);
    const after = (await db.selectFrom('login_throttle').select(['key', 'expire']).execute());
    expect(after.length).toBe(before.length - removed);
    expect(after.every((row) => row.expire === null || Number(row.expire) >= Date.now() - 1000)).toBe(true);
    expect((await live.check('long-lived', undefined)).locked).toBe(false);
    expect((await failure(live, 'long-lived', undefined)).failures).toBe(2);
  });
});
