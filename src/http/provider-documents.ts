import type { Middleware } from 'koa';
import type { AppState } from './middleware.js';

/** The public documents oidc-provider renders the same way for every request. */
const DOCUMENT_PATHS: ReadonlySet<string> = new Set(['/jwks', '/.well-known/openid-configuration', '/.well-known/oauth-authorization-server']);

/** Headers that belong to one request, never replayed from the cached answer. */
const PER_REQUEST = new Set(['x-request-id', 'access-control-allow-origin', 'content-length']);

interface Document {
  body: string;
  headers: [string, string | string[]][];
}

/**
 * The JWKS and discovery documents depend only on the serving provider (its keys and
 * configuration; every URL in them derives from the issuer): the provider renders each once, and
 * later `GET`/`HEAD` requests without a query string get the same bytes. The cache belongs to the
 * provider instance, so the provider built on a key reload (SIGHUP) renders its own. CORS is
 * answered per request as oidc-provider does for these endpoints (the `Origin` echoed, `*`
 * without one).
 */
export function providerDocuments<P extends object>(provider: () => P): Middleware<AppState> {
  const cache = new WeakMap<P, Map<string, Document>>();
  async function render(ctx: Parameters<Middleware<AppState>>[0], next: () => Promise<unknown>, documents: Map<string, Document>): Promise<void> {
    await next();
    if (ctx.status !== 200 || ctx.body === null || typeof ctx.body !== 'object' || Buffer.isBuffer(ctx.body)) return;
    const body = JSON.stringify(ctx.body);
    const headers = Object.entries(ctx.response.headers as Record<string, string | string[]>).filter(([name]) => !PER_REQUEST.has(name));
    documents.set(ctx.path, { body, headers });
    ctx.body = body;
  }
  return function providerDocumentsMiddleware(ctx, next) {
    if ((ctx.method !== 'GET' && ctx.method !== 'HEAD') || !DOCUMENT_PATHS.has(ctx.path) || ctx.querystring !== '') return next();
    const serving = provider();
    let documents = cache.get(serving);
    if (!documents) cache.set(serving, (documents = new Map()));
    const document = documents.get(ctx.path);
    if (!document) return render(ctx, next, documents);
    for (const [name, value] of document.headers) ctx.set(name, value);
    ctx.set('Access-Control-Allow-Origin', ctx.get('Origin') || '*');
    ctx.body = document.body;
    return Promise.resolve();
  };
}
