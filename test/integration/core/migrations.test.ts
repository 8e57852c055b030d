import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb } from '../../../src/db/create-db.js';
import type { Database } from '../../../src/db/database.js';
import { migrateDownAll, migrateToLatest, migrationsFolder } from '../../../src/db/migrator.js';
import { createTestDatabase } from '../../helpers/database.js';

let database: Awaited<ReturnType<typeof createTestDatabase>>;
let db: Kysely<Database>;

beforeAll(async () => {
  database = await createTestDatabase();
  db = createDb(database.url, { max: 2 });
});
afterAll(async () => {
  await db?.destroy();
  await database?.drop();
});

async function tables(): Promise<string[]> {
  const result = await sql<{ table_name: string }>`
    select table_name from information_schema.tables
    where table_schema = 'public' and table_type = 'BASE TABLE'
    order by table_name`.execute(db);
  return result.rows.map((row) => row.table_name);
}

async function columns(table: string): Promise<Record<string, { type: string; nullable: boolean }>> {
  const result = await sql<{ column_name: string; data_type: string; is_nullable: string }>`
    select column_name, data_type, is_nullable from information_schema.columns
    where table_schema = 'public' and table_name = ${table}`.execute(db);
  return Object.fromEntries(result.rows.map((row) => [row.column_name, { type: row.data_type, nullable: row.is_nullable === 'YES' }]));
}

async function indexes(table: string): Promise<Record<string, string>> {
  const result = await sql<{ indexname: string; indexdef: string }>`
    select indexname, indexdef from pg_indexes where schemaname = 'public' and tablename = ${table}`.execute(db);
  return Object.fromEntries(result.rows.map((row) => [row.indexname, row.indexdef]));
}

describe('migrations on an empty database', () => {
  it('the database starts empty', async () => {
    expect(await tables()).toEqual([]);
  });

  it('migrateToLatest applies every migration file in order and creates the tables', async () => {
    const files = (await readdir(await migrationsFolder())).filter((file) => /^\d{14}_.+\.ts$/.test(file)).sort();
    expect(files.length).toBeGreaterThanOrEqual(2);

    const result = await migrateToLatest(db);
    expect(result.results?.map((r) => [r.migrationName, r.direction, r.status])).toEqual(
      files.map((file) => [path.basename(file, '.ts'), 'Up', 'Success']),
    );
    expect(await tables()).toEqual(expect.arrayContaining(['oidc_model', 'token_exchange', 'kysely_migration', 'kysely_migration_lock']));

    expect(await columns('oidc_model')).toEqual({
      model: { type: 'text', nullable: false },
      id: { type: 'text', nullable: false },
      payload: { type: 'jsonb', nullable: false },
      grant_id: { type: 'text', nullable: true },
      uid: { type: 'text', nullable: true },
      user_code: { type: 'text', nullable: true },
      expires_at: { type: 'timestamp with time zone', nullable: true },
      consumed_at: { type: 'timestamp with time zone', nullable: true },
      created_at: { type: 'timestamp with time zone', nullable: false },
    });
    const oidcIndexes = await indexes('oidc_model');
    expect(oidcIndexes.oidc_model_pkey).toMatch(/UNIQUE INDEX .* \(model, id\)/);
    expect(oidcIndexes.oidc_model_uid_key).toMatch(/UNIQUE INDEX .* \(model, uid\) WHERE \(uid IS NOT NULL\)/);
    expect(oidcIndexes.oidc_model_user_code_key).toMatch(/UNIQUE INDEX .* \(model, user_code\) WHERE \(user_code IS NOT NULL\)/);
    expect(oidcIndexes.oidc_model_grant_id_idx).toMatch(/\(grant_id\)/);
    expect(oidcIndexes.oidc_model_expires_at_idx).toMatch(/\(expires_at\)/);
    expect(oidcIndexes.oidc_model_client_id_idx).toMatch(/\(\(\(payload ->> 'clientId'::text\)\), model\) WHERE/);

    const exchange = await columns('token_exchange');
    expect(Object.keys(exchange).sort()).toEqual(
      ['actor_chain', 'audiences', 'client_id', 'created_at', 'event_payload_hash', 'expires_at', 'id', 'jti', 'root_issued_at', 'scopes', 'subject', 'subject_jkt', 'subject_token_jti'].sort(),
    );
    expect(await columns('subject_revocation')).toEqual({
      subject: { type: 'text', nullable: false },
      revoked_before: { type: 'timestamp with time zone', nullable: false },
    });
    expect((await indexes('oidc_model')).oidc_model_account_idx).toMatch(/\(model, \(\(payload ->> 'accountId'::text\)\)\)/);
    expect(exchange.scopes).toEqual({ type: 'ARRAY', nullable: false });
    expect(Object.values(await indexes('token_exchange')).some((def) => /UNIQUE INDEX .* \(jti\)/.test(def))).toBe(true);
  });

  it('migrateToLatest again is a no-op', async () => {
    const result = await migrateToLatest(db);
    expect(result.results).toEqual([]);
  });

  it('migrateDownAll drops every table the migrations created', async () => {
    await db.insertInto('oidc_model').values({ model: 'Grant', id: 'g', payload: JSON.stringify({ jti: 'g' }) }).execute();
    await migrateDownAll(db);
    const left = await tables();
    expect(left).not.toContain('oidc_model');
    expect(left).not.toContain('token_exchange');
    // Only kysely's own bookkeeping remains, with no applied migrations recorded.
    expect(left.filter((table) => !table.startsWith('kysely_'))).toEqual([]);
    const applied = await sql<{ n: string }>`select count(*) as n from kysely_migration`.execute(db);
    expect(Number(applied.rows[0]!.n)).toBe(0);
    // Down on an already empty schema is a no-op, not an error.
    await expect(migrateDownAll(db)).resolves.toBeUndefined();
  });

  it('migrating up again recreates a working schema', async () => {
    const result = await migrateToLatest(db);
    expect(result.results?.every((r) => r.status === 'Success' && r.direction === 'Up')).toBe(true);
    expect(result.results?.length).toBeGreaterThanOrEqual(2);
    expect(await tables()).toEqual(expect.arrayContaining(['oidc_model', 'token_exchange']));
    // The data from before the down migration is gone and the schema accepts new rows.
    expect(await db.selectFrom('oidc_model').selectAll().execute()).toEqual([]);
    await db.insertInto('oidc_model').values({ model: 'Grant', id: 'g', payload: JSON.stringify({ jti: 'g' }) }).execute();
    const row = await db.selectFrom('oidc_model').selectAll().executeTakeFirstOrThrow();
    expect(row.payload).toEqual({ jti: 'g' });
    expect(row.created_at).toBeInstanceOf(Date);
  });
});
