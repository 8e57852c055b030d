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
  async function answer(ctx: Parameters<Middleware<AppState>>[0]): Promise<void> {
    switch (ctx.path) {
      case '/healthz':
        ctx.body = { status: 'ok' };
        return;
      case '/readyz': {
        const ready = await deps.ready();
        ctx.status = ready ? 200 : 503;
        ctx.body = { status: ready ? 'ready' : 'unavailable' };
        return;
      }
      default:
        if (!addressAllowed(deps.metricsAllow, ctx.req.socket.remoteAddress)) {
          ctx.status = 403;
          ctx.body = { error: 'forbidden', error_description: 'metrics are served to METRICS_ALLOW addresses only' };
          return;
        }
        try {
          ctx.body = await deps.metrics.exposition();
          ctx.type = deps.metrics.registry.contentType;
        } catch {
          // A cluster worker could not collect every worker's metrics (one is starting or stopping).
          ctx.status = 503;
          ctx.set('Retry-After', '1');
          ctx.body = { error: 'temporarily_unavailable', error_description: 'metrics of every worker could not be collected; try again' };
        }
    }
  }
  return function opsMiddleware(ctx, next) {
    if ((ctx.method !== 'GET' && ctx.method !== 'HEAD') || !OPS_PATHS.has(ctx.path)) return next();
    return answer(ctx);
  };
}
