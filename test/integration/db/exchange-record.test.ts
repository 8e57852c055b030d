import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../../src/db/database.js';
import { recordExchangesUnlessRevoked, type ExchangeRecord } from '../../../src/grants/token-exchange/exchange-record.repository.js';
import { isTokenRevoked, REVOKED_ACCESS_TOKEN_MODEL } from '../../../src/revocation/token-revocation.repository.js';
import { createMigratedDatabase } from '../../helpers/database.js';

let db: Kysely<Database>;
let close: (() => Promise<void>) | undefined;
beforeAll(async () => {
  ({ db, close } = await createMigratedDatabase({ max: 2 }));
});
afterAll(() => close?.());

const now = Math.floor(Date.now() / 1000);
const HOUR = 3600 * 1000;

function record(jti: string, subject: { jti?: string; sub?: string; iat?: number }): ExchangeRecord {
  return {
    jti,
    clientId: 'orders-api',
    subject: subject.sub ?? 'alice',
    subjectTokenJti: subject.jti,
    subjectIssuedAt: subject.iat,
    actor: { sub: 'orders-api' },
    scopes: ['resume_orders'],
    audiences: ['https://events.custos.test/orders', 'https://audit.custos.test'],
    eventPayloadHash: 'h'.repeat(43),
    expiresAt: new Date(Date.now() + HOUR),
  };
}

const revokeJti = (jti: string) =>
  db.insertInto('oidc_model').values({ model: REVOKED_ACCESS_TOKEN_MODEL, id: jti, payload: '{}', expires_at: new Date(Date.now() + HOUR) }).execute();

describe('recording token exchanges unless the subject token is revoked', () => {
  it('decides each row of one statement on its own subject token, and stores only the live ones', async () => {
    // A resume token recorded earlier, exchanged from a user token issued 100 s ago.
    expect(await recordExchangesUnlessRevoked(db, [record('resume-parent', { jti: 'user-parent', iat: now - 100 })])).toEqual([true]);
    expect(await recordExchangesUnlessRevoked(db, [record('resume-of-revoked', { jti: 'user-revoked-later', iat: now - 50 })])).toEqual([true]);
    await revokeJti('user-revoked');
    await revokeJti('user-revoked-later');
    await db.insertInto('subject_revocation').values({ subject: 'mallory', revoked_before: new Date((now - 10) * 1000) }).execute();

    const batch = [
      record('live', { jti: 'user-live', iat: now - 5 }),
      record('jti-revoked', { jti: 'user-revoked', iat: now - 5 }),
      record('ancestor-revoked', { jti: 'resume-of-revoked', iat: now - 5 }),
      record('before-cutoff', { jti: 'user-m1', sub: 'mallory', iat: now - 60 }),
      record('at-cutoff', { jti: 'user-m2', sub: 'mallory', iat: now - 10 }),
      record('after-cutoff', { jti: 'user-m3', sub: 'mallory', iat: now - 5 }),
      record('no-iat-with-cutoff', { jti: 'user-m4', sub: 'mallory' }),
      record('chained', { jti: 'resume-parent', iat: now - 5 }),
    ];
    expect(await recordExchangesUnlessRevoked(db, batch)).toEqual([true, false, false, false, false, true, false, true]);

    const stored = await db.selectFrom('token_exchange').select(['jti', 'subject_token_jti', 'audiences', 'actor_chain', 'root_issued_at']).execute();
    expect(stored.map((row) => row.jti).sort()).toEqual(['after-cutoff', 'chained', 'live', 'resume-of-revoked', 'resume-parent']);
    const byJti = new Map(stored.map((row) => [row.jti, row]));
    expect(byJti.get('live')).toMatchObject({ subject_token_jti: 'user-live', audiences: batch[0]!.audiences, actor_chain: { sub: 'orders-api' } });
    // A chained record keeps the issue time of the user token at the root of its chain.
    expect(new Date(byJti.get('chained')!.root_issued_at!).getTime()).toBe((now - 100) * 1000);
    expect(new Date(byJti.get('live')!.root_issued_at!).getTime()).toBe((now - 5) * 1000);

    // The same verdicts as the revocation check used by introspection.
    for (const [i, expected] of [true, false, false, false, false, true, false, true].entries()) {
      const { subjectTokenJti: jti, subject: sub, subjectIssuedAt: iat } = batch[i]!;
      expect(await isTokenRevoked(db, { jti, sub, iat })).toBe(!expected);
    }
  });

  it('records nothing for an empty batch', async () => {
    expect(await recordExchangesUnlessRevoked(db, [])).toEqual([]);
  });
});
