import { sql, type Kysely } from 'kysely';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Database } from '../../../src/db/database.js';
import type { IamEvent } from '../../../src/events/iam-event.js';
import { assignSequenceIds, recordEvent } from '../../../src/events/outbox.repository.js';
import { createRelay } from '../../../src/events/relay.js';
import { createSetSigner } from '../../../src/events/security-event-token.js';
import { createLogSink } from '../../../src/events/sinks/log-sink.js';
import { generateSigningKey, type SigningJwk } from '../../../src/keys/signing-keys.js';
import { createMigratedDatabase, createTestDatabase } from '../../helpers/database.js';

let database: Awaited<ReturnType<typeof createMigratedDatabase>>;
let other: Awaited<ReturnType<typeof createTestDatabase>>;
let db: Kysely<Database>;
let key: SigningJwk;
const clients: pg.Client[] = [];

const revoked = (userId: string): IamEvent => ({ type: 'session-revoked', userId, sessionIds: [], initiatingEntity: 'admin' });

/** A connection inside an open transaction that holds a transaction id (as any write does). */
async function openWriteTransaction(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  clients.push(client);
  await client.connect();
  await client.query('begin');
  await client.query('select pg_current_xact_id()');
  return client;
}

describe('outbox horizon: which committed events the relay and SSF may take', () => {
  beforeAll(async () => {
    database = await createMigratedDatabase();
    db = database.db;
    other = await createTestDatabase();
    key = await generateSigningKey();
  });

  afterAll(async () => {
    await Promise.all(clients.map((client) => client.end().catch(() => {})));
    await database?.close();
    await other?.drop();
  });

  it("a long write transaction in another database of the same cluster does not hold this outbox's events back", async () => {
    const elsewhere = await openWriteTransaction(other.url);
    const eventId = await db.transaction().execute((trx) => recordEvent(trx, revoked('user-other-db')));
    const rows = await assignSequenceIds(db, 100);
    expect(rows.map((row) => row.eventId)).toEqual([eventId]);
    await elsewhere.query('rollback');
  });

  it('a write transaction of this database that began earlier holds later commits back until it ends, then both go in order', async () => {
    let began!: () => void;
    let release!: () => void;
    const started = new Promise<void>((resolve) => (began = resolve));
    const gate = new Promise<void>((resolve) => (release = resolve));
    const earlier = db.transaction().execute(async (trx) => {
      await sql`select pg_current_xact_id()`.execute(trx);
      began();
      await gate;
      return recordEvent(trx, revoked('user-earlier'));
    });
    await started;
    const later = await db.transaction().execute((trx) => recordEvent(trx, revoked('user-later')));
    expect(await assignSequenceIds(db, 100)).toEqual([]);
    release();
    const first = await earlier;
    const rows = await assignSequenceIds(db, 100);
    expect(rows.map((row) => row.eventId)).toEqual([first, later]);
  });

  it('the relay names the open transaction that holds events back (pid and application, never its query)', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    const holder = new pg.Client({ connectionString: database.url, application_name: 'long-batch-job' });
    clients.push(holder);
    await holder.connect();
    await holder.query('begin');
    await holder.query('select pg_current_xact_id()');
    await db.transaction().execute((trx) => recordEvent(trx, revoked('user-held')));
    const relay = createRelay({
      db,
      databaseUrl: database.url,
      sink: createLogSink(logger),
      sign: createSetSigner(() => key),
      issuer: 'https://custos.test',
      audience: 'urn:custos:iam-events',
      logger,
      pollIntervalMs: 50,
      heldBackWarningSeconds: 0,
    });
    try {
      await vi.waitFor(() => expect(lines.find((line) => String(line['msg']).startsWith('events are held back'))).toBeDefined(), { timeout: 15_000, interval: 50 });
    } finally {
      await holder.query('rollback');
      await relay.stop();
    }
    const warning = lines.find((line) => String(line['msg']).startsWith('events are held back'))!;
    expect(warning['holder']).toMatchObject({ pid: expect.any(Number), applicationName: 'long-batch-job' });
    expect(warning['pending']).toBeGreaterThanOrEqual(1);
  });
});
