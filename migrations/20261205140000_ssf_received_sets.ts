import { sql, type Kysely } from 'kysely';

/**
 * SSF receiver (issue 17): the Security Event Tokens Custos received from trusted transmitters and
 * verified, by (`iss`, `jti`). The primary key makes a replayed SET fail atomically, also under
 * concurrent deliveries; rows older than the receiver's `iat` window are pruned (a SET that old is
 * refused by its `iat` anyway). Only verified SETs are recorded.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('ssf_received_set')
    .addColumn('issuer', 'text', (col) => col.notNull())
    .addColumn('jti', 'text', (col) => col.notNull())
    .addColumn('transmitter', 'text', (col) => col.notNull())
    .addColumn('event_type', 'text', (col) => col.notNull())
    .addColumn('received_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('ssf_received_set_pk', ['issuer', 'jti'])
    .execute();
  await db.schema.createIndex('ssf_received_set_received_at_idx').on('ssf_received_set').column('received_at').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('ssf_received_set').execute();
}
