import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventPayloadHash } from '../../../src/verify/index.js';
import { DEMO, startTestApp, type TestApp } from '../../helpers/app.js';
import { mintUserAccessToken } from '../../helpers/tokens.js';
import { tamperSignature } from '../../helpers/jws.js';
import { tokenEndpoint } from '../../helpers/user-tokens.js';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await app?.stop();
});

function post(path: '/token/introspection' | '/token/revocation', form: Record<string, string>, auth: { basic?: [string, string]; client?: string }) {
  return tokenEndpoint(app, path, form, auth);
}

function exchangeAsOrdersApi(subjectToken: string) {
  return app.token(
    {
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      client_id: 'orders-api',
      subject_token: subjectToken,
      subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      event_payload_hash: eventPayloadHash({ a: 1 }),
    },
    { agent: app.clientAgent('orders-api') },
  );
}

describe('introspection (RFC 7662) and revocation (RFC 7009) of JWT access tokens', () => {
  it('introspects a certificate-bound token for its client, with cnf', async () => {
    const issued = await app.token({ grant_type: 'client_credentials', client_id: 'orders-api', scope: 'orders:read' }, { agent: app.clientAgent('orders-api') });
    expect(issued.status).toBe(200);
    const { status, body } = await post('/token/introspection', { token: issued.body.access_token }, { client: 'orders-api' });
    expect(status).toBe(200);
    expect(body).toMatchObject({
      active: true,
      client_id: 'orders-api',
      scope: 'orders:read',
      aud: DEMO.ordersResource,
      iss: app.issuer,
      token_type: 'Bearer',
      cnf: { 'x5t#S256': app.custos.devPki!.clients['orders-api']!.x5tS256 },
    });
  });

  it('lets the API that serves the audience introspect, and nobody else', async () => {
    const user = await mintUserAccessToken(app, { sub: 'carol' });
    const byApi = await post('/token/introspection', { token: user }, { client: 'orders-api' });
    expect(byApi.body).toMatchObject({ active: true, sub: 'carol', client_id: 'web-bff' });
    const byOther = await post('/token/introspection', { token: user }, { basic: DEMO.reportingJob });
    expect(byOther.body).toEqual({ active: false });
  });

  it('answers active: false for tampered and foreign tokens', async () => {
    const user = await mintUserAccessToken(app);
    const tampered = tamperSignature(user);
    expect((await post('/token/introspection', { token: tampered }, { client: 'orders-api' })).body).toEqual({ active: false });
    expect((await post('/token/introspection', { token: 'opaque-unknown' }, { client: 'orders-api' })).body).toEqual({ active: false });
  });

  it('requires client authentication', async () => {
    const user = await mintUserAccessToken(app);
    const { status, body } = await post('/token/introspection', { token: user }, { basic: ['reporting-job', 'wrong-secret-value'] });
    expect(status).toBe(401);
    expect(body.error).toBe('invalid_client');
  });

  it('revokes a token for its own client only; revoked tokens are inactive and cannot be exchanged', async () => {
    const issued = await app.token({ grant_type: 'client_credentials', scope: 'orders:read' }, { basic: DEMO.reportingJob });
    const token = issued.body.access_token;
    const foreign = await post('/token/revocation', { token }, { client: 'orders-api' });
    expect([foreign.status, foreign.body?.error]).toEqual([400, 'invalid_request']);
    const own = await post('/token/revocation', { token }, { basic: DEMO.reportingJob });
    expect(own.status).toBe(200);
    expect((await post('/token/introspection', { token }, { basic: DEMO.reportingJob })).body).toEqual({ active: false });
    // An invalid token is not an error (RFC 7009 §2.2).
    expect((await post('/token/revocation', { token: 'garbage' }, { basic: DEMO.reportingJob })).status).toBe(200);

    const user = await mintUserAccessToken(app, { sub: 'dave' });
    expect((await post('/token/revocation', { token: user }, { basic: DEMO.webBff })).status).toBe(200);
    const exchanged = await exchangeAsOrdersApi(user);
    expect([exchanged.status, exchanged.body.error]).toEqual([400, 'invalid_request']);
  });
});

describe('NUL bytes in token parameters', () => {
  it('are answered as unknown tokens (4xx or inactive), never 5xx', async () => {
    const nul = 'x\u0000y';
    expect((await post('/token/introspection', { token: nul }, { client: 'orders-api' })).body).toEqual({ active: false });
    expect((await post('/token/revocation', { token: nul }, { client: 'orders-api' })).status).toBe(200);
    const refresh = await app.token({ grant_type: 'refresh_token', refresh_token: nul }, { basic: DEMO.webBff });
    expect([refresh.status, refresh.body.error]).toEqual([400, 'invalid_grant']);
    const code = await app.token({ grant_type: 'authorization_code', code: nul, redirect_uri: 'http://localhost:3000/callback', code_verifier: 'a'.repeat(43) }, { basic: DEMO.webBff });
    expect([code.status, code.body.error]).toEqual([400, 'invalid_grant']);
    const exchanged = await exchangeAsOrdersApi(nul);
    expect([exchanged.status, exchanged.body.error]).toEqual([400, 'invalid_request']);
  });
});
