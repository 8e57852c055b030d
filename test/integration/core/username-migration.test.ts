import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb } from '../../../src/db/create-db.js';
import type { Database } from '../../../src/db/database.js';
import { createMigrator, migrateToLatest, migrationsFolder } from '../../../src/db/migrator.js';
import { findLoginCandidate, insertUser } from '../../../src/iam/user.repository.js';
import { createTestDatabase } from '../../helpers/database.js';

/** Issue 16 §4: the migration that moves the username unique index to the RFC 8265 key. */
const MIGRATION = '20261204164612_username_precis';

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

/** Migrates up or down to the migration just before this one (whatever lands around it). */
async function migrateToJustBefore() {
  const names = (await readdir(await migrationsFolder())).filter((file) => /^\d{14}_.+\.ts$/.test(file)).map((file) => path.basename(file, '.ts')).sort();
  const previous = names[names.indexOf(MIGRATION) - 1]!;
  const result = await (await createMigrator(db)).migrateTo(previous);
  if (result.error) throw result.error;
  return result;
}

/** Inserts as the code before this migration could (`username` only). */
async function insertLegacy(username: string): Promise<string> {
  const { rows } = await sql<{ id: string }>`insert into iam_user (username) values (${username}) returning id`.execute(db);
  return rows[0]!.id;
}

async function indexes(): Promise<Record<string, string>> {
  const result = await sql<{ indexname: string; indexdef: string }>`select indexname, indexdef from pg_indexes where schemaname = 'public' and tablename = 'iam_user'`.execute(db);
  return Object.fromEntries(result.rows.map((row) => [row.indexname, row.indexdef]));
}

const hasKeyColumn = async () =>
  (await sql<{ n: number }>`select count(*)::int as n from information_schema.columns where table_name = 'iam_user' and column_name = 'username_key'`.execute(db)).rows[0]!.n === 1;

describe(`migration ${MIGRATION}`, () => {
  it('refuses existing rows that are one name after RFC 8265 preparation, naming them, and changes nothing', async () => {
    await migrateToJustBefore();
    const alice = await insertLegacy('alice');
    const wide = await insertLegacy('ａｌｉｃｅ'); // different under lower(username), one name now
    await insertLegacy('bob');

    const error = await migrateToLatest(db).then(
      () => undefined,
      (failure: Error) => failure,
    );
    expect(error?.message).toBe(`migration ${MIGRATION} failed`);
    const message = (error?.cause as Error).message;
    expect(message).toContain(`"alice" (id ${alice})`);
    expect(message).toContain(`"ａｌｉｃｅ" (id ${wide})`);
    expect(message).not.toContain('"bob"');
    expect(message).toMatch(/Nothing was changed/);
    expect(await hasKeyColumn()).toBe(false);
    expect(Object.keys(await indexes()).sort()).toEqual(['iam_user_pkey', 'iam_user_username_key']);

    await sql`delete from iam_user where id = ${wide}`.execute(db);
  });

  it('keys existing rows by width, case and NFC and moves the unique index to the key', async () => {
    const mixed = await insertLegacy('Ｃａｒｏｌ'); // full-width, capital C
    const decomposed = await insertLegacy('Ju\u0308rgen');
    const invisible = await insertLegacy('dave\u200B'); // the new rules refuse it; the row stays
    await migrateToLatest(db);

    const rows = await db.selectFrom('iam_user').select(['username', 'username_key']).orderBy('username_key').execute();
    expect(rows).toEqual([
      { username: 'alice', username_key: 'alice' },
      { username: 'bob', username_key: 'bob' },
      { username: 'Ｃａｒｏｌ', username_key: 'carol' },
      { username: 'dave\u200B', username_key: 'dave\u200B' },
      { username: 'Ju\u0308rgen', username_key: 'jürgen' },
    ]);
    const after = await indexes();
    expect(after.iam_user_username_key_key).toMatch(/UNIQUE INDEX .* \(username_key\)/);
    expect(after.iam_user_username_key).toBeUndefined();

    // The rows sign in under any form of their names; look-alikes are refused or taken.
    expect((await findLoginCandidate(db, 'carol'))?.id).toBe(mixed);
    expect((await findLoginCandidate(db, 'JÜRGEN'))?.id).toBe(decomposed);
    expect((await findLoginCandidate(db, 'dave\u200B'))?.id).toBe(invisible);
    expect(await findLoginCandidate(db, 'dave')).toBeUndefined();
    await expect(insertUser(db, { username: 'CAROL' })).rejects.toMatchObject({ code: 'username_taken' });
    await expect(insertUser(db, { username: 'd\u0430ve' })).rejects.toMatchObject({ code: 'invalid_username' });
    await expect(sql`insert into iam_user (username, username_key) values ('Bob2', 'bob')`.execute(db)).rejects.toMatchObject({ code: '23505' });
  });

  it('down restores the lower(username) index and drops the key', async () => {
    const result = await migrateToJustBefore();
    expect(result.results?.find((r) => r.migrationName === MIGRATION)).toMatchObject({ direction: 'Down', status: 'Success' });
    expect(await hasKeyColumn()).toBe(false);
    expect((await indexes()).iam_user_username_key).toMatch(/UNIQUE INDEX .* \(lower\(username\)\)/);
    await migrateToLatest(db);
    expect(await hasKeyColumn()).toBe(true);
  });
});
