import parse from 'co-body';
import type { Middleware } from 'koa';
import { AppError } from './app-error.js';
import type { AppState } from './middleware.js';

/** The parsed JSON request body (`undefined` when the request had none). */
export interface JsonBodyState {
  body?: unknown;
}

/** The content codings (RFC 9110 §8.4.1) a JSON body may arrive in; `co-body` decodes them. */
const CONTENT_CODINGS = new Set(['identity', 'gzip', 'deflate', 'br']);

/**
 * Reads a JSON request body (RFC 8259) of at most `limit` bytes into `ctx.state.body`: a declared
 * or streamed body over the limit is 413 before it is buffered, anything but
 * `application/json` is 415, a `Content-Encoding` (RFC 9110 §8.4) other than `identity`, `gzip`,
 * `deflate` or `br` is 415 `unsupported_encoding`, a body that is not valid data of its
 * `Content-Encoding` is 400 `invalid_request`, malformed JSON (or a `__proto__` key) is 400
 * `invalid_json`.
 */
export function jsonBody(limit: number): Middleware<AppState & JsonBodyState> {
  return async function jsonBodyMiddleware(ctx, next) {
    if (ctx.request.length > limit) throw new AppError('body_too_large', `request body exceeds ${limit} bytes`, { status: 413 });
    if (ctx.request.length || ctx.get('transfer-encoding')) {
      if (!ctx.is('application/json')) {
        throw new AppError('unsupported_media_type', 'request bodies must be application/json', { status: 415 });
      }
      const coding = ctx.get('content-encoding') || 'identity';
      if (!CONTENT_CODINGS.has(coding)) {
        throw new AppError('unsupported_encoding', 'unsupported content encoding', { status: 415 });
      }
      try {
        ctx.state.body = await parse.json(ctx, { limit, strict: false });
      } catch (error) {
        // raw-body and co-body errors carry an http-errors `type`/`status`; a decompression
        // error (zlib `Z_DATA_ERROR`, `Z_BUF_ERROR`, brotli `ERR__ERROR_*`) carries neither.
        const err = error as { type?: unknown; status?: unknown };
        if (coding !== 'identity' && err.type === undefined && err.status === undefined) {
          throw new AppError('invalid_request', `request body is not valid ${coding} data (Content-Encoding)`, { status: 400, cause: error });
        }
        throw error;
      }
      if (ctx.state.body === '') ctx.state.body = undefined;
    }
    await next();
  };
}
