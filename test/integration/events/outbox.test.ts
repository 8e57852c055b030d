import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../../src/db/database.js';
import type { IamEvent } from '../../../src/events/iam-event.js';
import { assignSequenceIds, findUnacknowledged, markPublished, outboxBacklog, prunePublished, recordEvent } from '../../../src/events/outbox.repository.js';
import { createMigratedDatabase } from '../../helpers/database.js';

let db: Kysely<Database>;
let close: (() => Promise<void>) | undefined;

beforeAll(async () => {
  ({ db, close } = await createMigratedDatabase());
});
afterAll(() => close?.());

const disabled = (userId: string): IamEvent => ({ type: 'account-disabled', userId, initiatingEntity: 'admin' });
const record = (event: IamEvent) => db.transaction().execute((trx) => recordEvent(trx, event));

describe('event outbox (PostgreSQL)', () => {
  it('per-user versions count only committed events; sequence ids stay monotonic across pruning', async () => {
    await record(disabled('p1'));
    await expect(
      db.transaction().execute(async (trx) => {
        await recordEvent(trx, disabled('p1'));
        throw new Error('rollback');
      }),
    ).rejects.toThrow('rollback');
    await record(disabled('p1'));
    await record(disabled('p2'));
    const versions = await db.selectFrom('event_outbox').select(['subject', 'subject_version']).orderBy('id').execute();
    expect(versions.map((row) => [row.subject, Number(row.subject_version)])).toEqual([['p1', 1], ['p1', 2], ['p2', 1]]);

    const backlog = await outboxBacklog(db);
    expect(backlog.count).toBe(3);
    expect(backlog.oldestAgeSeconds).toBeGreaterThanOrEqual(0);

    const batch = await assignSequenceIds(db, 2);
    expect(batch.map((row) => row.sequenceId)).toEqual([1, 2]);
    // Assigned but unmarked: what a restarted relay re-sends first, with the same ids.
    expect((await findUnacknowledged(db, 10)).map((row) => row.sequenceId)).toEqual([1, 2]);
    await markPublished(db, batch.map((row) => row.id));
    expect(await prunePublished(db, 3_600_000)).toBe(0);
    expect(await prunePublished(db, 0)).toBe(2);
    expect((await outboxBacklog(db)).count).toBe(1);

    const rest = await assignSequenceIds(db, 10);
    expect(rest.map((row) => [row.subject, row.sequenceId])).toEqual([['p2', 3]]);
    await markPublished(db, rest.map((row) => row.id));
    expect(await prunePublished(db, 0)).toBe(1);
    await record(disabled('p3'));
    expect((await assignSequenceIds(db, 10)).map((row) => row.sequenceId)).toEqual([4]);
  });
  it('a later version never gets a lower sequence id than an earlier one blocked behind a third', async () => {
    // T1 takes its transaction id first but records its event second (version 2); T2 records
    // version 1; T3 records version 3. In (txid, id) order: v2, v1, v3.
    let releaseFirst!: () => void;
    const gate = new Promise<void>((resolve) => (releaseFirst = resolve));
    let started!: () => void;
    const ready = new Promise<void>((resolve) => (started = resolve));
    const first = db.transaction().execute(async (trx) => {
      await sql`select pg_current_xact_id()`.execute(trx);
      started();
      await gate;
      return recordEvent(trx, disabled('order-1'));
    });
    await ready;
    const v1 = await record(disabled('order-1'));
    releaseFirst();
    const v2 = await first;
    const v3 = await record(disabled('order-1'));
    const published: string[] = [];
    for (let round = 0; round < 5 && published.length < 3; round++) {
      const batch = await assignSequenceIds(db, 100);
      published.push(...batch.map((row) => row.eventId));
      await markPublished(db, batch.map((row) => row.id));
    }
    expect(published).toEqual([v1, v2, v3]);
  });
});

describe('event outbox under stale planner statistics', () => {
  it('numbers a 1,000-event backlog in per-user order, after statistics taken when every row was published', async () => {
    // Statistics of a table whose rows are all published say "no unpublished rows". Then a
    // backlog builds (a broker outage, a burst) before autovacuum looks again (switched off here
    // so it cannot). The order rule used to be a self-join per candidate, which PostgreSQL then ran
    // as nested loops over every unpublished row: cubic in the backlog, 4 minutes for these 1,000
    // rows, and the relay stalled (CI saw it). Now it is one pass in version order.
    const fresh = await createMigratedDatabase({ max: 12 });
    try {
      const add = (userId: string) => fresh.db.transaction().execute((trx) => recordEvent(trx, disabled(userId)));
      await sql`alter table event_outbox set (autovacuum_enabled = false)`.execute(fresh.db);
      for (let i = 0; i < 60; i += 1) await add(`stale-${i % 5}`);
      for (let batch = await assignSequenceIds(fresh.db, 100); batch.length > 0; batch = await assignSequenceIds(fresh.db, 100)) {
        await markPublished(fresh.db, batch.map((row) => row.id));
      }
      await sql`analyze event_outbox`.execute(fresh.db);
      const users = Array.from({ length: 10 }, (_, i) => `bulk-${i}`);
      await Promise.all(
        Array.from({ length: 20 }, async (_, worker) => {
          for (let i = 0; i < 50; i += 1) await add(users[(worker * 7 + i) % users.length]!);
        }),
      );
      for (let batch = await assignSequenceIds(fresh.db, 100); batch.length > 0; batch = await assignSequenceIds(fresh.db, 100)) {
        await markPublished(fresh.db, batch.map((row) => row.id));
      }
      const rows = await fresh.db.selectFrom('event_outbox').select(['subject', 'subject_version']).where('subject', 'like', 'bulk-%').orderBy('sequence_id').execute();
      expect(rows).toHaveLength(1000);
      for (const user of users) {
        const versions = rows.filter((row) => row.subject === user).map((row) => Number(row.subject_version));
        expect(versions).toEqual(Array.from({ length: versions.length }, (_, i) => i + 1));
      }
    } finally {
      await fresh.close();
    }
  });
});
