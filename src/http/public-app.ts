import Koa from 'koa';
import compose from 'koa-compose';
import type Provider from 'oidc-provider';
import type { Logger } from 'pino';
import type { BlockList } from 'node:net';
import { allowedMethods, unauthorizedClientForDisallowedGrant } from '../oidc/internals.js';
import { clientCertificate } from './client-certificate.js';
import { issuerOrigin } from './issuer-origin.js';
import { accessLog, bodyLimit, errorHandler, notFound, requestId, type AppState } from './middleware.js';
import type { Metrics } from './metrics.js';
import { OPS_PATHS, opsRoutes } from './ops.routes.js';
import { providerDocuments } from './provider-documents.js';

export interface PublicAppDeps {
  /** The configured issuer: every URL the app emits derives from it. */
  issuer: string;
  logger: Logger;
  metrics: Metrics;
  bodyLimitBytes: number;
  ready: () => Promise<boolean>;
  /** The provider currently serving; swapped on SIGHUP key reload. */
  provider: () => Provider;
  /** Extra routes mounted before the provider (interactions, later rooms). */
  routes?: Koa.Middleware<AppState>[];
  /** Addresses allowed to pass the client certificate in `Client-Cert` (RFC 9440). */
  trustedProxies?: BlockList;
  /** Addresses allowed to read `/metrics`. */
  metricsAllow: BlockList;
  /**
   * Keys signing cookies (the provider's `cookies.keys`). oidc-provider sets its cookies through
   * this app's context, so the app must hold the same keys for them to be signed.
   */
  cookieKeys?: string[];
}

/** The public listener's Koa app: ops endpoints, then oidc-provider mounted at the issuer root. */
export function createPublicApp(deps: PublicAppDeps): Koa<AppState> {
  const app = new Koa<AppState>();
  app.silent = true;
  if (deps.cookieKeys) app.keys = deps.cookieKeys;
  const providerMiddleware = new WeakMap<Provider, Koa.Middleware>();
  const mounted = (provider: Provider): Koa.Middleware => {
    let middleware = providerMiddleware.get(provider);
    if (!middleware) {
      middleware = compose(provider.middleware as Koa.Middleware[]);
      providerMiddleware.set(provider, middleware);
    }
    return middleware;
  };
  app.use(requestId(deps.logger));
  app.use(accessLog(deps.logger, deps.metrics));
  app.use(errorHandler());
  app.use(issuerOrigin(deps.issuer));
  app.use(bodyLimit(deps.bodyLimitBytes));
  app.use(opsRoutes({ metrics: deps.metrics, ready: deps.ready, metricsAllow: deps.metricsAllow }));
  app.use(clientCertificate({ proxies: deps.trustedProxies }));
  for (const route of deps.routes ?? []) app.use(route);
  app.use(unauthorizedClientForDisallowedGrant());
  app.use(providerDocuments(deps.provider));
  app.use(function oidcProvider(ctx, next) {
    return mounted(deps.provider())(ctx, next);
  });
  app.use(notFound((path) => (OPS_PATHS.has(path) ? ['GET', 'HEAD'] : allowedMethods(deps.provider(), path))));
  return app;
}
