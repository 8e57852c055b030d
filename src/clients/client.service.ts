import { randomBytes, randomUUID } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import type { ClientConfig } from '../config/files.js';
import type { Database } from '../db/database.js';
import { DEFAULT_WRITERS, mutate, type Actor, type MutationWriters } from '../iam/admin-mutation.js';
import { decodeCursor, toPage, type Page } from '../iam/pagination.js';
import { revokeClientInTransaction } from '../revocation/revocation.service.js';
import {
  deleteClientRow,
  endSecrets,
  findClient,
  insertCertificate,
  insertClient,
  insertSecret,
  listClientIds,
  loadClients,
  lockClient,
  notifyClientChanged,
  retireCertificate,
  setClientStatus,
  updateClientMetadata,
} from './client.repository.js';
import { ClientError, managedByConfig } from './client-errors.js';
import { SUBJECT_PROPERTIES, splitClientConfig, toClientConfig, type CertificateBinding, type StoredClient } from './client-model.js';
import { validateClient, type ValidationContext } from './client-validation.js';

/** A client as the admin API and the CLI show it: metadata, status, secrets and bindings without any secret. */
export interface ClientView extends Record<string, unknown> {
  client_id: string;
  status: 'active' | 'disabled';
  managed_by: 'config' | 'api';
  secrets: Array<{ id: string; created_at: string; expires_at: string | null }>;
  certificates: Array<{ id: string; binding: CertificateBinding; created_at: string; retired_at: string | null }>;
  created_at: string;
  updated_at: string;
}

export function toClientView(client: StoredClient): ClientView {
  return {
    client_id: client.clientId,
    ...client.metadata,
    status: client.status,
    managed_by: client.managedBy,
    secrets: client.secrets.map((secret) => ({ id: secret.id, created_at: secret.createdAt.toISOString(), expires_at: secret.expiresAt?.toISOString() ?? null })),
    certificates: client.certificates.map((certificate) => ({
      id: certificate.id,
      binding: certificate.binding,
      created_at: certificate.createdAt.toISOString(),
      retired_at: certificate.retiredAt?.toISOString() ?? null,
    })),
    created_at: client.createdAt.toISOString(),
    updated_at: client.updatedAt.toISOString(),
  };
}

export interface ClientServiceDeps {
  db: Kysely<Database>;
  /** argon2id hashing of generated secrets. */
  hashSecret: (secret: string) => Promise<string>;
  /** Validation context (resource servers, production, oidc-provider's checks). */
  validation: () => ValidationContext;
  /** Re-reads a client into this process's registry after a commit (others learn by NOTIFY). */
  refresh?: (clientId: string) => Promise<void>;
  /** Where config-managed clients come from, for the refusal message. */
  seedSource: string;
  writers?: MutationWriters;
}

const CLIENT_ID = /^[A-Za-z0-9._~-]{1,128}$/;
const SECRET_METHODS = new Set(['client_secret_basic', 'client_secret_post']);
const BINDING_FIELDS = [...SUBJECT_PROPERTIES] as const;

/** A new client secret: 256 random bits, base64url (shown once, stored only as an argon2id hash). */
export function generateSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** Input of create and update: RFC 7591 metadata (no secret: Custos generates it). */
export type ClientInput = Omit<Partial<ClientConfig>, 'client_secret_hash'> & Record<string, unknown>;

/**
 * Clients as managed data (issue 20): create (a generated secret shown once), read, list, update,
 * disable, enable, delete, rotate a secret with an overlap, add and retire certificate bindings.
 * Each change is one transaction with its audit record, its event and a NOTIFY that makes every
 * instance reload the client; config-managed clients are refused (`managed_by_config`).
 */
export function createClientService(deps: ClientServiceDeps) {
  const { db } = deps;
  const writers = deps.writers ?? DEFAULT_WRITERS;

  async function load(clientId: string): Promise<StoredClient> {
    const client = CLIENT_ID.test(clientId) ? await findClient(db, clientId) : undefined;
    if (!client) throw new ClientError('client_not_found', `no client ${clientId}`);
    return client;
  }

  /** Locks an API-managed client in `trx`; refuses unknown and config-managed ones. */
  async function lockApiClient(trx: Transaction<Database>, clientId: string) {
    const locked = CLIENT_ID.test(clientId) ? await lockClient(trx, clientId) : undefined;
    if (!locked) throw new ClientError('client_not_found', `no client ${clientId}`);
    if (locked.managedBy === 'config') throw managedByConfig(clientId, deps.seedSource);
    return locked;
  }

  async function after<T>(clientId: string, result: T): Promise<T> {
    await deps.refresh?.(clientId);
    return result;
  }

  const event = (clientId: string, by: Actor, reason?: string) => ({
    userId: clientId,
    clientId,
    initiatingEntity: by.initiatingEntity,
    actor: by.actor,
    ...(reason ? { reasonAdmin: reason } : {}),
  });

  async function retire(clientId: string, by: Actor, kind: 'disable' | 'delete', reason?: string): Promise<ClientView | undefined> {
    const view = await mutate(db, writers, by, async (trx) => {
      await lockApiClient(trx, clientId);
      const revoked = await revokeClientInTransaction(trx, clientId);
      if (kind === 'delete') await deleteClientRow(trx, clientId);
      else await setClientStatus(trx, clientId, 'disabled');
      await notifyClientChanged(trx, clientId);
      const stored = kind === 'delete' ? undefined : (await loadClients(trx, [clientId]))[0];
      return {
        result: stored ? toClientView(stored) : undefined,
        action: `client.${kind}`,
        target: `client:${clientId}`,
        details: { reason: reason ?? null, rows: revoked.rows, cut_off: revoked.cutOff.toISOString() },
        event: { type: kind === 'delete' ? ('client-deleted' as const) : ('client-disabled' as const), ...event(clientId, by, reason) },
      };
    });
    return after(clientId, view);
  }

  return {
    async get(clientId: string): Promise<ClientView> {
      return toClientView(await load(clientId));
    },

    async list(page: { limit: number; cursor?: string }): Promise<Page<ClientView>> {
      const after = decodeCursor(page.cursor, (key) => CLIENT_ID.test(key));
      const ids = await listClientIds(db, { limit: page.limit + 1, after });
      const clients = new Map((await loadClients(db, ids)).map((client) => [client.clientId, client]));
      const rows = ids.flatMap((id) => (clients.has(id) ? [clients.get(id)!] : []));
      return toPage(rows, page.limit, (client) => client.clientId, toClientView);
    },

    /**
     * Registers a client (RFC 7591 metadata; `client_id` generated when absent). A client of a
     * secret method gets a generated secret, returned here once and stored as an argon2id hash.
     */
    async create(
      input: ClientInput,
      by: Actor,
      /** More writes of the same transaction (dynamic registration: its tokens), after the client's. */
      within?: (trx: Transaction<Database>, clientId: string) => Promise<void>,
    ): Promise<{ client: ClientView; client_secret?: string }> {
      const clientId = typeof input.client_id === 'string' ? input.client_id : randomUUID();
      const method = typeof input.token_endpoint_auth_method === 'string' ? input.token_endpoint_auth_method : 'client_secret_basic';
      const secret = SECRET_METHODS.has(method) ? generateSecret() : undefined;
      const hash = secret ? await deps.hashSecret(secret) : undefined;
      const client = await validateClient({ ...input, client_id: clientId, ...(hash ? { client_secret_hash: hash } : {}) }, deps.validation());
      const { metadata, secretHash, binding } = splitClientConfig(client);
      const view = await mutate(db, writers, by, async (trx) => {
        if (!(await insertClient(trx, { clientId, metadata, managedBy: 'api' }))) throw new ClientError('client_exists', `client ${clientId} exists`);
        if (secretHash) await insertSecret(trx, clientId, secretHash);
        if (binding) await insertCertificate(trx, clientId, binding);
        await within?.(trx, clientId);
        await notifyClientChanged(trx, clientId);
        const stored = (await loadClients(trx, [clientId]))[0]!;
        return { result: toClientView(stored), action: 'client.create', target: `client:${clientId}`, event: { type: 'client-created' as const, ...event(clientId, by) } };
      });
      return after(clientId, { client: view, ...(secret ? { client_secret: secret } : {}) });
    },

    /** Replaces a client's metadata (secrets and certificate bindings have their own operations). */
    async update(clientId: string, input: ClientInput, by: Actor): Promise<ClientView> {
      const field = BINDING_FIELDS.find((name) => input[name] !== undefined);
      if (field) throw new ClientError('invalid_client_metadata', `${field}: certificate bindings change through the certificate operations (add, then retire)`);
      const view = await mutate(db, writers, by, async (trx) => {
        await lockApiClient(trx, clientId);
        const stored = (await loadClients(trx, [clientId]))[0]!;
        const current = toClientConfig(stored);
        const method = input.token_endpoint_auth_method ?? current.token_endpoint_auth_method;
        if (method !== current.token_endpoint_auth_method) {
          throw new ClientError('invalid_client_metadata', 'token_endpoint_auth_method: register a new client to change how a client authenticates');
        }
        const jwks = method === 'self_signed_tls_client_auth' ? current.jwks : input.jwks;
        const subjects = Object.fromEntries(BINDING_FIELDS.flatMap((name) => (current[name] !== undefined ? [[name, current[name]]] : [])));
        const client = await validateClient(
          { ...input, client_id: clientId, token_endpoint_auth_method: method, ...subjects, ...(jwks ? { jwks } : {}), ...(current.client_secret_hash ? { client_secret_hash: current.client_secret_hash } : {}) },
          deps.validation(),
        );
        await updateClientMetadata(trx, clientId, splitClientConfig(client).metadata);
        await notifyClientChanged(trx, clientId);
        const updated = (await loadClients(trx, [clientId]))[0]!;
        return { result: toClientView(updated), action: 'client.update', target: `client:${clientId}`, event: { type: 'client-updated' as const, ...event(clientId, by) } };
      });
      return after(clientId, view);
    },

    /** Disables a client: it cannot authenticate, and every token and grant it holds is cut off at once. */
    async disable(clientId: string, by: Actor, reason?: string): Promise<ClientView> {
      return (await retire(clientId, by, 'disable', reason))!;
    },

    /** Enables a disabled client; tokens cut off when it was disabled stay dead. */
    async enable(clientId: string, by: Actor, reason?: string): Promise<ClientView> {
      const view = await mutate(db, writers, by, async (trx) => {
        await lockApiClient(trx, clientId);
        await setClientStatus(trx, clientId, 'active');
        await notifyClientChanged(trx, clientId);
        const stored = (await loadClients(trx, [clientId]))[0]!;
        return { result: toClientView(stored), action: 'client.enable', target: `client:${clientId}`, details: { reason: reason ?? null }, event: { type: 'client-enabled' as const, ...event(clientId, by, reason) } };
      });
      return after(clientId, view);
    },

    /** Deletes a client, cutting off every token and grant it holds. */
    async delete(clientId: string, by: Actor, reason?: string): Promise<void> {
      await retire(clientId, by, 'delete', reason);
    },

    /**
     * Rotates a secret: a new one is generated (returned once); the client's current secrets stay
     * valid until `previousExpiresAt` (the overlap), or end now when it is absent.
     */
    async rotateSecret(clientId: string, by: Actor, previousExpiresAt?: Date): Promise<{ client: ClientView; client_secret: string }> {
      if (previousExpiresAt && previousExpiresAt.getTime() <= Date.now()) {
        throw new ClientError('invalid_client_metadata', 'previous_secret_expires_at: must be in the future (leave it out to end the old secret now)');
      }
      const secret = generateSecret();
      const hash = await deps.hashSecret(secret);
      const view = await mutate(db, writers, by, async (trx) => {
        await lockApiClient(trx, clientId);
        const stored = (await loadClients(trx, [clientId]))[0]!;
        if (!SECRET_METHODS.has(stored.metadata.token_endpoint_auth_method)) {
          throw new ClientError('not_applicable', `client ${clientId} authenticates with ${stored.metadata.token_endpoint_auth_method}, not a secret`);
        }
        await endSecrets(trx, clientId, previousExpiresAt ?? null);
        await insertSecret(trx, clientId, hash);
        await notifyClientChanged(trx, clientId);
        const updated = (await loadClients(trx, [clientId]))[0]!;
        return {
          result: toClientView(updated),
          action: 'client.secret.rotate',
          target: `client:${clientId}`,
          details: { previous_expires_at: previousExpiresAt?.toISOString() ?? null },
          event: { type: 'credential-changed' as const, credentialType: 'client_secret' as const, changeType: 'update' as const, ...event(clientId, by) },
        };
      });
      return after(clientId, { client: view, client_secret: secret });
    },

    /**
     * Adds a certificate binding next to the current ones: a `tls_client_auth_*` subject for
     * `tls_client_auth`, a JWK set (keys with `x5c`) for `self_signed_tls_client_auth`.
     */
    async addCertificate(clientId: string, binding: CertificateBinding, by: Actor): Promise<ClientView> {
      const view = await mutate(db, writers, by, async (trx) => {
        await lockApiClient(trx, clientId);
        const stored = (await loadClients(trx, [clientId]))[0]!;
        const method = stored.metadata.token_endpoint_auth_method;
        const subjects = SUBJECT_PROPERTIES.filter((property) => binding[property] !== undefined);
        if (method === 'tls_client_auth') {
          if (subjects.length !== 1 || binding.jwks) throw new ClientError('invalid_client_metadata', 'tls_client_auth: a binding is exactly one tls_client_auth_* subject (RFC 8705 §2.1.2)');
        } else if (method === 'self_signed_tls_client_auth') {
          if (subjects.length > 0 || !binding.jwks?.keys.some((key) => Array.isArray(key['x5c']) && key['x5c'].length > 0)) {
            throw new ClientError('invalid_client_metadata', 'self_signed_tls_client_auth: a binding is a jwks whose keys carry the certificate in x5c (RFC 8705 §2.2)');
          }
        } else {
          throw new ClientError('not_applicable', `client ${clientId} authenticates with ${method}, not mutual TLS`);
        }
        // The combined client must still be valid for oidc-provider (e.g. the JWK set parses).
        const combined = toClientConfig({ ...stored, certificates: [...stored.certificates, { id: 'new', binding, createdAt: new Date(), retiredAt: null }] });
        await validateClient(combined as unknown as Record<string, unknown>, deps.validation());
        const id = await insertCertificate(trx, clientId, binding);
        await notifyClientChanged(trx, clientId);
        const updated = (await loadClients(trx, [clientId]))[0]!;
        return {
          result: toClientView(updated),
          action: 'client.certificate.add',
          target: `client:${clientId}`,
          details: { certificate_id: id, binding },
          event: { type: 'credential-changed' as const, credentialType: 'x509' as const, changeType: 'create' as const, ...event(clientId, by) },
        };
      });
      return after(clientId, view);
    },

    /** Retires one certificate binding (never the last active one: disable the client instead). */
    async retireCertificate(clientId: string, certificateId: string, by: Actor): Promise<ClientView> {
      const view = await mutate(db, writers, by, async (trx) => {
        await lockApiClient(trx, clientId);
        const stored = (await loadClients(trx, [clientId]))[0]!;
        const active = stored.certificates.filter((certificate) => certificate.retiredAt === null);
        if (!active.some((certificate) => certificate.id === certificateId)) throw new ClientError('certificate_not_found', `client ${clientId} has no active certificate binding ${certificateId}`);
        if (active.length === 1) throw new ClientError('last_certificate', 'this is the only active certificate binding: add the new one first, or disable the client');
        await retireCertificate(trx, clientId, certificateId);
        await notifyClientChanged(trx, clientId);
        const updated = (await loadClients(trx, [clientId]))[0]!;
        return {
          result: toClientView(updated),
          action: 'client.certificate.retire',
          target: `client:${clientId}`,
          details: { certificate_id: certificateId },
          event: { type: 'credential-changed' as const, credentialType: 'x509' as const, changeType: 'revoke' as const, ...event(clientId, by) },
        };
      });
      return after(clientId, view);
    },
  };
}

export type ClientService = ReturnType<typeof createClientService>;
