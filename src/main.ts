import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Kysely } from 'kysely';
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { DestinationStream, Logger } from 'pino';
import { ConfigError } from './config/config-error.js';
import { loadConfig, type AppConfig } from './config/load-config.js';
import { pingDb } from './db/create-db.js';
import type { Database } from './db/database.js';
import { migrateToLatest } from './db/migrator.js';
import { openDatabase } from './db/open-database.js';
import { purgeExpiredModels } from './db/oidc-model.repository.js';
import { closeServer, listenHttps, type TlsMaterial } from './http/https-server.js';
import { createLogger } from './http/logger.js';
import { createMetrics, type Metrics } from './http/metrics.js';
import { toBlockList } from './http/address-allow.js';
import { clientAddressOf } from './http/client-address.js';
import { createPublicApp } from './http/public-app.js';
import { ensureDemoUser } from './iam/demo-user.js';
import { createLoginThrottle } from './iam/login-throttle.repository.js';
import { startAdminListener } from './http/admin-app.js';
import { createAdminRoutes } from './iam/admin.routes.js';
import { createPasswordHasher } from './iam/password-hasher.js';
import { startEvents, type EventsDeps } from './events/events-module.js';
import { createSecretVerifier } from './iam/secret-verifier.js';
import { createUserService } from './iam/user.service.js';
import { registerTokenExchange } from './grants/token-exchange/token-exchange.grant.js';
import { loadCookieKeys } from './keys/cookie-keys.js';
import { loadSigningKeys, publicJwks, verificationKeys, type SigningKeySet } from './keys/signing-keys.js';
import { createFindAccount } from './oidc/accounts.js';
import { clientSecretAuthentication } from './oidc/client-secrets.js';
import { assertClientsValid } from './oidc/clients.js';
import { interactionRoutes } from './oidc/interactions.routes.js';
import { auditProviderEvents } from './oidc/logout.js';
import { createKyselyAdapter } from './oidc/kysely-adapter.js';
import { structuredTokenEndpoints } from './oidc/internals.js';
import { createProvider } from './oidc/provider-factory.js';
import { createResourcePolicy } from './oidc/resource-servers.js';
import { createStructuredTokens } from './oidc/structured-tokens.js';
import { accessPolicies } from './oidc/token-policies.js';
import { createChainValidator } from './pki/chain.js';
import { ensureDevPki, type DevPki } from './pki/dev-pki.js';

const GRANT_TYPES = new Set(['client_credentials', 'authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:token-exchange']);
const OAUTH_ERRORS = new Set([
  'invalid_request',
  'invalid_client',
  'invalid_grant',
  'unauthorized_client',
  'unsupported_grant_type',
  'invalid_scope',
  'invalid_target',
  'server_error',
]);

/** Metric label for a request's grant type: client-chosen strings never become label values. */
function grantLabel(ctx: KoaContextWithOIDC): string {
  const value = ctx.oidc?.params?.grant_type;
  return typeof value === 'string' && GRANT_TYPES.has(value) ? value : 'other';
}

export interface CustosOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  logDestination?: DestinationStream;
  /** Replaces the SET signer of the event relay. */
  signSecurityEvent?: EventsDeps['sign'];
}

/** A running Custos instance, as returned by {@link startCustos}. */
export interface RunningCustos {
  config: AppConfig;
  issuer: string;
  port: number;
  /** Port of the admin API listener (ADMIN_PORT; the bound one when 0). */
  adminPort: number;
  logger: Logger;
  metrics: Metrics;
  db: Kysely<Database>;
  tls: TlsMaterial;
  devPki?: DevPki;
  /** Development with the demo config and no users: the demo user created at this start. */
  demoUser?: { username: string; password: string };
  provider(): Provider;
  keys(): SigningKeySet;
  /** Re-reads signing keys and rebuilds the provider (SIGHUP). */
  reload(): Promise<void>;
  /** Graceful shutdown: stop accepting, drain, close the pool, stop embedded PostgreSQL. */
  stop(): Promise<void>;
}

async function loadTls(config: AppConfig, cwd: string): Promise<{ tls: TlsMaterial; devPki?: DevPki }> {
  const { env } = config;
  if (env.TLS_CERT_FILE && env.TLS_KEY_FILE && env.TLS_CLIENT_CA_FILE) {
    const read = (name: string, file: string) =>
      fs.readFile(path.resolve(cwd, file), 'utf8').catch((error: NodeJS.ErrnoException) => {
        throw new ConfigError([`environment variable ${name}: cannot read ${file} (${error.code ?? error.message})`]);
      });
    const [certPem, keyPem, clientCaPem] = await Promise.all([
      read('TLS_CERT_FILE', env.TLS_CERT_FILE),
      read('TLS_KEY_FILE', env.TLS_KEY_FILE),
      read('TLS_CLIENT_CA_FILE', env.TLS_CLIENT_CA_FILE),
    ]);
    return { tls: { certPem, keyPem, clientCaPem } };
  }
  const mtlsClients = config.files.clients
    .filter((client) => client.token_endpoint_auth_method === 'tls_client_auth')
    .map((client) => client.client_id);
  const devPki = await ensureDevPki({ dir: config.keysDir, hostnames: [new URL(config.issuer ?? 'https://localhost').hostname], clients: mtlsClients });
  return { tls: { certPem: devPki.serverCertPem, keyPem: devPki.serverKeyPem, clientCaPem: devPki.caPem }, devPki };
}

/** Composition root: config → database → migrations → keys → provider → listener. */
export async function startCustos(options: CustosOptions = {}): Promise<RunningCustos> {
  const cwd = options.cwd ?? process.cwd();
  const config = loadConfig(options.env ?? process.env, cwd);
  const logger = createLogger({ level: config.env.LOG_LEVEL, destination: options.logDestination });
  const metrics = createMetrics();
  if (config.production && config.env.ALLOW_DEV_KEYS_IN_PRODUCTION) {
    logger.warn('ALLOW_DEV_KEYS_IN_PRODUCTION=true: development keys and the demo configuration are accepted (benchmarks only)');
  }
  const cleanups: Array<() => Promise<void>> = [];
  const cleanup = async () => {
    for (const fn of cleanups.reverse()) await fn().catch((error) => logger.error({ err: error }, 'shutdown step failed'));
  };
  try {
    const { db, url: databaseUrl, close } = await openDatabase(config, cwd, {
      info: (message) => logger.info(message),
      debug: (message) => logger.debug({ component: 'postgres' }, message),
    });
    cleanups.push(close);
    const migrations = await migrateToLatest(db);
    const applied = migrations.results?.map((result) => result.migrationName) ?? [];
    if (applied.length > 0) logger.info({ applied }, 'migrations applied');

    const { tls, devPki } = await loadTls(config, cwd);
    let keys = await loadSigningKeys(config.keysDir, { generate: !config.production });
    const cookieKeys = await loadCookieKeys(config.keysDir, { fromEnv: config.env.COOKIE_KEYS, generate: !config.production });

    let handler: (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void = (_req, res) => {
      res.statusCode = 503;
      res.end();
    };
    const { server, port } = await listenHttps((req, res) => handler(req, res), tls, {
      host: config.env.HOST,
      port: config.env.PORT,
    });
    cleanups.push(() => closeServer(server, config.env.SHUTDOWN_TIMEOUT_MS));
    const issuer = config.issuer ?? `https://localhost:${port}`;

    const chain = createChainValidator(tls.clientCaPem);
    const proxies = config.env.TRUST_PROXY ? toBlockList(config.env.TRUST_PROXY) : undefined;
    const clientSecrets = clientSecretAuthentication(
      createSecretVerifier({ onVerification: (outcome) => metrics.secretVerifications.inc({ outcome }) }),
    );
    const adapter = createKyselyAdapter(db);
    const { env } = config;
    const hasher = createPasswordHasher({
      cost: { memoryCost: env.ARGON2_MEMORY_KIB, timeCost: env.ARGON2_TIME_COST, parallelism: env.ARGON2_PARALLELISM },
    });
    const throttle = createLoginThrottle(db, {
      maxFailuresPerAccount: env.LOGIN_MAX_FAILURES_PER_ACCOUNT,
      maxFailuresPerAddress: env.LOGIN_MAX_FAILURES_PER_ADDRESS,
      windowSeconds: env.LOGIN_FAILURE_WINDOW_SECONDS,
      lockSeconds: env.LOGIN_LOCK_SECONDS,
      delayMs: env.LOGIN_DELAY_MS,
    });
    const findAccount = createFindAccount(db);
    const firstParty = new Set(config.files.clients.filter((client) => client.first_party).map((client) => client.client_id));
    // Built once; they read the signing keys of the moment, which reload() swaps.
    const policy = createResourcePolicy(config.files.resource_servers, config.files.clients, () => keys.current.kid);
    const access = accessPolicies(config.files.clients, policy);
    let publicKeys = verificationKeys(keys);
    let jwks = publicJwks(keys);
    const structuredTokens = createStructuredTokens({
      db,
      issuer,
      verificationKeys: () => publicKeys,
      allowedToIntrospect: access.introspection,
    });
    const build = (signingKeys: SigningKeySet) => {
      const provider = createProvider({
        issuer,
        adapter,
        files: config.files,
        keys: signingKeys,
        cookieKeys,
        compareSecret: clientSecrets.compare,
        chain,
        policy,
        access,
        findAccount,
        extend: (built) => {
          auditProviderEvents(built, db, logger);
          registerTokenExchange({
            provider: built,
            db,
            issuer,
            verificationKeys: () => publicKeys,
            signingKid: () => keys.current.kid,
            policies: config.files.token_exchange.policies,
            serves: policy.serves,
            isRevoked: (token) => structuredTokens.isRevoked(token),
          });
        },
      });
      provider.on('server_error', (ctx: KoaContextWithOIDC, error: Error) =>
        (ctx.state as { log?: Logger }).log?.error({ err: error }, 'provider server_error'),
      );
      provider.on('grant.success', (ctx: KoaContextWithOIDC) => metrics.tokensIssued.inc({ grant_type: grantLabel(ctx) }));
      provider.on('grant.error', (ctx: KoaContextWithOIDC, error: { error?: string }) =>
        metrics.tokenErrors.inc({ grant_type: grantLabel(ctx), error: OAUTH_ERRORS.has(error.error ?? '') ? error.error! : 'other' }),
      );
      return provider;
    };
    let provider = build(keys);
    await assertClientsValid(provider, config.files.clients, config.sources.clients ?? config.configDir);
    const app = createPublicApp({
      issuer,
      logger,
      metrics,
      bodyLimitBytes: config.env.BODY_LIMIT_BYTES,
      ready: () => pingDb(db),
      provider: () => provider,
      trustedProxies: proxies,
      metricsAllow: toBlockList(config.env.METRICS_ALLOW),
      cookieKeys,
      routes: [
        interactionRoutes({
          provider: () => provider,
          db,
          hasher,
          throttle,
          cookieKeys,
          firstParty: (clientId) => firstParty.has(clientId),
          maxBodyBytes: env.BODY_LIMIT_BYTES,
          clientAddress: clientAddressOf(proxies),
        }) as never,
        clientSecrets.middleware as never,
        structuredTokenEndpoints(structuredTokens) as never,
      ],
    });
    handler = app.callback();

    const admin = await startAdminListener({
      logger,
      metrics,
      tls,
      host: config.env.HOST,
      port: config.env.ADMIN_PORT,
      shutdownTimeoutMs: config.env.SHUTDOWN_TIMEOUT_MS,
      issuer,
      publicJwks: () => jwks,
      isRevoked: (token) => structuredTokens.isRevoked(token),
      routes: createAdminRoutes({ db, hasher, provider: () => provider, logger }),
    });
    cleanups.push(admin.close);

    const purge = setInterval(() => {
      purgeExpiredModels(db)
        .then((removed) => removed > 0 && logger.debug({ removed }, 'purged expired oidc rows'))
        .catch((error) => logger.warn({ err: error }, 'purge of expired rows failed'));
    }, config.env.PURGE_INTERVAL_MS);
    purge.unref();
    cleanups.push(async () => clearInterval(purge));

    // Development with the demo config only: production and tests never get a generated user.
    const demoUser = config.seedDemoData ? await ensureDemoUser(db, createUserService({ db, hasher })) : undefined;

    const events = await startEvents({
      config,
      cwd,
      db,
      databaseUrl,
      issuer,
      currentKey: () => keys.current,
      logger,
      metrics: metrics.events,
      sign: options.signSecurityEvent,
    });
    cleanups.push(events.stop);

    logger.info({ issuer, port, adminPort: admin.port, pid: process.pid }, 'custos listening');
    return {
      config,
      issuer,
      port,
      adminPort: admin.port,
      logger,
      metrics,
      db,
      tls,
      devPki,
      demoUser,
      provider: () => provider,
      keys: () => keys,
      async reload() {
        const next = await loadSigningKeys(config.keysDir, { generate: false });
        const rebuilt = build(next);
        // Swapped together, with no await in between: no token is signed or checked with a mix.
        provider = rebuilt;
        keys = next;
        publicKeys = verificationKeys(next);
        jwks = publicJwks(next);
        logger.info({ kid: next.current.kid }, 'signing keys reloaded');
      },
      stop: cleanup,
    };
  } catch (error) {
    await cleanup();
    throw error;
  }
}
