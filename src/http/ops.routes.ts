import type { BlockList } from 'node:net';
import type { Middleware } from 'koa';
import { addressAllowed } from './address-allow.js';
import type { AppState } from './middleware.js';
import type { Metrics } from './metrics.js';

/**
 * `/healthz` (process alive), `/readyz` (dependencies reachable, 503 otherwise),
 * `/metrics` (Prometheus text exposition format, only to `metricsAllow` addresses: it reveals
 * traffic and error volumes).
 */
/** The paths {@link opsRoutes} answers (GET and HEAD). */
export const OPS_PATHS: ReadonlySet<string> = new Set(['/healthz', '/readyz', '/metrics']);

export function opsRoutes(deps: { metrics: Metrics; ready: () => Promise<boolean>; metricsAllow: BlockList }): Middleware<AppState> {
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
        if (!addressAllowed(deps.metricsAllow, ctx.req.socket.remoteAddress)) {
          ctx.status = 403;
          ctx.body = { error: 'forbidden', error_description: 'metrics are served to METRICS_ALLOW addresses only' };
          return undefined;
        }
        ctx.type = deps.metrics.registry.contentType;
        ctx.body = await deps.metrics.registry.metrics();
        return undefined;
      default:
        return next();
    }
  };
}
