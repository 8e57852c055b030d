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

  it('never reveals the token or internals in refusals, and changes nothing for refused calls', async () => {
    const response = await admin.call('POST', '/admin/roles', { token: null, body: { name: 'sneaky' } });
    expect(response.status).toBe(401);
    expect((await admin.call('GET', '/admin/roles')).body.items).toEqual([]);
    expect(app.logs.join('')).not.toContain(admin.token);
  });
});

describe('audit of refused admin requests', () => {
  const rows = (action: string) =>
    app.custos.db.selectFrom('audit_log').selectAll().where('action', '=', action).orderBy('id').execute();

  it('records each refusal as denied: client id or certificate thumbprint as actor, the code, no token', async () => {
    const denied = await rows('admin.denied');
    expect(denied.every((row) => row.outcome === 'denied')).toBe(true);
    const codes = denied.map((row) => row.details.code).sort();
    expect(codes).toEqual(['binding_mismatch', 'insufficient_scope', 'invalid_token', 'token_required', 'token_revoked', 'wrong_audience']);
    expect(denied.every((row) => /^cert:[A-Za-z0-9_-]{43}$/.test(row.actor))).toBe(true);
    // admin-cli and admin-reader present different certificates.
    const actorOf = (code: string) => denied.find((row) => row.details.code === code)!.actor;
    expect(actorOf('insufficient_scope')).not.toBe(actorOf('token_required'));
    expect(denied.find((row) => row.details.code === 'token_required')).toMatchObject({ client_address: expect.any(String), details: { method: 'GET', path: '/admin/users', status: 401 } });
    expect(JSON.stringify(denied)).not.toContain(admin.token);
    expect(JSON.stringify(denied)).not.toContain('not.a.jwt');
  });

  it('aggregates a flood of refusals from one certificate: one record per code and window', async () => {
    const before = (await rows('admin.denied')).length;
    for (let i = 0; i < 25; i++) expect((await admin.call('GET', '/admin/users', { token: null })).status).toBe(401);
    for (let i = 0; i < 25; i++) expect((await admin.call('GET', '/admin/users', { token: `garbage${i}` })).status).toBe(401);
    expect((await rows('admin.denied')).length).toBe(before);
  });

  it('records a refused mutation of an authenticated admin as failure', async () => {
    const refused = await admin.call('POST', '/admin/roles', { body: { name: 'Not A Role' } });
    expect(refused.status).toBe(400);
    const missing = await admin.call('DELETE', '/admin/users/00000000-0000-4000-8000-000000000000/roles/ops');
    expect(missing.status).toBe(404);
    // Refused reads are not mutations: not audited.
    expect((await admin.call('GET', '/admin/users/00000000-0000-4000-8000-000000000000')).status).toBe(404);
    const failures = await rows('admin.refused');
    expect(failures.map((row) => [row.actor, row.outcome, row.details.code, row.details.method])).toEqual([
      ['client:admin-cli', 'failure', 'invalid_request', 'POST'],
      ['client:admin-cli', 'failure', missing.body.error, 'DELETE'],
    ]);
  });
});
