import { createHash, X509Certificate } from 'node:crypto';
import { decodeJwt, decodeProtectedHeader, exportSPKI, generateKeyPair, importJWK, SignJWT, type JWTPayload } from 'jose';
import { request, type Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashSecret } from '../../../src/iam/secret-hash.js';
import { x5tS256 } from '../../../src/pki/thumbprint.js';
import { eventPayloadHash } from '../../../src/verify/index.js';
import { startResourceServer, type RunningResourceServer } from '../../fixtures/resource-server.js';
import { DEMO, startTestApp, type TestApp } from '../../helpers/app.js';
import { configDirWithClients, type TempConfigDir } from '../../helpers/config-dir.js';
import { flipS, lowS } from '../../helpers/jws.js';
import { mintUserAccessToken } from '../../helpers/tokens.js';

const BOUND_SECRET_CLIENT = ['bound-secret-job', 'bound-secret-job-secret-0123456789'] as [string, string];

let config: TempConfigDir;
let app: TestApp;
let rs: RunningResourceServer;

beforeAll(async () => {
  config = await configDirWithClients([
    {
      client_id: BOUND_SECRET_CLIENT[0],
      client_name: 'Secret client that asks for certificate-bound tokens',
      token_endpoint_auth_method: 'client_secret_basic',
      client_secret_hash: await hashSecret(BOUND_SECRET_CLIENT[1]),
      tls_client_certificate_bound_access_tokens: true,
      grant_types: ['client_credentials'],
      scope: 'orders:read',
      resources: [DEMO.ordersResource],
      default_resource: DEMO.ordersResource,
    },
  ]);
  app = await startTestApp({ configDir: config.dir });
  rs = await startResourceServer({
    issuer: app.issuer,
    audience: DEMO.ordersResource,
    caPem: app.custos.devPki!.caPem,
    serverCertPem: app.custos.devPki!.server.certPem,
    serverKeyPem: app.custos.devPki!.server.keyPem,
  });
});
afterAll(async () => {
  await rs?.close();
  await app?.stop();
  await config?.remove();
});

/** RFC 8705 §3.1 thumbprint computed here, independently of src/pki. */
function thumbprintOf(certPem: string): string {
  return createHash('sha256').update(new X509Certificate(certPem).raw).digest('base64url');
}

function devCert(name: string) {
  const cert = app.custos.devPki?.clients[name];
  if (!cert) throw new Error(`no dev certificate for ${name}`);
  return cert;
}

async function clientCredentials(client: string, scope?: string) {
  const form: Record<string, string> = { grant_type: 'client_credentials', client_id: client };
  if (scope) form.scope = scope;
  const { status, body } = await app.token(form, { agent: app.clientAgent(client) });
  expect([client, status, body.error]).toEqual([client, 200, undefined]);
  return body.access_token as string;
}

async function callOrders(token: string | undefined, agent: Agent, url = rs.url) {
  const response = await request(`${url}/orders`, {
    headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
    dispatcher: agent,
  });
  return {
    status: response.statusCode,
    wwwAuthenticate: response.headers['www-authenticate'],
    body: (await response.body.json()) as { error?: string; sub?: string; client_id?: string; scope?: string },
  };
}

function b64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** Signs `claims` as an RFC 9068 token with Custos's current private signing key (low-S, as Custos signs). */
async function signWithServerKey(claims: JWTPayload): Promise<string> {
  const { current } = app.custos.keys();
  return lowS(
    await new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: current.kid })
      .sign(await importJWK(current, 'ES256')),
  );
}

describe('certificate-bound access tokens (RFC 8705 §3) at a resource server', () => {
  let ordersToken: string;
  beforeAll(async () => {
    ordersToken = await clientCredentials('orders-api', 'orders:read');
  });

  it('binds the token to the client certificate and the resource server accepts it over the same certificate', async () => {
    const header = decodeProtectedHeader(ordersToken);
    expect(header).toMatchObject({ alg: 'ES256', typ: 'at+jwt', kid: app.custos.keys().current.kid });
    const claims = decodeJwt(ordersToken);
    const expected = thumbprintOf(devCert('orders-api').certPem);
    expect(claims).toMatchObject({ client_id: 'orders-api', sub: 'orders-api', scope: 'orders:read', aud: DEMO.ordersResource });
    expect(claims.cnf).toEqual({ 'x5t#S256': expected });
    expect(x5tS256(devCert('orders-api').certPem)).toBe(expected);
    expect(devCert('orders-api').x5tS256).toBe(expected);

    const { status, body, wwwAuthenticate } = await callOrders(ordersToken, app.clientAgent('orders-api'));
    expect(status).toBe(200);
    expect(body).toEqual({ sub: 'orders-api', client_id: 'orders-api', scope: 'orders:read' });
    expect(wwwAuthenticate).toBeUndefined();
    expect(rs.jwksFetches()).toBeGreaterThanOrEqual(1);
  });

  it('refuses the token replayed from another client certificate (binding_mismatch)', async () => {
    const { status, body, wwwAuthenticate } = await callOrders(ordersToken, app.clientAgent('billing-worker'));
    expect(status).toBe(401);
    expect(body).toEqual({ error: 'binding_mismatch' });
    expect(wwwAuthenticate).toMatch(/^Bearer realm="orders", error="invalid_token", error_description="[^"]+"$/);
  });

  it('refuses the token without a client certificate (certificate_required)', async () => {
    const { status, body, wwwAuthenticate } = await callOrders(ordersToken, app.agent());
    expect(status).toBe(401);
    expect(body).toEqual({ error: 'certificate_required' });
    expect(wwwAuthenticate).toContain('error="invalid_token"');
  });

  it('asks for a token, without an error code, when none is sent (RFC 6750 §3.1)', async () => {
    const { status, body, wwwAuthenticate } = await callOrders(undefined, app.clientAgent('orders-api'));
    expect(status).toBe(401);
    expect(body.error).toBe('missing_token');
    expect(wwwAuthenticate).toBe('Bearer realm="orders"');
  });

  it('refuses the same claims signed by another key, with the real kid or an unknown one', async () => {
    const claims = decodeJwt(ordersToken);
    const { privateKey } = await generateKeyPair('ES256');
    const kid = app.custos.keys().current.kid;
    const sameKid = await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid }).sign(privateKey);
    const otherKid = await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'attacker-key' }).sign(privateKey);
    const agent = app.clientAgent('orders-api');
    expect(await callOrders(sameKid, agent)).toMatchObject({ status: 401, body: { error: 'invalid_token' } });
    expect(await callOrders(otherKid, agent)).toMatchObject({ status: 401, body: { error: 'unknown_key' } });
  });

  it('refuses the high-S twin of a valid token (S replaced by n − S: verifies with node:crypto, not canonical)', async () => {
    const agent = app.clientAgent('orders-api');
    expect(await callOrders(ordersToken, agent)).toMatchObject({ status: 200 });
    expect(await callOrders(flipS(ordersToken), agent)).toMatchObject({ status: 401, body: { error: 'invalid_token' } });
  });

  it('refuses a token whose cnf was rewritten to the replaying certificate (signature no longer matches)', async () => {
    const [header, , signature] = ordersToken.split('.');
    const claims = { ...decodeJwt(ordersToken), cnf: { 'x5t#S256': thumbprintOf(devCert('billing-worker').certPem) } };
    const forged = `${header}.${b64url(claims)}.${signature}`;
    const { status, body } = await callOrders(forged, app.clientAgent('billing-worker'));
    expect([status, body.error]).toEqual([401, 'invalid_token']);
  });

  it('refuses an expired token (token_expired), while the same token unexpired is accepted', async () => {
    const now = Math.floor(Date.now() / 1000);
    const claims = decodeJwt(ordersToken);
    const agent = app.clientAgent('orders-api');
    // Control: a token signed this way is good, so the rejection below is about exp only.
    const fresh = await signWithServerKey({ ...claims, iat: now - 10, exp: now + 60 });
    expect(await callOrders(fresh, agent)).toMatchObject({ status: 200, body: { client_id: 'orders-api' } });
    const expired = await signWithServerKey({ ...claims, iat: now - 600, exp: now - 60 });
    const { status, body, wwwAuthenticate } = await callOrders(expired, agent);
    expect([status, body.error]).toEqual([401, 'token_expired']);
    expect(wwwAuthenticate).toContain('error="invalid_token"');
  });

  it('refuses a token for another audience (wrong_audience)', async () => {
    const adminToken = await clientCredentials('admin-cli', 'admin');
    expect(decodeJwt(adminToken)).toMatchObject({ aud: DEMO.adminResource, scope: 'admin' });
    const { status, body } = await callOrders(adminToken, app.clientAgent('admin-cli'));
    expect([status, body.error]).toEqual([401, 'wrong_audience']);
  });

  it('refuses alg "none"', async () => {
    const unsigned = `${b64url({ alg: 'none', typ: 'at+jwt' })}.${b64url(decodeJwt(ordersToken))}.`;
    const { status, body } = await callOrders(unsigned, app.clientAgent('orders-api'));
    expect([status, body.error]).toEqual([401, 'invalid_token']);
  });

  it('refuses HS256 tokens keyed with the server public key (algorithm confusion)', async () => {
    const response = await request(`${app.issuer}/jwks`, { dispatcher: app.agent() });
    const jwks = (await response.body.json()) as { keys: Array<Record<string, unknown> & { kid: string }> };
    const kid = app.custos.keys().current.kid;
    const publicJwk = jwks.keys.find((key) => key.kid === kid)!;
    const spkiPem = await exportSPKI((await importJWK(publicJwk, 'ES256', { extractable: true })) as Parameters<typeof exportSPKI>[0]);
    const claims = decodeJwt(ordersToken);
    for (const secret of [spkiPem, JSON.stringify(publicJwk)]) {
      const confused = await new SignJWT(claims)
        .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid })
        .sign(new TextEncoder().encode(secret));
      const { status, body } = await callOrders(confused, app.clientAgent('orders-api'));
      expect([status, body.error]).toEqual([401, 'invalid_token']);
    }
  });

  it('refuses an unbound token when binding is required (binding_missing)', async () => {
    const { status, body } = await app.token({ grant_type: 'client_credentials', scope: 'orders:read' }, { basic: DEMO.reportingJob });
    expect(status).toBe(200);
    expect(decodeJwt(body.access_token).cnf).toBeUndefined();
    const result = await callOrders(body.access_token, app.clientAgent('orders-api'));
    expect([result.status, result.body.error]).toEqual([401, 'binding_missing']);
  });

  it('answers 403 insufficient_scope for a bound token without orders:read', async () => {
    const token = await clientCredentials('billing-worker', 'orders');
    const { status, body, wwwAuthenticate } = await callOrders(token, app.clientAgent('billing-worker'));
    expect([status, body.error]).toEqual([403, 'insufficient_scope']);
    expect(wwwAuthenticate).toContain('error="insufficient_scope"');
    expect(wwwAuthenticate).toContain('scope="orders:read"');
  });

  it('refuses a resume-only token from a real token exchange (resume_only_token)', async () => {
    // The resume token's audience is the events consumer: an HTTP API serving that audience must still refuse it.
    const events = await startResourceServer({
      issuer: app.issuer,
      audience: DEMO.eventsResource,
      caPem: app.custos.devPki!.caPem,
      serverCertPem: app.custos.devPki!.server.certPem,
      serverKeyPem: app.custos.devPki!.server.keyPem,
    });
    try {
      const subject = await mintUserAccessToken(app, { sub: 'alice', scope: 'orders orders:read' });
      const { status, body } = await app.token(
        {
          grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
          client_id: 'orders-api',
          subject_token: subject,
          subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
          scope: 'resume_orders',
          event_payload_hash: eventPayloadHash({ orderId: 'o-1' }),
        },
        { agent: app.clientAgent('orders-api') },
      );
      expect([status, body.error]).toEqual([200, undefined]);
      expect(decodeJwt(body.access_token)).toMatchObject({ scope: 'resume_orders', aud: DEMO.eventsResource });
      const result = await callOrders(body.access_token, app.clientAgent('orders-api'), events.url);
      expect([result.status, result.body.error]).toEqual([401, 'resume_only_token']);
      // The orders API refuses it too (it is not in the token's audience).
      const orders = await callOrders(body.access_token, app.clientAgent('orders-api'));
      expect([orders.status, orders.body.error]).toEqual([401, 'wrong_audience']);
    } finally {
      await events.close();
    }
  });

  it('refuses, by each rule alone, a token with only resume_* scopes or with an event_payload_hash', async () => {
    // Signed with the server's own key so that each rule is exercised without the other.
    const now = Math.floor(Date.now() / 1000);
    const claims = { ...decodeJwt(ordersToken), iat: now, exp: now + 60 };
    const agent = app.clientAgent('orders-api');
    const resumeOnly = await signWithServerKey({ ...claims, scope: 'resume_orders' });
    expect(await callOrders(resumeOnly, agent)).toMatchObject({ status: 401, body: { error: 'resume_only_token' } });
    const withHash = await signWithServerKey({ ...claims, event_payload_hash: eventPayloadHash({ orderId: 'o-1' }) });
    expect(await callOrders(withHash, agent)).toMatchObject({ status: 401, body: { error: 'resume_only_token' } });
    // Control: a resume scope next to a real one is an ordinary access token.
    const mixed = await signWithServerKey({ ...claims, scope: 'orders:read resume_orders' });
    expect(await callOrders(mixed, agent)).toMatchObject({ status: 200, body: { scope: 'orders:read resume_orders' } });
  });
});

describe('binding at the token endpoint', () => {
  /** `error_detail` of token endpoint errors (oidc-provider `grant.error`): why a request was refused. */
  const refusals: string[] = [];
  beforeAll(() => {
    app.custos.provider().on('grant.error', (_ctx: unknown, error: { error_detail?: string }) => {
      refusals.push(error.error_detail ?? '(none)');
    });
  });

  it('a tls_client_auth client without a certificate cannot authenticate (invalid_client)', async () => {
    refusals.length = 0;
    const { status, body } = await app.token({ grant_type: 'client_credentials', client_id: 'orders-api', scope: 'orders:read' }, { agent: app.agent() });
    expect([status, body.error]).toEqual([401, 'invalid_client']);
    expect(body.access_token).toBeUndefined();
    expect(refusals).toEqual(['client certificate was not provided']);
  });

  it('a secret client registered for bound tokens gets invalid_grant without a certificate', async () => {
    refusals.length = 0;
    const { status, body } = await app.token({ grant_type: 'client_credentials', scope: 'orders:read' }, { basic: BOUND_SECRET_CLIENT, agent: app.agent() });
    expect([status, body.error]).toEqual([400, 'invalid_grant']);
    expect(body.access_token).toBeUndefined();
    expect(refusals).toEqual(['mutual TLS client certificate not provided']);
  });

  it('the same secret client over mutual TLS gets a token bound to the presented certificate', async () => {
    const { status, body } = await app.token(
      { grant_type: 'client_credentials', scope: 'orders:read' },
      { basic: BOUND_SECRET_CLIENT, agent: app.clientAgent('billing-worker') },
    );
    expect([status, body.error]).toEqual([200, undefined]);
    expect(decodeJwt(body.access_token)).toMatchObject({
      client_id: BOUND_SECRET_CLIENT[0],
      cnf: { 'x5t#S256': thumbprintOf(devCert('billing-worker').certPem) },
    });
    const ok = await callOrders(body.access_token, app.clientAgent('billing-worker'));
    expect(ok).toMatchObject({ status: 200, body: { client_id: BOUND_SECRET_CLIENT[0] } });
    const replay = await callOrders(body.access_token, app.clientAgent('orders-api'));
    expect([replay.status, replay.body.error]).toEqual([401, 'binding_mismatch']);
  });
});

describe('introspection of a certificate-bound token (RFC 7662, RFC 8705 §3.2)', () => {
  async function introspect(token: string, client: string) {
    const response = await request(`${app.issuer}/token/introspection`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token, client_id: client }).toString(),
      dispatcher: app.clientAgent(client),
    });
    return { status: response.statusCode, body: (await response.body.json()) as Record<string, any> };
  }

  it('the token\'s own client sees it active with its cnf', async () => {
    const token = await clientCredentials('orders-api', 'orders:read');
    const { status, body } = await introspect(token, 'orders-api');
    expect(status).toBe(200);
    expect(body).toMatchObject({
      active: true,
      client_id: 'orders-api',
      scope: 'orders:read',
      cnf: { 'x5t#S256': thumbprintOf(devCert('orders-api').certPem) },
    });
  });

  it('a client that neither owns nor serves the token sees it inactive', async () => {
    const token = await clientCredentials('orders-api', 'orders:read');
    const { status, body } = await introspect(token, 'billing-worker');
    expect(status).toBe(200);
    expect(body).toEqual({ active: false });
  });
});
