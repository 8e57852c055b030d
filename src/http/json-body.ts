import parse from 'co-body';
import type { Middleware } from 'koa';
import { AppError } from './app-error.js';
import type { AppState } from './middleware.js';

/** The parsed JSON request body (`undefined` when the request had none). */
export interface JsonBodyState {
  body?: unknown;
}

/**
 * Reads a JSON request body (RFC 8259) of at most `limit` bytes into `ctx.state.body`: a declared
 * or streamed body over the limit is 413 before it is buffered, anything but
 * `application/json` is 415, malformed JSON (or a `__proto__` key) is 400 `invalid_json`.
 */
export function jsonBody(limit: number): Middleware<AppState & JsonBodyState> {
  return async function jsonBodyMiddleware(ctx, next) {
    if (ctx.request.length > limit) throw new AppError('body_too_large', `request body exceeds ${limit} bytes`, { status: 413 });
    if (ctx.request.length || ctx.get('transfer-encoding')) {
      if (!ctx.is('application/json')) {
        throw new AppError('unsupported_media_type', 'request bodies must be application/json', { status: 415 });
      }
      ctx.state.body = await parse.json(ctx, { limit, strict: false });
      if (ctx.state.body === '') ctx.state.body = undefined;
    }
    await next();
  };
}
