import { createHash, randomBytes } from 'node:crypto';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPasswordHasher } from '../../../src/iam/password-hasher.js';
import { createUserService } from '../../../src/iam/user.service.js';
import { formBody, startTestApp, type TestApp } from '../../helpers/app.js';

// Issue 16: anonymous requests store nothing lasting, the audit log included. An anonymous cancel
// of an interaction and an anonymous logout confirmation are counted in
// `custos_anonymous_outcomes_total`, not written to `audit_log`; the same acts of a signed-in user
// are still audited.

let app: TestApp;
const PASSWORD = 'correct horse battery staple';

beforeAll(async () => {
  app = await startTestApp({ env: { LOGIN_DELAY_MS: '0' } });
  const users = createUserService({ db: app.custos.db, hasher: createPasswordHasher() });
  await users.create({ username: 'known-user', password: PASSWORD }, { actor: 'test', initiatingEntity: 'admin' });
});
afterAll(() => app?.stop());

/** A browser's cookie jar and the requests it sends (no redirects followed). */
function browser() {
  const jar = new Map<string, string>();
  const agent = app.agent();
  return async (method: 'GET' | 'POST', target: string, form?: Record<string, string>) => {
    const headers: Record<string, string> = { cookie: [...jar].map(([name, value]) => `${name}=${value}`).join('; ') };
    if (form) headers['content-type'] = 'application/x-www-form-urlencoded';
    const response = await request(new URL(target, app.issuer), { method, headers, body: form ? formBody(form) : undefined, dispatcher: agent });
    for (const cookie of [response.headers['set-cookie'] ?? []].flat()) {
      const [pair = ''] = cookie.split(';');
      const name = pair.slice(0, pair.indexOf('='));
      const value = pair.slice(pair.indexOf('=') + 1);
      if (value === '' || /max-age=0|expires=thu, 01 jan 1970/i.test(cookie)) jar.delete(name);
      else jar.set(name, value);
    }
    const location = response.headers.location;
    return { status: response.statusCode, location: typeof location === 'string' ? location : undefined, text: await response.body.text() };
  };
}

type Browser = ReturnType<typeof browser>;

/** `/auth` of the demo web-bff: returns the login page's path and its CSRF token. */
async function startAuthorization(send: Browser) {
  const params = new URLSearchParams({
    client_id: 'web-bff',
    response_type: 'code',
    redirect_uri: 'http://localhost:3000/callback',
    scope: 'openid',
    code_challenge: createHash('sha256').update(randomBytes(32).toString('base64url')).digest('base64url'),
    code_challenge_method: 'S256',
  });
  const auth = await send('GET', `/auth?${params}`);
  expect(auth.status).toBe(303);
  const path = new URL(auth.location!, app.issuer).pathname;
  const page = await send('GET', path);
  expect(page.status).toBe(200);
  return { path, csrf: /name="csrf" value="([^"]+)"/.exec(page.text)![1]! };
}

/** The logout confirmation page, then "Sign out". */
async function confirmLogout(send: Browser) {
  const page = await send('GET', '/session/end');
  expect(page.status).toBe(200);
  const xsrf = /name="xsrf" value="([^"]+)"/.exec(page.text)?.[1];
  expect(xsrf).toBeTruthy();
  const confirmed = await send('POST', '/session/end/confirm', { xsrf: xsrf!, logout: 'yes' });
  expect([200, 303]).toContain(confirmed.status);
}

const auditRows = (actions: string[]) => app.custos.db.selectFrom('audit_log').select(['action', 'actor']).where('action', 'in', actions).execute();

async function metric(action: string): Promise<number> {
  const response = await request(`${app.issuer}/metrics`, { dispatcher: app.agent() });
  const text = await response.body.text();
  expect(response.statusCode).toBe(200);
  const line = text.split('\n').find((candidate) => candidate.startsWith(`custos_anonymous_outcomes_total{action="${action}"}`));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

describe('anonymous outcomes are counted, not audited', () => {
  it('an anonymous cancel of an interaction writes no audit row and is counted', async () => {
    const before = await metric('login.cancel');
    for (let i = 0; i < 3; i++) {
      const send = browser();
      const { path, csrf } = await startAuthorization(send);
      const cancelled = await send('POST', `${path}/abort`, { csrf });
      expect(cancelled.status).toBe(303);
      // Back to the authorization endpoint, which returns access_denied to the client.
      const resumed = await send('GET', cancelled.location!);
      expect(new URL(resumed.location!).searchParams.get('error')).toBe('access_denied');
    }
    expect(await auditRows(['login.cancel', 'consent.deny'])).toEqual([]);
    expect((await metric('login.cancel')) - before).toBe(3);
  });

  it('an anonymous logout confirmation writes no audit row and is counted', async () => {
    const before = await metric('logout');
    for (let i = 0; i < 3; i++) await confirmLogout(browser());
    // The audit write would follow the response (the provider's event): give it the time.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await auditRows(['logout'])).toEqual([]);
    expect((await metric('logout')) - before).toBe(3);
  });

  it('the logout of a signed-in user is still audited, with the user as actor, and not counted as anonymous', async () => {
    const before = await metric('logout');
    const send = browser();
    const { path, csrf } = await startAuthorization(send);
    const signedIn = await send('POST', `${path}/login`, { csrf, username: 'known-user', password: PASSWORD });
    expect(signedIn.status).toBe(303);
    // Back through the authorization endpoint: the session now holds the user.
    const resumed = await send('GET', signedIn.location!);
    expect(resumed.location).toMatch(/^http:\/\/localhost:3000\/callback\?code=/);
    await confirmLogout(send);
    // Written after the response (the provider's event): polled.
    await expect.poll(async () => (await auditRows(['logout'])).map((row) => row.actor)).toEqual([expect.stringMatching(/^user:/)]);
    expect(await metric('logout')).toBe(before);
  });
});
