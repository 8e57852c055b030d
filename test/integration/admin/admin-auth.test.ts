import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSelfSignedClientCertificate } from '../../../src/pki/issue.js';
import { adminClient, adminToken, type AdminClient } from '../../helpers/admin.js';
import { DEMO, startTestApp, type TestApp } from '../../helpers/app.js';
import { configDirWithClients, type TempConfigDir } from '../../helpers/config-dir.js';

let config: TempConfigDir;
let app: TestApp;
let admin: AdminClient;

beforeAll(async () => {
  config = await configDirWithClients([
    {
      client_id: 'admin-reader',
      client_name: 'A client allowed the admin resource but not the admin scope',
      token_endpoint_auth_method: 'tls_client_auth',
      tls_client_auth_san_dns: 'admin-reader.clients.custos.test',
      grant_types: ['client_credentials'],
      scope: '',
      resources: [DEMO.adminResource],
      default_resource: DEMO.adminResource,
    },
  ]);
  app = await startTestApp({ configDir: config.dir });
  admin = await adminClient(app);
});
afterAll(async () => {
  await app?.stop();
  await config?.remove();
});

describe('admin listener transport', () => {
  it('refuses a TLS client without a certificate before any HTTP exchange', async () => {
    const error = await request(`${admin.url}/admin/users`, { dispatcher: app.agent(), headers: { authorization: `Bearer ${admin.token}` } }).then(
      (response) => ({ status: response.statusCode }),
      (err: Error & { code?: string }) => err,
    );
    expect(error).toBeInstanceOf(Error);
    expect('status' in error).toBe(false);
  });

  it('refuses a certificate that does not chain to the client CA', async () => {
    const stranger = await createSelfSignedClientCertificate({ commonName: 'stranger', dns: ['admin-cli.clients.custos.test'], validityDays: 1 });
    const error = await request(`${admin.url}/admin/users`, { dispatcher: app.agent({ certPem: stranger.certificatePem, keyPem: stranger.privateKeyPem }) }).then(
      (response) => ({ status: response.statusCode }),
      (err: Error) => err,
    );
    expect(error).toBeInstanceOf(Error);
  });

  it('answers a valid certificate and token', async () => {
    const { status, body } = await admin.call('GET', '/admin/roles');
    expect(status).toBe(200);
    expect(body).toEqual({ items: [], next_cursor: null });
  });
});

describe('admin token checks', () => {
  const expectRefused = (response: { status: number; body: any; headers: Record<string, unknown> }, status: number, code: string) => {
    expect([response.status, response.body?.error]).toEqual([status, code]);
    expect(typeof response.body.error_description).toBe('string');
    expect(String(response.headers['www-authenticate'])).toMatch(/^Bearer /);
  };

  it('a certificate without a token → 401 token_required', async () => {
    expectRefused(await admin.call('GET', '/admin/users', { token: null }), 401, 'token_required');
    expectRefused(await admin.call('GET', '/admin/users', { token: null, headers: { authorization: 'Basic YTpi' } }), 401, 'token_required');
  });

  it('a malformed token → 401 invalid_token', async () => {
    expectRefused(await admin.call('GET', '/admin/users', { token: 'not.a.jwt' }), 401, 'invalid_token');
  });

  it('a token without the admin scope → 403 insufficient_scope', async () => {
    const agent = app.clientAgent('admin-reader');
    const { status, body } = await app.token({ grant_type: 'client_credentials', client_id: 'admin-reader', resource: DEMO.adminResource }, { agent });
    expect(status).toBe(200);
    const response = await admin.call('GET', '/admin/users', { token: body.access_token, agent });
    expectRefused(response, 403, 'insufficient_scope');
  });

  it('a token bound to another certificate → 401 binding_mismatch', async () => {
    const response = await admin.call('GET', '/admin/users', { agent: app.clientAgent('orders-api') });
    expectRefused(response, 401, 'binding_mismatch');
  });

  it('a token for another audience → 401 wrong_audience', async () => {
    const agent = app.clientAgent('orders-api');
    const { status, body } = await app.token({ grant_type: 'client_credentials', client_id: 'orders-api' }, { agent });
    expect(status).toBe(200);
    expectRefused(await admin.call('GET', '/admin/users', { token: body.access_token, agent }), 401, 'wrong_audience');
  });

  it('a token revoked at /token/revocation → 401 token_revoked', async () => {
    const token = await adminToken(app, admin.agent);
    expect((await admin.call('GET', '/admin/users', { token })).status).toBe(200);
    const response = await request(`${app.issuer}/token/revocation`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token, client_id: 'admin-cli' }).toString(),
      dispatcher: admin.agent,
    });
    expect(response.statusCode).toBe(200);
    await response.body.dump();
    expectRefused(await admin.call('GET', '/admin/users', { token }), 401, 'token_revoked');
  });

  it('never reveals the token or internals in refusals, and audits nothing for refused calls', async () => {
    const response = await admin.call('POST', '/admin/roles', { token: null, body: { name: 'sneaky' } });
    expect(response.status).toBe(401);
    expect((await admin.call('GET', '/admin/roles')).body.items).toEqual([]);
    expect(app.logs.join('')).not.toContain(admin.token);
  });
});
