import type { Kysely } from 'kysely';
import type { Middleware } from 'koa';
import type { Logger } from 'pino';
import type { Database } from '../db/database.js';
import type { JWK } from 'jose';
import { createRs256SetSigner, type SetSigner } from '../events/security-event-token.js';
import type { AppState } from '../http/middleware.js';
import type { SetSigningJwk } from '../keys/set-signing-keys.js';
import { createSsfAuth, type SsfAuthDeps } from './ssf-auth.js';
import { createSsfRoutes } from './ssf.routes.js';
import { createSsfService, type SsfService } from './ssf.service.js';

/** What the composition root passes to {@link createSsfModule}. */
export interface SsfModuleDeps extends SsfAuthDeps {
  db: Kysely<Database>;
  logger: Logger;
  /** The RS256 SET signing key of the moment (SIGHUP reloads swap it). */
  currentSetKey: () => SetSigningJwk;
  /** The public SET keys served at the SSF `jwks_uri` (current, next, previous). */
  setJwks: () => JWK[];
  /** Replaces the RS256 SET signer. */
  sign?: SetSigner;
  bodyLimitBytes: number;
  longPollMs?: number;
  minVerificationIntervalSeconds?: number;
  inactivityTimeoutSeconds?: number;
  pushHostAllowed?: (host: string) => boolean;
}

/** The SSF 1.0 transmitter room (issue 17): its routes for the public listener, its service (for the push deliverer), and `stop` for shutdown (ends long-poll waits). */
export function createSsfModule(deps: SsfModuleDeps): { routes: Middleware<AppState>; service: SsfService; stop(): Promise<void> } {
  const service = createSsfService({
    db: deps.db,
    issuer: deps.issuer,
    sign: deps.sign ?? createRs256SetSigner(deps.currentSetKey),
    logger: deps.logger,
    longPollMs: deps.longPollMs,
    minVerificationIntervalSeconds: deps.minVerificationIntervalSeconds,
    inactivityTimeoutSeconds: deps.inactivityTimeoutSeconds,
    pushHostAllowed: deps.pushHostAllowed,
  });
  return {
    service,
    routes: createSsfRoutes({ issuer: deps.issuer, service, setJwks: deps.setJwks, authenticate: createSsfAuth(deps), bodyLimitBytes: deps.bodyLimitBytes }),
    stop: async () => service.stop(),
  };
}
