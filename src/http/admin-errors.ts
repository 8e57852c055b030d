import type { TLSSocket } from 'node:tls';
import type { Middleware } from 'koa';
import { AppError } from './app-error.js';
import { isClientAbort, type AppState } from './middleware.js';

/** One invalid input of an admin request: where it is, which field, what is wrong. */
export interface FieldIssue {
  in: 'path' | 'query' | 'body';
  field: string;
  message: string;
}

/** An {@link AppError} naming the offending input fields (admin API bodies carry them as `fields`). */
export class FieldError extends AppError {
  readonly fields: FieldIssue[];

  constructor(code: string, message: string, fields: FieldIssue[], options: { status?: number; cause?: unknown } = {}) {
    super(code, message, { status: options.status ?? 400, expose: true, cause: options.cause });
    this.fields = fields;
  }
}

/** http-errors `type`s (raw-body, co-body) mapped to stable admin codes. */
const BODY_ERRORS: Record<string, { code: string; status: number; description: string }> = {
  'entity.too.large': { code: 'body_too_large', status: 413, description: 'request body is too large' },
  'entity.parse.failed': { code: 'invalid_json', status: 400, description: 'request body is not valid JSON' },
  'encoding.unsupported': { code: 'unsupported_encoding', status: 415, description: 'unsupported content encoding' },
  'request.size.invalid': { code: 'invalid_request', status: 400, description: 'request size did not match content-length' },
  'request.aborted': { code: 'invalid_request', status: 400, description: 'request aborted' },
};

/** The answer to a request whose client closed the connection before it was read (nobody reads it). */
const ABORTED = { status: 400, body: { error: 'invalid_request', error_description: 'request aborted' }, headers: {} };

/**
 * The admin app's one error middleware: `{ error, error_description, fields? }` with a stable
 * `error` code; 5xx bodies say `server_error` only, and the detail goes to the log.
 */
export function adminErrorHandler(
  /** Audits a refused request (4xx), after the answer is set; never throws. */
  onRefusal?: (refusal: { status: number; code: string; method: string; path: string; actor?: string; clientAddress?: string; requestId?: string; socket: TLSSocket }) => Promise<void>,
): Middleware<AppState> {
  return async function adminErrorMiddleware(ctx, next) {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) {
        throw new AppError('not_found', 'no such endpoint', { status: 404 });
      }
    } catch (error) {
      const abort = isClientAbort(error, ctx.req);
      const { status, body, headers } = abort ? ABORTED : describe(error);
      // The client went away mid-request: nobody reads an answer, nothing is wrong here.
      if (abort) ctx.state.log?.debug({ code: (error as { code?: unknown }).code }, 'client closed the connection mid-request');
      else if (status >= 500) ctx.state.log?.error({ err: error }, 'unhandled error');
      // Only the code: a parse error carries the raw body (which may hold a password).
      else ctx.state.log?.debug({ code: body.error }, 'request rejected');
      ctx.status = status;
      for (const [name, value] of Object.entries(headers)) ctx.set(name, value);
      ctx.type = 'json';
      ctx.body = body;
      if (onRefusal && status >= 400 && status < 500) {
        await onRefusal({
          status,
          code: String(body.error),
          method: ctx.method,
          path: ctx.path,
          actor: (ctx.state as { admin?: { actor: string } }).admin?.actor,
          clientAddress: ctx.ip,
          requestId: ctx.state.requestId,
          socket: ctx.req.socket as TLSSocket,
        });
      }
    }
  };
}

function describe(error: unknown): { status: number; body: Record<string, unknown>; headers: Record<string, string> } {
  if (error instanceof AppError) {
    const status = error.status >= 400 && error.status < 600 ? error.status : 500;
    if (status >= 500 && !error.expose) return { status, body: { error: 'server_error', error_description: 'internal error' }, headers: {} };
    const body: Record<string, unknown> = { error: error.code, error_description: error.message };
    if (error instanceof FieldError && error.fields.length > 0) body.fields = error.fields;
    const headers = (error as { headers?: Record<string, string> }).headers ?? {};
    return { status, body, headers };
  }
  const err = error as { status?: number; type?: string; headers?: Record<string, string> };
  const known = err.type ? BODY_ERRORS[err.type] : undefined;
  if (known) return { status: known.status, body: { error: known.code, error_description: known.description }, headers: {} };
  if (error instanceof SyntaxError && err.status === 400) {
    return { status: 400, body: { error: 'invalid_json', error_description: 'request body is not valid JSON' }, headers: {} };
  }
  if (err.status === 405) {
    return { status: 405, body: { error: 'method_not_allowed', error_description: 'method not allowed on this path' }, headers: err.headers ?? {} };
  }
  if (err.status === 501) return { status: 405, body: { error: 'method_not_allowed', error_description: 'method not supported' }, headers: {} };
  return { status: 500, body: { error: 'server_error', error_description: 'internal error' }, headers: {} };
}
