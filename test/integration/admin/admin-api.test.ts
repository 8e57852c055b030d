import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verify as argon2Verify } from '@node-rs/argon2';
import { adminClient, type AdminClient } from '../../helpers/admin.js';
import { startTestApp, type TestApp } from '../../helpers/app.js';

let app: TestApp;
let admin: AdminClient;
const UNKNOWN_ID = '00000000-0000-4000-8000-000000000000';

beforeAll(async () => {
  app = await startTestApp({ env: { LOG_LEVEL: 'debug' } });
  admin = await adminClient(app);
});
afterAll(() => app?.stop());

const fieldsOf = (body: any) => (body.fields ?? []).map((f: { in: string; field: string }) => `${f.in}:${f.field}`);

describe('roles', () => {
  it('creates and lists roles with cursor pagination', async () => {
    for (const name of ['auditor', 'billing', 'ops']) {
      const created = await admin.call('POST', '/admin/roles', { body: { name, description: `${name} role` } });
      expect(created.status).toBe(201);
      expect(created.body).toMatchObject({ name, description: `${name} role` });
    }
    const first = await admin.call('GET', '/admin/roles?limit=2');
    expect(first.status).toBe(200);
    expect(first.body.items.map((r: { name: string }) => r.name)).toEqual(['auditor', 'billing']);
    expect(typeof first.body.next_cursor).toBe('string');
    const second = await admin.call('GET', `/admin/roles?limit=2&cursor=${first.body.next_cursor}`);
    expect(second.body).toMatchObject({ items: [{ name: 'ops' }], next_cursor: null });
  });

  it('refuses duplicates, bad names and unknown fields', async () => {
    const duplicate = await admin.call('POST', '/admin/roles', { body: { name: 'ops' } });
    expect([duplicate.status, duplicate.body.error, fieldsOf(duplicate.body)]).toEqual([409, 'role_exists', ['body:name']]);
    const bad = await admin.call('POST', '/admin/roles', { body: { name: 'Ops Team' } });
    expect([bad.status, bad.body.error, fieldsOf(bad.body)]).toEqual([400, 'invalid_request', ['body:name']]);
    const unknown = await admin.call('POST', '/admin/roles', { body: { name: 'x1', colour: 'red' } });
    expect([unknown.status, unknown.body.error, fieldsOf(unknown.body)]).toEqual([400, 'invalid_request', ['body:colour']]);
  });
});

describe('users', () => {
  let alice: any;

  it('creates a user with password and roles (argon2id hash stored, never returned)', async () => {
    const response = await admin.call('POST', '/admin/users', {
      body: { username: 'Alice', email: 'alice@example.test', password: 'correct horse battery', roles: ['ops', 'billing'] },
    });
    expect(response.status).toBe(201);
    alice = response.body;
    expect(alice).toMatchObject({ username: 'Alice', email: 'alice@example.test', disabled: false, roles: ['billing', 'ops'], has_password: true });
    expect(JSON.stringify(alice)).not.toMatch(/argon2|correct horse/);
    const row = await app.custos.db.selectFrom('iam_user').select('password_hash').where('id', '=', alice.id).executeTakeFirstOrThrow();
    expect(row.password_hash).toMatch(/^\$argon2id\$/);
    expect(await argon2Verify(row.password_hash!, 'correct horse battery')).toBe(true);
  });

  it('reads and lists users', async () => {
    const bob = await admin.call('POST', '/admin/users', { body: { username: 'bob' } });
    expect(bob.status).toBe(201);
    expect(bob.body).toMatchObject({ has_password: false, roles: [], email: null });
    expect((await admin.call('GET', `/admin/users/${alice.id}`)).body).toEqual(alice);
    const all: string[] = [];
    let cursor: string | null = null;
    do {
      const page: any = await admin.call('GET', `/admin/users?limit=1${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.status).toBe(200);
      all.push(...page.body.items.map((u: { username: string }) => u.username));
      cursor = page.body.next_cursor;
    } while (cursor);
    expect(all.sort()).toEqual(['Alice', 'bob']);
  });

  it('refuses duplicate usernames in any letter case (409 with the field)', async () => {
    const response = await admin.call('POST', '/admin/users', { body: { username: 'ALICE' } });
    expect([response.status, response.body.error, fieldsOf(response.body)]).toEqual([409, 'username_taken', ['body:username']]);
  });

  it('applies the password policy (weak_password names the field)', async () => {
    const same = await admin.call('POST', '/admin/users', { body: { username: 'samesame12', password: 'SameSame12' } });
    expect([same.status, same.body.error, fieldsOf(same.body)]).toEqual([400, 'weak_password', ['body:password']]);
    const repeated = await admin.call('PUT', `/admin/users/${alice.id}/password`, { body: { password: 'aaaaaaaaaaaa' } });
    expect([repeated.status, repeated.body.error, fieldsOf(repeated.body)]).toEqual([400, 'weak_password', ['body:password']]);
  });

  it('refuses unknown roles with the offending field', async () => {
    const response = await admin.call('POST', '/admin/users', { body: { username: 'carol', roles: ['ops', 'nope'] } });
    expect([response.status, response.body.error, fieldsOf(response.body)]).toEqual([400, 'role_not_found', ['body:roles.1']]);
    const page = await admin.call('GET', '/admin/users?limit=200');
    expect(page.body.items.map((u: { username: string }) => u.username)).not.toContain('carol');
  });

  it('refuses wrong types, unknown fields, short passwords and bad emails with field errors', async () => {
    const cases: Array<[unknown, string[]]> = [
      [{ username: 42 }, ['body:username']],
      [{ username: 'dave', admin: true }, ['body:admin']],
      [{ username: 'dave', password: 'short' }, ['body:password']],
      [{ username: 'dave', email: 'not-an-email' }, ['body:email']],
      [{ username: 'dave', roles: 'ops' }, ['body:roles']],
      [{ username: '' }, ['body:username']],
      [{ username: 'a\u0000b' }, ['body:username']],
      [[], ['body:']],
      ['dave', ['body:']],
    ];
    for (const [body, fields] of cases) {
      const response = await admin.call('POST', '/admin/users', { body });
      expect([JSON.stringify(body), response.status, response.body.error, fieldsOf(response.body)]).toEqual([JSON.stringify(body), 400, 'invalid_request', fields]);
    }
  });

  it('refuses invalid JSON, other media types and oversized bodies', async () => {
    const invalid = await admin.call('POST', '/admin/users', { raw: '{"username": "x",' });
    expect([invalid.status, invalid.body.error]).toEqual([400, 'invalid_json']);
    const proto = await admin.call('POST', '/admin/users', { raw: '{"username":"x","__proto__":{"admin":true}}' });
    expect([proto.status, proto.body.error]).toEqual([400, 'invalid_json']);
    const form = await admin.call('POST', '/admin/users', { raw: 'username=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect([form.status, form.body.error]).toEqual([415, 'unsupported_media_type']);
    const big = await admin.call('POST', '/admin/users', { body: { username: 'x', email: `${'a'.repeat(20_000)}@example.test` } });
    expect([big.status, big.body.error]).toEqual([413, 'body_too_large']);
    const missing = await admin.call('POST', '/admin/users');
    expect([missing.status, missing.body.error]).toEqual([400, 'invalid_request']);
  });

  it('refuses malformed and unknown ids', async () => {
    const malformed = await admin.call('GET', '/admin/users/not-a-uuid');
    expect([malformed.status, malformed.body.error, fieldsOf(malformed.body)]).toEqual([400, 'invalid_request', ['path:id']]);
    for (const [method, path, body] of [
      ['GET', `/admin/users/${UNKNOWN_ID}`],
      ['POST', `/admin/users/${UNKNOWN_ID}/disable`],
      ['POST', `/admin/users/${UNKNOWN_ID}/enable`],
      ['PUT', `/admin/users/${UNKNOWN_ID}/password`, { password: 'long enough password' }],
      ['PUT', `/admin/users/${UNKNOWN_ID}/roles/ops`],
      ['DELETE', `/admin/users/${UNKNOWN_ID}/roles/ops`],
      ['GET', `/admin/users/${UNKNOWN_ID}/sessions`],
      ['DELETE', `/admin/users/${UNKNOWN_ID}/sessions`],
    ] as const) {
      const response = await admin.call(method, path, body ? { body } : {});
      expect([method, path, response.status, response.body.error]).toEqual([method, path, 404, 'user_not_found']);
    }
  });

  it('disables and enables (with an optional reason)', async () => {
    const disabled = await admin.call('POST', `/admin/users/${alice.id}/disable`, { body: { reason: 'laptop stolen' } });
    expect([disabled.status, disabled.body.disabled]).toEqual([200, true]);
    const again = await admin.call('POST', `/admin/users/${alice.id}/disable`);
    expect([again.status, again.body.disabled]).toEqual([200, true]);
    const enabled = await admin.call('POST', `/admin/users/${alice.id}/enable`);
    expect([enabled.status, enabled.body.disabled]).toEqual([200, false]);
    const bad = await admin.call('POST', `/admin/users/${alice.id}/enable`, { body: { reason: 7 } });
    expect([bad.status, fieldsOf(bad.body)]).toEqual([400, ['body:reason']]);
  });

  it('sets a password', async () => {
    const response = await admin.call('PUT', `/admin/users/${alice.id}/password`, { body: { password: 'a brand new passphrase' } });
    expect(response.status).toBe(204);
    const row = await app.custos.db.selectFrom('iam_user').select('password_hash').where('id', '=', alice.id).executeTakeFirstOrThrow();
    expect(await argon2Verify(row.password_hash!, 'a brand new passphrase')).toBe(true);
    const missing = await admin.call('PUT', `/admin/users/${alice.id}/password`, { body: {} });
    expect([missing.status, fieldsOf(missing.body)]).toEqual([400, ['body:password']]);
  });

  it('assigns and removes roles idempotently; unknown roles are 404', async () => {
    const assigned = await admin.call('PUT', `/admin/users/${alice.id}/roles/auditor`);
    expect([assigned.status, assigned.body.roles]).toEqual([200, ['auditor', 'billing', 'ops']]);
    expect((await admin.call('PUT', `/admin/users/${alice.id}/roles/auditor`)).body.roles).toEqual(['auditor', 'billing', 'ops']);
    const removed = await admin.call('DELETE', `/admin/users/${alice.id}/roles/ops`);
    expect([removed.status, removed.body.roles]).toEqual([200, ['auditor', 'billing']]);
    const unknown = await admin.call('PUT', `/admin/users/${alice.id}/roles/ghost`);
    expect([unknown.status, unknown.body.error]).toEqual([404, 'role_not_found']);
    const malformed = await admin.call('PUT', `/admin/users/${alice.id}/roles/Not%20A%20Role`);
    expect([malformed.status, fieldsOf(malformed.body)]).toEqual([400, ['path:role']]);
  });

  it('lists sessions (none yet) and revokes', async () => {
    const sessions = await admin.call('GET', `/admin/users/${alice.id}/sessions`);
    expect(sessions.body).toEqual({ items: [], next_cursor: null });
    const revoked = await admin.call('DELETE', `/admin/users/${alice.id}/sessions`);
    expect(revoked.status).toBe(200);
    expect(revoked.body).toMatchObject({ sessions_revoked: 0, grants_revoked: 0, tokens_revoked: 0, backchannel_logout: { sent: 0, failed: 0 } });
  });

  it('refuses unknown query parameters, bad limits and forged cursors', async () => {
    for (const query of ['limit=0', 'limit=201', 'limit=abc', 'page=2', 'cursor=%00', 'cursor=bm90LWEtdXVpZA']) {
      const response = await admin.call('GET', `/admin/users?${query}`);
      expect([query, response.status]).toEqual([query, 400]);
      expect(['invalid_request', 'invalid_cursor']).toContain(response.body.error);
      expect(response.body.fields.length).toBeGreaterThan(0);
    }
  });

  it('refuses a body on endpoints that take none, and wrong methods', async () => {
    const body = await admin.call('PUT', `/admin/users/${alice.id}/roles/auditor`, { body: { extra: 1 } });
    expect([body.status, body.body.error]).toEqual([400, 'invalid_request']);
    const method = await admin.call('PATCH', `/admin/users/${alice.id}`);
    expect([method.status, method.body.error]).toEqual([405, 'method_not_allowed']);
    const nothing = await admin.call('GET', '/admin/nothing');
    expect([nothing.status, nothing.body.error]).toEqual([404, 'not_found']);
  });
});

describe('audit', () => {
  it('records every admin action and filters by actor, target, action and time', async () => {
    const all = await admin.call('GET', '/admin/audit?limit=200');
    expect(all.status).toBe(200);
    const actions = all.body.items.map((entry: { action: string }) => entry.action);
    expect(actions).toEqual(expect.arrayContaining(['role.create', 'user.create', 'user.disable', 'user.enable', 'user.password.set', 'user.role.assign', 'user.role.unassign', 'sessions.revoke']));
    // The client file applied at start-up is audited too, as actor `config` (not an admin request).
    for (const entry of all.body.items.filter((item: { actor: string }) => item.actor !== 'config')) {
      // Refused requests are audited too (admin.refused: failure, admin.denied: denied).
      const outcome = ({ 'admin.refused': 'failure', 'admin.denied': 'denied' } as Record<string, string>)[entry.action] ?? 'success';
      expect(entry).toMatchObject({ outcome, client_address: expect.any(String), request_id: expect.any(String) });
      if (entry.action !== 'admin.denied') expect(entry.actor).toBe('client:admin-cli');
      expect(JSON.stringify(entry)).not.toMatch(/passphrase|correct horse|argon2/);
    }
    const user = all.body.items.find((entry: { action: string; details: Record<string, unknown> }) => entry.action === 'user.create' && entry.details.username === 'Alice');
    const byTarget = await admin.call('GET', `/admin/audit?target=${encodeURIComponent(user.target)}&action=user.role.assign`);
    expect(byTarget.body.items.map((e: { action: string }) => e.action)).toEqual(['user.role.assign', 'user.role.assign']);
    const none = await admin.call('GET', '/admin/audit?actor=client:someone-else');
    expect(none.body.items).toEqual([]);
    const future = await admin.call('GET', `/admin/audit?since=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`);
    expect(future.body.items).toEqual([]);
    const window = await admin.call('GET', `/admin/audit?since=${encodeURIComponent(new Date(Date.now() - 600_000).toISOString())}&until=${encodeURIComponent(new Date(Date.now() + 1000).toISOString())}&limit=3`);
    expect(window.body.items).toHaveLength(3);
    const next = await admin.call('GET', `/admin/audit?limit=3&cursor=${window.body.next_cursor}`);
    expect(Number(next.body.items[0].id)).toBeLessThan(Number(window.body.items[2].id));
    const bad = await admin.call('GET', '/admin/audit?since=yesterday');
    expect([bad.status, fieldsOf(bad.body)]).toEqual([400, ['query:since']]);
  });
});

describe('logs', () => {
  it('never hold passwords or tokens, on the error path too (debug level)', async () => {
    const secret = 'super-secret-passphrase-1';
    expect((await admin.call('POST', '/admin/users', { raw: `{"username":"logged","password":"${secret}",` })).body.error).toBe('invalid_json');
    expect((await admin.call('POST', '/admin/users', { body: { username: 'logged', password: secret, extra: secret } })).status).toBe(400);
    expect((await admin.call('POST', '/admin/users', { body: { username: 'logged', password: secret } })).status).toBe(201);
    expect((await admin.call('POST', '/admin/users', { body: { username: 'logged', password: secret } })).status).toBe(409);
    const logs = app.logs.join('');
    expect(logs).toContain('request rejected');
    expect(logs).not.toContain(secret);
    expect(logs).not.toContain(admin.token);
  });
});

describe('openapi document', () => {
  it('is OpenAPI 3.1, generated from the handlers\' schemas, listing every endpoint', async () => {
    const { status, body } = await admin.call('GET', '/admin/openapi.json');
    expect(status).toBe(200);
    expect(body.openapi).toBe('3.1.0');
    const operations = Object.entries(body.paths as Record<string, Record<string, unknown>>).flatMap(([path, item]) =>
      Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(operations.sort()).toEqual(
      [
        'POST /admin/users',
        'GET /admin/users',
        'GET /admin/users/{id}',
        'POST /admin/users/{id}/disable',
        'POST /admin/users/{id}/enable',
        'PUT /admin/users/{id}/password',
        'POST /admin/roles',
        'GET /admin/roles',
        'PUT /admin/users/{id}/roles/{role}',
        'DELETE /admin/users/{id}/roles/{role}',
        'GET /admin/users/{id}/sessions',
        'DELETE /admin/users/{id}/sessions',
        'GET /admin/audit',
        'GET /admin/openapi.json',
        'GET /admin/users/{id}/authenticators',
        'DELETE /admin/users/{id}/authenticators',
        'DELETE /admin/users/{id}/authenticators/{authenticator}',
        'PUT /admin/users/{id}/authenticators/enrollment',
        'POST /admin/users/{id}/authenticators/enrollment-links',
        'POST /admin/clients',
        'GET /admin/clients',
        'GET /admin/clients/{id}',
        'PUT /admin/clients/{id}',
        'DELETE /admin/clients/{id}',
        'POST /admin/clients/{id}/disable',
        'POST /admin/clients/{id}/enable',
        'POST /admin/clients/{id}/secret',
        'POST /admin/clients/{id}/certificates',
        'DELETE /admin/clients/{id}/certificates/{certificateId}',
      ].sort(),
    );
    expect(body.components.schemas.CreateUser).toMatchObject({ type: 'object', additionalProperties: false, required: ['username'] });
    expect(body.components.securitySchemes.mutualTLS.type).toBe('mutualTLS');
    expect(body.components.securitySchemes.adminToken.flows.clientCredentials.tokenUrl).toBe(`${app.issuer}/token`);
  });
});
