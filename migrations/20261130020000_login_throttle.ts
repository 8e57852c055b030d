import { sql, type Kysely } from 'kysely';

/**
 * Failed-login counters of the login page (issue 7), shared by every instance. The shape is
 * the one rate-limiter-flexible's PostgreSQL store expects (key, points, expire in epoch ms).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('login_throttle')
    .addColumn('key', 'varchar(255)', (col) => col.primaryKey())
    .addColumn('points', 'integer', (col) => col.notNull().defaultTo(0))
    .addColumn('expire', 'bigint')
    .execute();
  await db.schema.createIndex('login_throttle_expire_idx').on('login_throttle').column('expire').execute();
  await sql`comment on table login_throttle is 'failed login counters (rate-limiter-flexible store)'`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('login_throttle').execute();
}
