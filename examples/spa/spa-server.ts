/**
 * The `spa-demo` single-page app and its API, on one loopback origin:
 *
 *   GET  /                     the page (public/index.html), a strict CSP, no inline script
 *   GET  /app.js               the app (public/app.js): PKCE + DPoP with a non-extractable key
 *   GET  /vendor/oauth4webapi.js  the OAuth library the app uses (from node_modules)
 *   GET  /config.json          issuer, client_id, API URL for the app
 *   GET  /api/orders           the API: a DPoP-bound access token and its proof, checked by custos/verify
 *
 * The browser talks to Custos directly (discovery, /auth, /token with CORS for this origin, the
 * client's registered redirect URI); the server never sees a token except on its API.
 */
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { createRequire } from 'node:module';
import { createAccessTokenVerifier, VerifyError } from '../../src/verify/index.js';

export const SPA_CLIENT_ID = 'spa-demo';
export const ORDERS_RESOURCE = 'https://api.custos.test/orders';

export interface SpaOptions {
  issuer: string;
  port: number;
  clientId?: string;
  /** fetch for the JWKS (e.g. undici with a dispatcher trusting the dev CA). */
  fetch?: typeof fetch;
  log?: (line: string) => void;
}

export interface RunningSpa {
  url: string;
  stop(): Promise<void>;
}

const PUBLIC = path.join(import.meta.dirname, 'public');
const OAUTH4WEBAPI = createRequire(import.meta.url).resolve('oauth4webapi');

/** The page's CSP: scripts from this origin only, connections to this origin and the issuer. */
function contentSecurityPolicy(issuer: string): string {
  const origin = new URL(issuer).origin;
  return `default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self' ${origin}; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;
}

export async function startSpa(options: SpaOptions): Promise<RunningSpa> {
  const clientId = options.clientId ?? SPA_CLIENT_ID;
  const log = options.log ?? (() => {});
  const verifier = createAccessTokenVerifier({ issuer: options.issuer, audience: ORDERS_RESOURCE, jwksUri: `${options.issuer}/jwks`, fetch: options.fetch });
  const csp = contentSecurityPolicy(options.issuer);
  let origin = '';

  const files: Record<string, { file: string; type: string }> = {
    '/': { file: path.join(PUBLIC, 'index.html'), type: 'text/html; charset=utf-8' },
    '/app.js': { file: path.join(PUBLIC, 'app.js'), type: 'text/javascript; charset=utf-8' },
    '/app.css': { file: path.join(PUBLIC, 'app.css'), type: 'text/css; charset=utf-8' },
    '/vendor/oauth4webapi.js': { file: OAUTH4WEBAPI, type: 'text/javascript; charset=utf-8' },
  };

  async function api(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const authorization = req.headers.authorization ?? '';
    const [scheme, token] = authorization.split(' ', 2);
    try {
      if (scheme?.toLowerCase() !== 'dpop' || !token) throw new VerifyError('dpop_proof_required', 'a DPoP-bound token with its proof is required');
      const proof = req.headers.dpop;
      const claims = await verifier.verify(token, {
        dpop: { proof: typeof proof === 'string' ? proof : undefined, method: req.method ?? 'GET', url: `${origin}${req.url}` },
      });
      log(`spa-demo api: ${claims.sub} read orders with a DPoP-bound token`);
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify({ user: claims.sub, client_id: claims.client_id, cnf: claims.cnf, orders: [{ id: 'o-1001', item: 'espresso beans', amount: 4200 }] }));
    } catch (error) {
      if (!(error instanceof VerifyError)) throw error;
      log(`spa-demo api: refused (${error.code})`);
      res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': error.wwwAuthenticate(), 'cache-control': 'no-store' });
      res.end(JSON.stringify({ error: error.code }));
    }
  }

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const handle = async () => {
      if (req.method === 'GET' && url.pathname === '/config.json') {
        res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
        res.end(JSON.stringify({ issuer: options.issuer, client_id: clientId, api: `${origin}/api/orders`, resource: ORDERS_RESOURCE, redirect_uri: `${origin}/` }));
        return;
      }
      if (url.pathname === '/api/orders' && req.method === 'GET') return api(req, res);
      if (url.pathname === '/favicon.ico') {
        res.writeHead(204);
        res.end();
        return;
      }
      const entry = req.method === 'GET' ? files[url.pathname] : undefined;
      if (!entry) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'not_found' }));
        return;
      }
      res.writeHead(200, { 'content-type': entry.type, 'content-security-policy': csp, 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer', 'cache-control': 'no-store' });
      res.end(await readFile(entry.file));
    };
    handle().catch((error: unknown) => {
      log(`spa-demo: ${(error as Error).message}`);
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'server_error' }));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, '127.0.0.1', resolve);
  });
  origin = `http://localhost:${(server.address() as AddressInfo).port}`;
  return {
    url: origin,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
