import type { Kysely } from 'kysely';
import type { ClientMetadata } from 'oidc-provider';
import pg from 'pg';
import type { Logger } from 'pino';
import type { ClientConfig } from '../config/files.js';
import type { Database } from '../db/database.js';
import { toClientMetadata } from '../oidc/clients.js';
import { CLIENTS_CHANNEL, loadClients } from './client.repository.js';
import { secretLive, splitClientConfig, SUBJECT_PROPERTIES, toClientConfig, type StoredClient, type SubjectProperty } from './client-model.js';

/** An active client as the token path needs it, derived once per change. */
export interface RegisteredClient {
  stored: StoredClient;
  config: ClientConfig;
  /** What oidc-provider's `Client` model is built from (RFC 7591 names). */
  metadata: ClientMetadata;
  /** Every active `tls_client_auth_*` subject of the client (certificate rotation: old and new). */
  subjects: Array<{ property: SubjectProperty; value: string }>;
}

export interface ClientRegistryDeps {
  db: Kysely<Database>;
  /** For the registry's own LISTEN connection, apart from the pool. */
  databaseUrl: string;
  logger: Logger;
  /** Delay before reconnecting a lost LISTEN connection (ms). */
  reconnectDelayMs?: number;
}

function register(stored: StoredClient): RegisteredClient {
  const config = toClientConfig(stored);
  const subjects = stored.certificates
    .filter((certificate) => certificate.retiredAt === null)
    .flatMap((certificate) =>
      SUBJECT_PROPERTIES.flatMap((property) => (certificate.binding[property] !== undefined ? [{ property, value: certificate.binding[property]! }] : [])),
    );
  return { stored, config, metadata: toClientMetadata(config), subjects };
}

/**
 * The metadata oidc-provider gets for a client of the file once the seed stored it: the same
 * split into metadata, secret and certificate binding, read back as {@link register} reads it.
 */
export function seedClientMetadata(client: ClientConfig): ClientMetadata {
  const { metadata, secretHash, binding } = splitClientConfig(client);
  const epoch = new Date(0);
  return register({
    clientId: client.client_id,
    metadata,
    status: 'active',
    managedBy: 'config',
    secrets: secretHash ? [{ id: '0', hash: secretHash, createdAt: epoch, expiresAt: null }] : [],
    certificates: binding ? [{ id: '0', binding, createdAt: epoch, retiredAt: null }] : [],
    createdAt: epoch,
    updatedAt: epoch,
  }).metadata;
}

/**
 * The clients of the database, held in memory: the token path reads them from here, never from
 * the database. A dedicated connection LISTENs on {@link CLIENTS_CHANNEL}; every change commits a
 * NOTIFY naming the client, and each instance reloads that one client (so a change is seen
 * everywhere within a round trip). When the connection is lost the registry reconnects and reloads
 * everything (notifications may have been missed meanwhile).
 */
export function createClientRegistry(deps: ClientRegistryDeps) {
  const log = deps.logger.child({ component: 'client-registry' });
  let clients = new Map<string, RegisteredClient>();
  // Reloads of one client run one after another (a later one starts after the earlier ends), so
  // the last applied is the last started, and a caller's reload starts after its commit.
  const reloading = new Map<string, Promise<void>>();
  let connection: pg.Client | undefined;
  let running = false;
  let reconnectTimer: NodeJS.Timeout | undefined;

  async function reloadAll(): Promise<void> {
    const all = await loadClients(deps.db);
    clients = new Map(all.map((stored) => [stored.clientId, register(stored)]));
  }

  async function reload(clientId: string): Promise<void> {
    const [stored] = await loadClients(deps.db, [clientId]);
    if (stored) clients.set(clientId, register(stored));
    else clients.delete(clientId);
  }

  function refresh(clientId: string): Promise<void> {
    const previous = reloading.get(clientId) ?? Promise.resolve();
    const next = previous.catch(() => {}).then(() => reload(clientId));
    reloading.set(clientId, next);
    const forget = () => {
      if (reloading.get(clientId) === next) reloading.delete(clientId);
    };
    next.then(forget, forget);
    return next;
  }

  async function connect(): Promise<void> {
    const client = new pg.Client({ connectionString: deps.databaseUrl, application_name: 'custos-client-registry' });
    client.on('error', () => {});
    client.on('notification', (message) => {
      if (message.channel !== CLIENTS_CHANNEL || !message.payload) return;
      refresh(message.payload).catch((error: unknown) => log.warn({ err: error, client_id: message.payload }, 'client reload failed'));
    });
    client.on('end', () => {
      if (connection !== client || !running) return;
      connection = undefined;
      log.warn('client registry connection lost; reconnecting');
      scheduleReconnect();
    });
    await client.connect();
    await client.query(`listen ${CLIENTS_CHANNEL}`);
    connection = client;
  }

  function scheduleReconnect(): void {
    reconnectTimer = setTimeout(() => {
      reconnectTimer = undefined;
      connect()
        .then(reloadAll)
        .then(() => log.info('client registry reconnected'))
        .catch((error: unknown) => {
          log.warn({ err: error }, 'client registry could not reconnect');
          if (running) scheduleReconnect();
        });
    }, deps.reconnectDelayMs ?? 1000);
    reconnectTimer.unref();
  }

  return {
    /** Starts listening, then loads every client (a change between the two is not missed). */
    async start(): Promise<void> {
      running = true;
      await connect();
      await reloadAll();
    },
    async stop(): Promise<void> {
      running = false;
      if (reconnectTimer) clearTimeout(reconnectTimer);
      const client = connection;
      connection = undefined;
      await client?.end().catch(() => {});
    },
    /** Re-reads one client now (after a change this instance committed: read your own writes). */
    refresh,
    reloadAll,
    /** An active client, or undefined (unknown, or disabled). */
    active(clientId: string): RegisteredClient | undefined {
      const client = clients.get(clientId);
      return client?.stored.status === 'active' ? client : undefined;
    },
    /** The argon2id hashes a presented secret may match now (live secrets only); undefined for an unknown client. */
    secretHashes(clientId: string, now = Date.now()): string[] | undefined {
      const client = clients.get(clientId);
      return client?.stored.secrets.filter((secret) => secretLive(secret, now)).map((secret) => secret.hash);
    },
    /** Every active `tls_client_auth_*` subject of the client; empty for an unknown client. */
    subjects(clientId: string): ReadonlyArray<{ property: SubjectProperty; value: string }> {
      return clients.get(clientId)?.subjects ?? [];
    },
    /** The configuration of every active client. */
    activeConfigs(): ClientConfig[] {
      return [...clients.values()].filter((client) => client.stored.status === 'active').map((client) => client.config);
    },
  };
}

export type ClientRegistry = ReturnType<typeof createClientRegistry>;

/** What the rest of Custos asks about a client (resources, serves, first party, ...): active clients only. */
export type ClientLookup = (clientId: string) => ClientConfig | undefined;
