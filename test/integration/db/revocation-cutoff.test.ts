import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb } from '../../../src/db/create-db.js';
import type { Database } from '../../../src/db/database.js';
import { migrateToLatest } from '../../../src/db/migrator.js';
import { revokeSubjectTokens } from '../../../src/oidc/token-revocation.repository.js';
import { createTestDatabase } from '../../helpers/database.js';

let database: Awaited<ReturnType<typeof createTestDatabase>>;
let db: Kysely<Database>;

beforeAll(async () => {
  database = await createTestDatabase();
  db = createDb(database.url, { max: 2 });
  await migrateToLatest(db);
});
afterAll(async () => {
  await db?.destroy();
  await database?.drop();
});

describe('revokeSubjectTokens', () => {
  it('cuts off at the moment of the revocation, not at the start of a long transaction', async () => {
    const { started, cutoff } = await db.transaction().execute(async (trx) => {
      const { rows } = await sql<{ started: Date }>`select now() as started`.execute(trx);
      await sql`select pg_sleep(1.2)`.execute(trx);
      return { started: new Date(rows[0]!.started), cutoff: await revokeSubjectTokens(trx, 'user-long-trx') };
    });
    // A token minted (iat, whole seconds) during the sleep is at or before the cut-off.
    expect(cutoff.getTime() - started.getTime()).toBeGreaterThanOrEqual(1200);
  });
});
