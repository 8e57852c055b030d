import { sql, type Kysely } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../../src/db/database.js';
import { destroyClientModels } from '../../../src/db/oidc-model.repository.js';
import { PreparingClient } from '../../../src/db/prepared-statements.js';
import { createMigratedDatabase } from '../../helpers/database.js';

// Migration 20261205160000: retiring a client finds its grants, tokens and codes in oidc_model
// through an index on payload->>'clientId' (and the grant_id index), not by reading the table.
let database: Awaited<ReturnType<typeof createMigratedDatabase>>;
let db: Kysely<Database>;

beforeAll(async () => {
  database = await createMigratedDatabase();
  db = database.db;
});
afterAll(async () => {
  await database?.close();
});

/** Inserts a grant of `clientId` with a refresh token and an authorization code under it, and a client-credentials token. */
async function seedClient(clientId: string, executor: Kysely<Database> = db): Promise<void> {
  const grant = `grant-${clientId}`;
  await sql`insert into oidc_model (model, id, payload, grant_id, expires_at) values
    ('Grant', ${grant}, ${JSON.stringify({ clientId, accountId: 'alice' })}::jsonb, null, now() + interval '1 hour'),
    ('RefreshToken', ${`rt-${clientId}`}, ${JSON.stringify({ clientId, grantId: grant, sid: `sid-${clientId}` })}::jsonb, ${grant}, now() + interval '1 hour'),
    ('AuthorizationCode', ${`code-${clientId}`}, ${JSON.stringify({ clientId, grantId: grant, sid: `sid-${clientId}` })}::jsonb, ${grant}, now() + interval '1 hour'),
    ('ClientCredentials', ${`cc-${clientId}`}, ${JSON.stringify({ clientId })}::jsonb, null, now() + interval '1 hour')`.execute(executor);
}

/** The statements `work` sends (text and parameters), as the pool's client receives them. */
async function recordStatements(work: () => Promise<unknown>): Promise<Array<{ text: string; values: unknown[] }>> {
  const statements: Array<{ text: string; values: unknown[] }> = [];
  const original = PreparingClient.prototype.query;
  PreparingClient.prototype.query = function recording(this: PreparingClient, ...args: unknown[]) {
    const [first, second] = args as [string | { text?: string; values?: unknown[] }, unknown[] | undefined];
    if (typeof first === 'string') statements.push({ text: first, values: second ?? [] });
    else statements.push({ text: first?.text ?? '', values: first?.values ?? [] });
    return (original as (...params: unknown[]) => never).apply(this, args);
  } as typeof original;
  try {
    await work();
  } finally {
    PreparingClient.prototype.query = original;
  }
  return statements;
}

type PlanNode = { 'Node Type': string; 'Relation Name'?: string; 'Index Name'?: string; Plans?: PlanNode[] };
const nodes = (plan: PlanNode): PlanNode[] => [plan, ...(plan.Plans ?? []).flatMap(nodes)];

describe('the oidc_model index of a client', () => {
  it('the migration creates it: an expression index on payload->>\'clientId\', partial on rows that name a client', async () => {
    const { rows } = await sql<{ indexdef: string }>`select indexdef from pg_indexes where tablename = 'oidc_model' and indexname = 'oidc_model_client_id_idx'`.execute(db);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.indexdef).toMatch(/\(\(payload ->> 'clientId'::text\)\), model\) WHERE \(\(payload ->> 'clientId'::text\) IS NOT NULL\)/);
  });

  it("destroyClientModels' statement is served by the indexes (EXPLAIN of a table of many clients shows no sequential scan)", async () => {
    // Many clients' grants and tokens (under 30,000 rows: ANALYZE reads them all, so the
    // statistics and the plan are the same each run), one of them the client retired.
    await sql`insert into oidc_model (model, id, payload, grant_id, expires_at)
      select 'ClientCredentials', 'bulk-' || n, jsonb_build_object('clientId', 'client-' || (n % 5000)), null, now() + interval '1 hour'
      from generate_series(1, 20000) as n`.execute(db);
    await sql`insert into oidc_model (model, id, payload, grant_id, expires_at)
      select 'Grant', 'bulk-grant-' || n, jsonb_build_object('clientId', 'client-' || n, 'accountId', 'user-' || n), null, now() + interval '1 hour'
      from generate_series(1, 2500) as n`.execute(db);
    await sql`insert into oidc_model (model, id, payload, grant_id, expires_at)
      select 'RefreshToken', 'bulk-rt-' || n, jsonb_build_object('clientId', 'client-' || n, 'grantId', 'bulk-grant-' || n), 'bulk-grant-' || n, now() + interval '1 hour'
      from generate_series(1, 2500) as n`.execute(db);
    await seedClient('retired-one');
    await sql`analyze oidc_model`.execute(db);

    // The repository's own statement, captured as sent (rolled back: nothing is deleted here).
    let statement: { text: string; values: unknown[] } | undefined;
    await db
      .transaction()
      .execute(async (trx) => {
        const sent = await recordStatements(() => destroyClientModels(trx, 'retired-one'));
        statement = sent.find((candidate) => /delete from oidc_model/i.test(candidate.text));
        throw new Error('rollback');
      })
      .catch((error: Error) => {
        if (error.message !== 'rollback') throw error;
      });
    expect(statement).toBeDefined();

    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    const plan = await client
      .query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(`explain (format json) ${statement!.text}`, statement!.values)
      .then((result) => result.rows[0]!['QUERY PLAN'][0].Plan)
      .finally(() => client.end());
    const all = nodes(plan);
    const scans = all.filter((node) => node['Relation Name'] === 'oidc_model');
    expect(scans.length).toBeGreaterThan(0);
    expect(scans.filter((node) => node['Node Type'] === 'Seq Scan'), JSON.stringify(plan)).toEqual([]);
    expect(all.some((node) => node['Index Name'] === 'oidc_model_client_id_idx'), JSON.stringify(plan)).toBe(true);
  });

  it('deletes exactly the client\'s grants, the tokens and codes under them and its other tokens', async () => {
    await seedClient('kept-one');
    await seedClient('gone-one');
    // A token of another client under the retired client's grant goes with the grant.
    await sql`insert into oidc_model (model, id, payload, grant_id) values ('AccessToken', 'at-odd', '{"clientId": "kept-one", "grantId": "grant-gone-one"}'::jsonb, 'grant-gone-one')`.execute(db);
    const destroyed = await db.transaction().execute((trx) => destroyClientModels(trx, 'gone-one'));
    expect(destroyed).toEqual({ rows: 5, sids: ['sid-gone-one'] });
    const left = await db.selectFrom('oidc_model').select(['model', 'id']).where('id', 'like', '%-one').orderBy('id').execute();
    expect(left.map((row) => `${row.model}:${row.id}`).sort()).toEqual([
      'AuthorizationCode:code-kept-one',
      'AuthorizationCode:code-retired-one',
      'ClientCredentials:cc-kept-one',
      'ClientCredentials:cc-retired-one',
      'Grant:grant-kept-one',
      'Grant:grant-retired-one',
      'RefreshToken:rt-kept-one',
      'RefreshToken:rt-retired-one',
    ]);
    expect(await db.selectFrom('oidc_model').select('id').where('id', '=', 'at-odd').execute()).toEqual([]);
    expect(await db.transaction().execute((trx) => destroyClientModels(trx, 'gone-one'))).toEqual({ rows: 0, sids: [] });
  });
});
