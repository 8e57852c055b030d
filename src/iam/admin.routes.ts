import type { Kysely } from 'kysely';
import type Provider from 'oidc-provider';
import type { Logger } from 'pino';
import type { Database } from '../db/database.js';
import type { AdminRoute } from '../http/admin-router.js';
import type { MutationWriters } from './admin-mutation.js';
import { auditRoutes } from './audit.routes.js';
import { createAuditService } from './audit.service.js';
import type { PasswordHasher } from './password-hasher.js';
import { roleRoutes } from './roles.routes.js';
import { createSessionService } from './session.service.js';
import { sessionRoutes } from './sessions.routes.js';
import { createUserService } from './user.service.js';
import { userRoutes } from './users.routes.js';
import { createAuthenticatorService } from '../signin/authenticator.service.js';
import { authenticatorRoutes } from '../signin/authenticators.routes.js';

export interface AdminRoutesDeps {
  db: Kysely<Database>;
  hasher: PasswordHasher;
  provider: () => Provider;
  logger: Logger;
  /** Audit and outbox writers of every mutation (the real repositories unless a test injects a failure). */
  writers?: MutationWriters;
}

/** Every admin API route, wired to its service. */
export function createAdminRoutes(deps: AdminRoutesDeps): AdminRoute[] {
  const sessions = createSessionService(deps);
  const users = createUserService({ ...deps, sessions });
  return [
    ...userRoutes(users),
    ...roleRoutes(users),
    ...sessionRoutes(sessions),
    ...authenticatorRoutes(createAuthenticatorService({ ...deps, issuer: () => deps.provider().issuer })),
    ...auditRoutes(createAuditService(deps)),
  ];
}
