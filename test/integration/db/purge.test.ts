import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../../src/db/database.js';
import { longestTokenLifetime, purgeExpiredRows } from '../../../src/oidc/expired-purge.js';
import { configFilesSchema } from '../../../src/config/files.js';
import { recordExchangesUnlessRevoked } from '../../../src/grants/token-exchange/exchange-record.repository.js';
import { writeAudit } from '../../../src/iam/audit.repository.js';
import { isTokenRevoked, revokeSubjectTokens } from '../../../src/revocation/token-revocation.repository.js';
import { createMigratedDatabase } from '../../helpers/database.js';

let db: Kysely<Database>;
let close: (() => Promise<void>) | undefined;
beforeAll(async () => {
  ({ db, close } = await createMigratedDatabase({ max: 2 }));
});
afterAll(() => close?.());

const HOUR = 3600 * 1000;
const options = { auditRetentionDays: 30, longestTokenLifetimeSeconds: 24 * 3600 };

async function exchange(jti: string, parent: string | undefined, expiresAt: Date): Promise<void> {
  const recorded = await recordExchangesUnlessRevoked(db, [{
    jti,
    clientId: 'orders-api',
    subject: 'alice',
    subjectTokenJti: parent,
    subjectIssuedAt: Math.floor(Date.now() / 1000) - 60,
    actor: { sub: 'orders-api' },
    scopes: ['resume_orders'],
    audiences: ['https://consumer.example'],
    eventPayloadHash: 'x'.repeat(43),
    expiresAt,
  }]);
  expect(recorded).toEqual([true]);
}
const exchangeJtis = async () => (await db.selectFrom('token_exchange').select('jti').orderBy('jti').execute()).map((row) => row.jti);

describe('purge job', () => {
  it('deletes token-exchange records past expiry + margin, leaf first, keeping the ancestors a live token walks', async () => {
    const long = new Date(Date.now() - 3 * HOUR);
    // root (expired) → mid (expired) → leaf (live): the whole chain stays while the leaf lives.
    await exchange('root', 'user-at', long);
    await exchange('mid', 'root', long);
    await exchange('leaf', 'mid', new Date(Date.now() + HOUR));
    // lone (expired long ago), recent (expired, within the margin).
    await exchange('lone', 'user-at-2', long);
    await exchange('recent', 'user-at-3', new Date(Date.now() - 60_000));

    expect((await purgeExpiredRows(db, options)).token_exchange).toBe(1);
    expect(await exchangeJtis()).toEqual(['leaf', 'mid', 'recent', 'root']);
    // The chain walk still finds a revoked ancestor of the live leaf.
    await db.insertInto('oidc_model').values({ model: 'RevokedAccessToken', id: 'root', payload: '{}', expires_at: new Date(Date.now() + HOUR) }).execute();
    expect(await isTokenRevoked(db, { jti: 'leaf', sub: 'alice', iat: Math.floor(Date.now() / 1000) })).toBe(true);

    // The leaf expires: the chain goes one generation per round.
    await db.updateTable('token_exchange').set({ expires_at: long }).where('jti', '=', 'leaf').execute();
    expect((await purgeExpiredRows(db, options)).token_exchange).toBe(1);
    expect((await purgeExpiredRows(db, options)).token_exchange).toBe(1);
    expect((await purgeExpiredRows(db, options)).token_exchange).toBe(1);
    expect(await exchangeJtis()).toEqual(['recent']);
  });

  it('keeps an expired revocation mark while an exchange record descends from it (an exchange racing the revocation)', async () => {
    const expired = new Date(Date.now() - 60_000);
    const mark = (id: string) =>
      db.insertInto('oidc_model').values({ model: 'RevokedAccessToken', id, payload: '{}', expires_at: expired }).execute();
    const marks = async () =>
      (await db.selectFrom('oidc_model').select('id').where('model', '=', 'RevokedAccessToken').where('id', 'in', ['raced', 'plain']).orderBy('id').execute()).map(
        (row) => row.id,
      );
    // `raced` was exchanged for a resume token that outlives the mark's computed lifetime.
    await exchange('resume-of-raced', 'raced', new Date(Date.now() + 24 * HOUR));
    await mark('raced');
    await mark('plain');
    await db.insertInto('oidc_model').values({ model: 'Session', id: 'old-session', payload: '{}', expires_at: expired }).execute();

    const removed = await purgeExpiredRows(db, options);
    expect(removed.oidc_model).toBe(2);
    expect(await marks()).toEqual(['raced']);
    expect(await isTokenRevoked(db, { jti: 'resume-of-raced', sub: 'alice', iat: Math.floor(Date.now() / 1000) })).toBe(true);

    // Once the resume token's record is gone (expired past the margin), so is the mark.
    await db.updateTable('token_exchange').set({ expires_at: new Date(Date.now() - 3 * HOUR) }).where('jti', '=', 'resume-of-raced').execute();
    expect((await purgeExpiredRows(db, options)).token_exchange).toBe(1);
    expect((await purgeExpiredRows(db, options)).oidc_model).toBe(1);
    expect(await marks()).toEqual([]);
  });

  it('deletes subject cut-offs older than the longest token lifetime, and keeps newer ones', async () => {
    await revokeSubjectTokens(db, 'old-subject');
    await revokeSubjectTokens(db, 'new-subject');
    await db.updateTable('subject_revocation').set({ revoked_before: new Date(Date.now() - 26 * HOUR) }).where('subject', '=', 'old-subject').execute();
    expect((await purgeExpiredRows(db, options)).subject_revocation).toBe(1);
    const left = (await db.selectFrom('subject_revocation').select('subject').execute()).map((row) => row.subject);
    expect(left).toEqual(['new-subject']);
  });

  it('deletes audit records past AUDIT_RETENTION_DAYS', async () => {
    await writeAudit(db, { actor: 'system', action: 'old.thing', outcome: 'success' });
    await writeAudit(db, { actor: 'system', action: 'new.thing', outcome: 'success' });
    await db.updateTable('audit_log').set({ at: sql<Date>`now() - interval '31 days'` }).where('action', '=', 'old.thing').execute();
    expect((await purgeExpiredRows(db, options)).audit_log).toBe(1);
    expect((await db.selectFrom('audit_log').select('action').execute()).map((row) => row.action)).toEqual(['new.thing']);
  });

  it('keeps a cut-off as long as the longest configured token lifetime', () => {
    const files = configFilesSchema.parse({
      resource_servers: [{ identifier: 'https://api.example', accessTokenTTL: 90 * 24 * 3600 }],
      token_exchange: { max_lifetime: 7 * 24 * 3600 },
    });
    expect(longestTokenLifetime(files)).toBe(90 * 24 * 3600);
    expect(longestTokenLifetime(configFilesSchema.parse({}))).toBe(30 * 24 * 3600);
  });
});
