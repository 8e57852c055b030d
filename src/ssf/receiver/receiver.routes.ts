import parse from 'co-body';
import type { Context, Middleware } from 'koa';
import type { Logger } from 'pino';
import type { AppState } from '../../http/middleware.js';
import type { ReceiverMetrics } from './receiver-metrics.js';
import type { ReceiverService } from './receiver.service.js';
import { KeysUnavailable, SetRefused, type PushErrorCode, type SetVerifier } from './set-verifier.js';

/** Where trusted transmitters push SETs (RFC 8935), on the public listener. */
export const RECEIVER_PUSH_PATH = '/ssf/receiver/events';

export interface ReceiverRoutesDeps {
  verify: SetVerifier;
  service: ReceiverService;
  logger: Logger;
  metrics: ReceiverMetrics;
  bodyLimitBytes: number;
}

/**
 * RFC 8935 push endpoint: `POST /ssf/receiver/events` with an `application/secevent+jwt` body.
 * 202 (empty body) when the SET was verified and handled — also when its subject is no Custos user
 * (the answer never tells which users exist); 400 `{err, description}` (RFC 8935 §2.3) when it is
 * refused, a replayed `jti` included (`invalid_request`); 415/413 for a wrong media type or an
 * oversized body; 503 when the transmitter's keys cannot be fetched (the transmitter retries).
 */
export function createReceiverRoutes(deps: ReceiverRoutesDeps): Middleware<AppState> {
  const log = deps.logger.child({ component: 'ssf-receiver' });

  function fail(ctx: Context, status: number, err: string, description: string, transmitter = 'unknown', reason: string = err): void {
    deps.metrics.refused.inc({ transmitter, reason });
    log.warn({ transmitter, reason, description }, 'SET refused');
    ctx.status = status;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { err, description };
  }

  async function push(ctx: Context): Promise<void> {
    deps.metrics.received.inc();
    if (!ctx.is('application/secevent+jwt')) return fail(ctx, 415, 'invalid_request', 'the body must be application/secevent+jwt (RFC 8935 §2.1)', undefined, 'unsupported_media_type');
    if (ctx.request.length > deps.bodyLimitBytes) return fail(ctx, 413, 'invalid_request', `the body exceeds ${deps.bodyLimitBytes} bytes`, undefined, 'body_too_large');
    let token: string;
    try {
      token = (await parse.text(ctx, { limit: deps.bodyLimitBytes, encoding: 'utf8' })).trim();
    } catch (error) {
      const status = (error as { status?: number }).status === 413 ? 413 : 400;
      return fail(ctx, status, 'invalid_request', status === 413 ? `the body exceeds ${deps.bodyLimitBytes} bytes` : 'the body cannot be read', undefined, status === 413 ? 'body_too_large' : 'invalid_request');
    }
    let set;
    try {
      set = await deps.verify(token, { authorization: ctx.get('authorization') || undefined });
    } catch (error) {
      if (error instanceof SetRefused) return fail(ctx, 400, error.err, error.description, error.transmitter);
      if (error instanceof KeysUnavailable) {
        log.error({ err: error.cause }, error.message);
        ctx.set('Retry-After', '30');
        return fail(ctx, 503, 'temporarily_unavailable', 'the transmitter keys cannot be fetched now; retry later', error.transmitter, 'keys_unavailable');
      }
      throw error;
    }
    const transmitter = set.transmitter.id;
    const { outcome, action } = await deps.service.receive(set, { clientAddress: ctx.ip, requestId: (ctx.state as AppState).requestId });
    if (outcome === 'replayed') return fail(ctx, 400, 'invalid_request' satisfies PushErrorCode, 'this SET (jti) was received before', transmitter, 'replayed');
    deps.metrics.accepted.inc({ transmitter, outcome });
    log.info({ transmitter, jti: set.jti, event: set.eventType, outcome, action }, 'SET received');
    // RFC 8935 §2.2: 202 with an empty body.
    ctx.status = 202;
    ctx.body = '';
  }

  return function receiverRoutes(ctx, next) {
    if (ctx.path !== RECEIVER_PUSH_PATH) return next();
    if (ctx.method !== 'POST') {
      ctx.status = 405;
      ctx.set('Allow', 'POST');
      ctx.body = { err: 'invalid_request', description: `${ctx.method} is not allowed here; use POST` };
      return;
    }
    return push(ctx as unknown as Context);
  };
}
