import { sql, type Kysely } from 'kysely';

/** Users, roles, role assignments and the audit log (issue 7). */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('iam_user')
    .addColumn('id', 'uuid', (col) => col.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('username', 'text', (col) => col.notNull())
    .addColumn('email', 'text')
    .addColumn('password_hash', 'text')
    .addColumn('disabled', 'boolean', (col) => col.notNull().defaultTo(false))
    .addColumn('password_changed_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addCheckConstraint('iam_user_username_check', sql`length(username) between 1 and 128`)
    .execute();
  // Usernames are unique case-insensitively: "Alice" and "alice" are one account.
  await sql`create unique index iam_user_username_key on iam_user (lower(username))`.execute(db);

  await db.schema
    .createTable('iam_role')
    .addColumn('name', 'text', (col) => col.primaryKey())
    .addColumn('description', 'text')
    .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addCheckConstraint('iam_role_name_check', sql`name ~ '^[a-z][a-z0-9:_.-]{0,63}$'`)
    .execute();

  await db.schema
    .createTable('iam_user_role')
    .addColumn('user_id', 'uuid', (col) => col.notNull().references('iam_user.id').onDelete('cascade'))
    .addColumn('role', 'text', (col) => col.notNull().references('iam_role.name').onDelete('restrict'))
    .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('iam_user_role_pkey', ['user_id', 'role'])
    .execute();
  await db.schema.createIndex('iam_user_role_role_idx').on('iam_user_role').column('role').execute();

  await db.schema
    .createTable('audit_log')
    .addColumn('id', 'bigint', (col) => col.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addColumn('actor', 'text', (col) => col.notNull())
    .addColumn('action', 'text', (col) => col.notNull())
    .addColumn('target', 'text')
    .addColumn('outcome', 'text', (col) => col.notNull())
    .addColumn('client_address', 'text')
    .addColumn('request_id', 'text')
    .addColumn('details', 'jsonb', (col) => col.notNull().defaultTo(sql`'{}'::jsonb`))
    .addCheckConstraint('audit_log_outcome_check', sql`outcome in ('success', 'failure', 'denied')`)
    .execute();
  await db.schema.createIndex('audit_log_at_idx').on('audit_log').column('at').execute();
  await db.schema.createIndex('audit_log_actor_idx').on('audit_log').columns(['actor', 'id']).execute();
  await db.schema.createIndex('audit_log_target_idx').on('audit_log').columns(['target', 'id']).execute();
  await db.schema.createIndex('audit_log_action_idx').on('audit_log').columns(['action', 'id']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('audit_log').execute();
  await db.schema.dropTable('iam_user_role').execute();
  await db.schema.dropTable('iam_role').execute();
  await db.schema.dropTable('iam_user').execute();
}
