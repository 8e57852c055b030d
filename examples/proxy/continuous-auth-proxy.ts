/**
 * Seed 000's continuous-authorization proxy, done with Custos: HTTPS (client certificates
 * requested), every request's access token verified with `custos/verify` (RFC 9068; RFC 8705
 * binding), then forwarded to the backend with the user in `x-authenticated-user`.
 *
 * What tells it about revocations (`feed`):
 * - `events`: a revocation state fed by signed IAM events read from Pulsar; a token whose user was
 *   revoked or disabled after it was issued is refused, and the proxy fails closed (503) while its
 *   event stream is down longer than `maxStalenessMs`;
 * - `introspection`: no event stream (e.g. Custos with the log sink): every request is also
 *   introspected at Custos (RFC 7662, one round trip per request), `active: false` refused.
 */
import { createServer as createHttpsServer } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { request, type Dispatcher } from 'undici';
import { createAccessTokenVerifier, createRevocationState, VerifyError, type RevocationState } from '../../src/verify/index.js';
import { followEvents, type EventFollower } from './event-follower.js';

export type RevocationFeed =
  | { kind: 'events'; pulsarWsUrl: string; topic: string; eventsAudience: string }
  /** `dispatcher` authenticates the proxy at the introspection endpoint (e.g. orders-api's mTLS certificate). */
  | { kind: 'introspection'; endpoint: string; clientId: string; dispatcher: Dispatcher };

/** Options of {@link startContinuousAuthProxy}. */
export interface ContinuousAuthProxyOptions {
  issuer: string;
  /** This API's resource identifier (the tokens' `aud`). */
  audience: string;
  jwksUri: string;
  fetch?: typeof fetch;
  feed: RevocationFeed;
  backendUrl: string;
  tls: { certPem: string; keyPem: string; clientCaPem: string };
  port?: number;
  /** Require certificate-bound tokens (RFC 8705). Default true; a BFF's bearer tokens need false. */
  requireBinding?: boolean;
  /** Refuse traffic when the event stream has been down this long. Default 5 s. */
  maxStalenessMs?: number;
  log?: (line: string) => void;
}

export interface RunningProxy {
  url: string;
  state: RevocationState;
  /** Resolves when the proxy knows about revocations (event stream connected; at once with introspection). */
  ready(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

type Answer = { status: number; body: unknown; headers?: Record<string, string> };

async function introspect(feed: Extract<RevocationFeed, { kind: 'introspection' }>, token: string): Promise<boolean> {
  const response = await request(feed.endpoint, {
    method: 'POST',
    dispatcher: feed.dispatcher,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token, client_id: feed.clientId }).toString(),
  });
  const body = (await response.body.json()) as { active?: unknown };
  if (response.statusCode !== 200) throw new Error(`introspection answered ${response.statusCode}`);
  return body.active === true;
}

/** Starts the proxy: HTTPS with client certificates, token + revocation checks, then the backend. */
export async function startContinuousAuthProxy(options: ContinuousAuthProxyOptions): Promise<RunningProxy> {
  const state = createRevocationState();
  const { feed } = options;
  const follower: EventFollower | undefined =
    feed.kind === 'events'
      ? followEvents(
          { issuer: options.issuer, eventsAudience: feed.eventsAudience, jwksUri: options.jwksUri, fetch: options.fetch, pulsarWsUrl: feed.pulsarWsUrl, topic: feed.topic, log: options.log },
          state,
        )
      : undefined;
  const maxStalenessMs = options.maxStalenessMs ?? 5000;
  const tokens = createAccessTokenVerifier({
    issuer: options.issuer,
    audience: options.audience,
    jwksUri: options.jwksUri,
    fetch: options.fetch,
    revocations: state,
    requireBinding: options.requireBinding ?? true,
  });

  async function authorize(req: IncomingMessage): Promise<Answer | { user: string }> {
    if (follower && follower.health.connectedSince === undefined && Date.now() - follower.health.downSince > maxStalenessMs) {
      return { status: 503, body: { error: 'temporarily_unavailable', error_description: 'authorization state is stale' } };
    }
    const token = /^Bearer ([\w.~+/-]+=*)$/.exec(req.headers.authorization ?? '')?.[1];
    if (!token) return { status: 401, body: { error: 'invalid_token' }, headers: { 'www-authenticate': 'Bearer' } };
    const socket = req.socket as TLSSocket;
    const certificate = socket.authorized ? socket.getPeerX509Certificate() : undefined;
    let user: string;
    try {
      user = (await tokens.verify(token, { clientCertificate: certificate })).sub ?? '';
    } catch (error) {
      if (!(error instanceof VerifyError)) throw error;
      return { status: error.status, body: { error: error.oauthError, code: error.code }, headers: { 'www-authenticate': error.wwwAuthenticate() } };
    }
    if (feed.kind === 'introspection' && !(await introspect(feed, token))) {
      return { status: 401, body: { error: 'invalid_token', code: 'inactive' }, headers: { 'www-authenticate': 'Bearer error="invalid_token"' } };
    }
    return { user };
  }

  const reply = (res: ServerResponse, answer: Answer) => {
    res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers });
    res.end(JSON.stringify(answer.body));
  };
  const server = createHttpsServer(
    { cert: options.tls.certPem, key: options.tls.keyPem, ca: options.tls.clientCaPem, requestCert: true, rejectUnauthorized: false },
    (req: IncomingMessage, res: ServerResponse) => {
      void (async () => {
        const outcome = await authorize(req);
        if (!('user' in outcome)) return reply(res, outcome);
        const upstream = await request(new URL(req.url ?? '/', options.backendUrl), {
          method: req.method as 'GET',
          headers: { 'x-authenticated-user': outcome.user },
          body: req.method === 'GET' || req.method === 'HEAD' ? undefined : req,
        });
        res.writeHead(upstream.statusCode, { 'content-type': String(upstream.headers['content-type'] ?? 'application/octet-stream') });
        for await (const chunk of upstream.body) res.write(chunk);
        res.end();
      })().catch(() => reply(res, { status: 502, body: { error: 'bad_gateway' } }));
    },
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', resolve);
  });
  return {
    url: `https://localhost:${(server.address() as AddressInfo).port}`,
    state,
    ready: (timeoutMs) => follower?.connected(timeoutMs) ?? Promise.resolve(),
    async stop() {
      follower?.stop();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
