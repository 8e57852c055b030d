import type { Kysely } from 'kysely';
import type Provider from 'oidc-provider';
import type { AppConfig } from '../config/load-config.js';
import type { Database } from '../db/database.js';
import { clientAddressOf } from '../http/client-address.js';
import type { Metrics } from '../http/metrics.js';
import { createLoginThrottle } from '../iam/login-throttle.repository.js';
import type { PasswordHasher } from '../iam/password-hasher.js';
import type { Middleware } from 'koa';
import type { AppState } from '../http/middleware.js';
import { accountRoutes } from './account.routes.js';
import { createAuthenticatorService } from './authenticator.service.js';
import { enrollRoutes } from './enroll.routes.js';
import { interactionRoutes } from './interactions.routes.js';
import { challengeKeyOf, createPasskeyCeremonies } from './passkeys.js';

export interface LoginDeps {
  config: AppConfig;
  db: Kysely<Database>;
  provider: () => Provider;
  hasher: PasswordHasher;
  cookieKeys: readonly string[];
  /** Proxies whose X-Forwarded-For is believed (TRUST_PROXY), for the throttle's client address. */
  trustedProxies?: Parameters<typeof clientAddressOf>[0];
  /** Anonymous cancels are counted here (`custos_anonymous_outcomes_total`), not audited. */
  metrics?: Pick<Metrics, 'anonymousOutcomes'>;
}

/**
 * The login and consent pages (oidc-provider interactions) with the brute-force throttle
 * configured from `LOGIN_*`; first-party clients (`first_party: true`) skip consent; and the
 * signed-in user's passkey page (`/account/passkeys`).
 */
export function createLoginRoutes(deps: LoginDeps) {
  const { env, files } = deps.config;
  const throttle = createLoginThrottle(deps.db, {
    maxFailuresPerAccount: env.LOGIN_MAX_FAILURES_PER_ACCOUNT,
    maxFailuresPerAddress: env.LOGIN_MAX_FAILURES_PER_ADDRESS,
    windowSeconds: env.LOGIN_FAILURE_WINDOW_SECONDS,
    lockSeconds: env.LOGIN_LOCK_SECONDS,
    delayMs: env.LOGIN_DELAY_MS,
  });
  const firstParty = new Set(files.clients.filter((client) => client.first_party).map((client) => client.client_id));
  const clientAddress = clientAddressOf(deps.trustedProxies);
  const interactions = interactionRoutes({
    provider: deps.provider,
    db: deps.db,
    hasher: deps.hasher,
    throttle,
    cookieKeys: deps.cookieKeys,
    firstParty: (clientId) => firstParty.has(clientId),
    maxBodyBytes: env.BODY_LIMIT_BYTES,
    clientAddress,
    anonymousOutcome: (action) => deps.metrics?.anonymousOutcomes.inc({ action }),
    resourceServers: files.resource_servers,
  });
  const passkeys = createPasskeyCeremonies({ issuer: () => deps.provider().issuer, challengeKey: challengeKeyOf(deps.cookieKeys) });
  const enroll = enrollRoutes({ db: deps.db, passkeys, cookieKeys: deps.cookieKeys, maxBodyBytes: env.BODY_LIMIT_BYTES, clientAddress });
  const account = accountRoutes({
    provider: deps.provider,
    db: deps.db,
    passkeys,
    authenticators: createAuthenticatorService({ db: deps.db }),
    cookieKeys: deps.cookieKeys,
    maxBodyBytes: env.BODY_LIMIT_BYTES,
    clientAddress,
  });
  // The user's own passkeys (/account/passkeys), enrollment links (/enroll), then the interactions and the pages' assets.
  return ((ctx, next) => account(ctx, () => enroll(ctx, () => interactions(ctx, next)))) satisfies Middleware<AppState>;
}
