import type { Kysely } from 'kysely';
import type Provider from 'oidc-provider';
import type { ClientMetadata } from 'oidc-provider';
import type { Logger } from 'pino';
import type { Middleware } from 'koa';
import type { ClientConfig, ClientRegistrationPolicy } from '../config/files.js';
import type { Database } from '../db/database.js';
import type { AdminRoute } from '../http/admin-router.js';
import { createClientService } from './client.service.js';
import { clientRoutes, initialAccessTokenRoutes } from './clients.routes.js';
import { registrationRoutes } from './registration.routes.js';
import { createRegistrationService } from './registration.service.js';
import { createClientRegistry, type ClientRegistry } from './client-registry.js';
import { applyClientSeed, type SeedOutcome } from './config-seed.js';
import { seedClientMetadata } from './client-registry.js';

export interface ClientsModuleDeps {
  db: Kysely<Database>;
  databaseUrl: string;
  logger: Logger;
  /** The client file's clients (the seed) and where they came from (for messages). */
  seed: readonly ClientConfig[];
  source: string;
}

/** The clients room as the composition root wires it: the registry, and the views other rooms take. */
export interface ClientsModule {
  registry: ClientRegistry;
  /** An active client's configuration (resources, serves, first party, introspection, ...). */
  lookup(clientId: string): ClientConfig | undefined;
  /** What the provider factory takes (`ProviderDeps.clients`). */
  provider: {
    lookup(clientId: string): ClientConfig | undefined;
    all(): readonly ClientConfig[];
    subjects(clientId: string): ReadonlyArray<{ property: string; value: string }>;
  };
  /** What the oidc adapter's `Client` model reads (no database on the token path). */
  model: { metadata(clientId: string): object | undefined };
  /**
   * What oidc-provider will be handed for each client of the file, derived as the registry derives
   * it from the database, without writing anything (start-up validates these before the seed).
   */
  seedMetadata(): ClientMetadata[];
  /**
   * Applies the client file to the database (one transaction; nothing of it when it fails) and
   * reloads the registry. Start-up calls it once everything is validated.
   */
  applySeed(): Promise<SeedOutcome>;
  /** The `/admin/clients` routes, and (when enabled) dynamic registration's admin and public routes. */
  routes(deps: RouteDeps): { admin: AdminRoute[]; public: Middleware[] };
  stop(): Promise<void>;
}

export interface RouteDeps {
  issuer: string;
  bodyLimitBytes: number;
  /** Dynamic registration (RFC 7591/7592): off unless `enabled`. */
  registration: ClientRegistrationPolicy;
  hashSecret: (secret: string) => Promise<string>;
  provider: () => Provider;
  /** Resource server identifiers of the configuration. */
  resources: readonly string[];
  production: boolean;
}

/**
 * Starts the registry (LISTEN first, then the load): the provider finds every client from memory.
 * The client file is not applied here: start-up validates it first, then calls `applySeed`.
 */
export async function startClients(deps: ClientsModuleDeps): Promise<ClientsModule> {
  const registry = createClientRegistry({ db: deps.db, databaseUrl: deps.databaseUrl, logger: deps.logger });
  await registry.start();
  const lookup = (clientId: string) => registry.active(clientId)?.config;
  return {
    registry,
    lookup,
    provider: { lookup, all: () => registry.activeConfigs(), subjects: (clientId) => registry.subjects(clientId) },
    model: { metadata: (clientId) => registry.active(clientId)?.metadata },
    seedMetadata: () => deps.seed.map(seedClientMetadata),
    async applySeed() {
      const outcome = await applyClientSeed(deps.db, deps.seed, deps.source);
      // Read back now (not only by NOTIFY): the first request after start-up finds the file's clients.
      await registry.reloadAll();
      if (outcome.created.length + outcome.updated.length + outcome.disabled.length > 0) {
        deps.logger.info({ ...outcome }, 'client file applied');
      }
      if (outcome.disabled.length > 0) {
        deps.logger.warn({ disabled: outcome.disabled }, 'config-managed clients no longer in the client file were disabled');
      }
      return outcome;
    },
    routes(routeDeps) {
      const resources = new Set(routeDeps.resources);
      const service = createClientService({
        db: deps.db,
        hashSecret: routeDeps.hashSecret,
        refresh: (clientId) => registry.refresh(clientId),
        seedSource: deps.source,
        validation: () => ({
          resources,
          production: routeDeps.production,
          providerValidate: async (metadata: ClientMetadata) => {
            await (routeDeps.provider().Client as unknown as { validate(m: ClientMetadata): Promise<void> }).validate(metadata);
          },
        }),
      });
      if (!routeDeps.registration.enabled) return { admin: clientRoutes(service), public: [] };
      const registration = createRegistrationService({ db: deps.db, clients: service, policy: routeDeps.registration, issuer: routeDeps.issuer });
      return {
        admin: [...clientRoutes(service), ...initialAccessTokenRoutes(registration)],
        public: [registrationRoutes(registration, routeDeps.bodyLimitBytes) as unknown as Middleware],
      };
    },
    stop: () => registry.stop(),
  };
}
