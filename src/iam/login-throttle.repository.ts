import { createHash } from 'node:crypto';
import { isIPv6 } from 'node:net';
import { CompiledQuery, type Kysely } from 'kysely';
import { RateLimiterPostgres } from 'rate-limiter-flexible';
import type { Database, DbExecutor } from '../db/database.js';

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

/**
 * `key` names the locked counter (`account:<digest>` or `address:<address key>`); `accountCounted`:
 * the account has failures within the window (what a later success has to clear).
 */
export type ThrottleState = { locked: false; accountCounted?: true } | { locked: true; retryAfterSeconds: number; key: string };

export interface FailureOutcome {
  /** How long to hold the failed answer back (growing with the account's failures). */
  delayMs: number;
  /** Failures of the account (or address) within the window, after this one. */
  failures: number;
  /** This failure locked the account or the address. */
  locked: ThrottleState;
}

/**
 * Failed-login counters per account and per client address, held in PostgreSQL
 * (`login_throttle`, through rate-limiter-flexible's PostgreSQL store) so every instance sees
 * the same counts. Usernames are counted whether they exist or not, and case-insensitively, so a
 * lock says nothing about which accounts exist.
 */
export interface LoginThrottle {
  /** Whether the account or the address is locked now (one read of both counters). */
  check(username: string, address: string | undefined): Promise<ThrottleState>;
  recordFailure(username: string, address: string | undefined): Promise<FailureOutcome>;
  /**
   * A successful login clears the account's counter (not the address's). Given the state `check`
   * saw before the attempt, it writes nothing when the account had no failures to clear.
   */
  recordSuccess(username: string, seen?: ThrottleState): Promise<void>;
  /**
   * Whether this is the first attempt seen against the lock `check` just reported (per locked key
   * and lock period, across instances), so a locked key is audited once, not on every request.
   */
  firstLockedAttempt(state: ThrottleState): Promise<boolean>;
}

export const MAX_DELAY_MS = 4000;
const TABLE = 'login_throttle';

/**
 * The store client rate-limiter-flexible queries: its SQL goes through the application's own
 * kysely pool (one pool, one place that owns connections).
 */
function kyselyStoreClient(db: Kysely<Database>) {
  return {
    async query(query: { text: string; values?: unknown[] }) {
      const result = await db.executeQuery(CompiledQuery.raw(query.text, query.values ?? []));
      const affected = result.numAffectedRows === undefined ? result.rows.length : Number(result.numAffectedRows);
      return { rows: result.rows, rowCount: Math.max(affected, result.rows.length) };
    },
  };
}

/** Account key: a digest of the case-folded username (bounded length, no NUL reaches SQL). */
function accountKey(username: string): string {
  return createHash('sha256').update(username.normalize('NFKC').toLowerCase()).digest('base64url');
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

/** A live counter row of rate-limiter-flexible's store (`points` consumed, `expire` in epoch ms). */
type CounterRow = { points: number; expire: string | null };

function lockState(row: CounterRow | undefined, max: number, key: string): ThrottleState {
  if (!row || row.points <= max) return { locked: false };
  const msBeforeNext = row.expire === null ? -1 : Math.max(Number(row.expire) - Date.now(), 0);
  return { locked: true, retryAfterSeconds: Math.max(1, Math.ceil(msBeforeNext / 1000)), key };
}

export function createLoginThrottle(db: Kysely<Database>, options: LoginThrottleOptions): LoginThrottle {
  const storeClient = kyselyStoreClient(db);
  const common = { storeClient, storeType: 'pool', tableName: TABLE, tableCreated: true, clearExpiredByTimeout: false, duration: options.windowSeconds };
  // `points` is the number of failures tolerated; the failure that reaches it blocks the key.
  const accounts = new RateLimiterPostgres({ ...common, keyPrefix: 'account', points: options.maxFailuresPerAccount });
  const addresses = new RateLimiterPostgres({ ...common, keyPrefix: 'address', points: options.maxFailuresPerAddress });
  // One point per locked key and lock period: the first attempt against a lock consumes it.
  const lockNotices = new RateLimiterPostgres({ ...common, keyPrefix: 'locked', points: 1, duration: options.lockSeconds });

  async function failure(limiter: RateLimiterPostgres, key: string, max: number): Promise<{ failures: number; locked: ThrottleState }> {
    const res = await limiter.penalty(key, 1);
    if (res.consumedPoints < max) return { failures: res.consumedPoints, locked: { locked: false } };
    await limiter.block(key, options.lockSeconds);
    return { failures: res.consumedPoints, locked: { locked: true, retryAfterSeconds: options.lockSeconds, key: `${limiter.keyPrefix}:${key}` } };
  }

  return {
    async check(username, address) {
      const ip = addressKey(address);
      const accountId = accounts.getKey(accountKey(username));
      const addressId = ip ? addresses.getKey(ip) : undefined;
      // Both counters in one round trip, read as the limiters' own `get` reads them (live rows only).
      const rows = await db
        .selectFrom(TABLE)
        .select(['key', 'points', 'expire'])
        .where('key', 'in', addressId ? [accountId, addressId] : [accountId])
        .where((eb) => eb.or([eb('expire', '>', String(Date.now())), eb('expire', 'is', null)]))
        .execute();
      const account = rows.find((row) => row.key === accountId);
      const byAccount = lockState(account, options.maxFailuresPerAccount, accountId);
      const byAddress = lockState(rows.find((row) => row.key === addressId), options.maxFailuresPerAddress, addressId!);
      if (byAccount.locked && byAddress.locked) {
        return { ...byAccount, retryAfterSeconds: Math.max(byAccount.retryAfterSeconds, byAddress.retryAfterSeconds) };
      }
      if (byAccount.locked || byAddress.locked) return byAccount.locked ? byAccount : byAddress;
      return account && account.points > 0 ? { locked: false, accountCounted: true } : { locked: false };
    },
    async recordFailure(username, address) {
      const ip = addressKey(address);
      const [account, client] = await Promise.all([
        failure(accounts, accountKey(username), options.maxFailuresPerAccount),
        ip ? failure(addresses, ip, options.maxFailuresPerAddress) : Promise.resolve(undefined),
      ]);
      const locked = account.locked.locked ? account.locked : (client?.locked ?? { locked: false as const });
      const delayMs = options.delayMs === 0 ? 0 : Math.min(MAX_DELAY_MS, options.delayMs * 2 ** Math.min(10, account.failures - 1));
      return { delayMs, failures: account.failures, locked };
    },
    async recordSuccess(username, seen) {
      if (seen && !seen.locked && !seen.accountCounted) return;
      await accounts.delete(accountKey(username));
    },
    async firstLockedAttempt(state) {
      if (!state.locked) return false;
      try {
        await lockNotices.consume(state.key, 1);
        return true;
      } catch (error) {
        if (error instanceof Error) throw error;
        return false; // rejected: this lock period was already noticed
      }
    },
  };
}

/** Deletes expired counters and locks (rate-limiter-flexible's `expire`, epoch ms); returns how many were removed. */
export async function purgeExpiredThrottle(db: DbExecutor, limit = 5000): Promise<number> {
  const result = await db
    .deleteFrom(TABLE)
    .where('key', 'in', (eb) => eb.selectFrom(TABLE).select('key').where('expire', '<', String(Date.now())).limit(limit))
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}
