import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Command } from 'commander';
import { decodeJwt } from 'jose';
import { request, type Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerPkiCommands } from '../../../src/cli/pki.command.js';
import { startCustos, type RunningCustos } from '../../../src/main.js';
import { eventPayloadHash } from '../../../src/verify/index.js';
import { adminClient, type AdminClient } from '../../helpers/admin.js';
import { DEMO, formBody, startTestApp, type TestApp } from '../../helpers/app.js';
import { loginForCode, newJar, REDIRECT_URI, VERIFIER } from '../../helpers/code-flow.js';
import { mintUserAccessToken } from '../../helpers/tokens.js';

// Clients as managed data, end to end: an mTLS client registered through the admin API gets a
// certificate from `custos pki issue` and a certificate-bound token on a second instance without
// a restart; its certificate is rotated with an overlap; disabling it kills its access and resume
// tokens; a rotated secret keeps the old one until the time the administrator set.
const ROOT = path.resolve(import.meta.dirname, '../../..');
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
let configDir: string;
let workDir: string;
let app: TestApp;
let second: RunningCustos;
let admin: AdminClient;

beforeAll(async () => {
  configDir = await mkdtemp(path.join(tmpdir(), 'custos-clients-config-'));
  workDir = await mkdtemp(path.join(tmpdir(), 'custos-clients-work-'));
  await cp(path.join(ROOT, 'config'), configDir, { recursive: true });
  // A token-exchange policy for a client that only the admin API will register.
  const exchangeFile = path.join(configDir, 'token-exchange.json');
  const exchange = JSON.parse(await readFile(exchangeFile, 'utf8'));
  exchange.token_exchange.policies.push({ client_id: 'new-svc', scopes: { resume_orders: { lifetime: 3600 } }, audiences: [DEMO.eventsResource] });
  await writeFile(exchangeFile, JSON.stringify(exchange));
  app = await startTestApp({ configDir });
  second = await startCustos({
    env: { NODE_ENV: 'test', PORT: '0', ADMIN_PORT: '0', HOST: '127.0.0.1', DATABASE_URL: app.databaseUrl, KEYS_DIR: app.keysDir, CONFIG_DIR: configDir, LOG_LEVEL: 'warn' },
    cwd: ROOT,
    logDestination: { write: () => true } as never,
  });
  admin = await adminClient(app);
}, 90_000);

afterAll(async () => {
  await second?.stop();
  await app?.stop();
  await rm(configDir, { recursive: true, force: true });
  await rm(workDir, { recursive: true, force: true });
});

/** `custos pki issue` in-process, with the dev CA; returns the certificate, its key and the printed x5t#S256. */
async function pkiIssue(name: string, dns: string) {
  const out = path.join(workDir, name);
  let printed = '';
  const program = new Command('custos').exitOverride().configureOutput({ writeOut: (text) => void (printed += text), writeErr: (text) => void (printed += text) });
  registerPkiCommands(program, { keysDir: app.custos.devPki!.dir });
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string) => {
    printed += chunk;
    return true;
  }) as typeof process.stdout.write;
  try {
    await program.parseAsync(['pki', 'issue', '--name', name, '--dns', dns, '--days', '30', '--out', out], { from: 'user' });
  } finally {
    process.stdout.write = write;
  }
  return { certPem: await readFile(path.join(out, 'cert.pem'), 'utf8'), keyPem: await readFile(path.join(out, 'key.pem'), 'utf8'), x5t: printed.trim() };
}

/** A token request to one instance (`port`), with a client certificate or Basic credentials. */
async function tokenAt(port: number, form: Record<string, string>, auth: { agent?: Agent; basic?: [string, string] }) {
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  if (auth.basic) headers.authorization = `Basic ${Buffer.from(auth.basic.join(':')).toString('base64')}`;
  const response = await request(`https://localhost:${port}/token`, { method: 'POST', body: formBody(form), headers, dispatcher: auth.agent ?? app.agent() });
  const text = await response.body.text();
  return { status: response.statusCode, body: text ? JSON.parse(text) : undefined };
}

/** Repeats `attempt` until `done` (a change reaches the other instance by NOTIFY); bounded, not timed. */
async function eventually<T>(attempt: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  let value = await attempt();
  for (let i = 0; i < 50 && !done(value); i++) {
    await sleep(100);
    value = await attempt();
  }
  return value;
}

async function introspect(token: string, client: string) {
  const response = await request(`${app.issuer}/token/introspection`, {
    method: 'POST',
    body: formBody({ client_id: client, token }),
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    dispatcher: app.clientAgent(client),
  });
  return (await response.body.json()) as { active: boolean; client_id?: string };
}

async function outboxOf(clientId: string) {
  const rows = await app.custos.db.selectFrom('event_outbox').select(['type', 'payload']).where('subject', '=', clientId).orderBy('id').execute();
  return rows.map((row) => ({ type: row.type, ...(row.payload as { credentialType?: string; changeType?: string; clientId?: string }) }));
}

const clientCredentials = { grant_type: 'client_credentials', scope: 'orders:read', resource: DEMO.ordersResource };

describe('an mTLS client registered through the admin API', () => {
  let first: Awaited<ReturnType<typeof pkiIssue>>;
  let next: Awaited<ReturnType<typeof pkiIssue>>;

  it('gets a certificate from custos pki issue and a certificate-bound token on a second instance, without a restart', async () => {
    first = await pkiIssue('new-svc', 'new-svc.clients.custos.test');
    expect(first.x5t).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const created = await admin.call('POST', '/admin/clients', {
      body: {
        client_id: 'new-svc',
        client_name: 'New service',
        token_endpoint_auth_method: 'tls_client_auth',
        tls_client_auth_san_dns: 'new-svc.clients.custos.test',
        grant_types: ['client_credentials', TOKEN_EXCHANGE],
        scope: 'orders:read',
        resources: [DEMO.ordersResource],
        default_resource: DEMO.ordersResource,
        serves: [DEMO.ordersResource],
      },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body).toMatchObject({ client_id: 'new-svc', status: 'active', managed_by: 'api', secrets: [] });
    expect(created.body.client_secret).toBeUndefined();
    expect(created.body.certificates).toMatchObject([{ binding: { tls_client_auth_san_dns: 'new-svc.clients.custos.test' }, retired_at: null }]);

    const agent = app.agent(first);
    const issued = await eventually(() => tokenAt(second.port, { ...clientCredentials, client_id: 'new-svc' }, { agent }), (r) => r.status === 200);
    expect(issued.status, JSON.stringify(issued.body)).toBe(200);
    expect(decodeJwt(issued.body.access_token)).toMatchObject({ client_id: 'new-svc', cnf: { 'x5t#S256': first.x5t } });

    const audit = await app.custos.db.selectFrom('audit_log').select(['actor', 'action']).where('target', '=', 'client:new-svc').execute();
    expect(audit).toEqual([{ actor: 'client:admin-cli', action: 'client.create' }]);
    expect(await outboxOf('new-svc')).toMatchObject([{ type: 'client-created', clientId: 'new-svc' }]);
  });

  it('rotates its certificate with an overlap: both work, then only the new one', async () => {
    next = await pkiIssue('new-svc-2', 'new-svc-2.clients.custos.test');
    const added = await admin.call('POST', '/admin/clients/new-svc/certificates', { body: { tls_client_auth_san_dns: 'new-svc-2.clients.custos.test' } });
    expect(added.status, JSON.stringify(added.body)).toBe(201);
    expect(added.body.certificates).toHaveLength(2);
    const [old, fresh] = added.body.certificates as Array<{ id: string }>;

    const oldAgent = app.agent(first);
    const newAgent = app.agent(next);
    const form = { ...clientCredentials, client_id: 'new-svc' };
    const viaNew = await eventually(() => tokenAt(second.port, form, { agent: newAgent }), (r) => r.status === 200);
    expect(viaNew.status, JSON.stringify(viaNew.body)).toBe(200);
    expect(decodeJwt(viaNew.body.access_token).cnf).toEqual({ 'x5t#S256': next.x5t });
    expect((await tokenAt(second.port, form, { agent: oldAgent })).status).toBe(200);
    expect((await tokenAt(app.custos.port, form, { agent: oldAgent })).status).toBe(200);
    expect((await tokenAt(app.custos.port, form, { agent: newAgent })).status).toBe(200);

    const retired = await admin.call('DELETE', `/admin/clients/new-svc/certificates/${old!.id}`);
    expect(retired.status, JSON.stringify(retired.body)).toBe(200);
    expect(retired.body.certificates.find((c: { id: string }) => c.id === old!.id).retired_at).not.toBeNull();
    const refused = await eventually(() => tokenAt(second.port, form, { agent: oldAgent }), (r) => r.status === 401);
    expect(refused).toMatchObject({ status: 401, body: { error: 'invalid_client' } });
    expect((await tokenAt(app.custos.port, form, { agent: oldAgent })).status).toBe(401);
    expect((await tokenAt(second.port, form, { agent: newAgent })).status).toBe(200);

    // The last binding cannot be retired: that would be a disable.
    const last = await admin.call('DELETE', `/admin/clients/new-svc/certificates/${fresh!.id}`);
    expect(last).toMatchObject({ status: 409, body: { error: 'last_certificate' } });
    expect((await outboxOf('new-svc')).filter((event) => event.type === 'credential-changed')).toMatchObject([
      { credentialType: 'x509', changeType: 'create' },
      { credentialType: 'x509', changeType: 'revoke' },
    ]);
  });

  it('disabled: its access tokens introspect inactive, its resume tokens die, it cannot get tokens; enabled again, old tokens stay dead', async () => {
    const agent = app.agent(next);
    const access = await tokenAt(app.custos.port, { ...clientCredentials, client_id: 'new-svc' }, { agent });
    expect(access.status).toBe(200);
    const userToken = await mintUserAccessToken(app, { sub: 'alice', clientId: 'web-bff', scope: 'orders orders:read' });
    const exchanged = await tokenAt(
      app.custos.port,
      {
        grant_type: TOKEN_EXCHANGE,
        client_id: 'new-svc',
        subject_token: userToken,
        subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
        scope: 'resume_orders',
        audience: DEMO.eventsResource,
        event_payload_hash: eventPayloadHash({ order: 1 }),
      },
      { agent },
    );
    expect(exchanged.status, JSON.stringify(exchanged.body)).toBe(200);
    const resume = exchanged.body.access_token as string;
    expect(await introspect(access.body.access_token, 'orders-api')).toMatchObject({ active: true, client_id: 'new-svc' });
    expect(await introspect(resume, 'billing-worker')).toMatchObject({ active: true, client_id: 'new-svc' });

    const disabled = await admin.call('POST', '/admin/clients/new-svc/disable', { body: { reason: 'key compromise drill' } });
    expect(disabled.status, JSON.stringify(disabled.body)).toBe(200);
    expect(disabled.body.status).toBe('disabled');
    expect(await introspect(access.body.access_token, 'orders-api')).toEqual({ active: false });
    expect(await introspect(resume, 'billing-worker')).toEqual({ active: false });
    const refused = await eventually(() => tokenAt(second.port, { ...clientCredentials, client_id: 'new-svc' }, { agent }), (r) => r.status === 401);
    expect(refused).toMatchObject({ status: 401, body: { error: 'invalid_client' } });
    expect((await outboxOf('new-svc')).at(-1)).toMatchObject({ type: 'client-disabled', clientId: 'new-svc', reasonAdmin: 'key compromise drill' });

    const enabled = await admin.call('POST', '/admin/clients/new-svc/enable');
    expect(enabled.status).toBe(200);
    const again = await eventually(() => tokenAt(second.port, { ...clientCredentials, client_id: 'new-svc' }, { agent }), (r) => r.status === 200);
    expect(again.status).toBe(200);
    expect(await introspect(access.body.access_token, 'orders-api')).toEqual({ active: false });
    // Tokens issued in the second of the cut-off count as cut off (JWT iat has one-second resolution).
    const fresh = await eventually(
      async () => {
        const token = await tokenAt(app.custos.port, { ...clientCredentials, client_id: 'new-svc' }, { agent });
        return introspect(token.body.access_token, 'orders-api');
      },
      (r) => r.active,
    );
    expect(fresh.active).toBe(true);
  });
});

describe('a secret client registered through the admin API', () => {
  it('gets a generated secret shown once; a rotated secret works at once and the old one stops at the set time', async () => {
    const created = await admin.call('POST', '/admin/clients', {
      body: { client_id: 'secret-svc', grant_types: ['client_credentials'], scope: 'orders:read', resources: [DEMO.ordersResource], default_resource: DEMO.ordersResource },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const oldSecret = created.body.client_secret as string;
    expect(oldSecret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(JSON.stringify(await admin.call('GET', '/admin/clients/secret-svc'))).not.toContain(oldSecret);
    const row = await app.custos.db.selectFrom('client_secret').select('hash').where('client_id', '=', 'secret-svc').executeTakeFirstOrThrow();
    expect(row.hash).toMatch(/^\$argon2id\$/);

    const form = { ...clientCredentials };
    expect((await eventually(() => tokenAt(second.port, form, { basic: ['secret-svc', oldSecret] }), (r) => r.status === 200)).status).toBe(200);

    const until = new Date(Date.now() + 4000);
    const rotated = await admin.call('POST', '/admin/clients/secret-svc/secret', { body: { previous_secret_expires_at: until.toISOString() } });
    expect(rotated.status, JSON.stringify(rotated.body)).toBe(200);
    const newSecret = rotated.body.client_secret as string;
    expect(newSecret).not.toBe(oldSecret);
    expect(rotated.body.secrets).toHaveLength(2);
    expect((await eventually(() => tokenAt(second.port, form, { basic: ['secret-svc', newSecret] }), (r) => r.status === 200)).status).toBe(200);
    expect((await tokenAt(second.port, form, { basic: ['secret-svc', oldSecret] })).status).toBe(200);
    expect((await tokenAt(app.custos.port, form, { basic: ['secret-svc', oldSecret] })).status).toBe(200);

    // After the end of the overlap (waiting for the clock, not measuring it): only the new secret.
    await sleep(Math.max(0, until.getTime() - Date.now()) + 100);
    expect((await tokenAt(app.custos.port, form, { basic: ['secret-svc', oldSecret] })).status).toBe(401);
    expect((await tokenAt(second.port, form, { basic: ['secret-svc', oldSecret] })).status).toBe(401);
    expect((await tokenAt(second.port, form, { basic: ['secret-svc', newSecret] })).status).toBe(200);
    expect((await outboxOf('secret-svc')).at(-1)).toMatchObject({ type: 'credential-changed', credentialType: 'client_secret', changeType: 'update' });

    const deleted = await admin.call('DELETE', '/admin/clients/secret-svc');
    expect(deleted.status).toBe(204);
    expect((await eventually(() => tokenAt(second.port, form, { basic: ['secret-svc', newSecret] }), (r) => r.status === 401)).status).toBe(401);
    expect((await admin.call('GET', '/admin/clients/secret-svc')).body.error).toBe('client_not_found');
    expect((await outboxOf('secret-svc')).at(-1)).toMatchObject({ type: 'client-deleted' });
  });
});

describe('the admin API on clients', () => {
  it('refuses changes to config-managed clients, saying to edit the file', async () => {
    for (const [method, target] of [
      ['POST', '/admin/clients/orders-api/disable'],
      ['DELETE', '/admin/clients/orders-api'],
      ['POST', '/admin/clients/reporting-job/secret'],
    ] as const) {
      const refused = await admin.call(method, target);
      expect(refused.status, target).toBe(409);
      expect(refused.body.error).toBe('managed_by_config');
      expect(refused.body.error_description).toMatch(/managed by the client file .*edit the file/);
    }
    expect((await app.token(clientCredentials, { basic: DEMO.reportingJob })).status).toBe(200);
  });

  it('validates metadata with RFC 7591 errors', async () => {
    const base = { grant_types: ['client_credentials'], scope: 'orders:read', resources: [DEMO.ordersResource] };
    const code = { grant_types: ['authorization_code'], response_types: ['code'], scope: 'openid' };
    const cases: Array<[string, Record<string, unknown>, string]> = [
      ['a wildcard redirect URI', { ...code, redirect_uris: ['https://app.example/*'] }, 'invalid_redirect_uri'],
      ['a plain-http redirect URI off loopback', { ...code, redirect_uris: ['http://app.example/cb'] }, 'invalid_redirect_uri'],
      ['a redirect URI with a fragment', { ...code, redirect_uris: ['https://app.example/cb#x'] }, 'invalid_redirect_uri'],
      ['authorization_code without redirect URIs', { ...code }, 'invalid_redirect_uri'],
      ['client_credentials for a public client', { ...base, token_endpoint_auth_method: 'none' }, 'invalid_client_metadata'],
      ['tls_client_auth without a subject', { ...base, token_endpoint_auth_method: 'tls_client_auth' }, 'invalid_client_metadata'],
      ['self_signed_tls_client_auth without jwks', { ...base, token_endpoint_auth_method: 'self_signed_tls_client_auth' }, 'invalid_client_metadata'],
      ['an unknown resource server', { ...base, resources: ['https://nowhere.example/'] }, 'invalid_client_metadata'],
    ];
    for (const [what, body, error] of cases) {
      const refused = await admin.call('POST', '/admin/clients', { body: { client_id: 'invalid-one', ...body } });
      expect(refused.status, what).toBe(400);
      expect(refused.body.error, `${what}: ${JSON.stringify(refused.body)}`).toBe(error);
    }
    expect((await admin.call('GET', '/admin/clients/invalid-one')).status).toBe(404);
    const okLoopback = await admin.call('POST', '/admin/clients', { body: { client_id: 'loopback-app', ...code, redirect_uris: ['http://127.0.0.1:8080/cb'] } });
    expect(okLoopback.status, JSON.stringify(okLoopback.body)).toBe(201);
    const duplicate = await admin.call('POST', '/admin/clients', { body: { client_id: 'loopback-app', ...code, redirect_uris: ['http://127.0.0.1:8080/cb'] } });
    expect(duplicate).toMatchObject({ status: 409, body: { error: 'client_exists' } });
  });

  it('lists clients a page at a time and documents the routes in OpenAPI', async () => {
    const firstPage = await admin.call('GET', '/admin/clients?limit=2');
    expect(firstPage.status).toBe(200);
    expect(firstPage.body.items).toHaveLength(2);
    const ids: string[] = firstPage.body.items.map((client: { client_id: string }) => client.client_id);
    let cursor = firstPage.body.next_cursor as string | null;
    while (cursor) {
      const page = await admin.call('GET', `/admin/clients?limit=2&cursor=${cursor}`);
      ids.push(...page.body.items.map((client: { client_id: string }) => client.client_id));
      cursor = page.body.next_cursor;
    }
    expect(ids).toEqual([...ids].sort());
    expect(ids).toEqual(expect.arrayContaining(['new-svc', 'orders-api', 'loopback-app']));
    const openapi = await admin.call('GET', '/admin/openapi.json');
    expect(Object.keys(openapi.body.paths)).toEqual(expect.arrayContaining(['/admin/clients', '/admin/clients/{id}', '/admin/clients/{id}/secret', '/admin/clients/{id}/certificates/{certificateId}']));
  });
});

describe('input jsonb cannot hold', () => {
  it('is refused with invalid_client_metadata, never a 5xx', async () => {
    for (const name of ['nul\u0000inside', 'lone \ud800 surrogate']) {
      const refused = await admin.call('POST', '/admin/clients', { body: { client_id: 'odd-one', client_name: name, grant_types: ['client_credentials'] } });
      expect(refused.status, JSON.stringify(refused.body)).toBe(400);
      expect(refused.body.error).toBe('invalid_client_metadata');
    }
    const reason = await admin.call('POST', '/admin/clients/loopback-app/disable', { body: { reason: 'lone \udc00' } });
    expect(reason.status).toBe(400);
  });
});

describe('a code-flow client registered through the admin API', () => {
  it('disabled: its refresh tokens fail at once, and stay dead when it is enabled again', async () => {
    expect((await admin.call('POST', '/admin/users', { body: { username: 'carol', password: 'a long enough password 42' } })).status).toBe(201);
    const created = await admin.call('POST', '/admin/clients', {
      body: {
        client_id: 'api-bff',
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        redirect_uris: [REDIRECT_URI],
        first_party: true,
        scope: 'openid offline_access orders orders:read',
        resources: [DEMO.ordersResource],
        default_resource: DEMO.ordersResource,
      },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const basic: [string, string] = ['api-bff', created.body.client_secret];
    const code = await loginForCode(app, newJar(), 'carol', 'a long enough password 42', 'openid orders orders:read', 'api-bff');
    const redeemed = await app.token({ grant_type: 'authorization_code', code, code_verifier: VERIFIER, redirect_uri: REDIRECT_URI }, { basic });
    expect(redeemed.status, JSON.stringify(redeemed.body)).toBe(200);
    const refreshed = await app.token({ grant_type: 'refresh_token', refresh_token: redeemed.body.refresh_token }, { basic });
    expect(refreshed.status, JSON.stringify(refreshed.body)).toBe(200);
    expect(await introspect(refreshed.body.access_token, 'orders-api')).toMatchObject({ active: true });

    expect((await admin.call('POST', '/admin/clients/api-bff/disable')).status).toBe(200);
    const refused = await app.token({ grant_type: 'refresh_token', refresh_token: refreshed.body.refresh_token }, { basic });
    expect(refused).toMatchObject({ status: 401, body: { error: 'invalid_client' } });
    expect(await introspect(refreshed.body.access_token, 'orders-api')).toEqual({ active: false });
    expect((await admin.call('POST', '/admin/clients/api-bff/enable')).status).toBe(200);
    const dead = await app.token({ grant_type: 'refresh_token', refresh_token: refreshed.body.refresh_token }, { basic });
    expect(dead).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
  });
});
