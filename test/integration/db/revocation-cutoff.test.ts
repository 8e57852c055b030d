import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../../src/db/database.js';
import { revokeSubjectTokens } from '../../../src/revocation/token-revocation.repository.js';
import { createMigratedDatabase } from '../../helpers/database.js';

let db: Kysely<Database>;
let close: (() => Promise<void>) | undefined;
beforeAll(async () => {
  ({ db, close } = await createMigratedDatabase({ max: 2 }));
});
afterAll(() => close?.());

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
