import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClient, type AdminClient } from '../../helpers/admin.js';
import { startTestApp, type TestApp } from '../../helpers/app.js';

let app: TestApp;
let admin: AdminClient;

beforeAll(async () => {
  app = await startTestApp();
  admin = await adminClient(app);
});
afterAll(() => app?.stop());

const fieldsOf = (body: any) => (body.fields ?? []).map((f: { in: string; field: string }) => `${f.in}:${f.field}`);

// JSON may escape a lone UTF-16 surrogate (`"\ud800"`); PostgreSQL's jsonb and text refuse it.
describe('lone surrogates in admin JSON', () => {
  it('are refused with a field error, not a 500', async () => {
    const user = await admin.call('POST', '/admin/users', { body: { username: 'surrogate-target' } });
    expect(user.status).toBe(201);
    const cases: Array<[string, string, string, string]> = [
      ['POST', `/admin/users/${user.body.id}/disable`, '{"reason":"lost \\ud800 laptop"}', 'body:reason'],
      ['POST', '/admin/users', '{"username":"eve\\udfff"}', 'body:username'],
      ['POST', '/admin/users', '{"username":"eve2","password":"correct horse \\ud83d battery"}', 'body:password'],
      ['POST', '/admin/roles', '{"name":"ok-role","description":"\\udc00"}', 'body:description'],
      ['PUT', `/admin/users/${user.body.id}/password`, '{"password":"correct horse \\ud83d battery"}', 'body:password'],
    ];
    for (const [method, path, raw, field] of cases) {
      const response = await admin.call(method, path, { raw });
      expect([path, response.status, response.body.error, fieldsOf(response.body)]).toEqual([path, 400, 'invalid_request', [field]]);
    }
    // A well-formed pair (an emoji) is fine.
    const emoji = await admin.call('POST', `/admin/users/${user.body.id}/disable`, { raw: '{"reason":"lost \\ud83d\\udcbb laptop"}' });
    expect(emoji.status).toBe(200);
  });
});
