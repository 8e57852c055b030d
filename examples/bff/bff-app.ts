/**
 * A tiny web BFF (backend for frontend) logging users in through Custos with `openid-client`:
 * authorization code flow with PKCE (S256), state and nonce; the ID token's signature verified
 * against the issuer's JWKS; tokens kept server-side, the browser holding only an opaque
 * session cookie; RP-initiated logout; and an OpenID Connect Back-Channel Logout 1.0 receiver.
 *
 * Used by `npm run example:bff` (examples/web-bff.ts) and, as the fixture BFF, by the browser
 * tests (test/fixtures/bff.ts).
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRemoteJWKSet, customFetch as joseFetch, decodeJwt, jwtVerify, type JWTPayload } from 'jose';
import * as oidc from 'openid-client';
import { Agent, fetch as undiciFetch } from 'undici';
import { exchangeCommand } from './exchange-command.js';

export interface BffConnectOptions {
  /** The Custos issuer (discovery at `${issuer}/.well-known/openid-configuration`). */
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** CA certificate(s) trusted for the issuer's TLS certificate (the dev CA in development). */
  caPem: string;
  /** Requested scopes. */
  scope?: string;
  /**
   * Where the dev keys are, as the user would type it from the repository root (default
   * `keys/dev`): the page's token exchange command names the dev CA and orders-api's certificate there.
   */
  keysDir?: string;
}

/** What a request handler of a {@link BffExtension} gets. */
export interface BffRequestContext {
  url: URL;
  /** The `bff_session` cookie's value, also after the session ended (e.g. by back-channel logout). */
  cookieId?: string;
  session?: BffSession;
  /** Writes an HTML page (the BFF's layout and headers). */
  page(status: number, body: string): void;
}

/** Extra pages and buttons (the `npm run demo` orders and revocation actions). */
export interface BffExtension {
  /** HTML added to the home page (below the claims when signed in). */
  home(context: { cookieId?: string; session?: BffSession }): string;
  /** Sees every request first; returns true when it answered. */
  handle(req: IncomingMessage, res: ServerResponse, context: BffRequestContext): Promise<boolean>;
}

/** One logged-in browser, server-side. */
export interface BffSession {
  id: string;
  /** The verified ID token claims (sub, roles, email, sid, ...). */
  claims: JWTPayload & { sid?: string; roles?: string[]; email?: string };
  idToken: string;
  accessToken: string;
  refreshToken?: string;
}

/** A back-channel logout token the BFF received and verified. */
export interface ReceivedLogoutToken {
  token: string;
  header: Record<string, unknown>;
  claims: JWTPayload & { sid?: string; events?: Record<string, unknown> };
  /** Local sessions it ended. */
  endedSessions: number;
}

export interface RunningBff {
  /** Base URL, e.g. `http://localhost:3000`. */
  url: string;
  redirectUri: string;
  postLogoutRedirectUri: string;
  backchannelLogoutUri: string;
  /** Discovers the issuer; requests before this answer 503. */
  connect(options: BffConnectOptions): Promise<void>;
  /** The openid-client configuration (after connect). */
  config(): oidc.Configuration;
  sessions: Map<string, BffSession>;
  logoutTokens: ReceivedLogoutToken[];
  /** The last `error` an authorization response carried (e.g. `access_denied`). */
  lastAuthorizationError?: string;
  close(): Promise<void>;
}

const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
const escape = (value: unknown) => String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function cookies(req: IncomingMessage): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const index = part.indexOf('=');
    if (index > 0) out.set(part.slice(0, index).trim(), part.slice(index + 1).trim());
  }
  return out;
}

async function readForm(req: IncomingMessage, limit = 16 * 1024): Promise<URLSearchParams> {
  let body = '';
  for await (const chunk of req) {
    body += String(chunk);
    if (body.length > limit) throw new Error('body too large');
  }
  return new URLSearchParams(body);
}

function page(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'content-security-policy': "default-src 'none'; form-action 'self' https:; base-uri 'none'",
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(`<!doctype html><html lang="en"><meta charset="utf-8"><title>Demo BFF</title><body>${body}</body></html>`);
}

/** Starts the BFF's HTTP listener (port 0 picks a free port); then call `connect`. A busy port rejects with one line. */
export async function startBff(options: { port?: number; host?: string; publicHost?: string; extension?: BffExtension } = {}): Promise<RunningBff> {
  let configuration: oidc.Configuration | undefined;
  let jwks: ReturnType<typeof createRemoteJWKSet> | undefined;
  let agent: Agent | undefined;
  let connectOptions: BffConnectOptions | undefined;
  const pending = new Map<string, { state: string; nonce: string; verifier: string }>();
  const sessions = new Map<string, BffSession>();
  const logoutTokens: ReceivedLogoutToken[] = [];

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) page(res, 500, `<h1>Error</h1><p>${escape((error as Error).message)}</p>`);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(new Error(error.code === 'EADDRINUSE' ? `port ${options.port} is already in use (set BFF_PORT to another port)` : `cannot listen on port ${options.port ?? 0}: ${error.code ?? error.message}`)),
    );
    server.listen(options.port ?? 0, options.host ?? '::', resolve);
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${options.publicHost ?? 'localhost'}:${port}`;

  const bff: RunningBff = {
    url,
    redirectUri: `${url}/callback`,
    postLogoutRedirectUri: `${url}/`,
    backchannelLogoutUri: `${url}/backchannel-logout`,
    sessions,
    logoutTokens,
    async connect(connect) {
      connectOptions = connect;
      agent = new Agent({ connect: { ca: connect.caPem } });
      const trusted = ((input: string | URL, init?: object) => undiciFetch(input, { ...init, dispatcher: agent })) as unknown as typeof fetch;
      configuration = await oidc.discovery(new URL(connect.issuer), connect.clientId, undefined, oidc.ClientSecretBasic(connect.clientSecret), {
        [oidc.customFetch]: trusted as never,
      });
      jwks = createRemoteJWKSet(new URL(configuration.serverMetadata().jwks_uri!), { [joseFetch]: trusted as never });
    },
    config() {
      if (!configuration) throw new Error('BFF not connected');
      return configuration;
    },
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Keep-alive connections of a browser would hold the close until they time out.
      server.closeAllConnections();
      await closed;
      await agent?.close();
    },
  };

  function accessTokenSection(accessToken: string): string {
    let claims: string;
    try {
      claims = JSON.stringify(decodeJwt(accessToken), null, 2);
    } catch {
      return '<h2>Access token</h2><p>Opaque (not a JWT): the API introspects it.</p>';
    }
    const command = exchangeCommand({ issuer: connectOptions!.issuer, keysDir: connectOptions!.keysDir ?? 'keys/dev', accessToken });
    return (
      `<h2>Access token claims (decoded; the API it is for verifies it, not this BFF)</h2><pre id="access-claims">${escape(claims)}</pre>` +
      '<h2>Exchange it for a resume token (RFC 8693)</h2>' +
      '<p>As <code>orders-api</code>, the API this token is for, from the repository root. ' +
      '<strong>The command contains your access token</strong>: this is your own page; paste it only into your own terminal.</p>' +
      // A textarea wraps the long token on screen and copies it unbroken.
      `<textarea id="exchange-command" readonly rows="16" cols="110" spellcheck="false">${escape(command)}</textarea>`
    );
  }

  async function verifyIdToken(idToken: string): Promise<BffSession['claims']> {
    const { payload } = await jwtVerify(idToken, jwks!, {
      issuer: configuration!.serverMetadata().issuer,
      audience: connectOptions!.clientId,
      algorithms: ['ES256'],
    });
    return payload as BffSession['claims'];
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestUrl = new URL(req.url ?? '/', url);
    if (!configuration) return page(res, 503, '<p>Not connected to the identity provider yet.</p>');
    const jar = cookies(req);
    const cookieId = jar.get('bff_session') || undefined;
    const session = sessions.get(cookieId ?? '');
    const extension = options.extension;
    if (extension && (await extension.handle(req, res, { url: requestUrl, cookieId, session, page: (status, body) => page(res, status, body) }))) return;

    if (req.method === 'GET' && requestUrl.pathname === '/') {
      const extra = extension?.home({ cookieId, session }) ?? '';
      if (!session) return page(res, 200, `<h1>Demo BFF</h1><p>You are not signed in.</p><p><a id="login" href="/login">Sign in</a></p>${extra}`);
      return page(
        res,
        200,
        `<h1>Demo BFF</h1><p id="user">Signed in as <strong>${escape(session.claims.preferred_username ?? session.claims.sub)}</strong></p>` +
          `<p id="acr">Signed in with <code>${escape(String(session.claims.acr ?? 'unknown'))}</code> (amr: <code>${escape(JSON.stringify(session.claims.amr ?? []))}</code>)</p>` +
          `<p><a id="step-up" href="/login?acr=urn:custos:acr:mfa">Confirm it is you with a second step</a> · <a id="step-up-phr" href="/login?acr=urn:custos:acr:phr">Ask for phishing-resistant sign-in</a></p>` +
          `<form method="post" action="/logout"><button id="logout" type="submit">Sign out</button></form>` +
          extra +
          `<h2>ID token claims (signature verified)</h2><pre id="claims">${escape(JSON.stringify(session.claims, null, 2))}</pre>` +
          accessTokenSection(session.accessToken),
      );
    }

    if (req.method === 'GET' && requestUrl.pathname === '/login') {
      const id = randomBytes(16).toString('base64url');
      const verifier = oidc.randomPKCECodeVerifier();
      const entry = { state: oidc.randomState(), nonce: oidc.randomNonce(), verifier };
      pending.set(id, entry);
      const target = oidc.buildAuthorizationUrl(configuration, {
        redirect_uri: bff.redirectUri,
        scope: connectOptions!.scope ?? 'openid email profile orders orders:read',
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
        state: entry.state,
        nonce: entry.nonce,
        // `/login?acr=...`: ask for a stronger sign-in (step-up); Custos asks only for what is missing.
        ...(/^urn:custos:acr:(pwd|mfa|phr)$/.test(requestUrl.searchParams.get('acr') ?? '') ? { acr_values: requestUrl.searchParams.get('acr')! } : {}),
      });
      res.writeHead(303, { location: target.href, 'set-cookie': `bff_login=${id}; Path=/; HttpOnly; SameSite=Lax; Max-Age=600` });
      return void res.end();
    }

    if (req.method === 'GET' && requestUrl.pathname === '/callback') {
      const entry = pending.get(jar.get('bff_login') ?? '');
      pending.delete(jar.get('bff_login') ?? '');
      const error = requestUrl.searchParams.get('error');
      if (error) {
        bff.lastAuthorizationError = error;
        return page(res, 400, `<h1>Sign-in did not complete</h1><p id="error">${escape(error)}</p><p><a href="/">Back</a></p>`);
      }
      if (!entry) return page(res, 400, '<p>No sign-in in progress.</p>');
      const tokens = await oidc.authorizationCodeGrant(configuration, requestUrl, {
        pkceCodeVerifier: entry.verifier,
        expectedState: entry.state,
        expectedNonce: entry.nonce,
        idTokenExpected: true,
      });
      const claims = await verifyIdToken(tokens.id_token!);
      const id = randomBytes(24).toString('base64url');
      sessions.set(id, { id, claims, idToken: tokens.id_token!, accessToken: tokens.access_token, refreshToken: tokens.refresh_token });
      res.writeHead(303, { location: '/', 'set-cookie': [`bff_session=${id}; Path=/; HttpOnly; SameSite=Lax`, 'bff_login=; Path=/; Max-Age=0'] });
      return void res.end();
    }

    if (req.method === 'POST' && requestUrl.pathname === '/logout') {
      if (!session) {
        res.writeHead(303, { location: '/' });
        return void res.end();
      }
      sessions.delete(session.id);
      const target = oidc.buildEndSessionUrl(configuration, { id_token_hint: session.idToken, post_logout_redirect_uri: bff.postLogoutRedirectUri });
      res.writeHead(303, { location: target.href, 'set-cookie': 'bff_session=; Path=/; Max-Age=0' });
      return void res.end();
    }

    if (req.method === 'POST' && requestUrl.pathname === '/backchannel-logout') {
      const token = (await readForm(req)).get('logout_token');
      try {
        if (!token) throw new Error('logout_token missing');
        // OpenID Connect Back-Channel Logout 1.0 §2.6: signature, iss, aud, iat, typ, events, sid/sub, no nonce.
        const { payload, protectedHeader } = await jwtVerify(token, jwks!, {
          issuer: configuration.serverMetadata().issuer,
          audience: connectOptions!.clientId,
          algorithms: ['ES256'],
          typ: 'logout+jwt',
          maxTokenAge: '5m',
        });
        const events = payload.events as Record<string, unknown> | undefined;
        if (!events || typeof events[BACKCHANNEL_EVENT] !== 'object') throw new Error('no back-channel logout event');
        if ('nonce' in payload) throw new Error('a logout token has no nonce');
        if (!payload.sid && !payload.sub) throw new Error('sid or sub required');
        let ended = 0;
        for (const [id, held] of sessions) {
          if ((payload.sid && held.claims.sid === payload.sid) || (!payload.sid && held.claims.sub === payload.sub)) {
            sessions.delete(id);
            ended++;
          }
        }
        logoutTokens.push({ token, header: protectedHeader as Record<string, unknown>, claims: payload as ReceivedLogoutToken['claims'], endedSessions: ended });
        res.writeHead(200, { 'cache-control': 'no-store' });
        return void res.end();
      } catch {
        res.writeHead(400, { 'content-type': 'application/json', 'cache-control': 'no-store' });
        return void res.end(JSON.stringify({ error: 'invalid_request' }));
      }
    }

    page(res, 404, '<p>Not found</p>');
  }

  return bff;
}
