import type { Kysely } from 'kysely';
import { ConfigError } from '../config/config-error.js';
import type { ClientConfig } from '../config/files.js';
import type { Database } from '../db/database.js';
import { recordEvent } from '../events/outbox.repository.js';
import { writeAudit } from '../iam/audit.repository.js';
import { revokeClientInTransaction } from '../revocation/revocation.service.js';
import {
  insertCertificate,
  insertClient,
  insertSecret,
  loadClients,
  lockSeed,
  notifyClientChanged,
  replaceCertificates,
  replaceSecrets,
  setClientStatus,
  updateClientMetadata,
} from './client.repository.js';
import { canonical, splitClientConfig } from './client-model.js';

/** What one seed run changed (empty lists: nothing; a second run with the same file changes nothing). */
export interface SeedOutcome {
  created: string[];
  updated: string[];
  /** Config-managed clients no longer in the file: disabled, their tokens cut off. */
  disabled: string[];
}

/**
 * Applies the client file as a declarative seed, in one transaction (instances starting together
 * take turns): creates the clients it names (managed by `config`), brings those that differ in
 * line with it (metadata, secret hashes, certificate binding; re-enables one the file names
 * again), and disables config-managed clients it no longer names (never deleting anything).
 * Clients made through the API are never touched; a file naming one stops start-up. Every
 * change is audited (actor `config`); a changed secret or certificate and a disabled client are
 * also announced as events.
 */
export async function applyClientSeed(db: Kysely<Database>, clients: readonly ClientConfig[], source: string): Promise<SeedOutcome> {
  return db.transaction().execute(async (trx) => {
    await lockSeed(trx);
    const existing = new Map((await loadClients(trx)).map((client) => [client.clientId, client]));
    const outcome: SeedOutcome = { created: [], updated: [], disabled: [] };
    const conflicts = clients.filter((client) => existing.get(client.client_id)?.managedBy === 'api');
    if (conflicts.length > 0) {
      throw new ConfigError(
        conflicts.map(
          (client) => `${source}: client ${client.client_id} was registered through the admin API; remove it from the file or delete it with \`custos clients delete ${client.client_id}\``,
        ),
      );
    }
    const audit = (action: string, clientId: string, details: Record<string, unknown> = {}) =>
      writeAudit(trx, { actor: 'config', action, target: `client:${clientId}`, outcome: 'success', details: { source, ...details } });
    for (const client of clients) {
      const { metadata, secretHash, binding } = splitClientConfig(client);
      const wantedSecrets = secretHash ? [secretHash] : [];
      const wantedBindings = binding ? [binding] : [];
      const stored = existing.get(client.client_id);
      if (!stored) {
        await insertClient(trx, { clientId: client.client_id, metadata, managedBy: 'config' });
        for (const hash of wantedSecrets) await insertSecret(trx, client.client_id, hash);
        for (const wanted of wantedBindings) await insertCertificate(trx, client.client_id, wanted);
        // Audited, not announced: the file's clients are the deployment's, not news for consumers.
        await audit('client.create', client.client_id);
        await notifyClientChanged(trx, client.client_id);
        outcome.created.push(client.client_id);
        continue;
      }
      const changes: string[] = [];
      if (canonical(stored.metadata) !== canonical(metadata)) {
        await updateClientMetadata(trx, client.client_id, metadata);
        changes.push('metadata');
      }
      const storedSecrets = stored.secrets.map((secret) => ({ hash: secret.hash, expiresAt: secret.expiresAt }));
      if (canonical(storedSecrets) !== canonical(wantedSecrets.map((hash) => ({ hash, expiresAt: null })))) {
        await replaceSecrets(trx, client.client_id, wantedSecrets);
        changes.push('secret');
      }
      const storedBindings = stored.certificates.map((certificate) => ({ binding: certificate.binding, retired: certificate.retiredAt !== null }));
      if (canonical(storedBindings) !== canonical(wantedBindings.map((wanted) => ({ binding: wanted, retired: false })))) {
        await replaceCertificates(trx, client.client_id, wantedBindings);
        changes.push('certificate');
      }
      if (stored.status !== 'active') {
        await setClientStatus(trx, client.client_id, 'active');
        changes.push('status');
      }
      if (changes.length === 0) continue;
      await audit('client.update', client.client_id, { changed: changes });
      // A changed credential is announced (consumers may act on it); other changes are audited only.
      if (changes.includes('secret') || changes.includes('certificate')) {
        await recordEvent(trx, {
          type: 'credential-changed',
          userId: client.client_id,
          clientId: client.client_id,
          credentialType: changes.includes('certificate') ? 'x509' : 'client_secret',
          changeType: 'update',
          initiatingEntity: 'system',
          actor: 'config',
        });
      }
      await notifyClientChanged(trx, client.client_id);
      outcome.updated.push(client.client_id);
    }
    const named = new Set(clients.map((client) => client.client_id));
    for (const stored of existing.values()) {
      if (stored.managedBy !== 'config' || named.has(stored.clientId) || stored.status === 'disabled') continue;
      await setClientStatus(trx, stored.clientId, 'disabled');
      const revoked = await revokeClientInTransaction(trx, stored.clientId);
      await audit('client.disable', stored.clientId, { reason: 'no longer in the client file', rows: revoked.rows });
      await recordEvent(trx, { type: 'client-disabled', userId: stored.clientId, clientId: stored.clientId, initiatingEntity: 'system', actor: 'config', reasonAdmin: 'no longer in the client file' });
      await notifyClientChanged(trx, stored.clientId);
      outcome.disabled.push(stored.clientId);
    }
    return outcome;
  });
}
