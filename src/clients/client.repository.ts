import { sql } from 'kysely';
import type { DbExecutor } from '../db/database.js';
import type { CertificateBinding, ClientManager, ClientStatus, StoredClient, StoredMetadata } from './client-model.js';

/** The NOTIFY channel of client changes; the payload is the client id (delivered at commit). */
export const CLIENTS_CHANNEL = 'custos_clients';

/** Tells every instance's client cache that `clientId` changed, when the caller's transaction commits. */
export async function notifyClientChanged(db: DbExecutor, clientId: string): Promise<void> {
  await sql`select pg_notify(${CLIENTS_CHANNEL}, ${clientId})`.execute(db);
}

/** Loads clients with their secrets and certificate bindings: all of them, or those named. */
export async function loadClients(db: DbExecutor, ids?: readonly string[]): Promise<StoredClient[]> {
  if (ids && ids.length === 0) return [];
  let rows = db.selectFrom('client').selectAll();
  if (ids) rows = rows.where('client_id', 'in', ids);
  const clients = await rows.orderBy('client_id').execute();
  if (clients.length === 0) return [];
  const clientIds = clients.map((row) => row.client_id);
  const [secrets, certificates] = await Promise.all([
    db.selectFrom('client_secret').selectAll().where('client_id', 'in', clientIds).orderBy('id', 'desc').execute(),
    db.selectFrom('client_certificate').selectAll().where('client_id', 'in', clientIds).orderBy('id').execute(),
  ]);
  return clients.map((row) => ({
    clientId: row.client_id,
    metadata: row.metadata as unknown as StoredMetadata,
    status: row.status,
    managedBy: row.managed_by,
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
    // Newest first: the first live secret is the current one.
    secrets: secrets
      .filter((secret) => secret.client_id === row.client_id)
      .map((secret) => ({ id: String(secret.id), hash: secret.hash, createdAt: new Date(secret.created_at), expiresAt: secret.expires_at ? new Date(secret.expires_at) : null })),
    certificates: certificates
      .filter((certificate) => certificate.client_id === row.client_id)
      .map((certificate) => ({
        id: String(certificate.id),
        binding: certificate.binding as CertificateBinding,
        createdAt: new Date(certificate.created_at),
        retiredAt: certificate.retired_at ? new Date(certificate.retired_at) : null,
      })),
  }));
}

/** One client, or undefined. */
export async function findClient(db: DbExecutor, clientId: string): Promise<StoredClient | undefined> {
  return (await loadClients(db, [clientId]))[0];
}

/** Locks a client's row for the caller's transaction; undefined when there is none. */
export async function lockClient(db: DbExecutor, clientId: string): Promise<{ managedBy: ClientManager; status: ClientStatus } | undefined> {
  const row = await db.selectFrom('client').select(['managed_by', 'status']).where('client_id', '=', clientId).forUpdate().executeTakeFirst();
  return row ? { managedBy: row.managed_by, status: row.status } : undefined;
}

/** A page of clients ordered by id, after `after` (exclusive). */
export async function listClientIds(db: DbExecutor, page: { limit: number; after?: string }): Promise<string[]> {
  let query = db.selectFrom('client').select('client_id').orderBy('client_id').limit(page.limit);
  if (page.after) query = query.where('client_id', '>', page.after);
  return (await query.execute()).map((row) => row.client_id);
}

/** Inserts a client; false when the id is taken (unique violation mapped). */
export async function insertClient(db: DbExecutor, client: { clientId: string; metadata: StoredMetadata; managedBy: ClientManager }): Promise<boolean> {
  const inserted = await db
    .insertInto('client')
    .values({ client_id: client.clientId, metadata: JSON.stringify(client.metadata), managed_by: client.managedBy })
    .onConflict((oc) => oc.column('client_id').doNothing())
    .returning('client_id')
    .executeTakeFirst();
  return inserted !== undefined;
}

export async function updateClientMetadata(db: DbExecutor, clientId: string, metadata: StoredMetadata): Promise<void> {
  await db.updateTable('client').set({ metadata: JSON.stringify(metadata), updated_at: sql<Date>`now()` }).where('client_id', '=', clientId).execute();
}

export async function setClientStatus(db: DbExecutor, clientId: string, status: ClientStatus): Promise<void> {
  await db.updateTable('client').set({ status, updated_at: sql<Date>`now()` }).where('client_id', '=', clientId).execute();
}

export async function deleteClientRow(db: DbExecutor, clientId: string): Promise<void> {
  await db.deleteFrom('client').where('client_id', '=', clientId).execute();
}

/** Adds a secret hash; returns its id. */
export async function insertSecret(db: DbExecutor, clientId: string, hash: string, expiresAt: Date | null = null): Promise<string> {
  const row = await db
    .insertInto('client_secret')
    .values({ client_id: clientId, hash, expires_at: expiresAt })
    .returning('id')
    .executeTakeFirstOrThrow();
  return String(row.id);
}

/**
 * Ends the client's live secrets at `expiresAt` (a rotation's overlap; never later than an end
 * already set), or removes them when `expiresAt` is null; returns how many were touched.
 */
export async function endSecrets(db: DbExecutor, clientId: string, expiresAt: Date | null): Promise<number> {
  if (expiresAt === null) {
    const removed = await db.deleteFrom('client_secret').where('client_id', '=', clientId).executeTakeFirst();
    return Number(removed.numDeletedRows);
  }
  const updated = await db
    .updateTable('client_secret')
    .set({ expires_at: sql<Date>`least(coalesce(expires_at, ${expiresAt}), ${expiresAt})` })
    .where('client_id', '=', clientId)
    .executeTakeFirst();
  // Secrets whose end has passed are of no use any more.
  await db.deleteFrom('client_secret').where('client_id', '=', clientId).where('expires_at', '<=', sql<Date>`now()`).execute();
  return Number(updated.numUpdatedRows);
}

/** Replaces all of a client's secrets with `hashes` (the seed file's). */
export async function replaceSecrets(db: DbExecutor, clientId: string, hashes: readonly string[]): Promise<void> {
  await db.deleteFrom('client_secret').where('client_id', '=', clientId).execute();
  for (const hash of hashes) await insertSecret(db, clientId, hash);
}

/** Adds a certificate binding; returns its id. */
export async function insertCertificate(db: DbExecutor, clientId: string, binding: CertificateBinding): Promise<string> {
  const row = await db
    .insertInto('client_certificate')
    .values({ client_id: clientId, binding: JSON.stringify(binding) })
    .returning('id')
    .executeTakeFirstOrThrow();
  return String(row.id);
}

/** Retires one active binding of the client; false when there is no such active binding. */
export async function retireCertificate(db: DbExecutor, clientId: string, certificateId: string): Promise<boolean> {
  if (!/^\d{1,18}$/.test(certificateId)) return false;
  const updated = await db
    .updateTable('client_certificate')
    .set({ retired_at: sql<Date>`now()` })
    .where('client_id', '=', clientId)
    .where('id', '=', certificateId)
    .where('retired_at', 'is', null)
    .executeTakeFirst();
  return Number(updated.numUpdatedRows) > 0;
}

/** Replaces all of a client's certificate bindings with `bindings` (the seed file's). */
export async function replaceCertificates(db: DbExecutor, clientId: string, bindings: readonly CertificateBinding[]): Promise<void> {
  await db.deleteFrom('client_certificate').where('client_id', '=', clientId).execute();
  for (const binding of bindings) await insertCertificate(db, clientId, binding);
}

/** Serializes seed runs of instances starting together (transaction-scoped advisory lock). */
export async function lockSeed(db: DbExecutor): Promise<void> {
  await sql`select pg_advisory_xact_lock(hashtext('custos.clients.seed'))`.execute(db);
}
