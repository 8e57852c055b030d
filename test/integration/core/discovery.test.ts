import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO, startTestApp, type TestApp } from '../../helpers/app.js';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await app?.stop();
});

async function getJson(path: string) {
  const response = await request(`${app.issuer}${path}`, { dispatcher: app.agent() });
  return { status: response.statusCode, headers: response.headers, body: (await response.body.json()) as any };
}

describe('discovery and JWKS', () => {
  it('publishes discovery metadata for the issuer', async () => {
    const { status, body } = await getJson('/.well-known/openid-configuration');
    expect(status).toBe(200);
    expect(body.issuer).toBe(app.issuer);
    expect(body.token_endpoint).toBe(`${app.issuer}/token`);
    expect(body.jwks_uri).toBe(`${app.issuer}/jwks`);
    expect(body.grant_types_supported).toEqual(expect.arrayContaining(['client_credentials', 'authorization_code', 'refresh_token']));
    expect(body.token_endpoint_auth_methods_supported).toEqual(expect.arrayContaining(['tls_client_auth', 'self_signed_tls_client_auth', 'client_secret_basic']));
    expect(body.token_endpoint_auth_methods_supported).not.toContain('client_secret_jwt');
    expect(body.tls_client_certificate_bound_access_tokens).toBe(true);
    expect(body.introspection_endpoint).toBe(`${app.issuer}/token/introspection`);
    expect(body.revocation_endpoint).toBe(`${app.issuer}/token/revocation`);
  });

  it('answers the JWKS and discovery documents the same each time, with CORS per request', async () => {
    for (const path of ['/jwks', '/.well-known/openid-configuration', '/.well-known/oauth-authorization-server']) {
      const answers = [];
      for (const origin of [undefined, 'https://app.example', 'https://other.example']) {
        const response = await request(`${app.issuer}${path}`, { dispatcher: app.agent(), headers: origin ? { origin } : {} });
        answers.push({ status: response.statusCode, headers: response.headers, text: await response.body.text() });
        expect(response.headers['access-control-allow-origin']).toBe(origin ?? '*');
      }
      const [first, ...later] = answers;
      expect(first!.status).toBe(200);
      expect(JSON.parse(first!.text)).toBeTypeOf('object');
      for (const answer of later) {
        expect(answer.status).toBe(200);
        expect(answer.text).toBe(first!.text);
        for (const name of ['content-type', 'content-length', 'vary']) expect(answer.headers[name]).toBe(first!.headers[name]);
        expect(answer.headers['x-request-id']).not.toBe(first!.headers['x-request-id']);
      }
      const head = await request(`${app.issuer}${path}`, { method: 'HEAD', dispatcher: app.agent() });
      await head.body.dump();
      expect(head.statusCode).toBe(200);
      expect(head.headers['content-length']).toBe(first!.headers['content-length']);
    }
    // A preflight is still oidc-provider's own answer.
    const preflight = await request(`${app.issuer}/jwks`, {
      method: 'OPTIONS',
      dispatcher: app.agent(),
      headers: { origin: 'https://app.example', 'access-control-request-method': 'GET' },
    });
    await preflight.body.dump();
    expect(preflight.statusCode).toBe(204);
    expect(preflight.headers['access-control-allow-origin']).toBe('https://app.example');
  });

  it('serves current, next (and later previous) public keys only', async () => {
    const { body } = await getJson('/jwks');
    const keys = app.custos.keys();
    expect(body.keys.map((k: any) => k.kid)).toEqual([keys.current.kid, keys.next.kid]);
    for (const key of body.keys) {
      expect(key).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
      expect(key.d).toBeUndefined();
    }
  });

  it('issues an RFC 9068 ES256 client_credentials token verifiable with the served JWKS', async () => {
    const { status, body } = await app.token({ grant_type: 'client_credentials', scope: 'orders:read' }, { basic: DEMO.reportingJob });
    expect(status).toBe(200);
    expect(body).toMatchObject({ token_type: 'Bearer', expires_in: 300, scope: 'orders:read' });
    const jwks = createLocalJWKSet((await getJson('/jwks')).body);
    const { payload, protectedHeader } = await jwtVerify(body.access_token, jwks, {
      issuer: app.issuer,
      audience: DEMO.ordersResource,
      typ: 'at+jwt',
      algorithms: ['ES256'],
    });
    expect(protectedHeader).toMatchObject({ alg: 'ES256', typ: 'at+jwt', kid: app.custos.keys().current.kid });
    expect(payload).toMatchObject({ client_id: 'reporting-job', sub: 'reporting-job', scope: 'orders:read' });
    expect(payload.exp! - payload.iat!).toBe(300);
    expect(typeof payload.jti).toBe('string');
    expect(decodeProtectedHeader(body.access_token).alg).toBe('ES256');
  });

  it('answers health, readiness and metrics', async () => {
    expect((await getJson('/healthz')).body).toEqual({ status: 'ok' });
    expect((await getJson('/readyz')).body).toEqual({ status: 'ready' });
    const response = await request(`${app.issuer}/metrics`, { dispatcher: app.agent() });
    const text = await response.body.text();
    expect(text).toContain('custos_http_requests_total{method="GET",route="/healthz",status="200"}');
    expect(text).toMatch(/custos_tokens_issued_total\{grant_type="client_credentials"\} [1-9]/);
    expect(text).toContain('custos_http_request_duration_seconds_bucket');
  });
});
