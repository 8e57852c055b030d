import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Context, Middleware } from 'koa';
import type { Logger } from 'pino';
import { AppError } from './app-error.js';
import { routeLabel, type Metrics } from './metrics.js';

/** State every Custos Koa context carries. */
export interface AppState {
  requestId: string;
  log: Logger;
}

const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** A request's state: its id, and a child logger carrying it, made on first use. */
class RequestState implements AppState {
  #log: Logger | undefined;
  constructor(
    readonly requestId: string,
    private readonly logger: Logger,
  ) {}
  get log(): Logger {
    return (this.#log ??= this.logger.child({ requestId: this.requestId }));
  }
  set log(log: Logger) {
    this.#log = log;
  }
}

/**
 * Reuses a well-formed incoming `X-Request-Id` or makes one; echoes it on the response. Most
 * requests log nothing but their access line, so the request's logger is made when used.
 */
export function startRequest(logger: Logger): (ctx: Context) => void {
  return (ctx) => {
    const incoming = ctx.get('x-request-id');
    const id = REQUEST_ID.test(incoming) ? incoming : randomUUID();
    ctx.state = new RequestState(id, logger);
    ctx.set('X-Request-Id', id);
  };
}

/** {@link startRequest} as a middleware. */
export function requestId(logger: Logger): Middleware<AppState> {
  const start = startRequest(logger);
  return function requestIdMiddleware(ctx, next) {
    start(ctx);
    return next();
  };
}

/**
 * Logs one JSON line per request (method, path without query string, status, duration, request
 * id, client id) and records Prometheus metrics, when the response is finished. Query strings
 * are never logged: they carry codes and state. The line holds only these fields, so it is
 * written without the redaction pass the other log lines go through.
 */
export function recordAccess(logger: Logger, metrics: Metrics): (ctx: Context) => void {
  const access = logger.child({}, { redact: { paths: [] } });
  return (ctx) => {
    const started = process.hrtime.bigint();
    ctx.res.once('finish', () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const route = routeLabel(ctx.path);
      const status = ctx.status;
      metrics.requests.inc({ method: ctx.method, route, status: String(status) });
      metrics.duration.observe({ method: ctx.method, route }, seconds);
      const clientId = (ctx as { oidc?: { client?: { clientId: string } } }).oidc?.client?.clientId;
      access[status >= 500 ? 'error' : 'info'](
        { requestId: ctx.state.requestId, method: ctx.method, path: ctx.path, status, ms: Math.round(seconds * 1e4) / 10, clientId },
        'request',
      );
    });
  };
}

/** {@link recordAccess} as a middleware. */
export function accessLog(logger: Logger, metrics: Metrics): Middleware<AppState> {
  const record = recordAccess(logger, metrics);
  return function accessLogMiddleware(ctx, next) {
    record(ctx);
    return next();
  };
}

/** Error codes of a stream cut by its peer (Node's `aborted`, raw-body's, `stream.finished`'s). */
const ABORT_CODES = new Set(['ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ERR_STREAM_PREMATURE_CLOSE']);

/**
 * Whether `error` only says that the client closed its connection before its request was read
 * (a body shorter than its `Content-Length`, a chunked body cut off): an `aborted` /
 * `ECONNRESET` / premature-close error, or raw-body's `request.aborted`, while the request's
 * socket is gone. The same codes from anything else (PostgreSQL, an outbound call) stay errors.
 */
export function isClientAbort(error: unknown, req: IncomingMessage): boolean {
  const e = error as { code?: unknown; type?: unknown } | null;
  if (typeof e !== 'object' || e === null) return false;
  const aborted = e.type === 'request.aborted' || (typeof e.code === 'string' && ABORT_CODES.has(e.code));
  return aborted && (req.destroyed || req.socket.destroyed);
}

/** The answer to an error no layer below handled: OAuth-style JSON bodies, never a stack trace. */
export function answerError(ctx: Context, error: unknown): void {
  if (isClientAbort(error, ctx.req)) {
    // The client went away mid-request: nobody reads an answer, nothing is wrong here.
    ctx.state.log?.debug({ code: (error as { code?: unknown }).code }, 'client closed the connection mid-request');
    ctx.status = 400;
    ctx.body = { error: 'invalid_request', error_description: 'request aborted' };
    return;
  }
  // oidc-provider errors that escape its own handler (e.g. from a session save) carry `error`/`error_description`.
  const err = error as { status?: number; statusCode?: number; expose?: boolean; message?: string; error?: unknown; error_description?: unknown };
  const status = error instanceof AppError ? error.status : (err.status ?? err.statusCode ?? 500);
  const safeStatus = status >= 400 && status < 600 ? status : 500;
  if (safeStatus >= 500) ctx.state.log?.error({ err: error }, 'unhandled error');
  else ctx.state.log?.debug({ err: error }, 'request rejected');
  ctx.status = safeStatus;
  ctx.type = 'json';
  ctx.body =
    error instanceof AppError
      ? { error: error.code, ...(error.expose ? { error_description: error.message } : {}) }
      : safeStatus >= 500
        ? { error: 'server_error' }
        : typeof err.error === 'string' && err.expose
          ? { error: err.error, ...(typeof err.error_description === 'string' ? { error_description: err.error_description } : {}) }
          : { error: 'invalid_request', ...(err.expose && err.message ? { error_description: err.message } : {}) };
}

/** 413: the body is larger than the limit. */
const tooLarge = (limit: number) => new AppError('invalid_request', `request body exceeds ${limit} bytes`, { status: 413 });

/**
 * The request body, at most `limit` bytes (413 as soon as more arrive, and the connection is
 * closed after the answer); a body {@link bodyLimit} already read is returned as it is.
 */
export async function readBody(ctx: Context, limit: number): Promise<Buffer> {
  const read = (ctx.request as { body?: unknown }).body;
  if (Buffer.isBuffer(read)) return read;
  const chunks: Buffer[] = [];
  let received = 0;
  for await (const chunk of ctx.req.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
    received += chunk.length;
    if (received > limit) {
      ctx.set('Connection', 'close');
      throw tooLarge(limit);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, received);
}

/**
 * The request body limit, on the bytes that arrive, not only on the declared length: a declared
 * `Content-Length` above `limit` is refused before anything reads the body (413); a chunked body
 * (no declared length) is read with {@link readBody}, and the returned promise settles when it is
 * (undefined otherwise). A chunked body within the limit is handed on as `ctx.request.body`,
 * where oidc-provider reads an already-received body.
 */
export function limitBody(limit: number): (ctx: Context) => Promise<void> | undefined {
  return (ctx) => {
    const declared = ctx.request.length;
    if (declared !== undefined) {
      if (declared > limit) throw tooLarge(limit);
    } else if (ctx.req.headers['transfer-encoding'] !== undefined) {
      return readBody(ctx, limit).then((body) => {
        (ctx.request as { body?: unknown }).body = body;
      });
    }
    return undefined;
  };
}

/**
 * The last middleware: 405 with `Allow` (RFC 9110 §15.5.6) for a known path asked with another
 * method, 404 otherwise.
 */
export function notFound(allowedMethods: (path: string) => string[]): Middleware<AppState> {
  return async function notFoundMiddleware(ctx) {
    const allowed = allowedMethods(ctx.path);
    if (allowed.length > 0) {
      ctx.status = 405;
      ctx.set('Allow', allowed.join(', '));
      ctx.body = { error: 'invalid_request', error_description: `${ctx.method} is not allowed here; use ${allowed.join(' or ')}` };
      return;
    }
    ctx.status = 404;
    ctx.body = { error: 'not_found', error_description: 'no such endpoint' };
  };
}
