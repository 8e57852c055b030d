import { decodeJwt } from 'jose';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publicJwks } from '../../../src/keys/signing-keys.js';
import { sendBackchannelLogout, type SessionForLogout } from '../../../src/oidc/logout.js';
import { eventPayloadHash, verifyEventToken, VerifyError } from '../../../src/verify/index.js';
import { startLoginFixture, type LoginFixture } from '../../fixtures/bff.js';
import { DEMO } from '../../helpers/app.js';
import { BROWSER_UNAVAILABLE, launchBrowser, type TestBrowser } from '../../helpers/browser.js';

let login: LoginFixture;
let browser: TestBrowser;
let userId: string;
const PASSWORD = 'correct horse battery';

beforeAll(async () => {
  // Tests reach the server from loopback: it is the trusted proxy, so X-Forwarded-For names the client.
  login = await startLoginFixture({ env: { TRUST_PROXY: '127.0.0.1,::1' } });
  userId = await login.createUser({ username: 'frank', password: PASSWORD, roles: ['orders-reader'] });
  browser = await launchBrowser({ trust: login.app.custos.tls.certPem });
});
afterAll(async () => {
  await browser?.close();
  await login?.stop();
});

/** A fresh browser login through the BFF; returns the BFF's session for it. */
async function freshLogin() {
  await browser.context.clearCookies();
  login.bff.sessions.clear();
  await login.signIn(browser.page, 'frank', PASSWORD);
  expect(login.bff.sessions.size).toBe(1);
  return [...login.bff.sessions.values()][0]!;
}

const refresh = (token: string) => login.app.token({ grant_type: 'refresh_token', refresh_token: token }, { basic: DEMO.webBff });

describe.skipIf(BROWSER_UNAVAILABLE)('tokens from a real login', () => {
  it('rotates refresh tokens; reusing a rotated one revokes the grant, so the newest stops working too', async () => {
    const session = await freshLogin();
    const first = await refresh(session.refreshToken!);
    expect(first.status).toBe(200);
    expect(first.body.refresh_token).toBeTruthy();
    expect(first.body.refresh_token).not.toBe(session.refreshToken);
    expect(decodeJwt(first.body.access_token)).toMatchObject({ sub: userId, aud: DEMO.ordersResource, client_id: 'web-bff' });
    const second = await refresh(first.body.refresh_token);
    expect(second.status).toBe(200);
    const newest = second.body.refresh_token as string;

    // The rotated token, presented again (through the trusted proxy): reuse detected.
    const reused = await request(`${login.app.issuer}/token`, {
      method: 'POST',
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: first.body.refresh_token }).toString(),
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${DEMO.webBff[0]}:${DEMO.webBff[1]}`).toString('base64')}`,
        'x-forwarded-for': '203.0.113.77',
      },
      dispatcher: login.app.agent(),
    });
    expect(reused.statusCode).toBe(400);
    expect(((await reused.body.json()) as { error: string }).error).toBe('invalid_grant');
    // The whole grant is gone: the newest refresh token is refused too.
    const afterReuse = await refresh(newest);
    expect(afterReuse.status).toBe(400);
    expect(afterReuse.body.error).toBe('invalid_grant');
    // Written by the provider's grant.error listener, right after the response.
    const reuses = () => login.app.custos.db.selectFrom('audit_log').selectAll().where('action', '=', 'refresh.reuse').execute();
    await expect.poll(async () => (await reuses()).length).toBe(1);
    const audit = await reuses();
    expect(audit[0]).toMatchObject({ actor: 'client:web-bff', target: `user:${userId}`, outcome: 'denied', client_address: '203.0.113.77' });
  });

  it('a disabled user gets no more tokens at refresh', async () => {
    const session = await freshLogin();
    await login.users.disable({ id: userId }, { actor: 'cli', initiatingEntity: 'admin' });
    try {
      const refused = await refresh(session.refreshToken!);
      expect(refused.status).toBe(400);
      expect(refused.body.error).toBe('invalid_grant');
    } finally {
      await login.users.enable({ id: userId }, { actor: 'cli', initiatingEntity: 'admin' });
      // Disabling set a revocation cut-off; tokens issued in its second count as revoked (JWT iat
      // has one-second resolution), so the next tests' logins must start in a later second.
      await new Promise((resolve) => setTimeout(resolve, 1100));
    }
  });

  it('sendBackchannelLogout (for callers ending sessions outside end_session) notifies the BFF of a stored session', async () => {
    const session = await freshLogin();
    const rows = await login.app.custos.db.selectFrom('oidc_model').select('payload').where('model', '=', 'Session').execute();
    const stored = rows.map((row) => row.payload as SessionForLogout).find((payload) => payload.authorizations?.['web-bff']?.sid === session.claims.sid);
    expect(stored).toBeDefined();
    const before = login.bff.logoutTokens.length;
    expect(await sendBackchannelLogout(login.app.custos.provider(), stored!)).toEqual({ notified: ['web-bff'], failed: [] });
    expect(login.bff.logoutTokens).toHaveLength(before + 1);
    expect(login.bff.logoutTokens.at(-1)!.claims).toMatchObject({ sid: session.claims.sid, sub: userId });
    expect(login.bff.sessions.size).toBe(0);
  });

  it('end to end: orders-api (mTLS) exchanges the access token of a real login for a resume token', async () => {
    const session = await freshLogin();
    const claims = decodeJwt(session.accessToken);
    expect(claims).toMatchObject({ sub: userId, aud: DEMO.ordersResource, scope: expect.stringContaining('orders') });

    const event = { type: 'order.placed', orderId: 'o-2001', amount: 1999, currency: 'EUR' };
    const { status, body } = await login.app.token(
      {
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
        client_id: 'orders-api',
        subject_token: session.accessToken,
        subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
        scope: 'resume_orders',
        audience: DEMO.eventsResource,
        event_payload_hash: eventPayloadHash(event),
      },
      { agent: login.app.clientAgent('orders-api') },
    );
    expect(status).toBe(200);
    expect(body.scope).toBe('resume_orders');

    const options = { issuer: login.app.issuer, jwks: publicJwks(login.app.custos.keys()), audience: DEMO.eventsResource, requiredScope: 'resume_orders' };
    const verified = await verifyEventToken(body.access_token, event, options);
    expect(verified).toMatchObject({ sub: userId, act: { sub: 'orders-api' }, scope: ['resume_orders'] });
    const edited = verifyEventToken(body.access_token, { ...event, amount: 1 }, options);
    await expect(edited).rejects.toBeInstanceOf(VerifyError);
    await expect(edited).rejects.toMatchObject({ code: 'payload_mismatch' });
  });
});
