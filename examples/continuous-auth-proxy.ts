/**
 * Seed 000's continuous-authorization proxy, done with Custos events (README "IAM events"):
 *
 *   npm run pulsar:standalone            # terminal 1: a local broker on ws://127.0.0.1:8080
 *   npm run example:continuous-auth      # terminal 2
 *
 * Instead of a one-hour cache TTL guarding against lost messages, the proxy
 * - verifies every request's certificate-bound access token (RFC 8705) with `custos/verify`;
 * - keeps a revocation state fed by signed IAM events (RFC 8417 SETs) read from Pulsar, each
 *   verified against the issuer's JWKS, deduplicated on `jti`, stale ones ignored;
 * - refuses a token whose user was revoked or disabled after it was issued, and fails closed
 *   (503) while its event stream is down for longer than `maxStalenessMs`.
 *
 * The demo starts Custos in-process (EVENTS_SINK=pulsar-ws), a backend, and the proxy, calls the
 * proxy as orders-api with Alice's token, revokes Alice's sessions (what the admin API's
 * `DELETE /admin/users/{id}/sessions` records), and shows how soon the proxy refuses the token.
 * Env: PULSAR_WS_URL (default ws://127.0.0.1:8080), EVENTS_TOPIC (default: a fresh topic per run).
 */
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { Agent, fetch as undiciFetch, request } from 'undici';
import WebSocket from 'ws';
import { recordEvent } from '../src/events/outbox.repository.js';
import { describeError } from '../src/cli/describe-error.js';
import { startCustos } from '../src/main.js';
import {
  certificateThumbprint,
  createAccessTokenVerifier,
  createRevocationState,
  createSecurityEventVerifier,
  VerifyError,
  type RevocationState,
} from '../src/verify/index.js';

/** Options of {@link startContinuousAuthProxy}. */
export interface ContinuousAuthProxyOptions {
  issuer: string;
  /** This API's resource identifier (the tokens' `aud`). */
  audience: string;
  /** This consumer's identifier in the SETs' `aud` (Custos EVENTS_AUDIENCE). */
  eventsAudience: string;
  jwksUri: string;
  fetch?: typeof fetch;
  pulsarWsUrl: string;
  topic: string;
  backendUrl: string;
  tls: { certPem: string; keyPem: string; clientCaPem: string };
  port?: number;
  /** Refuse traffic when the event stream has been down this long. Default 5 s. */
  maxStalenessMs?: number;
  log?: (line: string) => void;
}

/**
 * Reads the IAM event topic with Pulsar's WebSocket reader API (from the start of the topic's
 * retention, so a restarted proxy rebuilds its state; set the namespace retention to at least the
 * access token lifetime), resuming after the last message on reconnect.
 */
function followEvents(options: ContinuousAuthProxyOptions, state: RevocationState, health: { connectedSince?: number; downSince: number }) {
  const verifier = createSecurityEventVerifier({ issuer: options.issuer, audience: options.eventsAudience, jwksUri: options.jwksUri, fetch: options.fetch });
  const log = options.log ?? (() => {});
  const topicPath = options.topic.replace(/^persistent:\/\//, 'persistent/');
  let lastMessageId = 'earliest';
  let socket: WebSocket | undefined;
  let stopped = false;
  const connect = () => {
    socket = new WebSocket(`${options.pulsarWsUrl}/ws/v2/reader/${topicPath}?messageId=${encodeURIComponent(lastMessageId)}`);
    socket.on('open', () => {
      health.connectedSince = Date.now();
    });
    socket.on('message', (data) => {
      const message = JSON.parse(String(data)) as { payload: string; messageId: string };
      socket?.send(JSON.stringify({ messageId: message.messageId }));
      lastMessageId = message.messageId;
      verifier.verify(Buffer.from(message.payload, 'base64').toString('utf8')).then(
        (event) => log(`event ${event.kind} for ${event.subject}: ${state.apply(event)}`),
        (error: Error) => log(`ignored an event that does not verify: ${(error as VerifyError).code ?? error.message}`),
      );
    });
    socket.on('close', () => {
      if (health.connectedSince !== undefined) health.downSince = Date.now();
      health.connectedSince = undefined;
      if (!stopped) setTimeout(connect, 500);
    });
    socket.on('error', () => {});
  };
  connect();
  return () => {
    stopped = true;
    socket?.close();
  };
}

/** Starts the proxy: HTTPS with client certificates, token + revocation checks, then the backend. */
export async function startContinuousAuthProxy(options: ContinuousAuthProxyOptions): Promise<{ url: string; state: RevocationState; stop(): Promise<void> }> {
  const state = createRevocationState();
  const health: { connectedSince?: number; downSince: number } = { downSince: Date.now() };
  const stopEvents = followEvents(options, state, health);
  const maxStalenessMs = options.maxStalenessMs ?? 5000;
  const tokens = createAccessTokenVerifier({ issuer: options.issuer, audience: options.audience, jwksUri: options.jwksUri, fetch: options.fetch, revocations: state });
  const reply = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };
  const server = createHttpsServer(
    { cert: options.tls.certPem, key: options.tls.keyPem, ca: options.tls.clientCaPem, requestCert: true, rejectUnauthorized: false },
    (req: IncomingMessage, res: ServerResponse) => {
      void (async () => {
        if (health.connectedSince === undefined && Date.now() - health.downSince > maxStalenessMs) {
          return reply(res, 503, { error: 'temporarily_unavailable', error_description: 'authorization state is stale' });
        }
        const token = /^Bearer ([\w.~+/-]+=*)$/.exec(req.headers.authorization ?? '')?.[1];
        if (!token) return reply(res, 401, { error: 'invalid_token' }, { 'www-authenticate': 'Bearer' });
        const socket = req.socket as TLSSocket;
        const certificate = socket.authorized ? socket.getPeerX509Certificate() : undefined;
        let user: string | undefined;
        try {
          user = (await tokens.verify(token, { clientCertificate: certificate })).sub;
        } catch (error) {
          if (!(error instanceof VerifyError)) throw error;
          return reply(res, error.status, { error: error.oauthError, code: error.code }, { 'www-authenticate': error.wwwAuthenticate() });
        }
        const upstream = await request(new URL(req.url ?? '/', options.backendUrl), {
          method: req.method as 'GET',
          headers: { 'x-authenticated-user': user ?? '' },
          body: req.method === 'GET' || req.method === 'HEAD' ? undefined : req,
        });
        res.writeHead(upstream.statusCode, { 'content-type': String(upstream.headers['content-type'] ?? 'application/octet-stream') });
        for await (const chunk of upstream.body) res.write(chunk);
        res.end();
      })().catch(() => reply(res, 502, { error: 'bad_gateway' }));
    },
  );
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  return {
    url: `https://localhost:${(server.address() as AddressInfo).port}`,
    state,
    async stop() {
      stopEvents();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function demo(): Promise<void> {
  const ORDERS = 'https://api.custos.test/orders';
  const EVENTS_AUDIENCE = 'urn:example:orders-proxy';
  const pulsarWsUrl = process.env.PULSAR_WS_URL ?? 'ws://127.0.0.1:8080';
  const topic = process.env.EVENTS_TOPIC ?? `persistent://public/default/custos-proxy-demo-${Date.now()}`;
  const custos = await startCustos({
    env: {
      ...process.env,
      PORT: process.env.PORT ?? '0',
      ADMIN_PORT: process.env.ADMIN_PORT ?? '0',
      DATA_DIR: process.env.DATA_DIR ?? '.data/example',
      EMBEDDED_PG_PORT: process.env.EMBEDDED_PG_PORT ?? '54339',
      LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
      EVENTS_SINK: 'pulsar-ws',
      PULSAR_WS_URL: pulsarWsUrl,
      EVENTS_TOPIC: topic,
      EVENTS_AUDIENCE: EVENTS_AUDIENCE,
    },
  });
  const backend = createHttpServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ backend: 'orders', path: req.url, user: req.headers['x-authenticated-user'] }));
  });
  await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
  const trustDevCa = new Agent({ connect: { ca: custos.tls.clientCaPem } });
  const served = ((input: string | URL, init?: object) => undiciFetch(input, { ...init, dispatcher: trustDevCa })) as unknown as typeof fetch;
  const proxy = await startContinuousAuthProxy({
    issuer: custos.issuer,
    audience: ORDERS,
    eventsAudience: EVENTS_AUDIENCE,
    jwksUri: `${custos.issuer}/jwks`,
    fetch: served,
    pulsarWsUrl,
    topic,
    backendUrl: `http://127.0.0.1:${(backend.address() as AddressInfo).port}`,
    tls: { certPem: custos.tls.certPem, keyPem: custos.tls.keyPem, clientCaPem: custos.tls.clientCaPem },
    log: (line) => console.log(`   [proxy] ${line}`),
  });
  const ordersApi = custos.devPki!.clients['orders-api']!;
  const client = new Agent({ connect: { ca: custos.tls.clientCaPem, cert: ordersApi.certPem, key: ordersApi.keyPem } });
  const mint = async () => {
    // Alice's token for the orders API, bound to orders-api's certificate (standing in for login + code flow).
    const provider = custos.provider();
    const token = new provider.AccessToken({ accountId: 'alice', client: (await provider.Client.find('web-bff'))!, scope: 'orders', gty: 'authorization_code', grantId: 'example' } as never);
    (token as unknown as Record<string, string>)['x5t#S256'] = certificateThumbprint(ordersApi.certPem);
    token.resourceServer = new provider.ResourceServer(ORDERS, {
      scope: 'orders',
      audience: ORDERS,
      accessTokenTTL: 300,
      accessTokenFormat: 'jwt',
      jwt: { sign: { alg: 'ES256', kid: custos.keys().current.kid } },
    });
    return token.save();
  };
  const call = async (token: string) => {
    const response = await request(`${proxy.url}/orders/1001`, { dispatcher: client, headers: { authorization: `Bearer ${token}` } });
    return { status: response.statusCode, body: await response.body.json() };
  };
  try {
    const token = await mint();
    console.log('\n== 1. orders-api calls through the proxy with Alice\'s certificate-bound token');
    console.log(await call(token));

    console.log('\n== 2. an administrator revokes Alice\'s sessions (IAM change + event in one transaction)');
    const revokedAt = Date.now();
    await custos.db.transaction().execute((trx) =>
      recordEvent(trx, { type: 'session-revoked', userId: 'alice', sessionIds: [], initiatingEntity: 'admin', reasonAdmin: 'demo' }),
    );
    let refused: { status: number; body: unknown } | undefined;
    while (!refused && Date.now() - revokedAt < 10_000) {
      const result = await call(token);
      if (result.status !== 200) refused = result;
      else await new Promise((resolve) => setTimeout(resolve, 5));
    }
    console.log(`   the same token is refused ${Date.now() - revokedAt} ms after the revocation committed:`, refused);

    console.log('\n== 3. a token issued after the revocation is accepted');
    while (Math.floor(Date.now() / 1000) <= Math.floor(revokedAt / 1000)) await new Promise((resolve) => setTimeout(resolve, 50));
    console.log(await call(await mint()));
  } finally {
    await client.close();
    await proxy.stop();
    await trustDevCa.close();
    backend.close();
    await custos.stop();
  }
}

if (process.argv[1]?.endsWith('continuous-auth-proxy.ts')) {
  demo().catch((error: Error) => {
    console.error(`custos: continuous-auth-proxy: ${describeError(error)}`);
    process.exit(1);
  });
}
