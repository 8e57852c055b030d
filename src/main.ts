import type { RequestListener } from 'node:http';
import type { Server } from 'node:net';
import type { Kysely } from 'kysely';
import type Provider from 'oidc-provider';
import type { DestinationStream, Logger } from 'pino';
import type { Registry } from 'prom-client';
import { startClients } from './clients/clients-module.js';
import { ConfigError } from './config/config-error.js';
import { demoSecretProblems } from './config/demo-secrets.js';
import { loadConfig, type AppConfig } from './config/load-config.js';
import { pingDb } from './db/create-db.js';
import type { Database } from './db/database.js';
import { migrateToLatest } from './db/migrator.js';
import { openDatabase } from './db/open-database.js';
import { startEvents, type EventsDeps } from './events/events-module.js';
import { toBlockList } from './http/address-allow.js';
import { startAdminListener } from './http/admin-app.js';
import { clientAddressOf } from './http/client-address.js';
import { closeServer, listenHttps, type TlsMaterial } from './http/https-server.js';
import { createLogger } from './http/logger.js';
import { createMetrics, type Metrics } from './http/metrics.js';
import { createPublicApp } from './http/public-app.js';
import { createAdminRoutes } from './iam/admin.routes.js';
import { ensureDemoUser } from './iam/demo-user.js';
import { createArgon2Threads } from './iam/argon2-threads.js';
import { argon2CostOf, createPasswordHasher } from './iam/password-hasher.js';
import { createSecretVerifier } from './iam/secret-verifier.js';
import { createSessionService } from './iam/session.service.js';
import { createUserService } from './iam/user.service.js';
import { loadCookieKeys } from './keys/cookie-keys.js';
import { loadSigningKeys, publicJwks, verificationKeys, type SigningKeySet } from './keys/signing-keys.js';
import { createFindAccount } from './oidc/accounts.js';
import { clientSecretAuthentication } from './oidc/client-secrets.js';
import { assertClientsValid } from './oidc/clients.js';
import { longestTokenLifetime, startExpiredPurge } from './oidc/expired-purge.js';
import { structuredTokenEndpoints } from './oidc/internals.js';
import { grantRevocationHooks } from './oidc/grant-revocation.js';
import { createKyselyAdapter } from './oidc/kysely-adapter.js';
import { createLoginRoutes } from './signin/signin-module.js';
import { createProviderBuilder } from './oidc/provider-builder.js';
import { createReplayRecorder, dpopReplayStore } from './oidc/replay-detection.js';
import { createResourcePolicy } from './oidc/resource-servers.js';
import { createStructuredTokens } from './oidc/structured-tokens.js';
import { accessPolicies } from './oidc/token-policies.js';
import { createChainValidator } from './pki/chain.js';
import type { DevPki } from './pki/dev-pki.js';
import { loadTls } from './pki/load-tls.js';
import { createRevocation } from './revocation/revocation.service.js';
import { loadSetSigningKeys, publicSetJwks } from './keys/set-signing-keys.js';
import { createPushDeliverer, pushDelivererSettings } from './ssf/push-deliverer.js';
import { createSsfModule } from './ssf/ssf-module.js';
import { createSsfReceiverModule } from './ssf/receiver/receiver-module.js';

export interface CustosOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  logDestination?: DestinationStream;
  /** Replaces the SET signer of the event relay. */
  signSecurityEvent?: EventsDeps['sign'];
  /** Set in a worker process of src/cluster/ (the primary migrated and made keys and the demo user). */
  worker?: WorkerRole;
}

/** What a worker of `WORKERS` > 1 does differently (src/cluster/worker.ts builds it). */
export interface WorkerRole {
  /** The cluster's worker id (1, 2, ...; a replacement gets the next one). */
  id: number;
  /** This worker's share of DATABASE_POOL_MAX. */
  poolMax: number;
  argon2Threads: number;
  /** The text `/metrics` serves: all workers' metrics, aggregated by the primary. */
  metricsText(): Promise<string>;
  /** Sees the public listener and this worker's registry once both exist. */
  instrument(server: Server, registry: Registry): void;
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

/** Composition root: config → database → migrations → keys → rooms (provider, login, admin, events) → listeners → shutdown. */
export async function startCustos(options: CustosOptions = {}): Promise<RunningCustos> {
  const cwd = options.cwd ?? process.cwd();
  const { worker } = options;
  const loaded = loadConfig(options.env ?? process.env, cwd);
  const config = worker ? { ...loaded, env: { ...loaded.env, DATABASE_POOL_MAX: worker.poolMax } } : loaded;
  const { env } = config;
  const processLogger = createLogger({ level: env.LOG_LEVEL, destination: options.logDestination, production: config.production });
  // A worker's lines name it (the cluster's worker id; a replacement gets the next one).
  const logger = worker ? processLogger.child({ worker: worker.id }) : processLogger;
  const metrics = createMetrics({ exposition: worker?.metricsText });
  if (config.production && env.ALLOW_DEV_KEYS_IN_PRODUCTION) {
    logger.warn('ALLOW_DEV_KEYS_IN_PRODUCTION=true: development keys and the demo configuration are accepted (benchmarks only)');
  }
  const cleanups: Array<() => Promise<void>> = [];
  const cleanup = async () => {
    for (const fn of cleanups.reverse()) await fn().catch((error) => logger.error({ err: error }, 'shutdown step failed'));
  };
  try {
    // One set of argon2 threads, off the event loop, for user passwords and client secrets
    // (stopped after the listeners drained).
    const argon2 = createArgon2Threads({ threads: worker?.argon2Threads });
    cleanups.push(argon2.close);
    if (config.production && !env.ALLOW_DEV_KEYS_IN_PRODUCTION) {
      // Before anything is opened: a client keeping a published demo secret is refused.
      const problems = await demoSecretProblems(config.files.clients, config.sources.clients ?? config.configDir, (hash, secret) => argon2.verify(hash, secret));
      if (problems.length > 0) throw new ConfigError(problems);
    }
    // Before anything is opened: a bad SSF_PUSH_CA_FILE stops start-up with one line.
    const pushSettings = pushDelivererSettings(config, cwd);
    const { db, url: databaseUrl, close } = await openDatabase(config, cwd, {
      info: (message) => logger.info(message),
      debug: (message) => logger.debug({ component: 'postgres' }, message),
    });
    cleanups.push(close);
    if (!worker) {
      const migrations = await migrateToLatest(db);
      const applied = migrations.results?.map((result) => result.migrationName) ?? [];
      if (applied.length > 0) logger.info({ applied }, 'migrations applied');
    }

    // Clients are read from memory (the registry); the client file, a seed, is applied to the
    // database only once start-up validated everything (below), so a refused file writes nothing.
    const clients = await startClients({ db, databaseUrl, logger, seed: config.files.clients, source: config.sources.clients ?? config.configDir });
    cleanups.push(clients.stop);

    const { tls, devPki } = await loadTls(config, cwd);
    let keys = await loadSigningKeys(config.keysDir, { generate: !config.production });
    let setKeys = await loadSetSigningKeys(config.keysDir, { generate: !config.production });
    let setJwks = publicSetJwks(setKeys);
    const cookieKeys = await loadCookieKeys(config.keysDir, { fromEnv: env.COOKIE_KEYS, generate: !config.production });

    let handler: RequestListener = (_req, res) => {
      res.statusCode = 503;
      res.end();
    };
    const { server, port } = await listenHttps((req, res) => handler(req, res), tls, { host: env.HOST, port: env.PORT });
    cleanups.push(() => closeServer(server, env.SHUTDOWN_TIMEOUT_MS));
    worker?.instrument(server, metrics.registry);
    const issuer = config.issuer ?? `https://localhost:${port}`;

    const proxies = env.TRUST_PROXY ? toBlockList(env.TRUST_PROXY) : undefined;
    const hasher = createPasswordHasher({ cost: argon2CostOf(env), threads: argon2 });
    // Built once; they read the signing keys of the moment, which reload() swaps.
    const policy = createResourcePolicy(config.files.resource_servers, clients.lookup, () => keys.current.kid);
    const access = accessPolicies(clients.lookup, policy);
    let publicKeys = verificationKeys(keys);
    let jwks = publicJwks(keys);
    const structuredTokens = createStructuredTokens({ db, issuer, verificationKeys: () => publicKeys, allowedToIntrospect: access.introspection });
    const isRevoked = structuredTokens.isRevoked;
    const clientSecrets = clientSecretAuthentication(
      createSecretVerifier({ threads: argon2, onVerification: (outcome) => metrics.secretVerifications.inc({ outcome }) }),
      (clientId) => clients.registry.secretHashes(clientId),
    );
    // Every grant oidc-provider ends (logout, refresh-token reuse, code replay, RFC 7009) goes through one revocation.
    const revocation = createRevocation({ db, logger });
    const revocationHooks = grantRevocationHooks({ revocation, logger, clientAddress: clientAddressOf(proxies) });
    // DPoP proofs and client assertions are seen once by every instance (PostgreSQL).
    const recordOnce = createReplayRecorder(db);
    const build = createProviderBuilder({
      issuer,
      adapter: createKyselyAdapter(db, revocationHooks, clients.model),
      clients: clients.provider,
      files: config.files,
      cookieKeys,
      requireDpopNonce: env.DPOP_REQUIRE_NONCE,
      compareSecret: clientSecrets.compare,
      chain: createChainValidator(tls.clientCaPem),
      policy,
      access,
      findAccount: createFindAccount(db),
      db,
      logger,
      metrics,
      verificationKeys: () => publicKeys,
      signingKid: () => keys.current.kid,
      trustedProxies: proxies,
      recordOnce,
    });
    let provider = build(keys);
    await assertClientsValid(provider, clients.seedMetadata(), config.sources.clients ?? config.configDir);

    const ssf = createSsfModule({
      db,
      logger,
      issuer,
      dpopReplayStore: dpopReplayStore(recordOnce, 'ssf-api'),
      publicJwks: () => jwks,
      isRevoked,
      currentSetKey: () => setKeys.current,
      setJwks: () => setJwks,
      bodyLimitBytes: env.BODY_LIMIT_BYTES,
      minVerificationIntervalSeconds: env.SSF_MIN_VERIFICATION_INTERVAL_SECONDS,
      inactivityTimeoutSeconds: env.SSF_INACTIVITY_TIMEOUT_SECONDS,
      pushHostAllowed: pushSettings.hostAllowed,
    });
    // Registered after the listener's close: runs before it, so waiting polls do not hold the drain.
    cleanups.push(ssf.stop);
    // Trusted outside transmitters' SETs (RFC 8935 push, RFC 8936 poll); off without `ssf_receiver` transmitters.
    const ssfReceiver = createSsfReceiverModule({
      config: config.files.ssf_receiver,
      file: config.sources.ssf_receiver ?? config.configDir,
      cwd,
      db,
      logger,
      issuer,
      registry: metrics.registry,
      sessions: createSessionService({ db, provider: () => provider, logger }),
      bodyLimitBytes: env.BODY_LIMIT_BYTES,
    });
    cleanups.push(ssfReceiver.stop);
    const clientRoutes = clients.routes({
      issuer,
      bodyLimitBytes: env.BODY_LIMIT_BYTES,
      registration: config.files.client_registration,
      hashSecret: (secret) => hasher.hash(secret),
      provider: () => provider,
      resources: config.files.resource_servers.map((rs) => rs.identifier),
      production: config.production,
    });
    const app = createPublicApp({
      issuer,
      logger,
      metrics,
      bodyLimitBytes: env.BODY_LIMIT_BYTES,
      ready: () => pingDb(db),
      provider: () => provider,
      trustedProxies: proxies,
      metricsAllow: toBlockList(env.METRICS_ALLOW),
      cookieKeys,
      routes: [
        createLoginRoutes({ config, db, provider: () => provider, hasher, cookieKeys, trustedProxies: proxies, metrics }) as never,
        clientSecrets.middleware as never,
        structuredTokenEndpoints(structuredTokens) as never,
        ssf.routes,
        ssfReceiver.routes,
        ...(clientRoutes.public as never[]),
      ],
    });
    // Everything is validated: the client file is written (one transaction) and read back.
    await clients.applySeed();
    handler = app.callback();

    const admin = await startAdminListener({
      logger,
      metrics,
      tls,
      host: env.HOST,
      port: env.ADMIN_PORT,
      shutdownTimeoutMs: env.SHUTDOWN_TIMEOUT_MS,
      issuer,
      publicJwks: () => jwks,
      isRevoked,
      routes: [
        ...createAdminRoutes({ db, hasher, provider: () => provider, logger }),
        ...clientRoutes.admin,
      ],
      db,
    });
    cleanups.push(admin.close);
    cleanups.push(startExpiredPurge(db, env.PURGE_INTERVAL_MS, logger, { auditRetentionDays: env.AUDIT_RETENTION_DAYS, longestTokenLifetimeSeconds: longestTokenLifetime(config.files) }));

    // Development with the demo config only: production and tests never get a generated user.
    const demoUser = config.seedDemoData && !worker ? await ensureDemoUser(db, createUserService({ db, hasher })) : undefined;

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
    const ssfPush = createPushDeliverer({ db, databaseUrl, service: ssf.service, logger, metrics: metrics.ssf, ...pushSettings });
    cleanups.push(ssfPush.stop);

    if (worker) logger.info({ issuer, port, adminPort: admin.port, pid: process.pid }, 'worker listening');
    else logger.info({ issuer, port, adminPort: admin.port, pid: process.pid }, 'custos listening');
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
        const nextSetKeys = await loadSetSigningKeys(config.keysDir, { generate: false });
        const rebuilt = build(next);
        // Swapped together, with no await in between: no token is signed or checked with a mix.
        provider = rebuilt;
        keys = next;
        publicKeys = verificationKeys(next);
        jwks = publicJwks(next);
        setKeys = nextSetKeys;
        setJwks = publicSetJwks(nextSetKeys);
        logger.info({ kid: next.current.kid }, 'signing keys reloaded');
      },
      stop: cleanup,
    };
  } catch (error) {
    await cleanup();
    throw error;
  }
}
