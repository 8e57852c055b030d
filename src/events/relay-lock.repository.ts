import type pg from 'pg';
import { OUTBOX_CHANNEL } from './outbox.repository.js';

/** Session-level advisory lock key held by the one active relay ("custos" in ASCII). */
export const RELAY_LOCK_KEY = 0x637573746f73n;

/**
 * The relay's session-scoped SQL. It runs on one dedicated connection (a `pg.Client`, not the
 * pool): a session advisory lock and LISTEN belong to the connection that took them.
 */

/**
 * Takes the relay lock (or another outbox reader's: the SSF push deliverer passes its own `key`)
 * if no other session holds it (`pg_try_advisory_lock`); true when taken.
 */
export async function tryRelayLock(client: pg.Client, key: bigint = RELAY_LOCK_KEY): Promise<boolean> {
  const { rows } = await client.query<{ locked: boolean }>('select pg_try_advisory_lock($1) as locked', [key.toString()]);
  return rows[0]?.locked === true;
}

/** Subscribes the connection to the outbox's NOTIFY channel (`recordEvent` notifies at commit). */
export async function listenForOutbox(client: pg.Client): Promise<void> {
  await client.query(`listen ${OUTBOX_CHANNEL}`);
}

/** Releases the relay lock (or `key`) held by this connection. */
export async function releaseRelayLock(client: pg.Client, key: bigint = RELAY_LOCK_KEY): Promise<void> {
  await client.query('select pg_advisory_unlock($1)', [key.toString()]);
}
