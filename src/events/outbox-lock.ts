import pg from 'pg';
import { listenForOutbox, releaseRelayLock, tryRelayLock } from './relay-lock.repository.js';

/** Options of {@link createOutboxLock}. */
export interface OutboxLockOptions {
  /** For the lock's own connection, apart from the pool (a session lock and LISTEN belong to their connection). */
  databaseUrl: string;
  /** The advisory lock key (the relay's, the SSF push deliverer's). */
  key: bigint;
  /** `application_name` of the connection, as `pg_stat_activity` shows it. */
  applicationName: string;
  /** A NOTIFY on the outbox channel arrived (an event committed, a stream changed). */
  onNotification: () => void;
  /** The connection holding the lock ended (its server went away, or it was killed): the lock is gone. */
  onLost: () => void;
  /** The database could not be reached while trying to take the lock. */
  onUnreachable: (error: unknown) => void;
}

/** The lock of the one active outbox reader: see {@link createOutboxLock}. */
export interface OutboxLock {
  /** Whether this process holds the lock now. */
  readonly held: boolean;
  /** Tries to take the lock on a fresh connection that then LISTENs on the outbox channel; whether held. */
  acquire(): Promise<boolean>;
  /** Releases the lock and closes its connection (no `onLost`). */
  release(): Promise<void>;
}

/**
 * One active instance of an outbox reader across every Custos process (the event relay, the SSF
 * push deliverer): whoever's dedicated PostgreSQL connection holds the session advisory lock `key`
 * (`pg_try_advisory_lock`) works; the others try again later. The lock is freed when that
 * connection ends, so a dead holder's work is taken over by the next instance that tries. The same
 * connection LISTENs on the outbox channel, so a commit wakes the holder at once.
 */
export function createOutboxLock(options: OutboxLockOptions): OutboxLock {
  let current: pg.Client | undefined;
  return {
    get held() {
      return current !== undefined;
    },
    async acquire() {
      if (current) return true;
      const client = new pg.Client({ connectionString: options.databaseUrl, application_name: options.applicationName });
      client.on('error', () => {});
      try {
        await client.connect();
        if (!(await tryRelayLock(client, options.key))) {
          await client.end().catch(() => {});
          return false;
        }
        client.on('notification', options.onNotification);
        client.on('end', () => {
          if (current === client) {
            current = undefined;
            options.onLost();
          }
        });
        await listenForOutbox(client);
        current = client;
        return true;
      } catch (error) {
        await client.end().catch(() => {});
        options.onUnreachable(error);
        return false;
      }
    },
    async release() {
      const client = current;
      current = undefined;
      if (!client) return;
      await releaseRelayLock(client, options.key).catch(() => {});
      await client.end().catch(() => {});
    },
  };
}
