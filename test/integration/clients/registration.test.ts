import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tokenHash } from '../../../src/clients/registration.repository.js';
import { adminClient, type AdminClient } from '../../helpers/admin.js';
import { DEMO, startTestApp, type TestApp } from '../../helpers/app.js';

// Dynamic client registration (RFC 7591) gated by initial access tokens, and RFC 7592 client
// configuration with the registration access token. Off by default (registry.test.ts checks
// that); enabled here by a config file.
const ROOT = path.resolve(import.meta.dirname, '../../..');
let configDir: string;
let app: TestApp;
let admin: AdminClient;

beforeAll(async () => {
  configDir = await mkdtemp(path.join(tmpdir(), 'custos-registration-config-'));
  await cp(path.join(ROOT, 'config'), configDir, { recursive: true });
  await writeFile(
    path.join(configDir, 'registration.json'),
    JSON.stringify({
      client_registration: {
        enabled: true,
        grant_types: ['client_credentials', 'authorization_code', 'refresh_token'],
        token_endpoint_auth_methods: ['client_secret_basic', 'tls_client_auth'],
        scopes: ['orders:read', 'openid'],
        resources: [DEMO.ordersResource],
      },
    }),
  );
  app = await startTestApp({ configDir });
  admin = await adminClient(app);
}, 60_000);

afterAll(async () => {
  await app?.stop();
  await rm(configDir, { recursive: true, force: true });
});

async function call(method: 'GET' | 'POST' | 'PUT' | 'DELETE', target: string, token?: string, body?: unknown) {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await request(`${app.issuer}${target}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), dispatcher: app.agent() });
  const text = await response.body.text();
  return { status: response.statusCode, headers: response.headers, body: text ? JSON.parse(text) : undefined };
}

async function initialAccessToken(uses: number): Promise<string> {
  const issued = await admin.call('POST', '/admin/initial-access-tokens', { body: { uses, expires_in: 600 } });
  expect(issued.status, JSON.stringify(issued.body)).toBe(201);
  return issued.body.initial_access_token;
}

const metadata = { client_name: 'Registered job', grant_types: ['client_credentials'], scope: 'orders:read', resources: [DEMO.ordersResource], default_resource: DEMO.ordersResource };
const clientCredentials = { grant_type: 'client_credentials', scope: 'orders:read', resource: DEMO.ordersResource };

describe('dynamic registration (RFC 7591)', () => {
  it('is announced in discovery as registration_endpoint, a URL of the configured issuer', async () => {
    const discovery = await call('GET', '/.well-known/openid-configuration');
    expect(discovery.status).toBe(200);
    expect(discovery.body.registration_endpoint).toBe(`${app.issuer}/register`);
    // Defaults oidc-provider fills in survive the extra field (its configuration is deep-merged).
    expect(discovery.body.claim_types_supported).toEqual(['normal']);
  });

  it('needs an initial access token', async () => {
    const refused = await call('POST', '/register', undefined, metadata);
    expect(refused.status).toBe(401);
    expect(refused.body.error).toBe('invalid_token');
    expect(refused.headers['www-authenticate']).toBe('Bearer error="invalid_token"');
    expect((await call('POST', '/register', 'not-a-token-anyone-issued', metadata)).status).toBe(401);
    expect(await app.custos.db.selectFrom('client').select('client_id').where('managed_by', '=', 'api').execute()).toEqual([]);
  });

  it('registers with an initial access token until its uses are spent; the client gets tokens', async () => {
    const iat = await initialAccessToken(2);
    const first = await call('POST', '/register', iat, metadata);
    expect(first.status, JSON.stringify(first.body)).toBe(201);
    expect(first.body).toMatchObject({
      client_name: 'Registered job',
      token_endpoint_auth_method: 'client_secret_basic',
      client_secret_expires_at: 0,
      registration_client_uri: `${app.issuer}/register/${first.body.client_id}`,
    });
    expect(first.body.client_secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(first.body.registration_access_token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const token = await app.token(clientCredentials, { basic: [first.body.client_id, first.body.client_secret] });
    expect(token.status, JSON.stringify(token.body)).toBe(200);

    expect((await call('POST', '/register', iat, metadata)).status).toBe(201);
    const spent = await call('POST', '/register', iat, metadata);
    expect(spent).toMatchObject({ status: 401, body: { error: 'invalid_token' } });
    const stored = await app.custos.db.selectFrom('client_initial_access_token').select('uses_left').where('token_hash', '=', tokenHash(iat)).executeTakeFirstOrThrow();
    expect(stored.uses_left).toBe(0);
  });

  it('refuses an expired initial access token', async () => {
    const iat = await initialAccessToken(5);
    await app.custos.db.updateTable('client_initial_access_token').set({ expires_at: new Date(Date.now() - 1000) }).where('token_hash', '=', tokenHash(iat)).execute();
    expect(await call('POST', '/register', iat, metadata)).toMatchObject({ status: 401, body: { error: 'invalid_token' } });
  });

  it('takes each use once under concurrency', async () => {
    const iat = await initialAccessToken(3);
    const answers = await Promise.all(Array.from({ length: 8 }, () => call('POST', '/register', iat, metadata)));
    expect(answers.map((answer) => answer.status).sort()).toEqual([201, 201, 201, 401, 401, 401, 401, 401]);
  });

  it('holds registrations to the policy, without spending a use on a refusal', async () => {
    const iat = await initialAccessToken(1);
    const cases: Array<[string, Record<string, unknown>, string]> = [
      ['a grant type outside the policy', { ...metadata, grant_types: ['urn:ietf:params:oauth:grant-type:token-exchange'] }, 'invalid_client_metadata'],
      ['an auth method outside the policy', { ...metadata, token_endpoint_auth_method: 'client_secret_post' }, 'invalid_client_metadata'],
      ['a scope outside the policy', { ...metadata, scope: 'orders' }, 'invalid_client_metadata'],
      ['a privilege', { ...metadata, first_party: true }, 'invalid_client_metadata'],
      ['a back-channel logout URI (sent past the SSRF guard)', { ...metadata, backchannel_logout_uri: 'https://10.0.0.1/logout' }, 'invalid_client_metadata'],
      ['its own client_id', { ...metadata, client_id: 'mine' }, 'invalid_client_metadata'],
      ['a loopback http redirect URI (https only here)', { grant_types: ['authorization_code'], response_types: ['code'], scope: 'openid', redirect_uris: ['http://127.0.0.1/cb'] }, 'invalid_redirect_uri'],
      ['a wildcard redirect URI', { grant_types: ['authorization_code'], response_types: ['code'], scope: 'openid', redirect_uris: ['https://app.example/*'] }, 'invalid_redirect_uri'],
    ];
    for (const [what, body, error] of cases) {
      const refused = await call('POST', '/register', iat, body);
      expect(refused.status, what).toBe(400);
      expect(refused.body.error, `${what}: ${JSON.stringify(refused.body)}`).toBe(error);
    }
    expect((await call('POST', '/register', iat, metadata)).status).toBe(201);
  });
});

describe('initial access tokens in the admin API', () => {
  it('lists them a page at a time without the tokens; a revoked one registers nothing', async () => {
    const kept = await admin.call('POST', '/admin/initial-access-tokens', { body: { uses: 2, expires_in: 600 } });
    const revoked = await admin.call('POST', '/admin/initial-access-tokens', { body: { uses: 5, expires_in: 600 } });
    expect([kept.status, revoked.status]).toEqual([201, 201]);

    const all = [];
    let cursor: string | null = null;
    do {
      const page = await admin.call('GET', `/admin/initial-access-tokens?limit=1${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.status, JSON.stringify(page.body)).toBe(200);
      expect(page.body.items.length).toBeLessThanOrEqual(1);
      all.push(...page.body.items);
      cursor = page.body.next_cursor;
    } while (cursor);
    const ids = all.map((item) => item.id);
    expect(ids).toEqual([...ids].sort((a, b) => Number(a) - Number(b)));
    expect(all.find((item) => item.id === revoked.body.id)).toEqual({
      id: revoked.body.id,
      uses_left: 5,
      expires_at: revoked.body.expires_at,
      created_by: expect.stringMatching(/^client:/),
      created_at: expect.any(String),
      usable: true,
    });
    // Never the token, nor its hash.
    const listed = JSON.stringify(all);
    expect(listed).not.toContain(revoked.body.initial_access_token);
    expect(listed).not.toContain(tokenHash(revoked.body.initial_access_token));
    expect(listed).not.toContain('token_hash');

    expect((await admin.call('DELETE', `/admin/initial-access-tokens/${revoked.body.id}`)).status).toBe(204);
    expect(await call('POST', '/register', revoked.body.initial_access_token, metadata)).toMatchObject({ status: 401, body: { error: 'invalid_token' } });
    expect((await call('POST', '/register', kept.body.initial_access_token, metadata)).status).toBe(201);
    const again = await admin.call('DELETE', `/admin/initial-access-tokens/${revoked.body.id}`);
    expect([again.status, again.body.error]).toEqual([404, 'initial_access_token_not_found']);
    expect((await admin.call('DELETE', '/admin/initial-access-tokens/not-an-id')).status).toBe(400);
    expect((await admin.call('GET', '/admin/initial-access-tokens?cursor=bm90LWFuLWlk')).body.error).toBe('invalid_cursor');

    const audit = await app.custos.db.selectFrom('audit_log').select(['actor', 'details']).where('action', '=', 'client.initial_access_token.revoke').execute();
    expect(audit).toEqual([{ actor: expect.stringMatching(/^client:/), details: { uses_left: 5 } }]);
  });
});

describe('client configuration (RFC 7592)', () => {
  it('reads, updates and deletes a client with its registration access token, and nothing else does', async () => {
    const registered = (await call('POST', '/register', await initialAccessToken(2), metadata)).body;
    const other = (await call('POST', '/register', await initialAccessToken(1), metadata)).body;
    const uri = `/register/${registered.client_id}`;
    const read = await call('GET', uri, registered.registration_access_token);
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({ client_id: registered.client_id, client_name: 'Registered job' });
    expect(read.body.client_secret).toBeUndefined();
    expect((await call('GET', uri, other.registration_access_token)).status).toBe(401);
    expect((await call('GET', uri)).status).toBe(401);
    expect((await call('GET', '/register/no-such-client', registered.registration_access_token)).status).toBe(401);

    const updated = await call('PUT', uri, registered.registration_access_token, { ...metadata, client_id: registered.client_id, client_name: 'Renamed job' });
    expect(updated.status, JSON.stringify(updated.body)).toBe(200);
    expect(updated.body.client_name).toBe('Renamed job');
    expect((await call('PUT', uri, registered.registration_access_token, { ...metadata, client_id: 'someone-else' })).body.error).toBe('invalid_client_metadata');
    expect((await call('PUT', uri, registered.registration_access_token, { ...metadata, client_id: registered.client_id, scope: 'orders' })).body.error).toBe('invalid_client_metadata');

    expect((await app.token(clientCredentials, { basic: [registered.client_id, registered.client_secret] })).status).toBe(200);
    expect((await call('DELETE', uri, registered.registration_access_token)).status).toBe(204);
    expect((await app.token(clientCredentials, { basic: [registered.client_id, registered.client_secret] })).status).toBe(401);
    expect((await call('GET', uri, registered.registration_access_token)).status).toBe(401);
    const audit = await app.custos.db.selectFrom('audit_log').select(['actor', 'action']).where('target', '=', `client:${registered.client_id}`).orderBy('id').execute();
    expect(audit).toEqual([
      { actor: 'registration', action: 'client.create' },
      { actor: `client:${registered.client_id}`, action: 'client.update' },
      { actor: `client:${registered.client_id}`, action: 'client.delete' },
    ]);
  });
});
