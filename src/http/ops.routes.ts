import type { Middleware } from 'koa';
import type { AppState } from './middleware.js';
import type { Metrics } from './metrics.js';

/**
 * `/healthz` (process alive), `/readyz` (dependencies reachable, 503 otherwise),
 * `/metrics` (Prometheus text exposition format).
 */
export function opsRoutes(deps: { metrics: Metrics; ready: () => Promise<boolean> }): Middleware<AppState> {
  return async function opsMiddleware(ctx, next) {
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return next();
    switch (ctx.path) {
      case '/healthz':
        ctx.body = { status: 'ok' };
        return undefined;
      case '/readyz': {
        const ready = await deps.ready();
        ctx.status = ready ? 200 : 503;
        ctx.body = { status: ready ? 'ready' : 'unavailable' };
        return undefined;
      }
      case '/metrics':
        ctx.type = deps.metrics.registry.contentType;
        ctx.body = await deps.metrics.registry.metrics();
        return undefined;
      default:
        return next();
    }
  };
}
