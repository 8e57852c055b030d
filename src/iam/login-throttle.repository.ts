import { createHash } from 'node:crypto';
import { isIPv6 } from 'node:net';
import { sql, type Kysely } from 'kysely';
import type { Database, DbExecutor } from '../db/database.js';
import { prepared } from '../db/prepared-statements.js';

/** Brute-force thresholds of the login page (environment `LOGIN_*`). */
export interface LoginThrottleOptions {
  maxFailuresPerAccount: number;
  maxFailuresPerAddress: number;
  /** Failures older than this are forgotten. */
  windowSeconds: number;
  /** How long a key stays locked once it reached its maximum. */
  lockSeconds: number;
  /** First delay of the growing delay (doubles per failure, capped at {@link MAX_DELAY_MS}). */
  delayMs: number;
}

/** A refused attempt: `key` names the locked counter (`account:<digest>` or `address:<address key>`). */
export type Locked = { locked: true; retryAfterSeconds: number; key: string };

export type ThrottleState = { locked: false } | Locked;

/**
 * One password check reserved by {@link LoginThrottle.reserve}: it already counts as a failure of
 * the account and the address; {@link LoginThrottle.recordSuccess} or {@link LoginThrottle.release}
 * gives it back.
 */
export interface LoginAttempt {
  locked: false;
  /** The account's attempts within the window, this one included (at most the account's maximum). */
  accountAttempts: number;
  /** The address's attempts within the window, this one included (none without an address). */
  addressAttempts?: number;
  /** Epoch ms at which the account's counter ends (its lock, when this attempt reached the maximum). */
  accountExpire: number | null;
  addressExpire?: number | null;
  /** The counters' keys, for giving the reservation back. */
  accountKey: string;
  addressKey?: string;
}

export interface FailureOutcome {
  /** How long to hold the failed answer back (growing with the account's failures). */
  delayMs: number;
  /** Failures of the account within the window, this one included. */
  failures: number;
  /** This failure locked the account or the address (it was the one that reached the maximum). */
  locked: ThrottleState;
}

/**
 * Failed-login counters per account and per client address, held in PostgreSQL (`login_throttle`)
 * so every instance sees the same counts. Every password check is reserved first, in one atomic
 * statement that counts it against both the account and the address, or refuses it when either has
 * reached its maximum: a burst of any size, on any number of instances, gets at most the maximum
 * number of password checks per account (and per address) until the lock expires. Usernames are
 * counted whether they exist or not, and case-insensitively, so a lock says nothing about which
 * accounts exist.
 */
export interface LoginThrottle {
  /** Whether the account or the address is locked now (one read of both counters; writes nothing). */
  check(username: string, address: string | undefined): Promise<ThrottleState>;
  /**
   * Reserves one password check: counts it against the account and the address (one statement),
   * or refuses it when either is locked (at its maximum). The attempt that reaches the maximum
   * sets the lock: further attempts are refused until it expires, whatever their password.
   */
  reserve(username: string, address: string | undefined): Promise<LoginAttempt | Locked>;
  /** The reserved attempt failed: its reservation stays as the failure (nothing to write). */
  recordFailure(attempt: LoginAttempt): FailureOutcome;
  /** A successful login clears the account's counter and gives the address's reservation back. */
  recordSuccess(attempt: LoginAttempt): Promise<void>;
  /** No password was checked after all (overload): gives both reservations back. */
  release(attempt: LoginAttempt): Promise<void>;
  /**
   * Whether this is the first attempt seen against the lock just reported (per locked key and lock
   * period, across instances), so a locked key is audited once, not on every request.
   */
  firstLockedAttempt(state: ThrottleState): Promise<boolean>;
}

export const MAX_DELAY_MS = 4000;
const TABLE = 'login_throttle';

/** Account key: a digest of the case-folded username (bounded length, no NUL reaches SQL). */
function accountKey(username: string): string {
  return `account:${createHash('sha256').update(username.normalize('NFKC').toLowerCase()).digest('base64url')}`;
}

/**
 * Address key: IPv4-mapped IPv6 addresses count as their IPv4 address, and an IPv6 address as its
 * /64 (one subscriber usually holds a whole /64, so counting single addresses would let one client
 * rotate through 2^64 of them, each with a fresh counter).
 */
export function addressKey(address: string | undefined): string | undefined {
  if (!address) return undefined;
  if (address.startsWith('::ffff:') && address.includes('.')) return address.slice(7);
  if (!isIPv6(address)) return address.slice(0, 64);
  return `${ipv6Groups(address).slice(0, 4).join(':')}::/64`;
}

/** The eight 16-bit groups of an IPv6 address (canonical hex; the WHATWG URL parser normalizes). */
function ipv6Groups(address: string): string[] {
  const withoutZone = address.split('%')[0]!;
  const canonical = new URL(`http://[${withoutZone}]`).hostname.slice(1, -1);
  const [head = '', tail] = canonical.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  return [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
}

const addressCounterKey = (address: string | undefined) => {
  const key = addressKey(address);
  return key === undefined ? undefined : `address:${key}`;
};

/** Seconds until `expire` (epoch ms; `null`: no end), at least 1. */
function secondsUntil(expire: number | null, fallbackSeconds: number, now: number): number {
  return expire === null ? fallbackSeconds : Math.max(1, Math.ceil((expire - now) / 1000));
}

const toMs = (value: string | number | null | undefined) => (value === null || value === undefined ? null : Number(value));

type ReserveRow = {
  account_points: number | null;
  account_expire: string | null;
  address_points: number | null;
  address_expire: string | null;
  account_lock: string | null;
  address_lock: string | null;
};

export function createLoginThrottle(db: Kysely<Database>, options: LoginThrottleOptions): LoginThrottle {
  const windowMs = options.windowSeconds * 1000;
  const lockMs = options.lockSeconds * 1000;
  const maxAccount = options.maxFailuresPerAccount;
  const maxAddress = options.maxFailuresPerAddress;

  /**
   * Gives one reservation back on each key, account first (the order `reserve` locks rows in, so
   * the two never deadlock): the scalar subquery on `account` makes it run before the address's
   * row is touched.
   */
  async function giveBack(account: string, address: string | undefined, clearAccount: boolean): Promise<void> {
    const now = Date.now();
    const accountStep = clearAccount
      ? sql`delete from login_throttle where key = ${account} returning 1 as done`
      : sql`update login_throttle set points = greatest(points - 1, 0) where key = ${account} and (expire is null or expire > ${now}) returning 1 as done`;
    await sql`
      with account as (${accountStep})
      update login_throttle set points = greatest(points - 1, 0)
      where key = ${address ?? null}::varchar and (expire is null or expire > ${now})
        and (select count(*) from account) >= 0`.execute(db);
  }

  return {
    async check(username, address) {
      const accountId = accountKey(username);
      const addressId = addressCounterKey(address);
      const now = Date.now();
      const rows = await db
        .selectFrom(TABLE)
        .select(['key', 'points', 'expire'])
        .where('key', 'in', addressId ? [accountId, addressId] : [accountId])
        .where((eb) => eb.or([eb('expire', '>', String(now)), eb('expire', 'is', null)]))
        .execute();
      const lockOf = (key: string | undefined, max: number): Locked | undefined => {
        const row = rows.find((candidate) => candidate.key === key);
        return row && row.points >= max ? { locked: true, key: key!, retryAfterSeconds: secondsUntil(toMs(row.expire), options.lockSeconds, now) } : undefined;
      };
      const byAccount = lockOf(accountId, maxAccount);
      const byAddress = lockOf(addressId, maxAddress);
      if (byAccount && byAddress) return { ...byAccount, retryAfterSeconds: Math.max(byAccount.retryAfterSeconds, byAddress.retryAfterSeconds) };
      return byAccount ?? byAddress ?? { locked: false };
    },

    async reserve(username, address) {
      const accountId = accountKey(username);
      const addressId = addressCounterKey(address);
      const now = Date.now();
      const windowEnd = now + windowMs;
      const lockEnd = now + lockMs;
      // One statement. Row locks are taken account first, then address (the address's upsert reads
      // the account's result), so concurrent reservations serialize on each counter: an increment
      // happens only while the counter is below its maximum, so at most `max` attempts are reserved.
      // The one that reaches the maximum moves the counter's end to the lock's end. An address
      // locked before this statement started refuses the attempt without counting the account; an
      // address that reached its maximum meanwhile refuses it after the account was counted, and
      // that count is given back below. The last two columns read both counters as they were when
      // the statement started (for Retry-After).
      const { rows } = await sql<ReserveRow>`${prepared('login-throttle.reserve')}
        with account as (
          insert into login_throttle as t (key, points, expire)
          select ${accountId}::varchar, 1, case when 1 >= ${maxAccount}::int then ${lockEnd}::bigint else ${windowEnd}::bigint end
          where not exists (
            select 1 from login_throttle h
            where h.key = ${addressId ?? null}::varchar and h.points >= ${maxAddress}::int and (h.expire is null or h.expire > ${now}::bigint))
          on conflict (key) do update set
            points = case when t.expire <= ${now}::bigint then 1 else t.points + 1 end,
            expire = case
              when t.expire <= ${now}::bigint then excluded.expire
              when t.points + 1 >= ${maxAccount}::int then ${lockEnd}::bigint
              else t.expire end
          where t.expire <= ${now}::bigint or t.points < ${maxAccount}::int
          returning t.points, t.expire
        ), address as (
          insert into login_throttle as t (key, points, expire)
          select ${addressId ?? null}::varchar, 1, case when 1 >= ${maxAddress}::int then ${lockEnd}::bigint else ${windowEnd}::bigint end
          from account where ${addressId ?? null}::varchar is not null
          on conflict (key) do update set
            points = case when t.expire <= ${now}::bigint then 1 else t.points + 1 end,
            expire = case
              when t.expire <= ${now}::bigint then excluded.expire
              when t.points + 1 >= ${maxAddress}::int then ${lockEnd}::bigint
              else t.expire end
          where t.expire <= ${now}::bigint or t.points < ${maxAddress}::int
          returning t.points, t.expire
        )
        select
          (select points from account) as account_points,
          (select expire from account) as account_expire,
          (select points from address) as address_points,
          (select expire from address) as address_expire,
          (select expire from login_throttle where key = ${accountId}::varchar and points >= ${maxAccount}::int
            and (expire is null or expire > ${now}::bigint)) as account_lock,
          (select expire from login_throttle where key = ${addressId ?? null}::varchar and points >= ${maxAddress}::int
            and (expire is null or expire > ${now}::bigint)) as address_lock`.execute(db);
      const row = rows[0]!;
      const accountGranted = row.account_points !== null;
      const addressGranted = addressId === undefined || row.address_points !== null;
      if (accountGranted && addressGranted) {
        return {
          locked: false,
          accountAttempts: row.account_points!,
          accountExpire: toMs(row.account_expire),
          accountKey: accountId,
          ...(addressId === undefined ? {} : { addressAttempts: row.address_points!, addressExpire: toMs(row.address_expire), addressKey: addressId }),
        };
      }
      // Refused. Counted on the account while the address refused (a concurrent attempt reached
      // the address's maximum): give that count back.
      if (accountGranted) await giveBack(accountId, undefined, false);
      const locks: Locked[] = [];
      const accountLock = toMs(row.account_lock);
      const addressLock = toMs(row.address_lock);
      if (!accountGranted && (accountLock !== null || addressLock === null)) {
        locks.push({ locked: true, key: accountId, retryAfterSeconds: secondsUntil(accountLock, options.lockSeconds, now) });
      }
      if (addressId !== undefined && (addressLock !== null || (accountGranted && !addressGranted))) {
        locks.push({ locked: true, key: addressId, retryAfterSeconds: secondsUntil(addressLock, options.lockSeconds, now) });
      }
      return { ...locks[0]!, retryAfterSeconds: Math.max(...locks.map((lock) => lock.retryAfterSeconds)) };
    },

    recordFailure(attempt) {
      const now = Date.now();
      const failures = attempt.accountAttempts;
      let locked: ThrottleState = { locked: false };
      if (failures >= maxAccount) {
        locked = { locked: true, key: attempt.accountKey, retryAfterSeconds: secondsUntil(attempt.accountExpire, options.lockSeconds, now) };
      } else if (attempt.addressKey !== undefined && attempt.addressAttempts! >= maxAddress) {
        locked = { locked: true, key: attempt.addressKey, retryAfterSeconds: secondsUntil(attempt.addressExpire ?? null, options.lockSeconds, now) };
      }
      const delayMs = options.delayMs === 0 ? 0 : Math.min(MAX_DELAY_MS, options.delayMs * 2 ** Math.min(10, failures - 1));
      return { delayMs, failures, locked };
    },

    recordSuccess(attempt) {
      return giveBack(attempt.accountKey, attempt.addressKey, true);
    },

    release(attempt) {
      return giveBack(attempt.accountKey, attempt.addressKey, false);
    },

    async firstLockedAttempt(state) {
      if (!state.locked) return false;
      const now = Date.now();
      // One notice row per locked key and lock period: only the attempt that (re)starts it gets a row back.
      const { rows } = await sql<{ points: number }>`
        insert into login_throttle as t (key, points, expire) values (${`locked:${state.key}`}, 1, ${now + lockMs})
        on conflict (key) do update set points = 1, expire = excluded.expire
        where t.expire is not null and t.expire <= ${now}
        returning t.points`.execute(db);
      return rows.length > 0;
    },
  };
}

/** Deletes expired counters and locks (`expire`, epoch ms); returns how many were removed. */
export async function purgeExpiredThrottle(db: DbExecutor, limit = 5000): Promise<number> {
  const result = await db
    .deleteFrom(TABLE)
    .where('key', 'in', (eb) => eb.selectFrom(TABLE).select('key').where('expire', '<', String(Date.now())).limit(limit))
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}
