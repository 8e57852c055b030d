import Koa from 'koa';
import compose from 'koa-compose';
import type Provider from 'oidc-provider';
import type { Logger } from 'pino';
import type { BlockList } from 'node:net';
import { allowedMethods } from '../oidc/internals.js';
import { clientCertificate } from './client-certificate.js';
import { pinToIssuer } from './issuer-origin.js';
import { answerError, limitBody, notFound, recordAccess, startRequest, type AppState } from './middleware.js';
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

/**
 * What every request goes through first, in one async frame rather than five middleware layers
 * (each layer costs its own promises on every request): its request id and access line, the
 * error answer for whatever the layers after it throw, the issuer's `Host`, the body limit.
 */
function edge(deps: Pick<PublicAppDeps, 'logger' | 'metrics' | 'issuer' | 'bodyLimitBytes'>): Koa.Middleware<AppState> {
  const start = startRequest(deps.logger);
  const record = recordAccess(deps.logger, deps.metrics);
  const pin = pinToIssuer(deps.issuer);
  const limit = limitBody(deps.bodyLimitBytes);
  return async function edgeMiddleware(ctx, next) {
    start(ctx);
    record(ctx);
    try {
      pin(ctx);
      const reading = limit(ctx);
      if (reading) await reading;
      await next();
    } catch (error) {
      answerError(ctx, error);
    }
  };
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
  app.use(edge(deps));
  app.use(opsRoutes({ metrics: deps.metrics, ready: deps.ready, metricsAllow: deps.metricsAllow }));
  app.use(clientCertificate({ proxies: deps.trustedProxies }));
  for (const route of deps.routes ?? []) app.use(route);
  app.use(providerDocuments(deps.provider));
  app.use(function oidcProvider(ctx, next) {
    return mounted(deps.provider())(ctx, next);
  });
  app.use(notFound((path) => (OPS_PATHS.has(path) ? ['GET', 'HEAD'] : allowedMethods(deps.provider(), path))));
  return app;
}
