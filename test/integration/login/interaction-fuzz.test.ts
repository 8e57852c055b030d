import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO, startTestApp, type TestApp } from '../../helpers/app.js';

let app: TestApp;
let uid: string;
let cookie: string;
let csrf: string;

beforeAll(async () => {
  app = await startTestApp({ env: { LOGIN_DELAY_MS: '0', LOGIN_MAX_FAILURES_PER_ACCOUNT: '1000', LOGIN_MAX_FAILURES_PER_ADDRESS: '100000' } });
  // A real interaction: /auth for web-bff redirects to /interaction/<uid> with its cookies.
  const params = new URLSearchParams({
    client_id: DEMO.webBff[0],
    response_type: 'code',
    redirect_uri: 'http://localhost:3000/callback',
    scope: 'openid orders',
    code_challenge: createHash('sha256').update('verifier-verifier-verifier-verifier-verifier').digest('base64url'),
    code_challenge_method: 'S256',
  });
  const auth = await request(`${app.issuer}/auth?${params}`, { dispatcher: app.agent() });
  await auth.body.dump();
  expect(auth.statusCode).toBe(303);
  uid = /\/interaction\/([^/?]+)/.exec(String(auth.headers.location))![1]!;
  const setCookies = ([] as string[]).concat(auth.headers['set-cookie'] ?? []);
  cookie = setCookies.map((value) => value.split(';')[0]).join('; ');
  const page = await request(`${app.issuer}/interaction/${uid}`, { headers: { cookie }, dispatcher: app.agent() });
  const html = await page.body.text();
  expect(page.statusCode).toBe(200);
  csrf = /name="csrf" value="([^"]+)"/.exec(html)![1]!;
});
afterAll(async () => {
  await app?.stop();
});

describe('interaction endpoints under generated input', () => {
  it('answer generated credentials on a valid login form with the login page (400/429), never 5xx nor a login', async () => {
    const text = fc.oneof(fc.string({ maxLength: 80 }), fc.string({ unit: 'grapheme', maxLength: 40 }), fc.constantFrom('', ' ', '\u0000', 'é'.repeat(300), '<b>'));
    await fc.assert(
      fc.asyncProperty(text, text, fc.array(fc.tuple(fc.constantFrom('username', 'password', 'csrf', 'extra'), text), { maxLength: 3 }), async (username, password, extra) => {
        const params = new URLSearchParams({ csrf, username, password });
        for (const [key, value] of extra) params.append(key, value);
        const response = await request(`${app.issuer}/interaction/${uid}/login`, {
          method: 'POST',
          headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
          body: params.toString(),
          dispatcher: app.agent(),
        });
        await response.body.dump();
        expect([400, 429]).toContain(response.statusCode);
      }),
      { numRuns: 60 },
    );
  });
  it('never answer 5xx', async () => {
    const text = fc.oneof(fc.string({ maxLength: 80 }), fc.string({ unit: 'grapheme', maxLength: 40 }), fc.constantFrom('', '\u0000', 'a'.repeat(5000), '<script>', 'alice'));
    const field = fc.constantFrom('csrf', 'username', 'password', 'logout', 'xsrf', 'prompt');
    const request$ = fc.record({
      method: fc.constantFrom('POST', 'POST', 'POST', 'GET', 'PUT', 'DELETE', 'HEAD'),
      target: fc.oneof(
        { arbitrary: fc.constant('__uid__'), weight: 4 },
        { arbitrary: fc.string({ maxLength: 30 }).map(encodeURIComponent), weight: 1 },
        { arbitrary: fc.constantFrom('..', '%00', 'x'.repeat(70)), weight: 1 },
      ),
      // abort ends the interaction: kept rare so most runs reach the login handler.
      action: fc.constantFrom('', '/login', '/login', '/login', '/login', '/confirm', '/other', '/login/extra', '/abort'),
      withCookie: fc.constantFrom(true, true, true, false),
      withCsrf: fc.constantFrom(true, true, true, false),
      contentType: fc.constantFrom('application/x-www-form-urlencoded', 'application/x-www-form-urlencoded', 'application/json', 'text/plain', 'multipart/form-data; boundary=x', undefined),
      form: fc.array(fc.tuple(field, text), { maxLength: 6 }),
    });
    await fc.assert(
      fc.asyncProperty(request$, async (r) => {
        const params = new URLSearchParams();
        if (r.withCsrf) params.append('csrf', csrf);
        for (const [key, value] of r.form) params.append(key, value);
        const path = `/interaction/${r.target === '__uid__' ? uid : r.target}${r.action}`;
        const headers: Record<string, string> = {};
        if (r.withCookie) headers.cookie = cookie;
        if (r.contentType) headers['content-type'] = r.contentType;
        const hasBody = r.method === 'POST' || r.method === 'PUT';
        const response = await request(`${app.issuer}${path}`, { method: r.method, headers, body: hasBody ? params.toString() : undefined, dispatcher: app.agent() });
        await response.body.dump();
        expect(response.statusCode).toBeLessThan(500);
      }),
      { numRuns: 200 },
    );
  });

});
