import { createLocalJWKSet, jwtVerify } from 'jose';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLoginFixture, type LoginFixture } from '../../fixtures/bff.js';
import { adminClient, type AdminClient } from '../../helpers/admin.js';
import { DEMO } from '../../helpers/app.js';
import { BROWSER_UNAVAILABLE, launchBrowser, type TestBrowser } from '../../helpers/browser.js';
import { exchange, isActive, refresh } from '../../helpers/user-tokens.js';

let login: LoginFixture;
let browser: TestBrowser;
let admin: AdminClient;
let userId: string;

beforeAll(async () => {
  login = await startLoginFixture();
  userId = await login.createUser({ username: 'erin', password: 'correct horse battery', roles: ['orders-reader'] });
  browser = await launchBrowser({ trust: login.app.custos.tls.certPem });
  admin = await adminClient(login.app);
});
afterAll(async () => {
  await browser?.close();
  await login?.stop();
});

describe.skipIf(BROWSER_UNAVAILABLE)('an administrator cuts a user off, end to end through a real login', () => {
  it('BFF gets a back-channel logout, refresh fails, access and resume tokens introspect inactive, a new visit asks for login', async () => {
    const { app, bff } = login;
    const { page } = browser;

    // Log in through the BFF in a real browser: the BFF holds an access and a refresh token.
    await login.signIn(page, 'erin', 'correct horse battery');
    expect(bff.sessions.size).toBe(1);
    const session = [...bff.sessions.values()][0]!;
    expect(session.claims.sub).toBe(userId);
    expect(session.refreshToken).toBeTruthy();

    // orders-api received the user's access token and exchanges it for a resume token.
    const resume = await exchange(app, 'orders-api', session.accessToken);
    expect([resume.status, resume.body.error]).toEqual([200, undefined]);
    const resumeToken = resume.body.access_token as string;

    // Everything works before the revocation (so the checks after it can fail).
    expect(await isActive(app, session.accessToken, { client: 'orders-api' })).toBe(true);
    expect(await isActive(app, resumeToken, { client: 'billing-worker' })).toBe(true);
    const refreshed = await refresh(app, session.refreshToken!);
    expect([refreshed.status, refreshed.body.error]).toEqual([200, undefined]);
    const refreshToken = (refreshed.body.refresh_token as string | undefined) ?? session.refreshToken!;
    const sessions = await admin.call('GET', `/admin/users/${userId}/sessions`);
    expect(sessions.body.items).toEqual([expect.objectContaining({ clients: ['web-bff'] })]);

    // The administrator revokes everything the user holds.
    const revoked = await admin.call('DELETE', `/admin/users/${userId}/sessions`);
    expect(revoked.status).toBe(200);
    expect(revoked.body).toMatchObject({ sessions_revoked: 1, grants_revoked: 1, backchannel_logout: { sent: 1, failed: 0 } });

    // The BFF received a valid back-channel logout token for that session and ended it.
    await expect.poll(() => bff.logoutTokens.length).toBe(1);
    const received = bff.logoutTokens[0]!;
    const jwks = (await (await request(`${app.issuer}/jwks`, { dispatcher: app.agent() })).body.json()) as { keys: never[] };
    const { payload } = await jwtVerify(received.token, createLocalJWKSet(jwks as never), { issuer: app.issuer, audience: DEMO.webBff[0], typ: 'logout+jwt' });
    expect(payload).toMatchObject({ sub: userId, sid: session.claims.sid, events: { 'http://schemas.openid.net/event/backchannel-logout': {} } });
    expect(received.endedSessions).toBe(1);
    expect(bff.sessions.size).toBe(0);

    // The refresh token fails; the access token and the resume token introspect inactive.
    const afterRefresh = await refresh(app, refreshToken);
    expect([afterRefresh.status, afterRefresh.body.error]).toEqual([400, 'invalid_grant']);
    expect(await isActive(app, session.accessToken, { client: 'orders-api' })).toBe(false);
    expect(await isActive(app, resumeToken, { client: 'billing-worker' })).toBe(false);
    const reExchange = await exchange(app, 'billing-worker', resumeToken);
    expect([reExchange.status, reExchange.body.error]).toEqual([400, 'invalid_request']);

    // A new visit asks for the login again.
    await page.goto(`${bff.url}/login`);
    await page.waitForURL(/\/interaction\//);
    expect(await page.isVisible('input[name=password]')).toBe(true);

    // One audit record and one event, in the same transaction.
    const audit = await app.custos.db.selectFrom('audit_log').selectAll().where('action', '=', 'sessions.revoke').execute();
    expect(audit.map((row) => [row.actor, row.target])).toEqual([['client:admin-cli', `user:${userId}`]]);
    const events = await app.custos.db.selectFrom('event_outbox').selectAll().where('type', '=', 'session-revoked').execute();
    expect(events.map((row) => row.subject)).toEqual([userId]);
  });
});
