import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLoginFixture, type LoginFixture } from '../../fixtures/bff.js';
import { BROWSER_UNAVAILABLE, launchBrowser, type TestBrowser } from '../../helpers/browser.js';

let login: LoginFixture;
let browser: TestBrowser;
let userId: string;

beforeAll(async () => {
  login = await startLoginFixture();
  userId = await login.createUser({ username: 'bob', password: 'correct horse battery', email: 'bob@example.test', roles: ['orders-reader'] });
  browser = await launchBrowser({ trust: login.app.custos.tls.certPem });
});
afterAll(async () => {
  await browser?.close();
  await login?.stop();
});

async function audit(action: string) {
  return login.app.custos.db.selectFrom('audit_log').selectAll().where('action', '=', action).orderBy('id').execute();
}

describe.skipIf(BROWSER_UNAVAILABLE)('log in through a BFF in a real browser', () => {
  it('BFF → login page → callback → verified ID token with roles; logout ends the session (back-channel too); a new visit asks to log in', async () => {
    const { page } = browser;
    const { bff, app } = login;
    await page.goto(bff.url);
    expect(await page.textContent('body')).toContain('You are not signed in');

    const [response] = await Promise.all([page.waitForResponse((r) => r.url().includes('/interaction/')), page.click('#login')]);
    await page.waitForURL(/\/interaction\/[A-Za-z0-9_-]+$/);
    expect(page.url().startsWith(app.issuer)).toBe(true);
    const csp = (await response.allHeaders())['content-security-policy'];
    expect(csp).toContain("default-src 'none'");
    // Only the passkey button's two scripts, by nonce (issue 18); nothing inline, nothing else.
    expect(csp).toMatch(/script-src 'nonce-[A-Za-z0-9_-]{22}';/);
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval|script-src[^;]*'self'/);
    expect(csp).toContain("frame-ancestors 'none'");

    // The login form must be visible: screenshot it and check the fields.
    const screenshot = await page.screenshot({ fullPage: true });
    expect(screenshot.subarray(1, 4).toString()).toBe('PNG');
    expect(screenshot.length).toBeGreaterThan(2000);
    expect(await page.isVisible('form input[name=username][autocomplete="username webauthn"]')).toBe(true);
    expect(await page.isVisible('form input[name=password][type=password][autocomplete=current-password]')).toBe(true);
    expect(await page.isVisible('button[type=submit]:has-text("Sign in")')).toBe(true);
    // The stylesheet loaded under the CSP (style-src 'self').
    expect(await page.$eval('main', (main) => (globalThis as unknown as { getComputedStyle(e: unknown): { backgroundColor: string } }).getComputedStyle(main).backgroundColor)).toBe('rgb(255, 255, 255)');

    await page.fill('input[name=username]', 'bob');
    await page.fill('input[name=password]', 'correct horse battery');
    await Promise.all([page.waitForURL(`${bff.url}/`), page.click('button[type=submit]:has-text("Sign in")')]);
    expect(await page.textContent('#user')).toContain('bob');

    // The BFF holds tokens and a verified ID token with the roles claim (no consent page: first party).
    expect(bff.sessions.size).toBe(1);
    const session = [...bff.sessions.values()][0]!;
    expect(session.claims).toMatchObject({ sub: userId, roles: ['orders-reader'], email: 'bob@example.test', preferred_username: 'bob', aud: 'web-bff', iss: app.issuer });
    expect(decodeProtectedHeader(session.idToken)).toMatchObject({ alg: 'ES256' });
    expect(session.refreshToken).toBeTruthy();
    const at = decodeProtectedHeader(session.accessToken);
    expect(at.typ).toBe('at+jwt');
    expect((await audit('login.success')).map((row) => row.target)).toEqual([`user:${userId}`]);

    // userinfo answers with the same claims, for a token narrowed to identity scopes.
    const identity = await app.token({ grant_type: 'refresh_token', refresh_token: session.refreshToken!, scope: 'openid email' }, { basic: ['web-bff', 'dev-web-bff-secret-change-me'] });
    expect(identity.status).toBe(200);
    session.refreshToken = identity.body.refresh_token;
    const userinfo = await request(`${app.issuer}/me`, { headers: { authorization: `Bearer ${identity.body.access_token}` }, dispatcher: app.agent() });
    expect(userinfo.statusCode).toBe(200);
    expect(await userinfo.body.json()).toMatchObject({ sub: userId, roles: ['orders-reader'], email: 'bob@example.test' });

    // RP-initiated logout: our confirmation page, then back to the BFF.
    await page.click('#logout');
    await page.waitForURL(/\/session\/end/);
    expect(await page.isVisible('button[name=logout][value=yes]')).toBe(true);
    await Promise.all([page.waitForURL(`${bff.url}/`), page.click('button[name=logout][value=yes]')]);
    expect(await page.textContent('body')).toContain('You are not signed in');
    // Written by the provider's end_session.success listener.
    await expect.poll(async () => (await audit('logout')).map((row) => row.actor)).toEqual([`user:${userId}`]);

    // Back-channel logout: a logout token that verifies against the JWKS.
    await expect.poll(() => bff.logoutTokens.length).toBe(1);
    const received = bff.logoutTokens[0]!;
    expect(received.header).toMatchObject({ typ: 'logout+jwt', alg: 'ES256' });
    const jwks = (await (await request(`${app.issuer}/jwks`, { dispatcher: app.agent() })).body.json()) as { keys: never[] };
    const { payload } = await jwtVerify(received.token, createLocalJWKSet(jwks as never), { issuer: app.issuer, audience: 'web-bff', typ: 'logout+jwt' });
    expect(payload.events).toEqual({ 'http://schemas.openid.net/event/backchannel-logout': {} });
    expect(payload.sid).toBe(session.claims.sid);
    expect(payload.sub).toBe(userId);
    expect(payload.nonce).toBeUndefined();

    // The session at Custos is gone: a new visit asks for the login again.
    await page.goto(`${bff.url}/login`);
    await page.waitForURL(/\/interaction\//);
    expect(await page.isVisible('input[name=password]')).toBe(true);

    // The old refresh token died with the session's grant.
    const refreshed = await app.token({ grant_type: 'refresh_token', refresh_token: session.refreshToken! }, { basic: ['web-bff', 'dev-web-bff-secret-change-me'] });
    expect(refreshed.status).toBe(400);
    expect(refreshed.body.error).toBe('invalid_grant');
  });
});
