import type { Server } from 'node:https';
import type { Kysely } from 'kysely';
import Koa from 'koa';
import type { Logger } from 'pino';
import { adminAuth, type AdminAuthDeps } from './admin-auth.js';
import { adminErrorHandler } from './admin-errors.js';
import { adminOpenApiDocument, adminRouter, defineRoute, type AdminRoute } from './admin-router.js';
import { closeServer, listenHttps, type TlsMaterial } from './https-server.js';
import { jsonBody } from './json-body.js';
import { accessLog, requestId, type AppState } from './middleware.js';
import type { Metrics } from './metrics.js';
import type { Database } from '../db/database.js';
import { createRefusalAudit } from '../iam/refusal-audit.js';

/** Admin request bodies are small JSON documents. */
export const ADMIN_BODY_LIMIT_BYTES = 16 * 1024;

export interface AdminAppDeps extends AdminAuthDeps {
  logger: Logger;
  metrics: Metrics;
  routes: readonly AdminRoute[];
  /** Where refused requests are audited (denied: 401/403; failure: refused mutations). */
  db: Kysely<Database>;
}

/**
 * The admin listener's Koa app: request id, access log, one error middleware, the admin token
 * check, JSON bodies, then the routes and `GET /admin/openapi.json` (generated once).
 */
export function createAdminApp(deps: AdminAppDeps): Koa<AppState> {
  const openApi = defineRoute({
    method: 'get',
    path: '/admin/openapi.json',
    operationId: 'getOpenApiDocument',
    summary: 'This OpenAPI 3.1 document',
    status: 200,
    errors: {},
    handle: async () => document,
  });
  const routes = [...deps.routes, openApi];
  const document = adminOpenApiDocument(routes, { issuer: deps.issuer, version: '1' });
  const app = new Koa<AppState>();
  app.silent = true;
  const logger = deps.logger.child({ listener: 'admin' });
  app.use(requestId(logger));
  app.use(accessLog(logger, deps.metrics));
  app.use(adminErrorHandler(createRefusalAudit(deps.db, deps.logger)));
  app.use(adminAuth(deps) as Koa.Middleware<AppState>);
  app.use(jsonBody(ADMIN_BODY_LIMIT_BYTES) as Koa.Middleware<AppState>);
  app.use(adminRouter(routes) as Koa.Middleware<AppState>);
  return app;
}

/** A running admin listener. */
export interface AdminListener {
  server: Server;
  port: number;
  close(): Promise<void>;
}

/**
 * Starts the admin API on its own HTTPS listener. The TLS handshake itself requires a client
 * certificate chaining to the client CA (`requestCert` + `rejectUnauthorized`): a client
 * without one never reaches HTTP.
 */
export async function startAdminListener(
  deps: AdminAppDeps & { tls: TlsMaterial; host: string; port: number; shutdownTimeoutMs: number },
): Promise<AdminListener> {
  const app = createAdminApp(deps);
  const { server, port } = await listenHttps(app.callback(), deps.tls, { host: deps.host, port: deps.port, requireClientCert: true });
  return { server, port, close: () => closeServer(server, deps.shutdownTimeoutMs) };
}
