import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { Agent, fetch as undiciFetch } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { VerifyError, createAccessTokenVerifier, createEventTokenVerifier, eventPayloadHash } from '../../../src/verify/index.js';
import {
  AUDIENCE,
  ISSUER,
  accessClaims,
  jwksOf,
  makeClientCert,
  makeIssuerKey,
  makeTlsMaterial,
  signToken,
  type ClientCert,
  type IssuerKey,
} from './fixtures.js';

/** A JWKS endpoint whose key set can be rotated and whose requests are counted. */
interface JwksEndpoint {
  url: string;
  requests: number;
  keys: IssuerKey[];
  close(): Promise<void>;
}

function serveJwks(server: Server, scheme: 'http' | 'https', endpoint: Omit<JwksEndpoint, 'url' | 'close'>): Promise<JwksEndpoint> {
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (req.url !== '/jwks') {
      res.writeHead(404).end();
      return;
    }
    endpoint.requests += 1;
    res.writeHead(200, { 'content-type': 'application/jwk-set+json' }).end(JSON.stringify(jwksOf(...endpoint.keys)));
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve(
        Object.assign(endpoint, {
          url: `${scheme}://127.0.0.1:${port}/jwks`,
          close: () =>
            new Promise<void>((done) => {
              server.closeAllConnections();
              server.close(() => done());
            }),
        }),
      );
    });
  });
}

let key1: IssuerKey;
let key2: IssuerKey;
let key3: IssuerKey;
let cert: ClientCert;

beforeAll(async () => {
  [key1, key2, key3, cert] = await Promise.all([
    makeIssuerKey('2025-01'),
    makeIssuerKey('2025-02'),
    makeIssuerKey('2025-03'),
    makeClientCert('client'),
  ]);
});

afterEach(() => {
  vi.useRealTimers();
});

const bound = () => accessClaims({ cnf: { 'x5t#S256': cert.thumbprint } });

describe('remote JWKS over a real HTTP server', () => {
  let endpoint: JwksEndpoint;

  beforeAll(async () => {
    endpoint = await serveJwks(createServer(), 'http', { requests: 0, keys: [key1] });
  });
  afterAll(() => endpoint.close());

  it('fetches lazily, caches, and refetches exactly once for an unknown kid after rotation', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
    endpoint.requests = 0;
    endpoint.keys = [key1];
    const verifier = createAccessTokenVerifier({ issuer: ISSUER, audience: AUDIENCE, jwksUri: endpoint.url });
    expect(endpoint.requests).toBe(0);

    const token1 = await signToken(key1, bound());
    await verifier.verify(token1, { clientCertificate: cert.node });
    await verifier.verify(token1, { clientCertificate: cert.node });
    expect(endpoint.requests).toBe(1);

    // The issuer rotates to key 2. Right after a fetch, jose's 30 s cooldown
    // rate-limits refetches: an unknown kid fails without hitting the server.
    endpoint.keys = [key2, key1];
    const token2 = await signToken(key2, bound());
    const error = await verifier.verify(token2, { clientCertificate: cert.node }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(VerifyError);
    expect((error as VerifyError).code).toBe('unknown_key');
    expect(endpoint.requests).toBe(1);

    // After the cooldown, the unknown kid triggers exactly one refetch, then succeeds.
    vi.advanceTimersByTime(31_000);
    await expect(verifier.verify(token2, { clientCertificate: cert.node })).resolves.toMatchObject({ sub: 'user-123' });
    expect(endpoint.requests).toBe(2);
    await verifier.verify(token2, { clientCertificate: cert.node });
    await verifier.verify(token1, { clientCertificate: cert.node });
    expect(endpoint.requests).toBe(2);

    // Concurrent requests with a new kid share one refetch.
    endpoint.keys = [key3, key2];
    vi.advanceTimersByTime(31_000);
    const token3 = await signToken(key3, bound());
    await Promise.all(Array.from({ length: 8 }, () => verifier.verify(token3, { clientCertificate: cert.node })));
    expect(endpoint.requests).toBe(3);
  });

  it('refetches when the cache is older than 10 minutes', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
    endpoint.requests = 0;
    endpoint.keys = [key1];
    const verifier = createAccessTokenVerifier({ issuer: ISSUER, audience: AUDIENCE, jwksUri: endpoint.url });
    await verifier.verify(await signToken(key1, bound()), { clientCertificate: cert.node });
    vi.advanceTimersByTime(9 * 60_000);
    await verifier.verify(await signToken(key1, bound()), { clientCertificate: cert.node });
    expect(endpoint.requests).toBe(1);
    vi.advanceTimersByTime(2 * 60_000);
    await verifier.verify(await signToken(key1, bound()), { clientCertificate: cert.node });
    expect(endpoint.requests).toBe(2);
  });

  it('reports an unreachable or failing JWKS endpoint as unknown_key with the cause', async () => {
    const missing = createAccessTokenVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      jwksUri: endpoint.url.replace('/jwks', '/nope'),
    });
    const error = await missing.verify(await signToken(key1, bound())).catch((err: unknown) => err);
    expect((error as VerifyError).code).toBe('unknown_key');
    expect((error as VerifyError).cause).toBeInstanceOf(Error);
  });

  it('serves event token verification too', async () => {
    endpoint.keys = [key1];
    const payload = { orderId: 'o-1', amount: 42 };
    const token = await signToken(
      key1,
      accessClaims({ aud: 'billing', scope: 'resume_orders', event_payload_hash: eventPayloadHash(payload) }),
    );
    const events = createEventTokenVerifier({ issuer: ISSUER, jwksUri: endpoint.url });
    await expect(events.verifyEventToken(token, payload, { audience: 'billing' })).resolves.toMatchObject({
      scope: ['resume_orders'],
    });
  });
});

describe('remote JWKS over HTTPS with a private CA and a custom fetch', () => {
  let endpoint: JwksEndpoint;
  let agent: Agent;
  let caPem: string;

  beforeAll(async () => {
    const tls = await makeTlsMaterial();
    caPem = tls.caPem;
    endpoint = await serveJwks(createHttpsServer({ key: tls.keyPem, cert: tls.certPem }), 'https', {
      requests: 0,
      keys: [key1],
    });
    agent = new Agent({ connect: { ca: caPem } });
  });
  afterAll(async () => {
    await agent.close();
    await endpoint.close();
  });

  it('uses the custom fetch (trusting the private CA) and fails closed without it', async () => {
    expect(endpoint.url.startsWith('https://')).toBe(true);
    const tlsFetch = ((url: string, init: RequestInit) =>
      undiciFetch(url, { ...(init as object), dispatcher: agent })) as unknown as typeof fetch;
    const verifier = createAccessTokenVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      jwksUri: endpoint.url,
      fetch: tlsFetch,
    });
    const token = await signToken(key1, bound());
    await expect(verifier.verify(token, { clientCertificate: cert.node })).resolves.toMatchObject({ sub: 'user-123' });
    expect(endpoint.requests).toBe(1);

    const untrusting = createAccessTokenVerifier({ issuer: ISSUER, audience: AUDIENCE, jwksUri: endpoint.url });
    const error = await untrusting.verify(token, { clientCertificate: cert.node }).catch((err: unknown) => err);
    expect((error as VerifyError).code).toBe('unknown_key');
    expect(endpoint.requests).toBe(1);
  });
});
